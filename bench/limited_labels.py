"""Limited-label experiment on SynthAU: do language priors help most when labels are scarce?

Every model gets the same backbone, images and schedule; only the label budget (training images) changes. Steps,
each resumable from the work folder (default bench/work/limited_labels, git-ignored):
  1. render SynthAU (hiva_core.synth.run_synth): identity-exclusive folds, fold 1 = held-out identities, plus the
     shifted split (new identities, harder pose and light);
  2. write descriptions of the AUs with the bundled offline LLM (augtext.generate, hf backend, SmolLM2) and embed them
     (augtext.embed) -- or reuse an embedded cache with --text-cache;
  3. for each label budget and seed, a nested identity subset of the training folds; train every model with
     hiva_core.train.fit, evaluate on the held-out identities (fit's own evaluation) and on the shifted split
     (hiva_core.evaluate.evaluate_run).
Results are rewritten after every run: bench/results/limited_labels.json and .md (per-AU and average F1, the
all-positive floor, the spread over seeds, what text prior was used).

    python bench/limited_labels.py [--budgets 250,1000,2000] [--seeds 0] [--epochs 10] [--image-size 128]
        [--models hiva,hiva_no_text,megraph_s1,linear] [--device cpu|cuda] [--backbone mobilenetv2|resnet50]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.facs import au_label, parse_au_spec  # noqa: E402
from augtext.io import atomic_write  # noqa: E402
from hiva_core import run_folder  # noqa: E402
from hiva_core.serialize import write_json  # noqa: E402

MODELS = ("hiva", "hiva_no_text", "megraph_s1", "linear")
TEXT_MODELS = ("hiva", "hiva_no_graph", "hiva_no_ddca", "hiva_no_cdca")  # models that read the text prior
SAMPLES_PER_IDENTITY = 8  # hiva_core.synth.sampling: consecutive indices share one identity
TEST_FOLD = 1  # held-out identities: identity % 3 == 0
CPU_IMAGES_PER_S = 40.0  # first-guess training speed for the ETA before anything has been measured


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(message: str) -> None:
    print(f"[{datetime.now(timezone.utc).strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------------ data
def render_count(max_budget: int) -> int:
    """Samples to render so that the training folds (identities with id % 3 != 0) hold at least max_budget."""
    ids = 3
    while 8 * (ids - math.ceil(ids / 3)) < max_budget:
        ids += 3
    return ids * SAMPLES_PER_IDENTITY


# The benches render BP4D label rows unless told (--labels): the README's tables were measured on them, and their work
# folders resume. `hiva_core synth` itself draws hiva_core.synth.sampling.DEFAULT_LABELS.
LABELS_HELP = "SynthAU --labels of the renders (default bp4d, as in the README's tables; e.g. bp4d:2,posed:1)"


def synth_set(args, folder: Path, n: int, shifted: bool = False, factors: str = "all") -> Path:
    """Render (or resume) one SynthAU set at the bench's render size, seed and workers."""
    from hiva_core.synth import run_synth

    run_synth(
        folder,
        n=n,
        size=args.render_size,
        seed=args.synth_seed,
        workers=args.render_workers,
        shifted=shifted,
        factors=factors,
        labels=args.labels,
        progress=sys.stderr.isatty(),
    )
    return folder


def render(args, work: Path) -> tuple[Path, Path, dict]:
    n = render_count(max(*args.budgets, args.render_for))
    t0 = time.perf_counter()
    log(f"rendering SynthAU: {n} faces (3 identity folds) + {args.n_shifted} shifted, {args.render_size} px")
    train_dir = synth_set(args, work / "synth", n)
    shifted_dir = synth_set(args, work / "synth_shifted", args.n_shifted, shifted=True)
    return train_dir, shifted_dir, {"rendered": n, "shifted": args.n_shifted, "seconds": time.perf_counter() - t0}


