"""Does the *meaning* of the text prior matter? The controlled prior experiment on SynthAU.

The same HiVA (same backbone, images, schedule, width) trained with priors that differ only in what the text says:
  hiva_reference  the project's reference descriptions (augtext generate --backend reference), 50 per AU;
  hiva_smollm2    descriptions written by the bundled SmolLM2-135M-Instruct, after the rules and the semantic gate;
  hiva_name       the AU's name only, one short sentence ("Lip corner puller.");
  hiva_shuffled   the reference descriptions handed to other AUs (augtext.prior.shuffle_cache): architecture and
                  text statistics kept, meaning destroyed;
  hiva_no_text    no prior: learned AU queries in place of the text (the same attention layers);
and two references without text: megraph_s1 (ME-GraphAU-like) and linear heads. Label budgets (training images,
whole synthetic identities, nested for one seed) × seeds; evaluated on held-out identities (SynthAU fold 1) and on
the shifted split. Reports mean ± std over seeds and the paired per-seed differences against hiva_reference.

Data, training and evaluation are bench/limited_labels.py's (imported, not copied); each run is resumable from the
work folder (default bench/work/prior_control, git-ignored). Results are rewritten after every run:
bench/results/prior_control.json and .md.

    python bench/prior_control.py [--arms hiva_reference,hiva_shuffled,...] [--budgets 250,1000] [--seeds 0,1,2]
        [any bench/limited_labels.py option: --epochs, --min-steps, --image-size, --threads, --device, ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from argparse import Namespace
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import limited_labels as ll  # noqa: E402
import numpy as np  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.facs import FACS, au_label  # noqa: E402
from augtext.io import atomic_write  # noqa: E402
from hiva_core.serialize import write_json  # noqa: E402

# arm -> (model, prior); prior None: the model reads no text (it is given the reference cache, which it ignores)
ARMS: dict[str, tuple[str, str | None]] = {
    "hiva_reference": ("hiva", "reference"),
    "hiva_smollm2": ("hiva", "smollm2"),
    "hiva_name": ("hiva", "name"),
    "hiva_shuffled": ("hiva", "shuffled"),
    "hiva_no_text": ("hiva_no_text", None),
    "megraph_s1": ("megraph_s1", None),
    "linear": ("linear", None),
}
BASE = "hiva_reference"
TIERS = (("hiva_reference", "hiva_shuffled", "hiva_no_text"), ("hiva_name", "hiva_smollm2"), ("megraph_s1", "linear"))
DEFAULTS = ["--budgets", "250,1000", "--seeds", "0,1,2", "--epochs", "6", "--min-steps", "60", "--threads", "1"]


# ------------------------------------------------------------------------------------------------------------ priors
def reference_cache(args: Namespace, work: Path) -> Path:
    from augtext.cli import main as augtext_main
    from augtext.embed import embed_cache

    cache = work / "priors" / "reference"
    if not (cache / "manifest.json").is_file():
        ll.log(f"reference descriptions -> {cache}")
        aus = ",".join(map(str, args.aus))
        rc = augtext_main(["generate", "--backend", "reference", "--au", aus, "--n", "10", "--cache", str(cache)])
        if rc not in (0, 1):  # 1: a pair kept fewer than --n (the gate's choice); still usable
            raise UserError(f"augtext generate --backend reference failed (exit {rc})")
        embed_cache(cache, model=args.embed_model, progress=False)
    return cache


def name_cache(args: Namespace, reference: Path, work: Path) -> Path:
    """One row per AU: the AU's FACS name as a sentence, in the reference cache's schema (its first row per AU with
    the text replaced), embedded with the same model."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from augtext.embed import embed_cache
    from augtext.io import atomic_path

    cache = work / "priors" / "name"
    if (cache / "manifest.json").is_file():
        return cache
    table = pq.read_table(reference / "descriptions.parquet")
    aus = table.column("au").to_pylist()
    first = [aus.index(a) for a in sorted(set(aus))]
    table = table.take(first)
    texts = [FACS[a].name[0].upper() + FACS[a].name[1:].lower() + "." for a in table.column("au").to_pylist()]
    for column, values in (
        ("text", texts),
        ("text_sha256", [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]),
        ("style", ["name"] * len(texts)),
        ("backend", ["facs-name"] * len(texts)),
        ("model", ["augtext.facs"] * len(texts)),
    ):
        i = table.schema.get_field_index(column)
        table = table.set_column(i, table.schema.field(column), pa.array(values, type=table.schema.field(column).type))
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache / "descriptions.parquet") as tmp:
        pq.write_table(table, tmp)
    embed_cache(cache, model=args.embed_model, progress=False)
    return cache


