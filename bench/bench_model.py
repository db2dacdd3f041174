"""Model benchmark: training throughput and peak memory of full HiVA vs the same backbone + linear heads, and
inference latency per image at batch 1 and 32.

Each model is measured in a fresh child process, so the peak memory of one does not hide the other's:
on CPU the peak is the child's ``ru_maxrss`` during training minus its value before the first step (model and
optimizer state built, data allocated); on CUDA ``torch.cuda.max_memory_allocated`` over the training steps.
Weights are random (timing does not depend on them). Writes bench/results/model.json and prints a markdown table.

    python bench/bench_model.py                                   # mobilenetv2, 128 px, CPU: a few minutes on 2 cores
    python bench/bench_model.py --backbone resnet50 --image-size 224 --device cuda --steps 20 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from augtext.io import atomic_write
from hiva_core.losses import au_weights
from hiva_core.models import create_model
from hiva_core.task import AUTask

RESULTS = Path(__file__).resolve().parent / "results" / "model.json"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu",
                                                                                                      enabled=False)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(args: argparse.Namespace, name: str) -> dict:
    """Train `args.steps` steps and time inference for one model, in this process."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model(name, args.aus, args.text_dim, backbone=args.backbone, dim=args.dim, heads=args.heads)
    model = model.to(device, memory_format=torch.channels_last)
    emb = torch.nn.functional.normalize(torch.randn(args.aus, args.descriptions, args.text_dim), dim=-1).to(device)
    mask = torch.ones(args.aus, args.descriptions, dtype=torch.bool, device=device)
    b, s = args.batch_size, args.image_size
    images = torch.randn(b, 3, s, s, device=device).contiguous(memory_format=torch.channels_last)
    labels = (torch.rand(b, args.aus, device=device) < 0.3).float()
    batch = {"image": images, "labels": labels, "mask": torch.ones_like(labels, dtype=torch.bool)}
    task = AUTask(model, au_weights(labels.cpu()).to(device), align_weight=0.1)
    opt = torch.optim.AdamW(task.parameters(), lr=1e-4)

    def step() -> None:
        with _autocast(device):
            loss = task(batch, emb, mask)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    step()  # the first step allocates the optimizer state: count it in the peak, not in the timing
    rss_before = _rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    train_s = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mb()
    result = {"model": name, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
              "train_images_per_s": args.steps * b / train_s,
              "train_peak_mb": peak,
              "cpu_rss_growth_in_training_mb": _rss_mb() - rss_before if device.type == "cpu" else None}

    model.eval()
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as flops:  # load-independent cost, at the training batch
        model(images, emb, mask)
    result["forward_gflops_per_image"] = flops.get_total_flops() / 1e9 / b
    for batch_size in (1, 32):
        x = torch.randn(batch_size, 3, s, s, device=device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), _autocast(device):
            model(x, emb, mask)
            _sync(device)
            start = time.perf_counter()
            for _ in range(args.infer_repeats):
                model(x, emb, mask)
            _sync(device)
        result[f"infer_ms_per_image_b{batch_size}"] = (time.perf_counter() - start) * 1e3 / (
            args.infer_repeats * batch_size)
    return result


def table(results: list[dict]) -> str:
    """A markdown table of the results, one row per model."""
    rows = ["| model | params (M) | fwd GFLOPs/img | train img/s | train peak MB | infer ms/img b1 "
            "| infer ms/img b32 |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['model']} | {r['params_m']:.2f} | {r['forward_gflops_per_image']:.2f}"
                    f" | {r['train_images_per_s']:.1f} | {r['train_peak_mb']:.0f}"
                    f" | {r['infer_ms_per_image_b1']:.1f} | {r['infer_ms_per_image_b32']:.1f} |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="mobilenetv2")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed training steps after the first")
    p.add_argument("--infer-repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="hiva,linear", help="comma-separated registered names")
    p.add_argument("--aus", type=int, default=12, help="number of AUs (BP4D: 12)")
    p.add_argument("--descriptions", type=int, default=16, help="descriptions per AU in the synthetic text prior")
    p.add_argument("--text-dim", type=int, default=384, help="text embedding dim (all-MiniLM-L6-v2: 384)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: measure this one model and print JSON
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args, args.worker)))
        return 0
    passthrough = list(argv if argv is not None else sys.argv[1:])
    results = []
    for name in args.models.split(","):
        proc = subprocess.run([sys.executable, __file__, *passthrough, "--worker", name], capture_output=True,
                              text=True, check=False)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "worker"},
              "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                              "python": platform.python_version(), "machine": platform.machine(),
                              "cuda_device": torch.cuda.get_device_name() if args.device.startswith("cuda") else None},
              "results": results}
    with atomic_write(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
    print(f"{args.backbone}, {args.image_size} px, batch {args.batch_size}, {args.device}, {args.aus} AUs\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