def budget_manifest(train_dir: Path, work: Path, budget: int, seed: int) -> Path:
    """A manifest with `split`: `budget` training images from whole identities of folds 2-3 (a seeded identity order,
    so that budgets are nested for one seed) and every fold-1 image as the held-out test split."""
    df = pd.read_csv(train_dir / "manifest.csv", keep_default_na=False)
    test = df[df["fold"] == TEST_FOLD]
    pool = df[df["fold"] != TEST_FOLD].sort_values("index")
    ids = np.array(sorted(pool["identity"].unique()))
    order = np.random.default_rng(np.random.SeedSequence([seed, 20_260])).permutation(ids)
    rank = {int(ident): r for r, ident in enumerate(order)}
    pool = pool.assign(_rank=pool["identity"].map(rank)).sort_values(["_rank", "index"], kind="stable")
    if len(pool) < budget:
        raise UserError(f"{train_dir} holds only {len(pool)} training images, budget {budget}")
    train = pool.head(budget).drop(columns="_rank")
    out = pd.concat([train.assign(split="train"), test.assign(split="test")])
    rel = os.path.relpath(train_dir, work / "manifests")
    out["path"] = [f"{rel}/{p}" for p in out["path"]]
    keep = ["path", *[c for c in out.columns if c.startswith("AU") and not c.endswith("_int")], "subject", "split"]
    path = work / "manifests" / f"b{budget}_s{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        out[keep].to_csv(fh, index=False)
    return path


# ------------------------------------------------------------------------------------------------------------ text
class LazyBackend:
    """The hf backend, loaded on the first request: a rerun whose answers are all in the request log loads no LLM.

    Name and model (both part of every request key) are resolved without loading, exactly as HFBackend does."""

    name = "hf"

    def __init__(self, args):
        from augtext.backend_hf import HFBackend, resolve_hf_model

        self.args, self.model = args, resolve_hf_model(args.llm_model)[2]
        self.max_samples_per_call = HFBackend.max_samples_per_call
        self._backend = None

    @property
    def retries(self) -> int:
        return self._backend.retries if self._backend is not None else 0

    async def complete(self, messages, **kwargs):
        if self._backend is None:
            from augtext.backends import make_backend

            self._backend = make_backend("hf", self.args.llm_model)
            assert (self._backend.name, self._backend.model) == (self.name, self.model)
        return await self._backend.complete(messages, **kwargs)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()


def text_prior(args, work: Path) -> tuple[Path, dict]:
    """Generate (resumable through augtext's request log) and embed the descriptions; returns (cache, facts)."""
    from augtext.embed import embed_cache
    from augtext.generate import GenerateConfig, format_summary, generate, resolve_styles

    info: dict = {}
    if args.text_cache is not None:
        cache = Path(args.text_cache)
        info["source"] = f"existing cache {cache}"
    else:
        from augtext.backends import make_backend

        cache = work / "cache"
        t0 = time.perf_counter()
        config = GenerateConfig(
            aus=tuple(args.aus),
            styles=resolve_styles(args.styles, None),
            cache=cache,
            n=args.descriptions,
            per_request=args.per_request,
            seed=0,
            max_rounds=args.max_rounds,
            max_tokens=args.max_tokens,
            progress=False,
        )
        log(
            f"generating {config.n} descriptions per AU and style ({', '.join(config.styles)}) with "
            f"{args.llm_backend} {args.llm_model or '(bundled SmolLM2-135M-Instruct)'}"
        )
        report = generate(
            config,
            LazyBackend(args)
            if args.llm_backend == "hf"
            else make_backend(args.llm_backend, args.llm_model, base_url=args.base_url),
        )
        log(format_summary(report, config).replace("\n", "; "))
        info.update(
            source="augtext generate",
            backend=args.llm_backend,
            llm=args.llm_model or "SmolLM2-135M-Instruct",
            styles=list(config.styles),
            target_per_style=config.n,
            max_tokens=config.max_tokens,
            requests_sent=report.sent,
            requests_cached=report.cached,
            generate_s=round(time.perf_counter() - t0, 1),
        )
        t0 = time.perf_counter()
        emb = embed_cache(cache, model=args.embed_model, progress=False)
        info.update(embed_s=round(time.perf_counter() - t0, 1), encoded=emb.encoded)
    from augtext.prior import load_text_prior

    prior = load_text_prior(cache, aus=args.aus, model=args.embed_model)  # fails naming an AU without descriptions
    desc = pd.read_parquet(cache / "descriptions.parquet", columns=["au", "style", "text"])
    desc = desc[desc["au"].isin(args.aus)]
    first = desc.sort_values(["au", "style"]).groupby("au").head(1)
    info["examples"] = {au_label(int(a)): str(t) for a, t in zip(first["au"], first["text"], strict=True)}
    counts = desc.groupby(["au", "style"]).size().unstack(fill_value=0)
    info.update(
        embed_model=prior.model,
        dim=prior.dim,
        fingerprint=prior.fingerprint,
        per_au={au_label(a): int(prior.mask[i].sum()) for i, a in enumerate(prior.aus)},
        per_au_style={au_label(int(a)): {str(s): int(v) for s, v in row.items()} for a, row in counts.iterrows()},
    )
    return cache, info


