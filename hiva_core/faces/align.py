"""Face alignment: one similarity transform (rotation, uniform scale, translation) from five landmarks to a template.

`hiva_core prepare` (training crops), `hiva_core predict` (new faces) and `data.align` (raw manifests, aligned on the
fly: hiva_core.data.aligned) call `align`, and SynthAU renders map their five points onto the same `TEMPLATE`
(hiva_core.synth.render), so a model always sees faces framed the same way.

The template (`TEMPLATE`, fractions of the crop side; x right, y down; the first point is the eye on the image's
left) keeps the mean proportions of the widely used five-point face template of ArcFace/InsightFace (eye distance :
eye-to-mouth height : mouth width = 1 : 1.16 : 0.83), scaled so that the eyes are 0.30 of the crop apart:

    eyes         (0.350, 0.380)  (0.650, 0.380)
    nose tip     (0.500, 0.550)
    mouth        (0.375, 0.727)  (0.625, 0.727)

In a 256-px crop the eyes are 77 px apart; the face fills the crop from about the hairline (y ≈ 0.08) to the chin
(y ≈ 0.90) and from cheek to cheek (x ≈ 0.17 to 0.83), like the aligned BP4D/DISFA crops that ME-GraphAU and MDHR
train on, and a 224-px centre crop of it still holds brows, eyes, nose, mouth and chin.

Coordinates: pixel (row i, column j) has its centre at (x=j, y=i). `matrix` is the 2×3 affine that maps original
image points to crop points; `invert_affine(matrix)` maps crop points (e.g. a heatmap peak) back to the original.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

TEMPLATE = np.array([[0.350, 0.380], [0.650, 0.380], [0.500, 0.550], [0.375, 0.727], [0.625, 0.727]], dtype=np.float64)
DEFAULT_SIZE = 256


# The face in a crop (fractions of its side: x0, y0, x1, y1): hairline to chin, cheek to cheek (the docstring above)
FACE_BOX = (0.17, 0.08, 0.83, 0.90)


def face_in_image(matrix: np.ndarray, image_shape: tuple[int, ...], size: int = DEFAULT_SIZE) -> float:
    """The share of the face (FACE_BOX of the crop, a 16 × 16 grid of points over it) that the original → crop
    `matrix` takes from inside the image of `image_shape` (H, W, ...): 1.0 for a whole face, less where the crop
    reaches past the image's edge (black there) — a face cut off by the frame."""
    x0, y0, x1, y1 = FACE_BOX
    steps = (np.arange(16) + 0.5) / 16
    xs, ys = np.meshgrid(x0 + (x1 - x0) * steps, y0 + (y1 - y0) * steps)
    points = transform_points(np.stack([xs.ravel(), ys.ravel()], axis=1) * size - 0.5, invert_affine(matrix))
    height, width = image_shape[:2]
    inside = (points[:, 0] >= -0.5) & (points[:, 0] <= width - 0.5) & (points[:, 1] >= -0.5)
    return float((inside & (points[:, 1] <= height - 0.5)).mean())


EYE_DISTANCE = float(TEMPLATE[1, 0] - TEMPLATE[0, 0])  # the eyes' distance in an aligned crop, fraction of its side


def eye_distance_px(matrix: np.ndarray, size: int = DEFAULT_SIZE) -> float:
    """The face's eye distance in the original image, in pixels, as the original → crop `matrix` (to a `size` crop)
    fits it: how many of the image's pixels the face has (a crop's eye distance is EYE_DISTANCE × its side)."""
    return EYE_DISTANCE * size / float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))


def template_points(size: int = DEFAULT_SIZE) -> np.ndarray:
    """The five template landmarks in pixel coordinates of a `size`×`size` crop."""
    return TEMPLATE * size - 0.5


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, 1991) taking points `src` (N, 2) onto `dst` (N, 2); returns a 2×3 matrix."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError(f"similarity_transform needs two matching sets of >= 2 points, got {len(src)} and {len(dst)}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("similarity_transform: the source points all coincide")
    u, s, vt = np.linalg.svd(dc.T @ sc / len(src))
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a similarity: flip the weakest axis
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / var_s)
    trans = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, trans[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2×3 affine matrix (crop → original when `matrix` is original → crop)."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine to points (N, 2)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


PREFILTER_BELOW = 0.8
"""A warp that shrinks the image below this scale (crop pixels per image pixel) first reduces the part of the image
the crop covers with a Lanczos filter, so that the bilinear warp samples about 1:1: sampling a large photo's face
every few pixels without a filter aliases fine detail (brows, creases) into the crop, and the crop then changes with
the photo's resolution."""


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resample `image` (H, W, C uint8) into a crop of `size` (side, or (width, height)) with the original → crop
    affine `matrix`; bilinear (after a Lanczos reduction when it shrinks the image, see PREFILTER_BELOW), black
    outside the image."""
    width, height = (size, size) if isinstance(size, int) else size
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if 0 < scale < PREFILTER_BELOW:
        image, matrix = _reduce_for(image, matrix, scale, width, height)
    inv = invert_affine(matrix)
    # PIL puts pixel centres at k + 0.5 and wants the crop → original map: shift in and out by half a pixel.
    a, b, c = inv[0]
    d, e, f = inv[1]
    coeffs = (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))
    pil = Image.fromarray(np.ascontiguousarray(image))
    out = pil.transform((width, height), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    return np.asarray(out)


def _reduce_for(
    image: np.ndarray, matrix: np.ndarray, scale: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """The part of `image` a (width, height) crop covers (plus a margin for the filter), reduced by 1/`scale` with
    Lanczos, and the original → crop matrix rewritten for it."""
    corners = transform_points(
        np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5], [width - 0.5, height - 0.5]]),
        invert_affine(matrix),
    )
    pad = 3.0 / scale  # Lanczos' reach at the reduced scale, in image pixels
    x0, y0 = (max(0, int(np.floor(v - pad))) for v in corners.min(0))
    x1 = min(image.shape[1], int(np.ceil(corners[:, 0].max() + pad)) + 1)
    y1 = min(image.shape[0], int(np.ceil(corners[:, 1].max() + pad)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop lies outside the image: nothing to filter
        return image, matrix
    part = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
    new_w, new_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    reduced = np.asarray(part.resize((new_w, new_h), Image.Resampling.LANCZOS))
    fx, fy = (x1 - x0) / new_w, (y1 - y0) / new_h
    # a reduced pixel r sits at x = (r + 0.5) * fx - 0.5 + x0 in the image
    to_image = np.array([[fx, 0.0, 0.5 * fx - 0.5 + x0], [0.0, fy, 0.5 * fy - 0.5 + y0]])
    return reduced, np.hstack(
        [matrix[:, :2] @ to_image[:, :2], (matrix[:, :2] @ to_image[:, 2] + matrix[:, 2])[:, None]]
    )


def align(image: np.ndarray, landmarks, size: int = DEFAULT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Aligned face crop (size, size, 3) uint8 and the 2×3 original → crop matrix.

    `landmarks` is a (5, 2) array in `LANDMARK_NAMES` order (or a `Face`): eyes, nose tip, mouth corners, as
    `detect_faces` returns them. More points than five: the first five are used.
    """
    pts = np.asarray(getattr(landmarks, "landmarks", landmarks), dtype=np.float64).reshape(-1, 2)
    if len(pts) < 5 or not np.isfinite(pts[:5]).all():
        raise ValueError(f"align needs 5 finite landmarks (eyes, nose, mouth corners), got {len(pts)}")
    matrix = similarity_transform(pts[:5], template_points(size))
    return warp_affine(image, matrix, size), matrix
