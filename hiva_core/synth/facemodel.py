"""The ICT-FaceKit face model (the npz written by `hiva_core synth import-ict`): finding it, loading it, and building a
posed, expressive mesh from identity and blendshape weights.

The model is not ours to ship: it is found through `--face-model`, else `$HIVA_FACE_MODEL`, else the converted copy in
`../shared/data/ict-facekit/` beside the checkout. Nothing is ever copied into the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augtext.errors import UserError

ENV_VAR = "HIVA_FACE_MODEL"
DEFAULT_RELATIVE = Path("shared") / "data" / "ict-facekit" / "ict_facekit_light.npz"
NPZ_KEYS = ("neutral_vertices", "triangles", "expression_names", "expression_deltas", "identity_deltas", "landmarks68")

# Vertex ranges of the parts (inclusive), from the upstream ICT-FaceKit README.
PARTS: dict[str, tuple[int, int]] = {
    "face": (0, 9408),
    "head": (9409, 11247),
    "mouth_socket": (11248, 13293),
    "eye_sockets": (13294, 14061),
    "gums_tongue": (14062, 17038),
    "teeth": (17039, 21450),
    "sclera_l": (21451, 22220),
    "iris_l": (22221, 23020),
    "sclera_r": (23021, 23790),
    "iris_r": (23791, 24590),
    "eye_layers": (24591, 25350),  # lacrimal fluid, eye blend, eye occlusion: transparent layers, need textures
    "eyelashes": (25351, 26718),
}
# What the renderer draws. The iris meshes sit inside the sclera shells (upstream blends them with textures); we draw
# the outer shell and colour its front cap as iris and pupil instead. Transparent layers and eyelashes are skipped.
RENDERED_PARTS = ("face", "head", "mouth_socket", "eye_sockets", "gums_tongue", "teeth", "sclera_l", "sclera_r")


def find_face_model(path: str | os.PathLike | None = None) -> Path:
    """Resolve the face-model npz: explicit path, else $HIVA_FACE_MODEL, else ../shared beside the checkout."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(
                f"face model {p} not found (--face-model): give the npz written by `hiva_core synth import-ict`"
            )
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise UserError(f"face model {p} from ${ENV_VAR} not found: fix the variable or unset it")
        return p
    repo = Path(__file__).resolve().parents[2]
    for base in (repo.parent, Path.cwd().parent, Path.cwd()):
        p = base / DEFAULT_RELATIVE
        if p.is_file():
            return p
    raise UserError(
        "no face model found (--face-model, $HIVA_FACE_MODEL, ../shared/data/ict-facekit/ict_facekit_light.npz). "
        "Clone ICT-FaceKit (MIT): `git clone https://github.com/ICT-VGL/ICT-FaceKit`, then run "
        "`hiva_core synth import-ict ICT-FaceKit/FaceXModel --out ict_facekit_light.npz` and pass --face-model"
    )


