"""Where each AU shows on a face, and whether a heatmap lands there: the localisation score of `hiva_core eval`.

Regions are drawn from the 68 iBUG / Multi-PIE landmarks (0-based: 0-16 jaw line, 17-21 and 22-26 the brows,
27-30 nose bridge, 31-35 nostrils, 36-41 and 42-47 the eyes, 48-59 outer lip line with the corners at 48 and 54,
60-67 inner lip line), which SynthAU writes per image (manifest column `landmarks`: x0, y0, x1, y1, ... in the image's
pixels) and which a user's own manifest may carry the same way. A region is a union of *parts*; a part is the convex
hull of some landmarks (optionally with the same landmarks moved up the face, for the forehead) grown by a margin of
MARGIN inter-ocular distances (IOD: between the eye centres), so it scales with the face and is independent of pose
and image size.

The score: for every image and every AU present in it (label 1), take the AU map's peak (the centre of its hottest
cell, where a drawn heatmap is hottest) and ask whether it falls inside that AU's region. Per AU the share of such
pairs that land, and their average over AUs (each AU counts once, as for F1). Beside it, chance: the rate of a peak
on a random cell of the same grid. A 4×4 map at 128 px can only peak at 16 points, 32 px apart, so a big region
(brows and forehead) holds several of them and a lip corner perhaps none; read a score against its chance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from augtext.facs import au_label

MARGIN = 0.25  # × IOD, about 10 px at 128 px: a peak this close to a region's edge still counts
FOREHEAD = 0.6  # × IOD: how far above the brows the forehead reaches (where AU1/AU2 raise wrinkles)
LANDMARKS_COLUMN = "landmarks"

_RIGHT_EYE, _LEFT_EYE = tuple(range(36, 42)), tuple(range(42, 48))
_BROWS = tuple(range(17, 27))
_INNER_BROWS = (20, 21, 22, 23)  # the inner part of each brow (17 and 26 are the outer ends, 21 and 22 the inner)
_NOSE = tuple(range(27, 36))
_OUTER_LIPS = tuple(range(48, 60))
_UPPER_LIP = (48, 49, 50, 51, 52, 53, 54)


@dataclass(frozen=True)
class Part:
    """The convex hull of `points` (landmark indices), plus those points moved `up` IODs up the face, plus the
    midpoint of each landmark pair in `between`."""

    points: tuple[int, ...]
    up: float = 0.0
    between: tuple[tuple[int, int], ...] = ()


# The chin boss: the jaw line under the lower lip (7-9) up to halfway to the lower lip's edge (56-58), where SynthAU
# draws AU17's dimpling. Halfway, not a fixed height: chins differ (the lip's edge sits 0.3-0.6 IOD above point 8 on
# SynthAU faces, the line between the lips 0.5-0.7), and with the margin the part reaches about the lip's edge but
# not the line between the lips.
_CHIN = Part((7, 8, 9), between=((7, 58), (8, 57), (9, 56)))


# Each AU's region, written once. Why each one (FACS appearance changes, see augtext/facs.py):
REGIONS: dict[str, tuple[Part, ...]] = {
    # AU1 inner brow raiser: the inner ends of the brows move up (the brows oblique) and the middle of the forehead
    # wrinkles: the inner part of both brows, up to mid-forehead.
    "inner_brows_forehead": (Part(_INNER_BROWS, up=FOREHEAD),),
    # AU2 outer brow raiser: the outer ends of the brows move up (an arched brow) and the sides of the forehead
    # wrinkles: the outer half of each brow, up to mid-forehead. Apart from AU1's, so that a map of AU2 on the
    # glabella does not count as landing.
    "outer_brows_forehead": (Part((17, 18, 19), up=FOREHEAD), Part((24, 25, 26), up=FOREHEAD)),
    # AU4 brow lowerer: the brows move down and together, vertical furrows form in the glabella between them and
    # the root of the nose may wrinkle: the brows and the strip from the inner brow ends down the nose bridge.
    "brows_glabella": (Part(_BROWS), Part((21, 22, 27, 28))),
    # AU5 upper lid raiser, AU7 lid tightener, AU43 eyes closed: the eyelids themselves; AU7 narrows the eye from
    # below (lower lid raised and straightened), which the eye's hull plus margin covers.
    "eyes": (Part(_RIGHT_EYE), Part(_LEFT_EYE)),
    # AU6 cheek raiser (orbicularis oculi, orbital part): crow's feet at the outer eye corner, the cheek pushed up
    # under the eye, bags under the lower lid: from the outer eye corner and lower lid down to the nose wing.
    "eye_corners_cheeks": (
        Part((0, 1, 2, 31, 36, 39, 40, 41)),
        Part((14, 15, 16, 35, 42, 45, 46, 47)),
    ),
    # AU9 nose wrinkler: wrinkles along the sides and root of the nose, nostrils and upper lip drawn up.
    "nose": (Part((21, 22, *_NOSE)),),
    # AU10 upper lip raiser: the upper lip lifted, the nostrils widened and the nasolabial furrow deepened.
    "nostrils_upper_lip": (Part((31, 32, 33, 34, 35, *_UPPER_LIP)),),
    # AU12 lip corner puller, AU14 dimpler, AU15 lip corner depressor, AU20 lip stretcher: the change is at the lip
    # corners (pulled up and out, dimpled in, pulled down, stretched sideways).
    "lip_corners": (Part((48, 49, 59, 60)), Part((53, 54, 55, 64))),
    # AU17 chin raiser: the chin boss pushed up and wrinkled (mentalis), the lower lip pushed up: the chin boss, up
    # to the lower lip's edge. Not the lips' centre line: a map there is on the mouth (AU23-25), not the chin.
    "chin": (_CHIN,),
    # AU16, AU18, AU22, AU23, AU24, AU25, AU28: the lips themselves (depressed, puckered, funnelled, tightened,
    # pressed, parted, sucked in).
    "lips": (Part(_OUTER_LIPS),),
    # AU26 jaw drop, AU27 mouth stretch: the mouth opens and the chin moves down: lips and chin.
    "lips_chin": (Part(_OUTER_LIPS), _CHIN),
}

AU_REGION: dict[int, str] = {
    1: "inner_brows_forehead",
    2: "outer_brows_forehead",
    4: "brows_glabella",
    5: "eyes",
    6: "eye_corners_cheeks",
    7: "eyes",
    9: "nose",
    10: "nostrils_upper_lip",
    12: "lip_corners",
    14: "lip_corners",
    15: "lip_corners",
    16: "lips",
    17: "chin",
    18: "lips",
    20: "lip_corners",
    22: "lips",
    23: "lips",
    24: "lips",
    25: "lips",
    26: "lips_chin",
    27: "lips_chin",
    28: "lips",
    43: "eyes",
}


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise in x-right/y-up terms) of (k, 2) points, by Andrew's monotone chain."""
    pts = sorted(map(tuple, np.unique(points, axis=0)))
    if len(pts) < 3:
        return np.asarray(pts, dtype=np.float64)

    def half(seq):
        out: list = []
        for p in seq:
            while len(out) >= 2 and _cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return np.asarray(half(pts) + half(pts[::-1]), dtype=np.float64)


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def polygon_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance from each of `points` ((2,) or (P, 2)) to a convex polygon (its hull vertices in order): 0 inside."""
    p = np.atleast_2d(np.asarray(points, dtype=np.float64))
    a = polygon
    b = np.roll(polygon, -1, axis=0) if len(polygon) > 2 else polygon[[-1]]  # a 2-point hull is one segment
    if len(polygon) > 2:
        a_ = a[None]
        cross = (b - a)[None, :, 0] * (p[:, None, 1] - a_[..., 1]) - (b - a)[None, :, 1] * (p[:, None, 0] - a_[..., 0])
        inside = (cross >= 0).all(1)
    else:
        inside = np.zeros(len(p), dtype=bool)
        a = a[:1]
    ab, ap = (b - a)[None], p[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    dist = np.hypot(*np.moveaxis(ap - t[..., None] * ab, -1, 0)).min(1)
    out = np.where(inside, 0.0, dist)
    return out if np.ndim(points) > 1 else out[0]


def face_frame(landmarks: np.ndarray) -> tuple[float, np.ndarray]:
    """(IOD, unit vector pointing up the face) of one face's (68, 2) landmarks in image coordinates (y down)."""
    right, left = landmarks[list(_RIGHT_EYE)].mean(0), landmarks[list(_LEFT_EYE)].mean(0)
    iod = float(np.hypot(*(left - right)))
    up = (right + left) / 2 - landmarks[list(_OUTER_LIPS)].mean(0)  # from the mouth to the eyes: up, whatever the roll
    return iod, up / max(float(np.hypot(*up)), 1e-12)


