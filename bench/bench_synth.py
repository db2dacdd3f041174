"""Benchmark: SynthAU rendering speed, one process (moderngl, standalone EGL context; Mesa llvmpipe on CPU machines).

For each image size: steady-state images/s of the whole per-sample pipeline (sample parameters, blendshapes, normals,
GL draw + read-back with a 4x-supersampled outline (--msaa), background, occluders, degradations, JPEG encode +
write), with the stage split measured on the same samples, and the end-to-end rate of `run_synth` on a fresh folder
(model load and GL start-up included).
Writes bench/results/synth.json and prints a markdown table.

    python bench/bench_synth.py [--sizes 128,224] [--n 60] [--msaa 4] [--factors all|none|...] [--face-model NPZ]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from augtext.io import atomic_write  # noqa: E402
from hiva_core.synth.facemodel import find_face_model, load_face_model, vertex_normals  # noqa: E402
from hiva_core.synth.factors import factors_label, parse_factors  # noqa: E402
from hiva_core.synth.render import Renderer  # noqa: E402
from hiva_core.synth.sampling import sample_params  # noqa: E402
from hiva_core.synth.writer import _Worker, run_synth  # noqa: E402


def stages(renderer: Renderer, n: int, factors: tuple[str, ...]) -> dict[str, float]:
    """Mean milliseconds per sample of each stage."""
    t = {"sample": 0.0, "geometry+normals": 0.0, "render+postprocess": 0.0, "jpeg": 0.0}
    for i in range(n):
        t0 = time.perf_counter()
        p = sample_params(0, i, factors=factors)
        t1 = time.perf_counter()
        v, *_ = renderer.geometry(p)
        vertex_normals(v, renderer.model.triangles)
        t2 = time.perf_counter()
        img = renderer.render(p).image  # includes its own geometry pass; subtracted below
        t3 = time.perf_counter()
        Image.fromarray(img).save(io.BytesIO(), format="JPEG", quality=p.jpeg_quality)
        t4 = time.perf_counter()
        t["sample"] += t1 - t0
        t["geometry+normals"] += t2 - t1
        t["render+postprocess"] += (t3 - t2) - (t2 - t1)
        t["jpeg"] += t4 - t3
    return {k: round(v / n * 1000, 2) for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="128,224")
    ap.add_argument("--n", type=int, default=60, help="samples per measurement")
    ap.add_argument("--msaa", type=int, default=4)
    ap.add_argument("--factors", default="all", help="SynthAU factors of variation (all, none, -pose, ...)")
    ap.add_argument("--face-model", default=None)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "synth.json"))
    args = ap.parse_args()
    factors = parse_factors(args.factors)

    model_path = find_face_model(args.face_model)
    model = load_face_model(model_path)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            worker = _Worker(Path(tmp), size, 0, model_path, False, args.msaa, factors)
            (Path(tmp) / "images").mkdir()
            for i in range(3):  # warm-up: shader compilation, first allocations
                worker(10_000 + i)
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(args.n):
                worker(i)
            steady = args.n / (time.perf_counter() - t0)
            cpu_ms = (time.process_time() - c0) / args.n * 1000  # all threads of this process (llvmpipe's too)
            split = stages(worker.renderer, max(10, args.n // 3), factors)
            worker.renderer.release()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_synth(
                Path(tmp) / "set",
                n=args.n,
                size=size,
                seed=0,
                face_model=model_path,
                msaa=args.msaa,
                progress=False,
                factors=factors,
            )
            e2e = args.n / (time.perf_counter() - t0)
        results.append(
            {
                "size": size,
                "images_per_s": round(steady, 2),
                "ms_per_image": round(1000 / steady, 1),
                "cpu_ms_per_image": round(cpu_ms, 1),
                "run_synth_images_per_s": round(e2e, 2),
                "stages_ms": split,
            }
        )

    import moderngl

    ctx = moderngl.create_standalone_context(backend="egl")
    record = {
        "benchmark": "synth",
        "n": args.n,
        "msaa": args.msaa,
        "factors": factors_label(factors),
        "processes": 1,
        "results": results,
        "gl_renderer": ctx.info["GL_RENDERER"],
        "vertices": model.num_vertices,
        "triangles": int(len(model.triangles)),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    ctx.release()
    with atomic_write(args.out, "w") as fh:
        json.dump(record, fh, indent=1)

    print(
        f"SynthAU rendering ({record['factors']}), 1 process, {args.msaa}x anti-aliasing, {record['gl_renderer']}, "
        f"{os.cpu_count()} CPUs, "
        f"load average {record['load_average_1min']}\n"
    )
    print(
        "| size | images/s (steady) | ms/image | CPU ms/image | run_synth images/s (incl. start-up) | sample |"
        " geometry+normals | render+post | jpeg |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["stages_ms"]
        print(
            f"| {r['size']} | {r['images_per_s']} | {r['ms_per_image']} | {r['cpu_ms_per_image']} | "
            f"{r['run_synth_images_per_s']} | "
            f"{s['sample']} ms | {s['geometry+normals']} ms | {s['render+postprocess']} ms | {s['jpeg']} ms |"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
