"""Benchmark: does a photo's resolution move the aligned face, and a run's AUs with it? (hiva_core.faces.detect.refine)

MTCNN's landmarks jitter with the image's resolution. For each real photo (skimage's astronaut, and the four posed
photos and the first coded video frame of bench_real_faces.py's media), resized to 0.6, 1, 1.5 and 2.5 times its
size: the 9 points of the aligned 256-px crop's frame (corners, edge midpoints, centre) mapped back into the photo,
their range over the sizes, in % of the eye distance, averaged — with the detector's landmarks alone and refined
(`refine`, the default). With `--run R`: the astronaut saved at 512-4096 px, the run's AU1 and AU2 probabilities on
each, and their range over the sizes, alone and refined.

    python bench/bench_landmarks.py [--run quickstart/runs/hiva] [--work bench/work/real_faces] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
from bench_real_faces import POSED, fetch_media, frame_name  # noqa: E402
from PIL import Image  # noqa: E402

import hiva_core.faces.detect as detect  # noqa: E402
from hiva_core.faces.align import align, invert_affine, similarity_transform, template_points, transform_points  # noqa: E402

ZOOMS = (0.6, 1.0, 1.5, 2.5)
SIDES = (512, 768, 1024, 1536, 2048, 3072, 4096)
GRID = np.array([[x, y] for x in (0, 128, 255) for y in (0, 128, 255)], dtype=float)


def resized(image: np.ndarray, zoom: float) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((round(w * zoom), round(h * zoom)), Image.Resampling.LANCZOS))


def landmarks(image: np.ndarray, refined: bool) -> np.ndarray | None:
    """The largest face's five landmarks, refined or as the detector alone gives them."""
    keep = detect.refine
    if not refined:
        detect.refine = lambda detector, image, face, **kw: face
    try:
        faces = detect.detect_faces(image)
    finally:
        detect.refine = keep
    return max(faces, key=lambda f: f.size).landmarks if faces else None


def frame_motion(photo: np.ndarray, refined: bool) -> float:
    """Mean range over ZOOMS of the aligned frame's 9 points in the photo, in % of the eye distance."""
    frames = []
    for zoom in ZOOMS:
        points = landmarks(resized(photo, zoom), refined)
        if points is None:
            continue
        points = (points + 0.5) / zoom - 0.5
        matrix = similarity_transform(points, template_points(256))
        frames.append(transform_points(GRID, invert_affine(matrix)) / np.linalg.norm(points[0] - points[1]) * 100)
    return float(np.ptp(np.stack(frames), axis=0).mean())


def au_spread(run: str, photo: np.ndarray, refined: bool) -> dict:
    import hiva_core

    loaded = hiva_core.load(run)
    probs = []
    for side in SIDES:
        image = resized(photo, side / photo.shape[1])
        crop, _ = align(image, landmarks(image, refined))
        probs.append(loaded.predict([Image.fromarray(crop)])["probs"].numpy()[0])
    probs = np.array(probs)
    out = {}
    for au in (1, 2):
        col = probs[:, loaded.aus.index(au)]
        out[f"AU{au}"] = {"min": float(col.min()), "max": float(col.max()), "range": float(np.ptp(col))}
    return out


def main() -> None:
    from skimage import data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None)
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "real_faces"))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "landmarks.json")
    args = ap.parse_args()
    media = fetch_media(Path(args.work))
    photos = {"astronaut": data.astronaut()}
    names = [name for name, frames, *_ in POSED] + [frame_name("WolfgangLanger_Pexels.mp4", 0)]
    photos |= {name: np.asarray(Image.open(media / name).convert("RGB")) for name in names}
    result: dict = {"zooms": ZOOMS, "frame_motion_pct_iod": {}}
    for name, photo in photos.items():
        result["frame_motion_pct_iod"][name] = {k: frame_motion(photo, k == "refined") for k in ("alone", "refined")}
    motion = result["frame_motion_pct_iod"]
    result["mean"] = {k: float(np.mean([m[k] for m in motion.values()])) for k in ("alone", "refined")}
    lines = ["| photo | frame moves, detector alone | refined |", "|---|---:|---:|"]
    lines += [f"| {n} | {m['alone']:.1f} | {m['refined']:.1f} |" for n, m in motion.items()]
    lines.append(f"| **mean** | **{result['mean']['alone']:.1f}** | **{result['mean']['refined']:.1f}** |")
    if args.run:
        result["run"] = args.run
        result["astronaut_sides"] = SIDES
        result["au_spread"] = {
            k: au_spread(args.run, photos["astronaut"], k == "refined") for k in ("alone", "refined")
        }
        for k, spread in result["au_spread"].items():
            lines.append(
                f"astronaut at {SIDES[0]}-{SIDES[-1]} px, {k}: "
                + ", ".join(f"{au} {v['min']:.2f}-{v['max']:.2f} (range {v['range']:.3f})" for au, v in spread.items())
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