def region_polygons(landmarks: np.ndarray, region: str) -> list[np.ndarray]:
    """The hull of each part of `region` for one face's (68, 2) landmarks (without the margin)."""
    iod, up = face_frame(landmarks)
    polygons = []
    for part in REGIONS[region]:
        pts = landmarks[list(part.points)]
        if part.up:
            pts = np.concatenate([pts, pts + part.up * iod * up])
        if part.between:
            pairs = np.asarray(part.between)
            pts = np.concatenate([pts, (landmarks[pairs[:, 0]] + landmarks[pairs[:, 1]]) / 2])
        polygons.append(_hull(pts))
    return polygons


def region_outline(landmarks: np.ndarray, region: str, margin: float = MARGIN, steps: int = 16) -> list[np.ndarray]:
    """Each part of `region` grown by `margin` IODs, as polygons to draw: the hull of a circle around every vertex
    (the part's Minkowski sum with a disc, to `steps` points per circle)."""
    iod, _ = face_frame(landmarks)
    angles = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    circle = margin * iod * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return [_hull((poly[:, None, :] + circle[None]).reshape(-1, 2)) for poly in region_polygons(landmarks, region)]


def region_hits(points: np.ndarray, landmarks: np.ndarray, au: int, margin: float = MARGIN) -> np.ndarray:
    """(P,) bool: which of `points` (P, 2) lie in AU `au`'s region of a face, within `margin` IODs of a part."""
    iod, _ = face_frame(landmarks)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    dist = np.stack([polygon_distance(points, poly) for poly in region_polygons(landmarks, AU_REGION[au])])
    return (dist <= margin * iod).any(0)


