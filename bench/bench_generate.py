"""Benchmark: does `augtext generate` keep `--concurrency` requests in flight?

Runs the whole engine (real openai SDK, request log with fsync, parsing, descriptions.parquet) against the loopback
OpenAI-compatible server (in its own process, as a real server would be) with a fixed per-request latency, at several
concurrency levels, and compares the measured wall time with the ideal `requests * latency / concurrency`. Each request
is one (AU, style) pair answered in one go, so the number of requests is exact. Writes bench/results/generate.json
and prints a markdown table.

    python bench/bench_generate.py [--latency 0.2] [--requests 160] [--serial-requests 40]
                                   [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augtext.backend_openai import OpenAIBackend  # noqa: E402
from augtext.facs import FACS  # noqa: E402
from augtext.generate import GenerateConfig, generate  # noqa: E402
from augtext.io import atomic_write  # noqa: E402
from augtext.templates import available_styles  # noqa: E402


def run_one(url: str, requests: int, concurrency: int, latency: float) -> dict:
    styles = tuple(available_styles())
    pairs = [(au, st) for au in sorted(FACS) for st in styles][:requests]
    if len(pairs) < requests:
        raise SystemExit(f"at most {len(FACS) * len(styles)} requests (one per AU/style pair)")
    aus = tuple(sorted({au for au, _ in pairs}))
    if len(aus) * len(styles) != requests:
        raise SystemExit(f"--requests must be a multiple of the number of styles ({len(styles)})")
    with tempfile.TemporaryDirectory() as tmp:
        # gate=False: this measures the engine and the SDK (one request per pair); bench_gate.py measures the gate.
        config = GenerateConfig(
            aus=aus,
            styles=styles,
            cache=Path(tmp),
            n=5,
            per_request=5,
            concurrency=concurrency,
            progress=False,
            gate=False,
        )
        backend = OpenAIBackend(
            model="loopback", base_url=url, api_key_env="AUGTEXT_BENCH_NO_KEY", timeout=30, max_retries=2
        )
        t0, cpu0 = time.perf_counter(), time.process_time()
        report = generate(config, backend)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if report.sent != requests or not report.ok:
        raise SystemExit(f"unexpected run: sent {report.sent} of {requests}, ok={report.ok}")
    ideal = requests * latency / concurrency
    return {
        "concurrency": concurrency,
        "requests": requests,
        "latency_s": latency,
        "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(ideal / wall, 3),
        "requests_per_s": round(requests / wall, 1),
        "client_cpu_ms_per_request": round(1000 * cpu / requests, 2),
        "retries": report.retries,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    ap.add_argument(
        "--requests",
        type=int,
        default=160,
        help="requests per run at concurrency > 1 (a multiple of each concurrency, else the last partial "
        "wave alone makes the ideal unreachable)",
    )
    ap.add_argument("--serial-requests", type=int, default=40, help="requests for the concurrency-1 run")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "generate.json")
    args = ap.parse_args()

    rows = []
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--latency", str(args.latency)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        run_one(url, 5, 4, args.latency)  # warm-up: imports, first connection
        for c in (int(x) for x in args.concurrency.split(",")):
            rows.append(run_one(url, args.serial_requests if c == 1 else args.requests, c, args.latency))
    finally:
        server.terminate()
        server.wait()
    result = {
        "benchmark": "augtext generate vs loopback server",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "rows": rows,
    }
    with atomic_write(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(
        f"latency {args.latency:g} s per request; ratio = ideal / measured wall time (1.0 = perfect); "
        f"{os.cpu_count()} CPUs, load average {result['load_avg_1m']}\n"
    )
    print("| concurrency | requests | ideal s | wall s | ratio | req/s | client CPU ms/req | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['concurrency']} | {r['requests']} | {r['ideal_s']:.2f} | {r['wall_s']:.2f} | "
            f"{r['ratio']:.2f} | {r['requests_per_s']:.1f} | {r['client_cpu_ms_per_request']:.1f} | "
            f"{r['load_avg_1m']:.1f} |"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
