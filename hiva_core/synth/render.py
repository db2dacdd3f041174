"""Offscreen rendering of one SynthAU sample with moderngl (standalone EGL context, Mesa llvmpipe works).

Blinn-Phong shading with a key and a fill light, per-vertex albedo from a small material map (skin, brows, lips, lash
line, sclera, iris, pupil, eye and mouth sockets, gums, teeth), normals recomputed after the blendshapes. Framing
is that of every face the model sees: a 2D similarity, applied after projection, maps five points of the neutral face
(eye centres, nose tip, mouth corners) onto `hiva_core.faces.align.TEMPLATE`, the template `prepare` and `predict`
align detected faces to, so a SynthAU render looks like an aligned crop (eyes at y = 0.38, 0.30 apart). A small
per-sample jitter of that template (`SampleParams.align_jitter`) stands for the alignment error of a real detector.
Landmarks are reported in continuous pixel coordinates (pixel j spans [j, j + 1]): template point t lies at t * size.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from augtext.errors import UserError
from hiva_core.faces.align import TEMPLATE, similarity_transform
from hiva_core.synth.aumap import blendshape_weights
from hiva_core.synth.facemodel import (
    RENDERED_PARTS,
    FaceModel,
    ambient_occlusion,
    smoothing_operator,
    vertex_normals,
)
from hiva_core.synth.sampling import SampleParams

LANDMARK_LIMIT = 0.94  # inner-face landmarks stay within 3% of the border (NDC units)
INNER_FACE = slice(17, 68)  # brows, nose, eyes, mouth of the 68 landmarks (0-16: the jaw line)
MATERIALS = ("skin", "brow", "lip", "lash", "sclera", "iris", "pupil", "eye_socket", "mouth_socket", "gums", "teeth")
PIVOT = np.array([0.0, -2.0, 0.0])  # head rotation centre (cm), roughly the middle of the head

VERTEX_SHADER = """
#version 330
uniform mat4 mvp;
in vec3 in_pos; in vec3 in_normal; in vec3 in_color; in vec2 in_spec;
out vec3 v_pos; out vec3 v_normal; out vec3 v_color; out vec2 v_spec;
void main() {
    v_pos = in_pos; v_normal = in_normal; v_color = in_color; v_spec = in_spec;
    gl_Position = mvp * vec4(in_pos, 1.0);
}
"""
FRAGMENT_SHADER = """
#version 330
uniform vec3 cam; uniform vec3 key_dir; uniform vec3 key_color; uniform vec3 fill_dir; uniform vec3 fill_color;
uniform vec3 ambient; uniform float specular;
in vec3 v_pos; in vec3 v_normal; in vec3 v_color; in vec2 v_spec;  // (extra shine, skin gloss)
out vec4 f_color;
void main() {
    vec3 n = normalize(v_normal);
    vec3 v = normalize(cam - v_pos);
    if (dot(n, v) < 0.0) n = -n;  // inner surfaces (mouth socket) face the camera
    vec3 albedo = pow(v_color, vec3(2.2));
    vec3 c = ambient * albedo;
    float kd = max(dot(n, key_dir), 0.0);
    float fd = max(dot(n, fill_dir), 0.0);
    c += albedo * (key_color * kd + fill_color * fd);
    vec3 h = normalize(key_dir + v);
    float s = pow(max(dot(n, h), 0.0), 24.0 + 40.0 * v_spec.x) * (specular * v_spec.y + v_spec.x);
    c += key_color * s * step(0.0, kd);
    f_color = vec4(pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0);
}
"""


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8
    landmarks: np.ndarray  # (68, 2) float, pixel coordinates (x right, y down)
    box: np.ndarray  # (4,) x0, y0, x1, y1 of the landmarks
    blendshapes: np.ndarray  # (E,) the weights that were rendered


def _load_triton_first() -> None:
    """Mesa's llvmpipe and Triton each carry an LLVM; Triton's native library crashes (segfault) when it is loaded
    after Mesa's, which torch does lazily (e.g. through torchvision). Loaded first, both work: do that if installed."""
    import importlib.util

    if "triton" not in sys.modules and importlib.util.find_spec("triton") is not None:
        try:
            import triton  # noqa: F401
        except Exception:  # noqa: BLE001 - a broken triton only matters to torch.compile
            pass


def create_context():
    import moderngl

    _load_triton_first()

    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception:  # noqa: BLE001 - any EGL failure: try the platform default
        try:
            return moderngl.create_standalone_context()
        except Exception as exc:  # noqa: BLE001
            raise UserError(
                f"cannot create an offscreen OpenGL context ({exc}); install Mesa EGL "
                "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)"
            ) from exc