def in_region(point: Sequence[float], landmarks: np.ndarray, au: int, margin: float = MARGIN) -> bool:
    """Whether `point` (x, y) lies in AU `au`'s region of a face, within `margin` IODs of one of its parts."""
    return bool(region_hits(np.asarray(point)[None], landmarks, au, margin)[0])


# ---------------------------------------------------------------------------------------------- the score
def map_peaks(maps: torch.Tensor | np.ndarray, image_size: int) -> np.ndarray:
    """(B, A, h, w) maps -> (B, A, 2) peak points (x, y) in the model's input pixels: the centre of the top cell."""
    m = torch.as_tensor(maps)
    h, w = m.shape[-2:]
    flat = m.flatten(-2).argmax(-1).numpy()
    rows, cols = np.divmod(flat, w)
    return np.stack([(cols + 0.5) * image_size / w, (rows + 0.5) * image_size / h], axis=-1)


class PeakRecorder:
    """`collect_probs`'s `probs_of` over `predict(images) -> {"probs", "maps"}` that keeps every map's peak.

    `peaks` is (N, A, 2) in the model's input pixels, in loader order, or None for a model without maps."""

    def __init__(self, predict: Callable[[torch.Tensor], dict], image_size: int):
        self.predict = predict
        self.image_size = image_size
        self._peaks: list[np.ndarray] = []
        self.grid: tuple[int, int] | None = None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = self.predict(images)
        maps = out.get("maps")
        if maps is not None:
            self.grid = tuple(maps.shape[-2:])
            self._peaks.append(map_peaks(maps.float().cpu(), self.image_size))
        return out["probs"]

    @property
    def peaks(self) -> np.ndarray | None:
        return np.concatenate(self._peaks) if self._peaks else None


