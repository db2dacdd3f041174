"""Convert the upstream ICT-FaceKit `FaceXModel` folder (OBJ files, MIT licence) into the npz face model.

Upstream: https://github.com/ICT-VGL/ICT-FaceKit — clone it and run
    hiva_core synth import-ict ICT-FaceKit/FaceXModel --out ict_facekit_light.npz
The npz holds (see ../shared/data/README.md): neutral_vertices (V,3) f32, triangles (T,3) i32 (quads split into two
triangles), uv (U,2) f32, uv_triangles (T,3) i32, expression_names (E,) str, expression_deltas (E,V,3) f32 (shape minus
neutral), identity_deltas (K,V,3) f32, landmarks68 (68,) i32 (from vertex_indices.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from augtext.errors import UserError
from augtext.io import atomic_write

NEUTRAL = "generic_neutral_mesh.obj"
INDICES = "vertex_indices.json"
NUM_IDENTITIES = 100
# Shapes upstream ships beside the 53 ARKit-style ones listed in vertex_indices.json, in the npz's order.
EXTRA_EXPRESSIONS = ("cheekRaiser_L", "cheekRaiser_R", "PupilDilate_L", "PupilDilate_R")


def read_obj(path: Path, faces: bool = False) -> dict[str, np.ndarray]:
    """Vertices (and, with faces=True, uv + triangulated position/uv faces) of one OBJ file."""
    verts, uvs, tris, uv_tris = [], [], [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("v "):
                    verts.append(line[2:].split()[:3])
                elif faces and line.startswith("vt "):
                    uvs.append(line[3:].split()[:2])
                elif faces and line.startswith("f "):
                    corners = [c.split("/") for c in line[2:].split()]
                    pos = [int(c[0]) - 1 for c in corners]
                    tex = [int(c[1]) - 1 if len(c) > 1 and c[1] else -1 for c in corners]
                    for k in range(1, len(corners) - 1):  # a fan: quads (a, b, c, d) -> (a, b, c), (a, c, d)
                        tris.append((pos[0], pos[k], pos[k + 1]))
                        uv_tris.append((tex[0], tex[k], tex[k + 1]))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    if not verts:
        raise UserError(f"{path} holds no vertices: is it an OBJ mesh?")
    out = {"vertices": np.asarray(verts, dtype=np.float64)}
    if faces:
        out.update(
            uv=np.asarray(uvs, dtype=np.float64),
            triangles=np.asarray(tris, dtype=np.int32),
            uv_triangles=np.asarray(uv_tris, dtype=np.int32),
        )
    return out


def import_ict(src_dir: str | os.PathLike, out_npz: str | os.PathLike, partial: bool = False) -> Path:
    """Convert `src_dir` (the FaceXModel folder) into `out_npz`.

    Full mode (default) needs the neutral mesh, vertex_indices.json, identity000..099.obj and every expression OBJ,
    and names what is missing. `partial=True` converts what is there (at least the neutral mesh): identities and
    expressions that exist, in the upstream order (for tests and trimmed copies).
    """
    src, out = Path(src_dir), Path(out_npz)
    if not src.is_dir():
        raise UserError(f"{src} is not a folder: pass the ICT-FaceKit FaceXModel folder")
    if not (src / NEUTRAL).is_file():
        raise UserError(f"{src} has no {NEUTRAL}: pass the ICT-FaceKit FaceXModel folder")
    if not (src / INDICES).is_file():
        raise UserError(f"{src} has no {INDICES} (the landmark and expression lists)")
    try:
        indices = json.loads((src / INDICES).read_text())
        expression_order = list(indices["expressions"]) + list(EXTRA_EXPRESSIONS)
        landmarks = np.asarray(indices["idx_to_landmark_verts"], dtype=np.int32)
    except (ValueError, KeyError) as exc:
        raise UserError(f"{src / INDICES} is not ICT-FaceKit's vertex index file: {exc}") from exc

    identities = [f"identity{i:03d}.obj" for i in range(NUM_IDENTITIES)]
    expressions = [f"{name}.obj" for name in expression_order]
    missing = [f for f in identities + expressions if not (src / f).is_file()]
    if missing and not partial:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise UserError(f"{src} lacks {shown}: use the complete FaceXModel folder (or --partial)")

    neutral = read_obj(src / NEUTRAL, faces=True)
    base = neutral["vertices"].astype(np.float32)  # deltas are float32 differences, as in the reference npz
    if landmarks.shape != (68,) or landmarks.max() >= len(base):
        raise UserError(f"{src / INDICES}: idx_to_landmark_verts must be 68 vertex ids of {NEUTRAL}")

    def deltas(files: list[str]) -> np.ndarray:
        arrays = []
        for f in files:
            v = read_obj(src / f)["vertices"]
            if v.shape != base.shape:
                raise UserError(f"{src / f} has {len(v)} vertices, {NEUTRAL} has {len(base)}: not the same model")
            arrays.append(v.astype(np.float32) - base)
        return np.stack(arrays) if arrays else np.zeros((0, *base.shape), dtype=np.float32)

    have_expr = [n for n, f in zip(expression_order, expressions, strict=True) if (src / f).is_file()]
    have_id = [f for f in identities if (src / f).is_file()]
    with atomic_write(out, "wb") as fh:
        np.savez_compressed(
            fh,
            neutral_vertices=base,
            triangles=neutral["triangles"],
            uv=neutral["uv"].astype(np.float32),
            uv_triangles=neutral["uv_triangles"],
            expression_names=np.asarray(have_expr, dtype=str),
            expression_deltas=deltas([f"{n}.obj" for n in have_expr]),
            identity_deltas=deltas(have_id),
            landmarks68=landmarks,
        )
    return out
