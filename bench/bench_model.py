"""Model benchmark: training throughput and peak memory of full HiVA vs the same backbone + linear heads, and
inference latency per image at batch 1 and 32.

Each measurement runs in a fresh child process, so the peak memory of one model does not hide the other's: on CPU
the peak is the child's ``ru_maxrss`` (``cpu_rss_growth_in_training_mb``: its growth after the first step, i.e.
after the model, optimizer state and data exist); on CUDA ``torch.cuda.max_memory_allocated`` over the training
steps. The models alternate over ``--rounds`` rounds (hiva, linear, linear, hiva, ...) and each figure sums all
rounds, so a change of machine load hits both models alike: on a shared machine read the ratios, not the absolute
speed. The load average is recorded per child. Weights are random (timing does not depend on them). The model width
is the backbone's default (``hiva_core.models.default_dim``) unless ``--dim`` is given. Writes
bench/results/model.json (``ratios_by_model``: every model over the last one, the reference; ``ratios``: the first
over the last) and prints a markdown table.

    python bench/bench_model.py                                   # mobilenetv2, 128 px, CPU: a few minutes on 2 cores
    python bench/bench_model.py --backbone resnet50 --image-size 224 --batch-size 8 --steps 3 --rounds 2 \\
        --threads 1 --infer-batches 1 --infer-repeats 1 --out bench/results/model_resnet50.json
    python bench/bench_model.py --backbone resnet50 --image-size 224 --device cuda --steps 20 --batch-size 32
    python bench/bench_model.py --models hiva,hiva_open,linear --threads 1       # both HiVAs over linear heads
"""

from __future__ import annotations