def to_model_frame(points: np.ndarray, width: int, height: int, image_size: int) -> np.ndarray:
    """Image pixels -> pixels of the model's input after the evaluation transform (hiva_core.data.transforms:
    shorter side resized to resize_size(image_size), then a centre crop of image_size)."""
    from hiva_core.data.transforms import resize_size

    short, new = min(width, height), resize_size(image_size)
    scale = new / short
    new_w, new_h = (new, int(new * height / width)) if width <= height else (int(new * width / height), new)
    left, top = int(round((new_w - image_size) / 2)), int(round((new_h - image_size) / 2))
    return points * scale - np.array([left, top], dtype=np.float64)


def dataset_landmarks(dataset, image_size: int) -> np.ndarray | None:
    """(N, 68, 2) landmarks of a manifest dataset's rows in the model's input pixels (NaN where a row has none), or
    None when its manifest has no `landmarks` column (list files, most user manifests)."""
    from pathlib import Path

    from PIL import Image

    from hiva_core.data.manifest import read_label_manifest

    source = Path(getattr(dataset, "source", "") or "")
    if source.suffix.lower() not in (".csv", ".parquet") or not source.is_file():
        return None
    df = read_label_manifest(source)
    if LANDMARKS_COLUMN not in df.columns:
        return None
    by_path = dict(zip(df["path"].astype(str), df[LANDMARKS_COLUMN], strict=True))
    out = np.full((len(dataset), 68, 2), np.nan)
    for i, rel in enumerate(dataset.files):
        values = parse_landmarks(by_path.get(str(rel)))
        if values is None:
            continue
        with Image.open(dataset.path(i)) as im:  # reads the header only
            width, height = im.size
        out[i] = to_model_frame(values, width, height, image_size)
    return out


def empty_cell(cell) -> bool:
    """Whether a manifest cell holds nothing (None, NaN, blank text)."""
    return (
        cell is None or (isinstance(cell, float) and math.isnan(cell)) or (isinstance(cell, str) and not cell.strip())
    )


def parse_landmarks(cell) -> np.ndarray | None:
    """A manifest cell (a JSON list of 136 numbers, or a list) -> (68, 2), or None when empty or not 68 points."""
    if empty_cell(cell):
        return None
    values = np.asarray(json.loads(cell) if isinstance(cell, str) else cell, dtype=np.float64)
    return values.reshape(68, 2) if values.size == 136 else None


def cell_centres(grid: tuple[int, int], image_size: int) -> np.ndarray:
    """(h·w, 2) centres of a map's cells in the model's input pixels (where map_peaks can put a peak)."""
    h, w = grid
    rows, cols = np.divmod(np.arange(h * w), w)
    return np.stack([(cols + 0.5) * image_size / w, (rows + 0.5) * image_size / h], axis=1)


def localisation_score(
    peaks: np.ndarray,
    landmarks: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    aus: Sequence[int],
    grid: tuple[int, int] | None = None,
    image_size: int | None = None,
) -> dict:
    """Per AU, the share of (image, present AU) pairs whose map peak lies in the AU's region, and the average.

    peaks (N, A, 2) and landmarks (N, 68, 2) in the same pixels (rows with NaN landmarks are skipped); labels and
    mask (N, A). AUs without a region (AU_REGION) or without a present label are reported with `hit_rate` None and
    left out of the average. With the map `grid` and `image_size`, `chance` is the rate of a peak put on a random
    cell: what a map that knows nothing scores (high for big regions and coarse maps)."""
    per_au: dict[str, dict] = {}
    has_face = ~np.isnan(landmarks).any(axis=(1, 2))
    centres = cell_centres(grid, image_size) if grid is not None and image_size is not None else None
    for j, au in enumerate(aus):
        rows = np.flatnonzero(has_face & mask[:, j].astype(bool) & (labels[:, j] == 1))
        row = {"hit_rate": None, "chance": None, "pairs": int(len(rows)), "region": AU_REGION.get(au)}
        if au in AU_REGION and len(rows):
            row["hit_rate"] = float(np.mean([in_region(peaks[i, j], landmarks[i], au) for i in rows]))
            if centres is not None:
                row["chance"] = float(np.mean([region_hits(centres, landmarks[i], au).mean() for i in rows]))
        per_au[au_label(au)] = row
    return {
        "per_au": per_au,
        **_over_aus(per_au),
        "images": int(has_face.sum()),
        "margin_iod": MARGIN,
    }


