"""Benchmark: how far a run's AU readings drift as the face gets fewer pixels (hiva_core.predict.SMALL_EYE_PX).

Each real photo (skimage's astronaut, the four posed photos and every third coded video frame of bench_real_faces.py's
media) is shrunk with Lanczos until its face box is W pixels wide, for W from 160 down to 24 (only sizes below the
photo's own), and read end to end by `run_predict` (detect, align, the run; `--min-face 8`). Against the photo at its
own size, per W: how many photos' faces are found, the mean and largest change of an AU probability, the share of
0/1 calls that flip, and the median of `eye_px` (the face's eye distance in the image) and the enlargement the run's
crop makes of it (the run's input eye distance, `run_eye_px`, over that median).

    python bench/bench_small_faces.py --run quickstart/runs/hiva [--work bench/work/real_faces] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
from bench_real_faces import POSED, VIDEOS, fetch_media, frame_name  # noqa: E402
from PIL import Image  # noqa: E402

from augtext.io import atomic_write  # noqa: E402

WIDTHS = (160, 128, 112, 96, 80, 64, 56, 48, 40, 32, 24)
RESULTS = REPO / "bench" / "results" / "small_faces.json"


def photos(media: Path) -> dict[str, Image.Image]:
    from skimage import data

    out = {"astronaut": Image.fromarray(data.astronaut())}
    out |= {name: Image.open(media / name).convert("RGB") for name, *_ in POSED}
    frames = sorted({frame_name(video, f) for video, coded, *_ in VIDEOS for f in coded})
    out |= {name: Image.open(media / name).convert("RGB") for name in frames[::3]}
    return out


def run_eye_px(image_size: int) -> float:
    """The eye distance, in pixels, of the faces a run of `image_size` reads: an aligned crop resized to
    `resize_size(image_size)` and centre-cropped, as `build_transforms` makes it."""
    from hiva_core.data.transforms import resize_size
    from hiva_core.faces.align import EYE_DISTANCE

    return EYE_DISTANCE * resize_size(image_size)


def largest_face(loaded, image: Image.Image, folder: Path, name: str) -> dict | None:
    """The run's reading of the largest face in `image` (saved as PNG and read as predict reads a photo)."""
    from hiva_core.predict import run_predict

    path = folder / f"{name}.png"
    image.save(path)
    rows = run_predict(path, loaded, min_face=8, progress=False).rows
    rows = rows[rows["status"] == "ok"]
    if rows.empty:
        return None
    row = rows.iloc[int(np.argmax((rows["x2"] - rows["x1"]).to_numpy()))]
    probs = {c: float(row[c]) for c in rows.columns if c.endswith("_prob")}
    return {
        "box_px": float(row["x2"] - row["x1"]),
        "eye_px": float(row["eye_px"]),
        "probs": probs,
        "calls": {c[: -len("_prob")]: int(row[c[: -len("_prob")]]) for c in probs},
    }


def main(argv: list[str] | None = None) -> dict:
    from hiva_core.checkpoint import load_run
    from hiva_core.predict import SMALL_EYE_PX

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "real_faces"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    loaded = load_run(args.run)
    run_eye = run_eye_px(loaded.image_size)
    readings: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, image in photos(fetch_media(Path(args.work))).items():
            full = largest_face(loaded, image, Path(tmp), f"{name}_full")
            if full is None:
                continue
            readings[name] = {"full": full}
            for width in WIDTHS:
                if width < full["box_px"]:
                    s = width / full["box_px"]
                    small = image.resize((round(image.width * s), round(image.height * s)), Image.Resampling.LANCZOS)
                    readings[name][str(width)] = largest_face(loaded, small, Path(tmp), f"{name}_{width}")
    table = []
    for width in WIDTHS:
        shrunk = [(r["full"], r[str(width)]) for r in readings.values() if str(width) in r]
        found = [(full, row) for full, row in shrunk if row is not None]
        if not found:
            continue
        change = [abs(row["probs"][c] - full["probs"][c]) for full, row in found for c in row["probs"]]
        flips = [row["calls"][c] != full["calls"][c] for full, row in found for c in row["calls"]]
        eye = float(np.median([row["eye_px"] for _, row in found]))
        table.append(
            {
                "box_px": width,
                "photos": len(shrunk),
                "found": len(found),
                "eye_px": eye,
                "enlarged": run_eye / eye,
                "mean_change": float(np.mean(change)),
                "max_change": float(np.max(change)),
                "calls_flipped": float(np.mean(flips)),
            }
        )
    result = {
        "run": args.run,
        "image_size": loaded.image_size,
        "run_eye_px": run_eye,
        "small_eye_px": SMALL_EYE_PX,
        "table": table,
        "readings": readings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    lines = [
        f"run {args.run} ({loaded.image_size} px: eyes {run_eye:.0f} px apart in its input)",
        "| face box (px) | photos (found) | eye_px (median) | enlarged | mean change | largest | calls flipped |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['box_px']} | {r['photos']} ({r['found']}) | {r['eye_px']:.0f} | {r['enlarged']:.1f}× | "
        f"{r['mean_change']:.3f} | {r['max_change']:.3f} | {r['calls_flipped']:.1%} |"
        for r in table
    ]
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