import argparse
import json
import os
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
    return (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(args: argparse.Namespace, name: str, flops: bool) -> dict:
    """Train `args.steps` steps and time inference for one model, in this process (one round of one model)."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    load_start = os.getloadavg()[0]
    torch.manual_seed(0)
    model = create_model(
        name,
        args.aus,
        args.text_dim,
        backbone=args.backbone,
        dim=args.dim,
        heads=args.heads,
        output_stride=args.output_stride,
    )
    model = model.to(device, memory_format=fmt)
    emb = torch.nn.functional.normalize(torch.randn(args.aus, args.descriptions, args.text_dim), dim=-1).to(device)
    mask = torch.ones(args.aus, args.descriptions, dtype=torch.bool, device=device)
    b, s = args.batch_size, args.image_size
    images = torch.randn(b, 3, s, s, device=device).contiguous(memory_format=fmt)
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
    step_s, cpu_s = [], []
    for _ in range(args.steps):
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        _sync(device)
        step_s.append(time.perf_counter() - start)
        cpu_s.append(time.process_time() - cpu_start)
    train_s = sum(step_s)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mb()
    result = {
        "model": name,
        "dim": model.config.dim,
        "output_stride": model.config.output_stride,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "train_images": args.steps * b,
        "train_s": train_s,
        "step_s": step_s,
        "cpu_s": cpu_s,
        "train_peak_mb": peak,
        "cpu_rss_growth_in_training_mb": _rss_mb() - rss_before if device.type == "cpu" else None,
    }

    model.eval()
    if flops:  # load-independent cost, at the training batch (the text prior's encoding is shared by the batch)
        from torch.utils.flop_counter import FlopCounterMode

        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images, emb, mask)
        result["forward_gflops_per_image"] = counter.get_total_flops() / 1e9 / b
    for batch_size in args.infer_batches:
        x = torch.randn(batch_size, 3, s, s, device=device).contiguous(memory_format=fmt)
        with torch.inference_mode(), _autocast(device):
            model(x, emb, mask)
            _sync(device)
            start = time.perf_counter()
            for _ in range(args.infer_repeats):
                model(x, emb, mask)
            _sync(device)
        result[f"infer_s_b{batch_size}"] = time.perf_counter() - start
    result["load_avg_1min"] = [load_start, os.getloadavg()[0]]
    return result


def combine(rounds: list[dict], args: argparse.Namespace) -> dict:
    """One model's rounds → totals: images/s over all timed steps, the highest peak, ms per image per batch size."""
    first = rounds[0]
    out = {
        "model": first["model"],
        "dim": first.get("dim"),
        "output_stride": first.get("output_stride"),
        "params_m": first["params_m"],
        "forward_gflops_per_image": first["forward_gflops_per_image"],
        "train_images_per_s": sum(r["train_images"] for r in rounds) / sum(r["train_s"] for r in rounds),
        # the fastest step of all rounds: the least disturbed by other work on a shared machine
        "train_images_per_s_best": args.batch_size / min(t for r in rounds for t in r["step_s"]),
        # CPU seconds of this process per training image (all its threads): with --threads 1 hardly
        # depends on what else runs on the machine, unlike wall-clock time
        "train_cpu_s_per_image": sum(sum(r["cpu_s"]) for r in rounds) / sum(r["train_images"] for r in rounds),
        "train_peak_mb": max(r["train_peak_mb"] for r in rounds),
    }
    growth = [r["cpu_rss_growth_in_training_mb"] for r in rounds]
    out["cpu_rss_growth_in_training_mb"] = None if None in growth else max(growth)
    for bs in args.infer_batches:
        out[f"infer_ms_per_image_b{bs}"] = (
            sum(r[f"infer_s_b{bs}"] for r in rounds) * 1e3 / (len(rounds) * args.infer_repeats * bs)
        )
    out["rounds"] = [
        {
            "train_images_per_s": r["train_images"] / r["train_s"],
            "step_s": r["step_s"],
            "train_peak_mb": r["train_peak_mb"],
            "load_avg_1min": r["load_avg_1min"],
        }
        for r in rounds
    ]
    return out


def ratios(a: dict, b: dict) -> dict:
    """Model `a`'s price over model `b`'s: FLOPs, time per training image, peak memory, latency."""
    out = {
        "models": f"{a['model']} / {b['model']}",
        "forward_flops": a["forward_gflops_per_image"] / b["forward_gflops_per_image"],
        "train_time_per_image": b["train_images_per_s"] / a["train_images_per_s"],
        "train_time_per_image_best_step": b["train_images_per_s_best"] / a["train_images_per_s_best"],
        "train_cpu_time_per_image": a["train_cpu_s_per_image"] / b["train_cpu_s_per_image"],
        "train_time_per_image_per_round": [
            rb["train_images_per_s"] / ra["train_images_per_s"] for ra, rb in zip(a["rounds"], b["rounds"], strict=True)
        ],
        "train_peak_mb": a["train_peak_mb"] / b["train_peak_mb"],
    }
    if a["cpu_rss_growth_in_training_mb"] is not None and b["cpu_rss_growth_in_training_mb"]:
        out["cpu_rss_growth_in_training"] = a["cpu_rss_growth_in_training_mb"] / b["cpu_rss_growth_in_training_mb"]
    for key in a:
        if key.startswith("infer_ms_per_image_"):
            out[key.removeprefix("infer_ms_per_image_").join(("infer_latency_", ""))] = a[key] / b[key]
    return out


def table(results: list[dict], infer_batches: list[int]) -> str:
    """A markdown table of the results, one row per model."""
    rows = [
        "| model | d | params (M) | fwd GFLOPs/img | train img/s (all steps) | train img/s (best step) "
        "| train CPU s/img | train peak MB | " + " | ".join(f"infer ms/img b{bs}" for bs in infer_batches) + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(infer_batches),
    ]
    for r in results:
        rows.append(
            f"| {r['model']} | {r['dim']} | {r['params_m']:.2f} | {r['forward_gflops_per_image']:.2f}"
            f" | {r['train_images_per_s']:.2f} | {r['train_images_per_s_best']:.2f}"
            f" | {r['train_cpu_s_per_image']:.3f}"
            f" | {r['train_peak_mb']:.0f} | "
            + " | ".join(f"{r[f'infer_ms_per_image_b{bs}']:.1f}" for bs in infer_batches)
            + " |"
        )
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="mobilenetv2")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed training steps after the first")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads per measurement (0: torch's default); "
        "1 makes the CPU time per image a load-independent cost on a shared machine",
    )
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of all models (a child process each)")
    p.add_argument("--infer-repeats", type=int, default=3)
    p.add_argument(
        "--infer-batches",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 32],
        help="comma-separated batch sizes for inference latency",
    )
    p.add_argument(
        "--no-channels-last",
        dest="channels_last",
        action="store_false",
        help="keep NCHW (default: channels_last, as hiva_core train does)",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="hiva,linear", help="comma-separated registered names")
    p.add_argument("--aus", type=int, default=12, help="number of AUs (BP4D: 12)")
    p.add_argument("--descriptions", type=int, default=16, help="descriptions per AU in the synthetic text prior")
    p.add_argument("--text-dim", type=int, default=384, help="text embedding dim (all-MiniLM-L6-v2: 384)")
    p.add_argument("--dim", type=int, default=None, help="model width d (default: follows the backbone)")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument(
        "--output-stride", type=int, default=None, help="token grid stride, 8/16/32 (default: the model's, 16)"
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: measure this one model and print JSON
    p.add_argument("--worker-flops", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args, args.worker, args.worker_flops)))
        return 0
    passthrough = list(argv if argv is not None else sys.argv[1:])
    names = args.models.split(",")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    load_start = os.getloadavg()
    for i in range(args.rounds):
        for name in names if i % 2 == 0 else names[::-1]:  # alternate the order: drift in load hits both models
            extra = ["--worker-flops"] if i == 0 else []
            proc = subprocess.run(
                [sys.executable, __file__, *passthrough, "--worker", name, *extra],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode:
                sys.stderr.write(proc.stderr)
                return proc.returncode
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(
                f"round {i + 1}/{args.rounds} {name}: "
                f"{runs[name][-1]['train_images'] / runs[name][-1]['train_s']:.2f} train img/s",
                file=sys.stderr,
            )
    results = [combine(runs[name], args) for name in names]
    report = {
        "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if not k.startswith("worker")
        },
        "environment": {
            "torch": torch.__version__,
            "threads": args.threads or torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_avg_start": load_start,
            "load_avg_end": os.getloadavg(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cuda_device": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        },
        "results": results,
    }
    if len(results) >= 2:
        report["ratios"] = ratios(results[0], results[-1])
        report["ratios_by_model"] = {r["model"]: ratios(r, results[-1]) for r in results[:-1]}
    with atomic_write(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
    print(
        f"{args.backbone} (stride {results[0].get('output_stride')}), {args.image_size} px, batch {args.batch_size}, "
        f"{args.device}, {args.aus} AUs, "
        f"{args.rounds} rounds x {args.steps} steps, load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f}\n"
    )
    print(table(results, args.infer_batches))
    for r in report.get("ratios_by_model", {}).values():
        per_round = ", ".join(f"{v:.2f}" for v in r["train_time_per_image_per_round"])
        print(
            f"\n{r['models']}: forward FLOPs x{r['forward_flops']:.2f}, time per training image "
            f"x{r['train_time_per_image']:.2f} (per round {per_round}; best steps "
            f"x{r['train_time_per_image_best_step']:.2f}), CPU time per training image "
            f"x{r['train_cpu_time_per_image']:.2f}, peak memory x{r['train_peak_mb']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