@dataclass
class FaceModel:
    """The subset of the ICT model the renderer needs, restricted to rendered vertices (re-indexed)."""

    neutral: np.ndarray  # (V, 3) float32, cm
    triangles: np.ndarray  # (T, 3) int32 into the rendered vertices
    expression_names: list[str]
    expression_deltas: np.ndarray  # (E, V*3) float32
    identity_deltas: np.ndarray  # (K, V*3) float32, first K identity modes
    landmarks68: np.ndarray  # (68,) int32 into the rendered vertices
    part: np.ndarray  # (V,) int8 index into RENDERED_PARTS
    source: Path

    @property
    def num_vertices(self) -> int:
        return int(self.neutral.shape[0])

    def expression_index(self, name: str) -> int:
        return self.expression_names.index(name)

    def identity_vertices(self, identity: np.ndarray) -> np.ndarray:
        """Neutral + identity modes, flat (V*3,) float32; `identity` (k<=K,) weights."""
        if len(identity) > len(self.identity_deltas):
            raise UserError(
                f"face model {self.source} has {len(self.identity_deltas)} identity modes, the sample needs "
                f"{len(identity)}: re-create it with all ICT identities (`hiva_core synth import-ict`), or render "
                "with --factors all,-identity (40 modes)"
            )
        return self.neutral.reshape(-1) + identity.astype(np.float32) @ self.identity_deltas[: len(identity)]

    def vertices(self, identity: np.ndarray, expression: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Neutral + identity modes + blendshapes -> (V, 3) float32. `expression` (E,) weights in [0, 1]; `base` is
        a precomputed `identity_vertices(identity)`."""
        flat = self.identity_vertices(identity) if base is None else base
        # A dense product over all shapes: cheaper than gathering the active rows (a copy of each).
        return (flat + expression.astype(np.float32) @ self.expression_deltas).reshape(-1, 3)


_CACHE: dict[tuple[str, int], FaceModel] = {}


def load_face_model(path: str | os.PathLike | None = None, identity_modes: int | None = None) -> FaceModel:
    """Load (and cache per process) the face model, keeping only the parts the renderer draws (and the first
    `identity_modes` identity modes; None = all)."""
    src = find_face_model(path)
    key = (str(src.resolve()), identity_modes)
    if key in _CACHE:
        return _CACHE[key]
    try:
        npz = np.load(src, allow_pickle=False)
        missing = [k for k in NPZ_KEYS if k not in npz.files]
        if missing:
            raise UserError(
                f"face model {src} lacks {', '.join(missing)}: re-create it with `hiva_core synth import-ict`"
            )
        neutral = npz["neutral_vertices"].astype(np.float32)
        tris = npz["triangles"].astype(np.int64)
        names = [str(n) for n in npz["expression_names"]]
        expr = npz["expression_deltas"]
        ident = npz["identity_deltas"][:identity_modes]
        lm = npz["landmarks68"].astype(np.int64)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot read face model {src}: {exc}") from exc

    keep = np.zeros(len(neutral), dtype=bool)
    part = np.full(len(neutral), -1, dtype=np.int8)
    for i, name in enumerate(RENDERED_PARTS):
        a, b = PARTS[name]
        keep[a : b + 1] = True
        part[a : b + 1] = i
    remap = np.full(len(neutral), -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    tri_keep = keep[tris].all(axis=1)
    model = FaceModel(
        neutral=np.ascontiguousarray(neutral[keep]),
        triangles=remap[tris[tri_keep]].astype(np.int32),
        expression_names=names,
        expression_deltas=np.ascontiguousarray(expr[:, keep].reshape(len(names), -1), dtype=np.float32),
        identity_deltas=np.ascontiguousarray(ident[:, keep].reshape(len(ident), -1), dtype=np.float32),
        landmarks68=remap[lm].astype(np.int32),
        part=part[keep],
        source=src,
    )
    if (model.landmarks68 < 0).any():
        raise UserError(f"face model {src}: a landmark lies outside the rendered face parts")
    _CACHE[key] = model
    return model


def smoothing_operator(triangles: np.ndarray, num_vertices: int):
    """Sparse (V, V) row-normalised vertex adjacency: one step of neighbour averaging."""
    from scipy import sparse

    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    adj = sparse.csr_matrix((np.ones(len(e), dtype=np.float32), (e[:, 0], e[:, 1])), shape=(num_vertices,) * 2)
    adj.data[:] = 1.0  # an edge shared by two triangles counts once
    deg = np.maximum(np.asarray(adj.sum(axis=1)).ravel(), 1.0)
    return sparse.diags((1.0 / deg).astype(np.float32)) @ adj


def ambient_occlusion(
    vertices: np.ndarray, normals: np.ndarray, smoother, steps: int = 8, strength: float = 1.5, floor: float = 0.45
) -> np.ndarray:
    """A cheap per-vertex occlusion term in (floor, 1]: how far the smoothed surface lies in front of a vertex (a
    crease, a nostril, the nasolabial fold of a smile), recomputed after the blendshapes."""
    smooth = vertices.astype(np.float32)
    for _ in range(steps):
        smooth = smoother @ smooth
    depth = np.einsum("ij,ij->i", smooth - vertices, normals)
    return np.clip(1.0 - strength * np.maximum(depth, 0.0), floor, 1.0).astype(np.float32)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted per-vertex normals (unit length), recomputed after blendshapes move the mesh."""
    v0, v1, v2 = (vertices[triangles[:, i]] for i in range(3))
    fn = np.cross(v1 - v0, v2 - v0)
    idx = triangles.reshape(-1)
    rep = np.repeat(fn, 3, axis=0)
    n = np.stack([np.bincount(idx, rep[:, k], minlength=len(vertices)) for k in range(3)], axis=1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)