def smollm2_cache(args: Namespace, work: Path) -> Path:
    """SmolLM2 descriptions through augtext generate (rules + semantic gate) and embed: limited_labels.text_prior."""
    sub = work / "priors" / "smollm2"
    smol = Namespace(**{**vars(args), "text_cache": None, "llm_backend": "hf", "llm_model": None})
    smol.styles, smol.descriptions, smol.max_rounds, smol.max_tokens = "appearance,anatomical", 3, 2, 160
    t0 = time.perf_counter()
    cache, _ = ll.text_prior(smol, sub)
    ll.log(f"SmolLM2 prior ready in {time.perf_counter() - t0:.0f} s: {cache}")
    return cache


def build_priors(args: Namespace, work: Path, arms: list[str]) -> dict[str, Path]:
    from augtext.prior import shuffle_cache

    wanted = {ARMS[a][1] for a in arms} | {"reference"}
    caches = {"reference": reference_cache(args, work)}
    if "name" in wanted:
        caches["name"] = name_cache(args, caches["reference"], work)
    if "shuffled" in wanted:
        caches["shuffled"] = work / "priors" / "shuffled"
        holds = shuffle_cache(caches["reference"], caches["shuffled"], seed=0)
        args.shuffled_holds = {au_label(a): au_label(b) for a, b in holds.items()}
    if "smollm2" in wanted:
        caches["smollm2"] = smollm2_cache(args, work)
    return caches


def prior_info(args: Namespace, cache: Path, work: Path) -> dict:
    info = ll.text_prior(Namespace(**{**vars(args), "text_cache": str(cache)}), work)[1]
    info["total"] = int(sum(info["per_au"].values()))
    return info


# ------------------------------------------------------------------------------------------------------------ report
def per_arm(records: list[dict], split: str) -> dict[tuple[str, int], dict]:
    """{(arm, budget): {"f1": mean, "std", "n", "by_seed": {seed: avg F1}, "per_au": mean per-AU F1}}."""
    out: dict[tuple[str, int], dict] = {}
    for r in records:
        entry = out.setdefault((r["arm"], r["budget"]), {"by_seed": {}, "per_au": {}})
        entry["by_seed"][r["seed"]] = r[split]["avg"]["f1"]
        for au, m in r[split]["per_au"].items():
            entry["per_au"].setdefault(au, []).append(m["f1"])
    for entry in out.values():
        f1 = list(entry["by_seed"].values())
        entry.update(
            f1=float(np.mean(f1)),
            std=float(np.std(f1, ddof=1)) if len(f1) > 1 else None,
            n=len(f1),
            per_au={au: float(np.mean(v)) for au, v in entry["per_au"].items()},
        )
    return out


def paired(summary: dict, arm: str, budget: int) -> dict | None:
    """hiva_reference − arm, seed by seed (only seeds both have), with mean, std and whether the difference is beyond
    the seed spread: every seed agrees in sign and |mean| exceeds the larger of the two arms' std over seeds."""
    a, b = summary.get((BASE, budget)), summary.get((arm, budget))
    if a is None or b is None:
        return None
    seeds = sorted(set(a["by_seed"]) & set(b["by_seed"]))
    if not seeds:
        return None
    diffs = [a["by_seed"][s] - b["by_seed"][s] for s in seeds]
    mean = float(np.mean(diffs))
    spread = max(a["std"] or 0.0, b["std"] or 0.0)
    beyond = len(seeds) > 1 and (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)) and abs(mean) > spread
    return {
        "seeds": seeds,
        "diffs": diffs,
        "mean": mean,
        "std": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else None,
        "spread": spread,
        "beyond_spread": bool(beyond),
    }


def signed(x: float) -> str:
    return f"{100 * x:+.1f}"


def diff_cell(p: dict | None) -> str:
    if p is None:
        return "·"
    text = signed(p["mean"]) + (f" ± {100 * p['std']:.1f}" if p["std"] is not None else "")
    text += " (" + ", ".join(signed(d) for d in p["diffs"]) + ")"
    return f"**{text}**" if p["beyond_spread"] else text