def _smooth(d: np.ndarray, inner: float, outer: float) -> np.ndarray:
    t = np.clip((outer - d) / (outer - inner), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _polyline_distance(p: np.ndarray, line: np.ndarray) -> np.ndarray:
    d = np.full(len(p), np.inf)
    for a, b in zip(line[:-1], line[1:], strict=True):
        ab = b - a
        t = np.clip(((p - a) @ ab) / (ab @ ab), 0, 1)
        d = np.minimum(d, np.linalg.norm(p - (a + t[:, None] * ab), axis=1))
    return d


def _inside_polygon(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon test for many points."""
    inside = np.zeros(len(p), dtype=bool)
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        crosses = (a[1] > p[:, 1]) != (b[1] > p[:, 1])
        x = a[0] + (p[:, 1] - a[1]) * (b[0] - a[0]) / np.where(b[1] != a[1], b[1] - a[1], 1e-12)
        inside ^= crosses & (p[:, 0] < x)
    return inside


def material_weights(model: FaceModel) -> np.ndarray:
    """(V, len(MATERIALS)) per-vertex material mix on the neutral mesh (rows sum to 1)."""
    v, lm, part = model.neutral, model.neutral[model.landmarks68], model.part
    w = np.zeros((len(v), len(MATERIALS)), dtype=np.float32)
    m = {name: i for i, name in enumerate(MATERIALS)}
    pid = {name: i for i, name in enumerate(RENDERED_PARTS)}
    skinlike = np.isin(part, [pid["face"], pid["head"]])
    front = skinlike & (v[:, 2] > 4.0)
    # Brows: a band around the landmark brow lines, slightly above them, thinner towards the tails.
    brow = np.zeros(len(v))
    for idx in (range(17, 22), range(22, 27)):
        line = lm[list(idx)] + np.array([0.0, 0.1, 0.0])
        brow = np.maximum(brow, _smooth(_polyline_distance(v, line), 0.3, 0.5))
    brow *= front
    # Lips: inside the outer lip contour (in the frontal xy plane), soft edge.
    inside = _inside_polygon(v[:, :2], lm[48:60, :2]) & front & (v[:, 2] > lm[48:60, 2].min() - 1.0)
    lip_d = _polyline_distance(v, np.vstack([lm[48:60], lm[48:49]]))
    lip = np.maximum(inside.astype(float), _smooth(lip_d, 0.0, 0.15)) * front
    # Lash line: a thin dark line along the eyelid contours.
    lash = np.zeros(len(v))
    for idx in (list(range(36, 42)) + [36], list(range(42, 48)) + [42]):
        lash = np.maximum(lash, _smooth(_polyline_distance(v, lm[idx]), 0.04, 0.16))
    lash *= front
    skin = np.clip(1.0 - brow - lip - lash, 0.0, 1.0)
    w[:, m["skin"]], w[:, m["brow"]], w[:, m["lip"]], w[:, m["lash"]] = skin, brow, lip, lash
    w[skinlike] /= w[skinlike].sum(1, keepdims=True)
    # Eyes: the outer shell's front cap is iris, its centre pupil.
    for side in ("sclera_l", "sclera_r"):
        sel = part == pid[side]
        p = v[sel]
        c = (p.min(0) + p.max(0)) / 2
        ang = np.degrees(np.arccos(np.clip((p - c)[:, 2] / np.linalg.norm(p - c, axis=1), -1, 1)))
        pupil = _smooth(ang, 8.0, 9.5)
        iris = _smooth(ang, 21.0, 23.0) - pupil
        block = np.zeros((sel.sum(), len(MATERIALS)), dtype=np.float32)
        block[:, m["pupil"]], block[:, m["iris"]], block[:, m["sclera"]] = pupil, iris, 1.0 - pupil - iris
        w[sel] = block
    for part_name, mat in (
        ("eye_sockets", "eye_socket"),
        ("mouth_socket", "mouth_socket"),
        ("gums_tongue", "gums"),
        ("teeth", "teeth"),
    ):
        w[part == pid[part_name], m[mat]] = 1.0
    return w


def palette(params: SampleParams) -> tuple[np.ndarray, np.ndarray]:
    """(len(MATERIALS), 3) sRGB albedo and (len(MATERIALS), 2) (extra shine, skin-gloss factor) for this sample."""
    ident = params.identity
    skin, hair = np.array(ident.skin), np.array(ident.hair)
    brow = skin + ident.brow_strength * (hair - skin)
    lip = skin * np.array([1.0, 1.0 - ident.lip_tint * 1.3, 1.0 - ident.lip_tint * 1.1])
    colors = {
        "skin": skin,
        "brow": brow,
        "lip": lip,
        "lash": skin * 0.25 + hair * 0.45,
        "sclera": np.array([0.82, 0.78, 0.75]),
        "iris": np.array(ident.iris),
        "pupil": np.array([0.02, 0.02, 0.02]),
        "eye_socket": skin * 0.45,
        "mouth_socket": np.array([0.22, 0.07, 0.07]),
        "gums": np.array([0.55, 0.22, 0.22]),
        "teeth": np.array([0.78, 0.74, 0.66]),
    }
    spec = {"sclera": 0.6, "iris": 0.8, "pupil": 0.8, "lip": 0.15, "teeth": 0.3}
    gloss = {"brow": 0.1, "lash": 0.1}  # hair is matte: the sample's skin shine barely applies
    return (
        np.stack([colors[k] for k in MATERIALS]).astype(np.float32),
        np.array([[spec.get(k, 0.0), gloss.get(k, 1.0)] for k in MATERIALS], dtype=np.float32),
    )


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation (degrees): yaw about +y (positive turns the face to its left), pitch about +x (positive looks
    down), roll about +z."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def background(params: SampleParams, size: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: a flat colour, a linear gradient or smooth blotchy noise."""
    bg = params.background
    c1, c2 = np.array(bg["c1"]), np.array(bg["c2"])
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    if bg["kind"] == "flat":
        t = np.zeros((size, size))
    elif bg["kind"] == "gradient":
        t = (xx - 0.5) * np.cos(bg["angle"]) + (yy - 0.5) * np.sin(bg["angle"]) + 0.5
    else:
        rng = np.random.default_rng(params.noise_seed + 1)
        cells = rng.uniform(size=(bg["cells"], bg["cells"]))
        t = np.asarray(Image.fromarray((cells * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)) / 255.0
    t = np.clip(t, 0, 1)[..., None]
    return c1 * (1 - t) + c2 * t


class Renderer:
    """One GL context and framebuffer; `render(params)` draws one sample. Not thread-safe; one per process."""

    def __init__(self, model: FaceModel, size: int, samples: int = 4):
        self.model, self.size = model, size
        self.materials = material_weights(model)
        self.smoother = smoothing_operator(model.triangles, model.num_vertices)
        self.eye_ids = [model.landmarks68[list(range(36, 42))], model.landmarks68[list(range(42, 48))]]
        self.five = [model.landmarks68[i] for i in (30, 48, 54)]
        self.ctx = create_context()
        self._base_key: bytes | None = None  # identity whose neutral-expression mesh is cached in self._base
        self._base: np.ndarray | None = None
        ctx = self.ctx
        self.prog = ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        n = model.num_vertices
        self.vbo = ctx.buffer(reserve=n * 11 * 4)
        self.ibo = ctx.buffer(model.triangles.astype(np.int32).tobytes())
        layout = (self.vbo, "3f 3f 3f 2f", "in_pos", "in_normal", "in_color", "in_spec")
        self.vao = ctx.vertex_array(self.prog, [layout], index_buffer=self.ibo, index_element_size=4)
        samples = min(samples, ctx.max_samples)
        self.msaa = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer((size, size), 4, samples=samples)],
            depth_attachment=ctx.depth_renderbuffer((size, size), samples=samples),
        )
        self.fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((size, size), 4)]) if samples else self.msaa

    def release(self) -> None:
        self.ctx.release()

    def geometry(self, params: SampleParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Posed vertices (world), blendshape weights, the full clip-space matrix (aligned), camera position."""
        model = self.model
        weights = blendshape_weights(params.au, model.expression_names, params.extra)
        ident = params.identity
        key = ident.weights.tobytes()
        if self._base_key != key:
            self._base, self._base_key = model.identity_vertices(ident.weights), key
        verts = model.vertices(ident.weights, weights, base=self._base).astype(np.float64)
        rot = rotation(params.yaw, params.pitch, params.roll)
        verts = (verts - PIVOT) @ rot.T + PIVOT
        d = params.cam_distance
        cam = np.array([0.0, 1.0, d])
        f = 1.0 / np.tan(np.arctan(16.0 / d))  # a view about 32 cm high before alignment
        near, far = max(d - 30.0, 1.0), d + 30.0
        proj = np.array(
            [
                [f, 0, 0, 0],
                [0, f, 0, 0],
                [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                [0, 0, -1, 0],
            ]
        )
        view = np.eye(4)
        view[:3, 3] = -cam
        pv = proj @ view
        # Align: five points (eye centres, nose tip, mouth corners) of the posed *neutral-expression* face, in NDC, onto
        # the (jittered) shared template, so that expressions move features within a fixed frame. Template fraction t
        # is NDC 2t - 1 (x) and 1 - 2t (y): the same place in the image as align.template_points in a detected crop.
        base = self._base.reshape(-1, 3)
        pts = np.stack([base[self.eye_ids[0]].mean(0), base[self.eye_ids[1]].mean(0), *[base[i] for i in self.five]])
        ndc = _project(pv, (pts - PIVOT) @ rot.T + PIVOT)
        scale, dx, dy, droll = params.align_jitter
        tmpl = (TEMPLATE - 0.5) * scale + 0.5 + np.array([dx, dy])
        a = np.radians(droll)
        tmpl = (tmpl - 0.5) @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T + 0.5
        sim = similarity_transform(ndc, np.stack([tmpl[:, 0] * 2 - 1, 1 - tmpl[:, 1] * 2], axis=1))
        # Keep the inner face (brows, eyes, nose, mouth: landmarks 17-67) inside the frame; shrink about the centre only
        # if an extreme pose would push it out. The jaw line may leave the frame, as in an aligned crop of a real face:
        # shrinking for a dropped jaw (AU26/27) would tie the face's size in the image to an AU label.
        lm = _project(pv, verts[model.landmarks68[INNER_FACE]]) @ sim[:2, :2].T + sim[:2, 2]
        reach = np.abs(lm).max()
        if reach > LANDMARK_LIMIT:
            sim[:2] *= LANDMARK_LIMIT / reach
        align = np.eye(4)
        align[:2, :2] = sim[:2, :2]
        mvp = align @ pv
        mvp[:2] += np.outer(sim[:2, 2], pv[3])  # a translation in NDC is t * w in clip space
        return verts, weights, mvp, cam

    def render(self, params: SampleParams) -> Rendered:
        size, model = self.size, self.model
        verts, weights, mvp, cam = self.geometry(params)
        normals = vertex_normals(verts, model.triangles)
        albedo, spec = palette(params)
        colors = (self.materials @ albedo) * ambient_occlusion(verts, normals, self.smoother)[:, None]
        vspec = self.materials @ spec
        data = np.concatenate([verts.astype(np.float32), normals, colors, vspec], axis=1)
        self.vbo.write(np.ascontiguousarray(data, dtype=np.float32).tobytes())
        prog = self.prog
        prog["mvp"].write(mvp.T.astype(np.float32).tobytes())
        prog["cam"].value = tuple(cam)
        for name in ("key_dir", "key_color", "fill_dir", "fill_color", "ambient"):
            prog[name].value = tuple(float(x) for x in getattr(params, name))
        prog["specular"].value = params.specular
        ctx = self.ctx
        self.msaa.use()
        ctx.enable(ctx.DEPTH_TEST)
        ctx.disable(ctx.CULL_FACE)
        self.msaa.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.vao.render()
        if self.fbo is not self.msaa:
            ctx.copy_framebuffer(self.fbo, self.msaa)
        rgba = np.frombuffer(self.fbo.read(components=4, alignment=1), dtype=np.uint8).reshape(size, size, 4)[::-1]
        face, alpha = rgba[..., :3] / 255.0, rgba[..., 3:] / 255.0
        img = face * alpha + background(params, size) * (1 - alpha)
        img8 = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
        if params.blur > 0:
            img8 = img8.filter(ImageFilter.GaussianBlur(params.blur * size / 256))
        out = np.asarray(img8, dtype=np.float32)
        if params.noise > 0:
            out = out + np.random.default_rng(params.noise_seed).normal(0, params.noise, out.shape)
        image = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        landmarks, box = self.landmarks(verts, mvp)
        return Rendered(image=image, landmarks=landmarks, box=box, blendshapes=weights)

    def landmarks(self, verts: np.ndarray, mvp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 68 landmarks in pixels (x right, y down) and their box (x0, y0, x1, y1)."""
        ndc = _project(mvp, verts[self.model.landmarks68])
        pts = np.stack([(ndc[:, 0] + 1) / 2 * self.size, (1 - ndc[:, 1]) / 2 * self.size], axis=1)
        return pts, np.array([*pts.min(0), *pts.max(0)])


def _project(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ m.T
    return h[:, :2] / h[:, 3:4]