# ---------------------------------------------------------------------------------------------------------- training
@dataclass
class Plan:
    """Settings that define a run; their hash names the run folder, so changed settings never resume a stale run."""

    aus: list[int]
    synth_seed: int
    render_size: int
    image_size: int
    backbone: str
    pretrained: bool
    backbone_weights: str | None
    dim: int | None
    epochs: int
    batch_size: int
    lr: float
    align_weight: float
    text_fingerprint: str
    extra: list[str] = field(default_factory=list)
    min_steps: int = 0  # small budgets train for more epochs until they reach this many optimizer steps

    def epochs_for(self, budget: int) -> int:
        steps = budget // self.batch_size if budget > self.batch_size else 1  # the trainer drops the last batch
        return max(self.epochs, math.ceil(self.min_steps / steps))

    def tag(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def plan_from_args(args, text_fingerprint: str) -> Plan:
    """The Plan of a bench's parsed options (their names are Plan's field names)."""
    return Plan(
        text_fingerprint=text_fingerprint,
        **{f.name: getattr(args, f.name) for f in fields(Plan) if f.name != "text_fingerprint"},
    )


def train_config(args, plan: Plan, model: str, manifest: Path, cache: Path, seed: int, epochs: int):
    from hiva_core.config import resolve_config

    cli = {
        "text.cache": str(cache),
        "text.model": args.embed_model,
        "data.spec": str(manifest),
        "data.image_size": plan.image_size,
        "data.num_workers": args.num_workers,
        "model.name": model,
        "model.backbone": plan.backbone,
        "model.pretrained": plan.pretrained,
        "model.backbone_weights": plan.backbone_weights,
        "model.dim": plan.dim,
        "train.epochs": epochs,
        "train.batch_size": plan.batch_size,
        "optim.lr": plan.lr,
        "train.seed": seed,
        "train.device": args.device,
        "train.align_weight": plan.align_weight,
        "train.eval_every": epochs,
        "train.progress": False,
        "train.tensorboard": False,
        "data.aus": ",".join(map(str, plan.aus)),
        "data.val_fraction": 0,  # the budget is the training set: no slice held out for thresholds (F1 at 0.5)
    }
    return resolve_config(cli=cli, overrides=plan.extra)


def finished(run: Path, epochs: int) -> bool:
    path = run / run_folder.METRICS
    if not (path.is_file() and (run / run_folder.MODEL).is_file()):
        return False
    metrics = json.loads(path.read_text())
    return metrics.get("last_epoch") == epochs and metrics.get("last") is not None


def train_and_eval(
    args, plan: Plan, model: str, budget: int, seed: int, manifest: Path, cache: Path, shifted_dir: Path, run: Path
) -> dict:
    """Train (or resume, or skip when done) one run, evaluate on the shifted split; returns its record."""
    from hiva_core.evaluate import evaluate_run
    from hiva_core.train import fit

    timing_path = run / "timing.json"
    epochs = plan.epochs_for(budget)
    if not finished(run, epochs):
        t0 = time.perf_counter()
        fit(
            train_config(args, plan, model, manifest, cache, seed, epochs),
            run,
            resume=(run / run_folder.LAST).is_file(),
        )
        write_json(timing_path, {"train_s": time.perf_counter() - t0, "images": budget * epochs})
    test = json.loads((run / run_folder.METRICS).read_text())["last"]
    shifted_path = run / "shifted_metrics.json"
    if not shifted_path.is_file():
        t0 = time.perf_counter()
        shifted = evaluate_run(run, str(shifted_dir), batch_size=2 * plan.batch_size, device=args.device)
        shifted["eval_s"] = time.perf_counter() - t0
        write_json(shifted_path, shifted)
    shifted = json.loads(shifted_path.read_text())
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    return {
        "model": model,
        "budget": budget,
        "seed": seed,
        "epochs": epochs,
        "run": str(run),
        "train_s": timing.get("train_s"),
        "train_images": timing.get("images"),
        "shifted_eval_s": shifted.get("eval_s"),
        "test": test,
        "shifted": shifted,
    }


def eta_seconds(todo: list[tuple[str, int, int]], records: list[dict], plan: Plan) -> float:
    """Remaining training time from the speeds measured so far (per model; else their mean; else a guess)."""
    speed: dict[str, list[float]] = {}
    for r in records:
        if r.get("train_s"):
            speed.setdefault(r["model"], []).append(r["train_images"] / r["train_s"])
    means = {m: float(np.mean(v)) for m, v in speed.items()}
    fallback = float(np.mean(list(means.values()))) if means else CPU_IMAGES_PER_S
    return sum(budget * plan.epochs_for(budget) / means.get(model, fallback) for model, budget, _ in todo)


# ------------------------------------------------------------------------------------------------------------ report
def pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def summarise(records: list[dict], split: str) -> dict:
    """{(model, budget): {"f1": mean avg F1, "std", "n", "per_au": mean per-AU F1}} over seeds."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r["budget"]), []).append(r[split])
    out = {}
    for key, ms in groups.items():
        f1 = [m["avg"]["f1"] for m in ms]
        out[key] = {
            "f1": float(np.mean(f1)),
            "std": float(np.std(f1, ddof=1)) if len(f1) > 1 else None,
            "n": len(f1),
            "per_au": {au: float(np.mean([m["per_au"][au]["f1"] for m in ms])) for au in ms[0]["per_au"]},
        }
    return out


def cell(s: dict | None) -> str:
    if s is None:
        return "·"
    return pct(s["f1"]) + (f" ± {100 * s['std']:.1f}" if s["std"] is not None else "")


def verdict(summary: dict, budgets: list[int], models: list[str], seeds: int, floor: float) -> list[str]:
    below = [f"{m} at {b}" for b in budgets for m in models if (m, b) in summary and summary[(m, b)]["f1"] < floor]
    lines = [f"Below the all-positive floor ({pct(floor)}): {', '.join(below)}."] if below else []
    if "hiva" not in models or "hiva_no_text" not in models:
        return lines
    deltas = {
        b: summary[("hiva", b)]["f1"] - summary[("hiva_no_text", b)]["f1"]
        for b in budgets
        if ("hiva", b) in summary and ("hiva_no_text", b) in summary
    }
    if not deltas:
        return lines
    lines.append(
        "Text prior effect, hiva − hiva_no_text (same architecture, learned AU queries instead of text): "
        + ", ".join(f"{100 * d:+.1f} F1 at {b} images" for b, d in deltas.items())
        + "."
    )
    others = [m for m in models if m != "hiva"]
    best_gap = {}
    for b in deltas:
        rivals = [summary[(m, b)]["f1"] for m in others if (m, b) in summary]
        if rivals:
            best_gap[b] = summary[("hiva", b)]["f1"] - max(rivals)
    if best_gap:
        lines.append(
            "hiva − best other model: " + ", ".join(f"{100 * d:+.1f} at {b}" for b, d in best_gap.items()) + "."
        )
    small, large = min(deltas), max(deltas)
    if len(deltas) > 1:
        if deltas[small] > 0 and deltas[small] > deltas[large]:
            word = "consistent with"
        elif deltas[small] <= 0:
            word = "not supported by"
        else:
            word = "not supported by (the gain is not largest at the smallest budget in)"
        lines.append(f"The claim 'language priors help most when labels are scarce' is {word} this run.")
    if seeds < 2:
        lines.append(
            "One seed only: differences of a few F1 points are within run-to-run noise here "
            "(rerun with --seeds 0,1,2 for a spread)."
        )
    return lines


def write_report(args, plan: Plan, records: list[dict], data_info: dict, text_info: dict, timings: dict) -> None:
    records = sorted(
        records, key=lambda r: (r["budget"], MODELS.index(r["model"]) if r["model"] in MODELS else 9, r["seed"])
    )
    result = {
        "benchmark": "limited_labels",
        "created_utc": now_utc(),
        "command": " ".join(sys.argv),
        "plan": asdict(plan),
        "plan_tag": plan.tag(),
        "budgets": args.budgets,
        "seeds": args.seeds,
        "models": args.models,
        "data": data_info,
        "text_prior": text_info,
        "timings": timings,
        "environment": environment(),
        "runs": records,
    }
    budgets = [b for b in args.budgets if any(r["budget"] == b for r in records)]
    aus = [au_label(a) for a in plan.aus]
    splits = {
        "test": "held-out identities (SynthAU fold 1)",
        "shifted": "shifted split (new identities, pose ±40° yaw, harsh light)",
    }
    summaries = {s: summarise(records, s) for s in splits}
    result["summary"] = {
        s: [{"model": m, "budget": b, **v} for (m, b), v in summ.items()] for s, summ in summaries.items()
    }
    floors = {s: next((r[s] for r in records), None) for s in splits}
    write_json(args.out_json, result)

    epochs_text = (
        ", ".join(f"{plan.epochs_for(b)} epochs at {b}" for b in args.budgets)
        if plan.min_steps
        else f"{plan.epochs} epochs"
    )
    md = ["# Limited labels on SynthAU: does the text prior help most when labels are scarce?", ""]
    md.append(
        f"Models share the backbone ({plan.backbone}, {'ImageNet weights' if plan.pretrained else 'no weights'}"
        f"{', ' + plan.backbone_weights if plan.backbone_weights else ''}), images ({plan.image_size} px crops "
        f"of {plan.render_size} px renders) and schedule ({epochs_text}, batch {plan.batch_size}, AdamW "
        f"lr {plan.lr:g}, warmup + cosine, weighted asymmetric loss; model dim "
        f"{plan.dim or 'default (512)'}); AUs: {', '.join(au_label(a) for a in plan.aus)}. Label budget = "
        "training images, drawn as whole synthetic identities from SynthAU folds 2-3 (nested for one seed). "
        f"Seeds: {', '.join(map(str, args.seeds))}. F1 x100 at threshold 0.5, pooled per split; "
        "mean ± sample std over seeds where there is more than one."
    )
    md.append("")
    for s, title in splits.items():
        summ = summaries[s]
        n_frames = floors[s]["n"] if floors[s] else 0
        md += [f"## Average F1, {title}, {n_frames} frames", ""]
        head = "| budget | " + " | ".join(args.models) + " | hiva − hiva_no_text | all-positive floor |"
        md += [head, "|---:|" + "---:|" * (len(args.models) + 2)]
        for b in budgets:
            cells = [cell(summ.get((m, b))) for m in args.models]
            d = (
                f"{100 * (summ[('hiva', b)]['f1'] - summ[('hiva_no_text', b)]['f1']):+.1f}"
                if ("hiva", b) in summ and ("hiva_no_text", b) in summ
                else "·"
            )
            md.append(f"| {b} | " + " | ".join(cells) + f" | {d} | {pct(floors[s]['avg']['floor_f1'])} |")
        md += [""] + verdict(summ, budgets, args.models, len(args.seeds), floors[s]["avg"]["floor_f1"]) + [""]
    for s, title in splits.items():
        summ = summaries[s]
        md += [f"### Per-AU F1, {title}", ""]
        md += ["| budget | model | " + " | ".join(aus) + " | Avg |", "|---:|---|" + "---:|" * (len(aus) + 1)]
        for b in budgets:
            for m in args.models:
                if (m, b) in summ:
                    v = summ[(m, b)]
                    md.append(f"| {b} | {m} | " + " | ".join(pct(v["per_au"][a]) for a in aus) + f" | {pct(v['f1'])} |")
        if floors[s]:
            fl = floors[s]
            md.append(
                "| – | all-positive floor | "
                + " | ".join(pct(fl["per_au"][a]["floor_f1"]) for a in aus)
                + f" | {pct(fl['avg']['floor_f1'])} |"
            )
            md.append(
                "| – | positive rate | "
                + " | ".join(pct(fl["per_au"][a]["pos_rate"]) for a in aus)
                + f" | {pct(fl['avg']['pos_rate'])} |"
            )
        md.append("")
    md += ["## What was used", ""]
    t = text_info
    md.append(
        f"- Text prior: {t.get('source')}; LLM {t.get('llm', '(see cache)')} ({t.get('backend', '?')} backend), "
        f"styles {', '.join(t.get('styles', [])) or '(all in cache)'}, target {t.get('target_per_style', '?')} "
        f"per AU and style; embeddings {t['embed_model']} ({t['dim']}-d); alignment-loss weight "
        f"λ = {plan.align_weight:g}; descriptions fingerprint {t['fingerprint'][:12]}."
    )
    styles = sorted({s for v in t["per_au_style"].values() for s in v})
    md += ["", "| AU | " + " | ".join(styles) + " | total used |", "|---|" + "---:|" * (len(styles) + 1)]
    for a in aus:
        row = t["per_au_style"].get(a, {})
        md.append(f"| {a} | " + " | ".join(str(row.get(s, 0)) for s in styles) + f" | {t['per_au'].get(a, 0)} |")
    md += [
        "",
        "Examples (the first description of each AU, verbatim; the small offline LLM's text is often loose "
        "or wrong, which this experiment tests as it is):",
        "",
    ]
    md += [f"- {a}: {t.get('examples', {}).get(a, '–')}" for a in aus]
    env = environment()
    md += [
        "",
        f"- Data: SynthAU seed {plan.synth_seed}, {data_info['rendered']} faces rendered "
        f"({data_info['rendered'] // SAMPLES_PER_IDENTITY} identities, 8 each), {data_info['shifted']} shifted; "
        f"held-out test = fold 1 ({floors['test']['n'] if floors['test'] else 0} frames).",
        f"- Wall time of this invocation: {timings_line(timings)} (cached steps cost ~0); training summed over the "
        f"runs, as measured when each was trained: {sum(r['train_s'] or 0 for r in records) / 60:.1f} min; "
        f"machine: {env['cpus']} CPUs, device {args.device}, torch {env['torch']}, load average at the end "
        f"{env['load_avg_1m']}.",
        f"- Runs: `{args.work}/runs/{plan.tag()}/<model>_b<budget>_s<seed>/` (config.json, metrics.json, "
        "shifted_metrics.json).",
        f"- Reproduce: `{' '.join(['python', 'bench/limited_labels.py', *sys.argv[1:]])}`",
        "",
    ]
    md_path = Path(args.out_md)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(md_path, "w") as fh:
        fh.write("\n".join(md))


def timings_line(t: dict) -> str:
    parts = [f"{k.removesuffix('_s')} {v / 60:.1f} min" for k, v in t.items() if k.endswith("_s") and v is not None]
    return ", ".join(parts) or "–"


def commit() -> str:
    """The checkout's short commit, "+dirty" when hiva_core has uncommitted changes (what produced a result)."""
    import subprocess

    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "hiva_core"], cwd=REPO, capture_output=True, text=True
    )
    return proc.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def environment() -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


