"""Predict benchmark: faces per second end to end (`hiva_core predict` on a folder of images) and the share of the time
spent reading images, detecting faces (MTCNN), aligning + transforming crops, and running the model.

The images are skimage's astronaut photograph (one real face), each moved by a different random similarity
(rotation, scale, shift) and brightness, 512x512 JPEGs. The run folder is built here with random weights and a random
unit-norm text prior (timing does not depend on the weights). One untimed warm-up pass over a few images, then
`--repeats` timed passes over the whole folder; the best pass is reported. Writes bench/results/predict.json and prints
a markdown table.

    python bench/bench_predict.py                                          # mobilenetv2, 224 px, CPU
    python bench/bench_predict.py --backbone resnet50 --images 64 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from augtext.io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "predict.json"
STAGES = ("read", "detect", "align", "model")


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    """`n` 512x512 JPEGs of the astronaut, each under a different random similarity and brightness."""
    from skimage import data

    from hiva_core.faces.align import warp_affine

    rng = np.random.default_rng(seed)
    base = data.astronaut()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        angle, scale = np.deg2rad(rng.uniform(-20, 20)), rng.uniform(0.7, 1.2)
        c, s = scale * np.cos(angle), scale * np.sin(angle)
        centre = np.array([224.0, 120.0])  # the face; keep it inside the frame
        shift = rng.uniform(-60, 60, 2) + centre - np.array([[c, -s], [s, c]]) @ centre
        image = warp_affine(base, np.array([[c, -s, shift[0]], [s, c, shift[1]]]), (512, 512))
        image = np.clip(image.astype(np.float32) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"face_{i:03d}.jpg", quality=92)


def make_run(folder: Path, args: argparse.Namespace) -> Path:
    """A run folder with random weights and a random text prior, in the format `hiva_core train` writes."""
    from augtext.facs import DATASET_AUS
    from augtext.prior import TextPrior
    from hiva_core.config import DataSection, ModelSection, TrainConfig
    from hiva_core.models import create_model
    from hiva_core.run_folder import RunFolder

    aus = DATASET_AUS["bp4d"]
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(aus), args.descriptions, args.text_dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    prior = TextPrior(
        aus=list(aus), embeddings=emb, mask=np.ones(emb.shape[:2], bool), model="random", fingerprint="bench"
    )
    cfg = TrainConfig(
        data=DataSection(image_size=args.image_size), model=ModelSection(name=args.model, backbone=args.backbone)
    )
    torch.manual_seed(0)
    model = create_model(args.model, num_aus=len(aus), text_dim=args.text_dim, backbone=args.backbone)
    run = RunFolder(folder / "run")
    run.write_model(model)
    run.write_prior(prior)
    run.write_config(cfg, model, aus, prior)
    return run.path


def measure(args: argparse.Namespace) -> dict:
    from hiva_core.checkpoint import load_run
    from hiva_core.predict import run_predict

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = tmp / "images"
        make_images(images, args.images)
        loaded = load_run(make_run(tmp, args), device=args.device)
        files = sorted(images.iterdir())
        run_predict(files[: min(4, len(files))], loaded, batch_size=args.batch_size, quiet=True)  # warm-up
        passes = []
        for _ in range(args.repeats):
            result = run_predict([images], loaded, batch_size=args.batch_size, quiet=True)
            passes.append((result.timings, int(result.summary["faces"])))
    timings, faces = min(passes, key=lambda p: p[0]["total"])
    total = timings["total"]
    shares = {stage: timings[stage] / total for stage in STAGES}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    return {
        "images": args.images,
        "faces": faces,
        "seconds": total,
        "faces_per_s": faces / total,
        "ms_per_face": {stage: 1e3 * timings[stage] / max(faces, 1) for stage in STAGES},
        "share": shares,
        "all_passes_s": [p[0]["total"] for p in passes],
    }


def table(r: dict) -> str:
    rows = [
        "| faces | seconds | faces/s | read | detect | align | model | other |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['faces']} | {r['seconds']:.2f} | {r['faces_per_s']:.2f} | "
        + " | ".join(f"{100 * r['share'][s]:.0f}%" for s in (*STAGES, "other"))
        + " |",
    ]
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=24, help="images in the folder (one face each)")
    p.add_argument("--model", default="hiva")
    p.add_argument("--backbone", default="mobilenetv2")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2, help="timed passes over the folder (the best is reported)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--descriptions", type=int, default=16, help="descriptions per AU in the random text prior")
    p.add_argument("--text-dim", type=int, default=384)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args)
    report = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cuda_device": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        },
        "result": result,
    }
    with atomic_write(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")
    print(
        f"{args.model} / {args.backbone}, {args.image_size} px, batch {args.batch_size}, {args.device}, "
        f"{args.images} images of 512x512, detector MTCNN\n",
        file=sys.stderr,
    )
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
