"""Benchmark: what does `augtext embed` cost on top of the encoder, and how cheap is a rerun?

Writes N generated descriptions (tests.textcache, as `augtext generate` would store them) and, in the same process
with the same loaded all-MiniLM-L6-v2 and batch size, times a bare `SentenceTransformer.encode` of those texts against
`embed_cache` on a fresh cache (read Parquet, encode, build and write the table and manifest atomically). Runs are
interleaved and repeated; medians are reported. Then times a rerun with nothing new (through the library without an
encoder, as the CLI does: no model is loaded) and a rerun after adding 5% new descriptions.
Targets: throughput ratio bare/embed >= 0.9; rerun with nothing new < 5% of the first run.
Writes bench/results/embed.json and prints a markdown table.

    python bench/bench_embed.py [--n 2000] [--batch-size 64] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augtext.embed import embed_cache, load_encoder  # noqa: E402
from augtext.facs import DATASET_AUS  # noqa: E402
from augtext.io import atomic_write  # noqa: E402
from tests.textcache import description_texts, write_descriptions  # noqa: E402


def texts_by_au(n: int) -> dict[int, list[str]]:
    aus = sorted({a for aus in DATASET_AUS.values() for a in aus})
    per_au, extra = divmod(n, len(aus))
    return {au: description_texts(au, per_au + (i < extra)) for i, au in enumerate(aus)}


def fresh(cache: Path) -> None:
    """Forget every embedding: the next embed_cache encodes all texts."""
    shutil.rmtree(cache / "embeddings", ignore_errors=True)
    (cache / "manifest.json").unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="descriptions to embed")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None, help="cpu, cuda ... (default: auto)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "embed.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    t0 = time.perf_counter()
    model = load_encoder(None, device=args.device)
    load_s = time.perf_counter() - t0
    desc = texts_by_au(args.n)
    texts = [t for ts in desc.values() for t in ts]
    encode_kw = {
        "batch_size": args.batch_size,
        "normalize_embeddings": True,
        "convert_to_numpy": True,
        "show_progress_bar": False,
    }
    model.encode(texts[: 2 * args.batch_size], **encode_kw)  # warm-up (first-call allocations, kernels)

    bare, first = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        write_descriptions(cache, desc)
        for rep in range(args.repeats):
            order = ("bare", "embed") if rep % 2 == 0 else ("embed", "bare")  # interleave against drift
            for what in order:
                if what == "bare":
                    t0 = time.perf_counter()
                    model.encode(texts, **encode_kw)
                    bare.append(time.perf_counter() - t0)
                else:
                    fresh(cache)
                    report = embed_cache(cache, batch_size=args.batch_size, encoder=model, progress=False)
                    assert report.encoded == len(texts) and report.rows == len(texts), report
                    first.append(report.seconds)
        rerun = []
        for _ in range(args.repeats):
            report = embed_cache(cache, batch_size=args.batch_size, progress=False)  # no encoder: nothing loaded
            assert report.encoded == 0 and not report.written, report
            rerun.append(report.seconds)
        new = {
            au: [f"{t} Seen again in a new recording." for t in ts[: max(1, len(ts) // 20)]] for au, ts in desc.items()
        }
        write_descriptions(cache, new, style="appearance-extra", append=True)
        report = embed_cache(cache, batch_size=args.batch_size, encoder=model, progress=False)
        added = {"new": report.encoded, "rows": report.rows, "seconds": round(report.seconds, 3)}

    bare_s, first_s, rerun_s = (statistics.median(x) for x in (bare, first, rerun))
    result = {
        "benchmark": "augtext embed vs bare SentenceTransformer.encode",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "device": str(getattr(model, "device", args.device)),
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "texts": len(texts),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "model_load_s": round(load_s, 3),
        "bare_encode_s": [round(x, 3) for x in bare],
        "embed_first_s": [round(x, 3) for x in first],
        "embed_rerun_s": [round(x, 4) for x in rerun],
        "median": {
            "bare_encode_s": round(bare_s, 3),
            "embed_first_s": round(first_s, 3),
            "embed_rerun_s": round(rerun_s, 4),
        },
        "throughput_ratio": round(bare_s / first_s, 3),
        "rerun_fraction": round(rerun_s / first_s, 4),
        "incremental_5pct": added,
        "targets": {"throughput_ratio_min": 0.9, "rerun_fraction_max": 0.05},
    }
    with atomic_write(args.out, "w") as fh:
        json.dump(result, fh, indent=1)

    n = len(texts)
    print(
        f"{n} descriptions, batch {args.batch_size}, device {result['device']}, {os.cpu_count()} CPUs, "
        f"median of {args.repeats}; model load {load_s:.2f} s (not in the times below)\n"
    )
    print("| run | seconds | texts/s | vs bare encode | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| bare `SentenceTransformer.encode` | {bare_s:.2f} | {n / bare_s:.0f} | 1.00 | |")
    print(f"| `embed_cache`, fresh cache | {first_s:.2f} | {n / first_s:.0f} | {bare_s / first_s:.3f} | >= 0.9 |")
    print(f"| `embed_cache` rerun, nothing new | {rerun_s:.3f} | | {rerun_s / first_s:.2%} of first run | < 5% |")
    print(f"| `embed_cache` after adding {added['new']} (5%) | {added['seconds']:.2f} | | | |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
