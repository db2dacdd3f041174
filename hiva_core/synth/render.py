"""Offscreen rendering of one SynthAU sample with moderngl (standalone EGL context, Mesa llvmpipe works).

Per-vertex albedo from a small material map (skin, lips, lash line, sclera, iris, pupil, eye and mouth sockets, gums,
teeth), normals and ambient occlusion recomputed after the blendshapes; the shaders (hiva_core.synth.shading) light it
and draw skin detail, creases, brows and hair; occluders and camera effects follow in the image
(hiva_core.synth.overlays). Framing
is that of every face the model sees: a 2D similarity, applied after projection, maps five points of the neutral face
(eye centres, nose tip, mouth corners) onto `hiva_core.faces.align.TEMPLATE`, the template `prepare` and `predict`
align detected faces to, so a SynthAU render looks like an aligned crop (eyes at y = 0.38, 0.30 apart). A small
per-sample jitter of that template (`SampleParams.align_jitter`) stands for the alignment error of a real detector.
Landmarks are reported in continuous pixel coordinates (pixel j spans [j, j + 1]): template point t lies at t * size.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

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
from hiva_core.synth.overlays import background, degrade, draw_occluders
from hiva_core.synth.sampling import SampleParams
from hiva_core.synth.shading import (
    COVERAGE_FRAGMENT_SHADER,
    COVERAGE_VERTEX_SHADER,
    FRAGMENT_SHADER,
    MAP_FLOATS,
    VERTEX_SHADER,
    brow_length,
    set_uniforms,
    surface_maps,
)
from hiva_core.synth.shading import uniforms as shader_uniforms

LANDMARK_LIMIT = 0.94  # inner-face landmarks stay within 3% of the border (NDC units)
INNER_FACE = slice(17, 68)  # brows, nose, eyes, mouth of the 68 landmarks (0-16: the jaw line)
MATERIALS = ("skin", "lip", "lash", "sclera", "iris", "pupil", "eye_socket", "mouth_socket", "gums", "teeth")
PIVOT = np.array([0.0, -2.0, 0.0])  # head rotation centre (cm), roughly the middle of the head


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
    # Brows are the shader's (drawn over the skin from a person's look).
    # Lips: inside the outer lip contour (in the frontal xy plane), soft edge.
    inside = _inside_polygon(v[:, :2], lm[48:60, :2]) & front & (v[:, 2] > lm[48:60, 2].min() - 1.0)
    lip_d = _polyline_distance(v, np.vstack([lm[48:60], lm[48:49]]))
    lip = np.maximum(inside.astype(float), _smooth(lip_d, 0.0, 0.15)) * front
    # Lash line: a thin dark line along the eyelid contours.
    lash = np.zeros(len(v))
    for idx in (list(range(36, 42)) + [36], list(range(42, 48)) + [42]):
        lash = np.maximum(lash, _smooth(_polyline_distance(v, lm[idx]), 0.04, 0.16))
    lash *= front
    skin = np.clip(1.0 - lip - lash, 0.0, 1.0)
    w[:, m["skin"]], w[:, m["lip"]], w[:, m["lash"]] = skin, lip, lash
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
    skin, hair = np.array(ident.skin), np.array(ident.look.brow_rgb)
    lip = skin * np.array([1.0, 1.0 - ident.lip_tint * 1.3, 1.0 - ident.lip_tint * 1.1])
    colors = {
        "skin": skin,
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
    gloss = {"lash": 0.1}  # hair is matte: the sample's skin shine barely applies
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


class Renderer:
    """One GL context and framebuffer; `render(params)` draws one sample. Not thread-safe; one per process."""

    def __init__(self, model: FaceModel, size: int, samples: int = 4):
        self.model, self.size = model, size
        self.materials = material_weights(model)
        self.brow_length = brow_length(model)
        self.smoother = smoothing_operator(model.triangles, model.num_vertices)
        self.eye_ids = [model.landmarks68[list(range(36, 42))], model.landmarks68[list(range(42, 48))]]
        self.five = [model.landmarks68[i] for i in (30, 48, 54)]
        self.ctx = create_context()
        self._base_key: bytes | None = None  # identity whose neutral-expression mesh is cached in self._base
        self._base: np.ndarray | None = None
        ctx = self.ctx
        self.prog = ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        n = model.num_vertices
        self.vbo = ctx.buffer(reserve=n * 12 * 4)
        self.ibo = ctx.buffer(model.triangles.astype(np.int32).tobytes())
        maps = surface_maps(model, self.materials[:, MATERIALS.index("skin")])
        assert maps.shape[1] == MAP_FLOATS
        self.maps = ctx.buffer(np.ascontiguousarray(maps).tobytes())
        layouts = [
            (self.vbo, "3f 3f 3f 1f 2f", "in_pos", "in_normal", "in_color", "in_ao", "in_spec"),
            (self.maps, "4f 4f 4f 4f 4f", "in_rest", "in_coord", "in_crease_a", "in_crease_b", "in_beard"),
        ]
        self.vao = ctx.vertex_array(self.prog, layouts, index_buffer=self.ibo, index_element_size=4)
        self.fbo = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer((size, size), 4)], depth_attachment=ctx.depth_renderbuffer((size, size))
        )
        # Mesa's llvmpipe runs a fragment shader once per sample, and multisampling is slow there: the shaded pass runs
        # once per pixel, and the face's anti-aliased outline comes from a coverage pass with a trivial shader at
        # ceil(sqrt(samples)) times the size, averaged down (supersampling).
        self.coverage, self.factor = None, int(np.ceil(np.sqrt(samples))) if samples > 1 else 1
        if self.factor > 1:
            self.cov_prog = ctx.program(vertex_shader=COVERAGE_VERTEX_SHADER, fragment_shader=COVERAGE_FRAGMENT_SHADER)
            self.cov_vao = ctx.vertex_array(
                self.cov_prog, [(self.vbo, "3f 36x", "in_pos")], index_buffer=self.ibo, index_element_size=4
            )
            big = (size * self.factor,) * 2
            self.coverage = ctx.framebuffer(color_attachments=[ctx.renderbuffer(big, 4)])

    def release(self) -> None:
        self.ctx.release()

    def geometry(self, params: SampleParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Posed vertices (world), blendshape weights, the full clip-space matrix (aligned), camera position."""
        model = self.model
        weights = blendshape_weights(
            params.au, model.expression_names, params.extra, params.au_sides, params.identity.expressiveness
        )
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
        # if an extreme pose would push it out. Measured on the neutral face, and the jaw line may leave the frame, as
        # in an aligned crop of a real face: shrinking for a dropped jaw or an opened mouth (AU25/26/27) would tie the
        # face's size in the image to an AU label.
        inner = (base[model.landmarks68[INNER_FACE]] - PIVOT) @ rot.T + PIVOT
        lm = _project(pv, inner) @ sim[:2, :2].T + sim[:2, 2]
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
        ao = ambient_occlusion(verts, normals, self.smoother)
        data = np.concatenate(
            [verts.astype(np.float32), normals, self.materials @ albedo, ao[:, None], self.materials @ spec], 1
        )
        self.vbo.write(np.ascontiguousarray(data, dtype=np.float32).tobytes())
        prog = self.prog
        prog["mvp"].write(mvp.T.astype(np.float32).tobytes())
        prog["cam"].value = tuple(cam)
        set_uniforms(prog, shader_uniforms(params, self.brow_length))
        ctx = self.ctx
        self.fbo.use()
        ctx.enable(ctx.DEPTH_TEST)
        ctx.disable(ctx.CULL_FACE)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.vao.render()
        face, alpha = _read(self.fbo, size)
        if self.coverage is not None:
            self.cov_prog["mvp"].write(mvp.T.astype(np.float32).tobytes())
            self.coverage.use()
            ctx.disable(ctx.DEPTH_TEST)
            self.coverage.clear(0.0, 0.0, 0.0, 0.0)
            self.cov_vao.render()
            k = self.factor
            cover = _read(self.coverage, size * k)[1].reshape(size, k, size, k, 1).mean(axis=(1, 3))
            face, alpha = _fill_edges(face, alpha, cover), cover
        img = face * alpha + background(params, size) * (1 - alpha)
        landmarks, box = self.landmarks(verts, mvp)
        image = degrade(draw_occluders(img, alpha, landmarks, params), params)
        return Rendered(image=image, landmarks=landmarks, box=box, blendshapes=weights)

    def neutral_landmarks(self, params: SampleParams) -> np.ndarray:
        """The 68 landmarks (pixels) of the same person with no AU, in the same pose and frame: what an expression is
        measured from (hiva_core.geometry). Geometry only, nothing is drawn."""
        verts, _, mvp, _ = self.geometry(replace(params, au={a: 0.0 for a in params.au}, au_sides={}))
        return self.landmarks(verts, mvp)[0]

    def landmarks(self, verts: np.ndarray, mvp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 68 landmarks in pixels (x right, y down) and their box (x0, y0, x1, y1)."""
        ndc = _project(mvp, verts[self.model.landmarks68])
        pts = np.stack([(ndc[:, 0] + 1) / 2 * self.size, (1 - ndc[:, 1]) / 2 * self.size], axis=1)
        return pts, np.array([*pts.min(0), *pts.max(0)])


def _read(fbo, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A framebuffer's (H, W, 3) colour and (H, W, 1) alpha in [0, 1], top row first."""
    rgba = np.frombuffer(fbo.read(components=4, alignment=1), dtype=np.uint8).reshape(size, size, 4)[::-1] / 255.0
    return rgba[..., :3], rgba[..., 3:]


def _fill_edges(face: np.ndarray, hard: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Colour for the outline pixels the coverage pass touched but the shaded pass missed: their shaded neighbours'."""
    need = (cover[..., 0] > 0) & (hard[..., 0] == 0)
    if not need.any():
        return face
    h, w = face.shape[:2]
    pf, pw = np.pad(face * hard, ((1, 1), (1, 1), (0, 0))), np.pad(hard, ((1, 1), (1, 1), (0, 0)))
    total = sum(pf[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
    weight = sum(pw[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
    return np.where(need[..., None], total / np.maximum(weight, 1e-6), face)


def _project(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ m.T
    return h[:, :2] / h[:, 3:4]
