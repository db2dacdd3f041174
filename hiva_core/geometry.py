"""A face's expression as geometry: how far each of a few named measures of its 68 landmarks is from the same
person's neutral face. The measures (``augtext.grounding.GEOMETRY``, in that order) are what descriptions say the face
does — brows raised or drawn together, eyes widened or narrowed, lips parted, jaw dropped — so a model that predicts
them (``model.geometry``) can score an AU it was never trained on from the AU's descriptions alone
(``augtext.grounding.ground`` reads which measures change, and which way).

Each measure is taken in the frame of the eye line (rotated level, origin between the eye centres) in units of the
distance between the eye centres, averaged over the two sides where there are two, so it does not change with the
image's size, position, roll or a mirror flip. The landmarks are the 68 of iBUG 300-W (0-based: 17-21 and 22-26 the
brows, 36-41 and 42-47 the eyes, 27-35 the nose, 48-67 the lips, 8 the chin).
"""

from __future__ import annotations

import warnings

import numpy as np

from augtext.grounding import GEOMETRY


def _frame(landmarks: np.ndarray) -> np.ndarray:
    """(N, 68, 2) pixels → the same points with the eye line level, centred between the eyes, in eye distances."""
    left, right = landmarks[:, 36:42].mean(1), landmarks[:, 42:48].mean(1)
    axis = right - left
    iod = np.maximum(np.linalg.norm(axis, axis=1), 1e-6)
    cos, sin = axis[:, 0] / iod, axis[:, 1] / iod
    rot = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1)
    return np.einsum("nij,nkj->nki", rot, landmarks - ((left + right) / 2)[:, None]) / iod[:, None, None]


def measures(landmarks: np.ndarray) -> np.ndarray:
    """(N, 68, 2) or (68, 2) landmarks in pixels (x right, y down) → (N, len(GEOMETRY)) or (len(GEOMETRY),)."""
    points = np.asarray(landmarks, dtype=np.float64)
    single = points.ndim == 2
    if single:
        points = points[None]
    if points.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {points.shape}")
    p = _frame(points)

    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(p[:, a] - p[:, b], axis=-1)

    def height(*idx: int) -> np.ndarray:  # y grows downwards: minus makes "higher" larger
        return -p[:, list(idx), 1].mean(1)

    values = {
        "inner_brow_height": height(21, 22) - height(39, 42),
        "outer_brow_height": height(17, 18, 25, 26) - height(36, 45),
        "brow_gap": dist(21, 22),
        "eye_opening": (dist(37, 41) + dist(38, 40) + dist(43, 47) + dist(44, 46)) / 4,
        "nose_lip_distance": height(33) - height(51),
        "mouth_width": dist(48, 54),
        "corner_height": height(48, 54) - height(62, 66),
        "lip_opening": (dist(61, 67) + dist(62, 66) + dist(63, 65)) / 3,
        "jaw_drop": height(33) - height(8),
        "lip_thickness": dist(51, 62) + dist(66, 57),
        "chin_lip_distance": height(33) - height(57),
    }
    out = np.stack([values[name] for name in GEOMETRY], axis=1)
    return out[0] if single else out


def expression_geometry(landmarks: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """What the expression changes: ``measures(landmarks) - measures(neutral)`` (the same person's neutral face, in
    the same image frame), (N, len(GEOMETRY))."""
    return measures(landmarks) - measures(neutral)


def spread(values: np.ndarray) -> np.ndarray:
    """Each column's standard deviation over its known (finite) values; 1 where it does not vary or is never known."""
    with warnings.catch_warnings():  # a column never known: numpy's "degrees of freedom" warning, then 1
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanstd(np.asarray(values, dtype=np.float64), axis=0)
    return np.where(np.isfinite(out) & (out > 1e-8), out, 1.0).astype(np.float32)


def explained_by_aus(labels: np.ndarray, geometry: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """What the AU labels (N, A: 1, 0, NaN unknown) explain of the geometry (N, G): the ridge fit of each measure on
    the labels and a constant, over the rows where every label and measure is known, as weights (A + 1, G) with the
    constant last. ``geometry − [labels, 1] @ weights`` is then what those AUs do not account for: a smile widens the
    mouth, and what widens it beyond the smile is some other movement. All zeros when no row is fully known."""
    labels = np.asarray(labels, dtype=np.float64)
    geometry = np.asarray(geometry, dtype=np.float64)
    rows = np.isfinite(labels).all(1) & np.isfinite(geometry).all(1)
    weights = np.zeros((labels.shape[1] + 1, geometry.shape[1]))
    if rows.any():
        design = np.concatenate([labels[rows], np.ones((int(rows.sum()), 1))], axis=1)
        penalty = ridge * np.eye(design.shape[1])
        penalty[-1, -1] = 0.0  # the constant is not shrunk
        weights = np.linalg.solve(design.T @ design + penalty, design.T @ geometry[rows])
    return weights.astype(np.float32)