def reading(summaries: dict, budgets: list[int], splits: dict[str, str], seeds: list[int]) -> list[str]:
    """The plain answer, from the numbers: does meaning matter (reference vs shuffled), and the other contrasts."""
    lines = []
    for s, title in splits.items():
        for b in budgets:
            p = paired(summaries[s], "hiva_shuffled", b)
            if p is None:
                continue
            if p["beyond_spread"] and p["mean"] > 0:
                word = "meaning matters here: the reference prior beats its shuffled copy beyond the seed spread"
            elif p["beyond_spread"]:
                word = "the shuffled prior is ahead beyond the seed spread (meaning does not help here)"
            else:
                word = "no effect of meaning can be told from seed noise here"
            lines.append(
                f"- {title}, {b} images: reference − shuffled = {signed(p['mean'])} F1 "
                f"(seeds: {', '.join(signed(d) for d in p['diffs'])}; seed spread ±{100 * p['spread']:.1f}): {word}."
            )
    if len(seeds) < 2:
        lines.append("- One seed only: no spread, so no difference can be called beyond noise (use --seeds 0,1,2).")
    return lines


def write_report(args: Namespace, plan, records: list[dict], data_info: dict, priors: dict, timings: dict) -> None:
    arms = [a for a in args.arms if any(r["arm"] == a for r in records)]
    budgets = [b for b in args.budgets if any(r["budget"] == b for r in records)]
    splits = {"test": "held-out identities", "shifted": "shifted split"}
    summaries = {s: per_arm(records, s) for s in splits}
    floors = {s: next((r[s] for r in records), None) for s in splits}
    result = {
        "benchmark": "prior_control",
        "created_utc": ll.now_utc(),
        "command": " ".join(sys.argv),
        "plan": asdict(plan),
        "plan_tag": plan.tag(),
        "arms": {a: {"model": ARMS[a][0], "prior": ARMS[a][1]} for a in args.arms},
        "budgets": args.budgets,
        "seeds": args.seeds,
        "data": data_info,
        "priors": priors,
        "shuffled_holds": getattr(args, "shuffled_holds", None),
        "timings": timings,
        "environment": ll.environment(),
        "summary": {
            s: [{"arm": a, "budget": b, **{k: v for k, v in e.items()}} for (a, b), e in summ.items()]
            for s, summ in summaries.items()
        },
        "paired_vs_reference": {
            s: {
                f"{a}@{b}": paired(summaries[s], a, b)
                for b in budgets
                for a in arms
                if a != BASE and paired(summaries[s], a, b)
            }
            for s in splits
        },
        "runs": records,
    }
    write_json(args.out_json, result)

    md = ["# Does the meaning of the text prior matter? (controlled prior experiment, SynthAU)", ""]
    md.append(
        f"Same HiVA, backbone {plan.backbone} ({'ImageNet weights' if plan.pretrained else 'no weights'}), "
        f"{plan.image_size} px, batch {plan.batch_size}, AdamW lr {plan.lr:g}, "
        + ", ".join(f"{plan.epochs_for(b)} epochs at {b}" for b in budgets)
        + f", width {plan.dim or 'default (follows the backbone)'}, λ = {plan.align_weight:g}; AUs "
        f"{', '.join(au_label(a) for a in plan.aus)}; seeds {', '.join(map(str, args.seeds))}. Only the prior differs "
        "between the hiva_* arms. Avg F1 ×100 at 0.5, mean ± std over seeds."
    )
    md.append("")
    for s, title in splits.items():
        summ = summaries[s]
        n = floors[s]["n"] if floors[s] else 0
        md += [f"## Average F1, {title} ({n} faces; all-positive floor {ll.pct(floors[s]['avg']['floor_f1'])})", ""]
        md += ["| arm | " + " | ".join(f"{b} images" for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
        for a in arms:
            md.append(f"| {a} | " + " | ".join(ll.cell(summ.get((a, b))) for b in budgets) + " |")
        md += [
            "",
            f"Paired per-seed differences, {BASE} − arm (mean ± std (seed by seed)); bold = beyond the seed "
            "spread (every seed agrees in sign and |mean| > the larger std over seeds of the two arms):",
            "",
        ]
        md += ["| arm | " + " | ".join(f"{b} images" for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
        for a in arms:
            if a != BASE:
                md.append(f"| {BASE} − {a} | " + " | ".join(diff_cell(paired(summ, a, b)) for b in budgets) + " |")
        md.append("")
    md += ["## Reading", ""] + reading(summaries, budgets, splits, args.seeds) + [""]
    aus = [au_label(a) for a in plan.aus]
    for s, title in splits.items():
        md += [f"### Per-AU F1, {title} (mean over seeds)", ""]
        md += ["| budget | arm | " + " | ".join(aus) + " | Avg |", "|---:|---|" + "---:|" * (len(aus) + 1)]
        for b in budgets:
            for a in arms:
                if (a, b) in summaries[s]:
                    v = summaries[s][(a, b)]
                    md.append(
                        f"| {b} | {a} | "
                        + " | ".join(ll.pct(v["per_au"].get(x)) for x in aus)
                        + f" | {ll.pct(v['f1'])} |"
                    )
        md.append("")
    md += ["## The priors", "", "| prior | texts | per AU | example (first AU) |", "|---|---:|---|---|"]
    for name, info in priors.items():
        per_au = sorted(info["per_au"].values())
        example = next(iter(info.get("examples", {}).items()), ("", ""))
        md.append(f"| {name} | {info['total']} | {per_au[0]}–{per_au[-1]} | {example[0]}: {example[1][:90]} |")
    if getattr(args, "shuffled_holds", None):
        md += ["", "Shuffled: " + ", ".join(f"{a} holds {b}'s texts" for a, b in args.shuffled_holds.items()) + "."]
    env = ll.environment()
    md += [
        "",
        f"- Data: SynthAU seed {plan.synth_seed}, {data_info['rendered']} faces rendered, {data_info['shifted']} "
        "shifted; held-out = fold 1.",
        f"- Wall time: {ll.timings_line(timings)}; machine {env['cpus']} CPUs, device {args.device}, torch "
        f"{env['torch']}, threads {env['threads']}, load average at the end {env['load_avg_1m']}.",
        f"- Runs: `{args.work}/runs/{plan.tag()}/<arm>_b<budget>_s<seed>/`.",
        f"- Reproduce: `{' '.join(['python', 'bench/prior_control.py', *sys.argv[1:]])}`",
        "",
    ]
    with atomic_write(Path(args.out_md), "w") as fh:
        fh.write("\n".join(md))


# -------------------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "prior_control"))
    ap.add_argument("--out-json", default=str(REPO / "bench" / "results" / "prior_control.json"))
    ap.add_argument("--out-md", default=str(REPO / "bench" / "results" / "prior_control.md"))
    own, rest = ap.parse_known_args(argv)
    args = ll.parse_args(DEFAULTS + rest)  # every limited_labels option; later values override the defaults
    args.arms = [a.strip() for a in own.arms.split(",") if a.strip()]
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown or BASE not in args.arms:
        raise UserError(f"--arms must include {BASE}; unknown: {', '.join(unknown) or '-'}; known: {', '.join(ARMS)}")
    args.work, args.out_json, args.out_md = own.work, own.out_json, own.out_md
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train_dir, shifted_dir, data_info = ll.render(args, work)
    timings = {"render_s": data_info.pop("seconds")}
    t0 = time.perf_counter()
    caches = build_priors(args, work, args.arms)
    priors = {name: prior_info(args, cache, work) for name, cache in caches.items()}
    timings["priors_s"] = time.perf_counter() - t0
    plan = ll.plan_from_args(args, "per-arm")  # each arm names its prior; the run folder names the arm
    runs_dir = work / "runs" / plan.tag()
    # Small budgets first (cheap, and where a prior should help most); within a budget the core contrast (reference,
    # shuffled, none) first, then the other priors, then the models without text, every seed of a tier before the
    # next: an experiment cut short still answers the main question with a spread.
    todo = [
        (a, b, s) for b in sorted(args.budgets) for tier in TIERS for s in args.seeds for a in args.arms if a in tier
    ]
    records: list[dict] = []
    timings["train_s"] = 0.0
    for i, (arm, budget, seed) in enumerate(todo):
        model, prior = ARMS[arm]
        ll.log(
            f"run {i + 1}/{len(todo)}: {arm}, {budget} images, seed {seed}; "
            f"{(time.perf_counter() - start) / 60:.1f} min"
        )
        manifest = ll.budget_manifest(train_dir, work, budget, seed)
        t0 = time.perf_counter()
        record = ll.train_and_eval(
            args,
            plan,
            model,
            budget,
            seed,
            manifest,
            caches[prior or "reference"],
            shifted_dir,
            runs_dir / f"{arm}_b{budget}_s{seed}",
        )
        records.append({"arm": arm, "prior": prior, **record})
        timings["train_s"] += time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - start
        ll.log(
            f"  {arm} @ {budget}: held-out {ll.pct(record['test']['avg']['f1'])}, "
            f"shifted {ll.pct(record['shifted']['avg']['f1'])}"
        )
        write_report(args, plan, records, data_info, priors, timings)
    timings["total_s"] = time.perf_counter() - start
    write_report(args, plan, records, data_info, priors, timings)
    ll.log(f"done in {timings['total_s'] / 60:.1f} min: {args.out_md}")
    return json.loads(Path(args.out_json).read_text())


if __name__ == "__main__":
    ll.cli(main)