def _over_aus(per_au: dict[str, dict]) -> dict:
    """The averages over the AUs with a hit rate (each AU once, as for F1): `average`, `chance` (None when any of
    them has none: no grid given) and the `pairs` they hold."""
    scored = [v for v in per_au.values() if v["hit_rate"] is not None]
    chances = [v["chance"] for v in scored]
    return {
        "average": float(np.mean([v["hit_rate"] for v in scored])) if scored else None,
        "chance": float(np.mean(chances)) if scored and None not in chances else None,
        "pairs": int(sum(v["pairs"] for v in scored)),
    }


def evaluate_localisation(recorder: PeakRecorder, dataset, labels: np.ndarray, mask: np.ndarray, aus) -> dict | None:
    """`hiva_core eval`'s localisation block: None when the model draws no maps or the data has no landmarks."""
    peaks = recorder.peaks
    if peaks is None:
        return None
    landmarks = dataset_landmarks(dataset, recorder.image_size)
    if landmarks is None:
        return None
    result = localisation_score(peaks, landmarks, labels, mask, aus, recorder.grid, recorder.image_size)
    result["grid"] = list(recorder.grid)
    return result


def pool_localisation(results: Sequence[dict]) -> dict:
    """The localisation of several evaluations (`--folds all`: one per fold) as one: per AU the hits and pairs
    pooled over them (as F1 pools TP/FP/FN), chance weighted by pairs, and the average over AUs."""
    first = results[0]
    per_au: dict[str, dict] = {}
    for name, row in first["per_au"].items():
        rows = [r["per_au"][name] for r in results if r["per_au"][name]["hit_rate"] is not None]
        pairs = sum(r["pairs"] for r in rows)
        out = {"hit_rate": None, "chance": None, "pairs": pairs, "region": row["region"]}
        if pairs:
            out["hit_rate"] = sum(r["hit_rate"] * r["pairs"] for r in rows) / pairs
            if all(r["chance"] is not None for r in rows):
                out["chance"] = sum(r["chance"] * r["pairs"] for r in rows) / pairs
        per_au[name] = out
    return {
        "per_au": per_au,
        **_over_aus(per_au),
        "images": int(sum(r["images"] for r in results)),
        "margin_iod": first["margin_iod"],
        "grid": first.get("grid"),
    }


def format_localisation(result: dict) -> str:
    """A markdown table: per AU the share of present-AU maps peaking in the AU's region, chance, pairs, region."""
    grid = "×".join(map(str, result.get("grid") or []))
    lines = [
        f"Localisation: share of present AUs whose map ({grid}) peaks inside the AU's landmark region "
        f"(margin {result['margin_iod']} IOD); chance = a peak on a random cell.",
        "",
        "| AU | in region | chance | pairs | region |",
        "|---|---:|---:|---:|---|",
    ]
    for name, row in result["per_au"].items():
        lines.append(
            f"| {name} | {_pct(row['hit_rate'])} | {_pct(row.get('chance'))} | {row['pairs']} | "
            f"{row['region'] or 'no region'} |"
        )
    lines.append(f"| **Avg** | **{_pct(result['average'])}** | {_pct(result.get('chance'))} | {result['pairs']} | |")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