# -------------------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ints = lambda s: [int(x) for x in s.split(",") if x.strip()]  # noqa: E731
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=ints, default=[250, 1000, 2000], help="training images per run")
    ap.add_argument("--seeds", type=ints, default=[0], help="seeds (identity subset and training)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--aus", default="bp4d", help="AU spec (augtext): bp4d, 1,2,4, 1-7")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--min-steps", type=int, default=0, help="more epochs for small budgets, up to this many steps")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--dim", type=int, default=None, help="model.dim (default: the model's, 512)")
    ap.add_argument("--align-weight", type=float, default=0.1, help="λ of the vision-text alignment loss")
    ap.add_argument("--image-size", type=int, default=128, help="training/eval crop size")
    ap.add_argument("--render-size", type=int, default=None, help="SynthAU image size (default: --image-size)")
    ap.add_argument("--backbone", default="mobilenetv2")
    ap.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ImageNet weights (default: yes, except for the test backbone 'tiny')",
    )
    ap.add_argument("--backbone-weights", default=None, help="local weights file (e.g. resnet50 offline)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--num-workers", type=int, default=1, help="DataLoader workers")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="any trainer config key=value")
    ap.add_argument("--synth-seed", type=int, default=0)
    ap.add_argument(
        "--render-for",
        type=int,
        default=0,
        help="render as for this largest budget (small budgets: the held-out fold of that budget)",
    )
    ap.add_argument("--labels", default="bp4d", help=LABELS_HELP)
    ap.add_argument("--n-shifted", type=int, default=500)
    ap.add_argument("--render-workers", type=int, default=1)
    ap.add_argument("--text-cache", default=None, help="use this embedded augtext cache (skip generate/embed)")
    ap.add_argument("--styles", default="anatomical,appearance", help="description styles (augtext templates)")
    ap.add_argument("--descriptions", type=int, default=6, help="descriptions to keep per AU and style")
    ap.add_argument("--per-request", type=int, default=3)
    ap.add_argument("--max-rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128, help="LLM completion limit per request")
    ap.add_argument("--llm-backend", default="hf", help="hf (local) or openai (e.g. a vLLM server via --base-url)")
    ap.add_argument("--llm-model", default=None, help="default: the bundled SmolLM2-135M-Instruct")
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--embed-model", default=None, help="default: all-MiniLM-L6-v2 (offline package)")
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "limited_labels"))
    ap.add_argument("--out-json", default=str(REPO / "bench" / "results" / "limited_labels.json"))
    ap.add_argument("--out-md", default=str(REPO / "bench" / "results" / "limited_labels.md"))
    args = ap.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.aus = parse_au_spec(args.aus)
    args.render_size = args.render_size or args.image_size
    if args.pretrained is None:
        args.pretrained = args.backbone != "tiny"
    if not args.budgets or min(args.budgets) < 1 or not args.seeds or args.epochs < 1:
        raise UserError("--budgets, --seeds and --epochs need positive values")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from hiva_core.models import list_models

    unknown = [m for m in args.models if m not in list_models()]
    if unknown:
        raise UserError(f"unknown model(s) {', '.join(unknown)}; registered: {', '.join(list_models())}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train_dir, shifted_dir, data_info = render(args, work)
    timings = {"render_s": data_info.pop("seconds")}
    t0 = time.perf_counter()
    cache, text_info = text_prior(args, work)
    timings["text_s"] = time.perf_counter() - t0
    plan = plan_from_args(args, text_info["fingerprint"])
    runs_dir = work / "runs" / plan.tag()
    todo = [(m, b, s) for b in sorted(args.budgets) for s in args.seeds for m in args.models]
    records: list[dict] = []
    timings["train_s"] = 0.0
    for i, (model, budget, seed) in enumerate(todo):
        eta = eta_seconds(todo[i:], records, plan)
        log(
            f"run {i + 1}/{len(todo)}: {model}, {budget} images, seed {seed}; elapsed "
            f"{(time.perf_counter() - start) / 60:.1f} min, training left ≈ {eta / 60:.1f} min (ETA "
            f"{datetime.fromtimestamp(time.time() + eta, timezone.utc).strftime('%H:%M')} UTC)"
        )
        manifest = budget_manifest(train_dir, work, budget, seed)
        t0 = time.perf_counter()
        records.append(
            train_and_eval(
                args, plan, model, budget, seed, manifest, cache, shifted_dir, runs_dir / f"{model}_b{budget}_s{seed}"
            )
        )
        timings["train_s"] += time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - start
        r = records[-1]
        log(
            f"  {model} @ {budget}: held-out avg F1 {pct(r['test']['avg']['f1'])}, shifted "
            f"{pct(r['shifted']['avg']['f1'])}"
        )
        write_report(args, plan, records, data_info, text_info, timings)
    timings["total_s"] = time.perf_counter() - start
    write_report(args, plan, records, data_info, text_info, timings)
    log(f"done in {timings['total_s'] / 60:.1f} min: {args.out_md}")
    print(Path(args.out_md).read_text())
    return json.loads(Path(args.out_json).read_text())


def cli(main_function) -> None:
    """A bench script's entry point: a UserError is one line on stderr and exit status 2."""
    try:
        main_function()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    cli(main)