# ------------------------------------------------------------------------------------- where a map should look
# The 68 landmarks of a neutral frontal face in an aligned crop, as fractions of the crop side (x right, y down):
# the mean of 32 SynthAU people rendered frontal and neutral, framed by hiva_core.faces.align.TEMPLATE like every
# face prepare, predict and data.align produce (eyes at y = 0.38, mouth corners at 0.73). The spread between people
# is under 0.02 of the crop side. tests/hiva_core/test_regions.py re-derives it from renders.
CANONICAL_LANDMARKS = np.array(
    [
        # jaw line 0-16
        (0.167, 0.385),
        (0.170, 0.483),
        (0.183, 0.572),
        (0.198, 0.659),
        (0.232, 0.760),
        (0.294, 0.846),
        (0.351, 0.885),
        (0.423, 0.909),
        (0.500, 0.926),
        (0.577, 0.910),
        (0.649, 0.886),
        (0.706, 0.847),
        (0.768, 0.761),
        (0.802, 0.660),
        (0.816, 0.573),
        (0.830, 0.485),
        (0.833, 0.386),
        # brows 17-26
        (0.223, 0.306),
        (0.261, 0.266),
        (0.314, 0.250),
        (0.381, 0.250),
        (0.442, 0.262),
        (0.558, 0.262),
        (0.619, 0.250),
        (0.686, 0.250),
        (0.739, 0.267),
        (0.777, 0.307),
        # nose 27-35
        (0.500, 0.369),
        (0.500, 0.423),
        (0.500, 0.474),
        (0.500, 0.535),
        (0.439, 0.611),
        (0.470, 0.612),
        (0.500, 0.615),
        (0.530, 0.612),
        (0.561, 0.611),
        # eyes 36-47
        (0.287, 0.390),
        (0.313, 0.368),
        (0.365, 0.365),
        (0.410, 0.397),
        (0.367, 0.404),
        (0.314, 0.406),
        (0.590, 0.397),
        (0.635, 0.365),
        (0.687, 0.368),
        (0.713, 0.391),
        (0.686, 0.406),
        (0.632, 0.405),
        # outer lips 48-59
        (0.374, 0.726),
        (0.416, 0.693),
        (0.464, 0.677),
        (0.500, 0.680),
        (0.536, 0.677),
        (0.585, 0.693),
        (0.626, 0.726),
        (0.590, 0.753),
        (0.552, 0.766),
        (0.500, 0.770),
        (0.449, 0.766),
        (0.411, 0.753),
        # inner lips 60-67
        (0.391, 0.725),
        (0.450, 0.717),
        (0.500, 0.719),
        (0.550, 0.717),
        (0.610, 0.725),
        (0.554, 0.721),
        (0.500, 0.723),
        (0.447, 0.721),
    ]
)


def canonical_landmarks() -> np.ndarray:
    """(68, 2) landmarks of a neutral frontal face in an aligned crop, as fractions of the crop side (x right, y
    down): see CANONICAL_LANDMARKS."""
    return CANONICAL_LANDMARKS.copy()


def region_prior(aus: Sequence[int], grid: tuple[int, int], image_size: int, samples: int = 4) -> np.ndarray:
    """(A, h, w): the share of each map cell inside each AU's region on the canonical aligned face, as the model
    sees it (after the evaluation transform's resize and centre crop), sampled at samples × samples points per cell.

    Every aligned face (SynthAU, `prepare`, `predict`, `data.align`) is framed by the same five-point template, so
    the canonical face says where an AU's region is on any of them, up to the person's proportions and head pose
    (the region's margin absorbs most of that). An AU without a region gets a row of ones: no constraint."""
    side = 1000.0  # any square image: the landmarks are fractions of its side
    landmarks = to_model_frame(CANONICAL_LANDMARKS * side, int(side), int(side), image_size)
    h, w = grid
    offsets = (np.arange(samples) + 0.5) / samples
    ys = (np.arange(h)[:, None] + offsets[None]).reshape(-1) * image_size / h  # (h·s,)
    xs = (np.arange(w)[:, None] + offsets[None]).reshape(-1) * image_size / w
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # row-major over (h·s, w·s)
    out = np.ones((len(aus), h, w))
    for j, au in enumerate(aus):
        if au in AU_REGION:
            hits = region_hits(points, landmarks, au).reshape(h, samples, w, samples)
            out[j] = hits.mean(axis=(1, 3))
    return out
