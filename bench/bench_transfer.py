"""SynthAU built for transfer: which factors of variation, and which training augmentation, help on faces unlike the
training renders? A leave-one-factor-out table.

Variants (each a SynthAU set rendered with `hiva_core synth --factors ...`, the same seed, identities and AU labels):
  full       every factor on (the default)            narrow     every factor off (SynthAU before format 2)
  -<factor>  every factor on but one (one per factor)
trained with the strong augmentation (`data.augment=strong`, the default), plus `full` and `narrow` with the other
setting (`basic`), so the table also reads augmentation on/off. `narrow` + `basic` is SynthAU as it was.

Every run is scored on four test sets: its own held-out identities (fold 1 of its set), the held-out identities of
`full` (the same people and labels, all factors on), the shifted split rendered with all factors (new identities,
stronger shapes, yaw up to ±40°, a harsh coloured key light, occluders, ...) and the shifted split with the narrow look
(new identities, pose and light only: none of the look any variant adds). Average F1 beside the all-positive floor.

Reuses bench/limited_labels.py (budget manifests, Plan, train_and_eval) and bench/zero_shot.py (the offline reference
text prior). Resumable from the work folder (default bench/work/transfer, git-ignored): renders, the prior and finished
runs are kept. Writes bench/results/transfer.json and .md after every run.

    python bench/bench_transfer.py [--n 960] [--size 96] [--epochs 6] [--n-shifted 400] [--threads 1]
        [--variants full,narrow,-pose,...] [--model hiva] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import limited_labels as ll  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.facs import au_label, parse_au_spec  # noqa: E402
from hiva_core.serialize import write_json  # noqa: E402
from hiva_core.synth.factors import FACTORS, factors_label, parse_factors  # noqa: E402

TEST_SETS = {
    "own": "held-out identities, own look",
    "full": "held-out identities, all factors",
    "shifted": "shifted split, all factors",
    "shifted_narrow": "shifted split, narrow look",
}


def variants(spec: str) -> list[tuple[str, str, str]]:
    """(name, factor SPEC, augmentation) of every run, in the order they run: the two ends first."""
    base = [("narrow+basic", "none", "basic"), ("full+strong", "all", "strong")]
    rest = [("full+basic", "all", "basic"), ("narrow+strong", "none", "strong")]
    rest += [(f"-{f}+strong", f"all,-{f}", "strong") for f in FACTORS]
    every = base + rest
    if spec == "all":
        return every
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    by_name: dict[str, tuple[str, str, str]] = {}
    for v in every:  # a short name (full, narrow, -pose) is its first variant: full+strong, narrow+basic, ...
        by_name.setdefault(v[0], v)
        by_name.setdefault(v[0].split("+")[0], v)
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise UserError(f"unknown variant(s) {', '.join(unknown)}; valid: {', '.join(v[0] for v in every)}")
    return list(dict.fromkeys(by_name[w] for w in wanted))


def render_set(args, work: Path, factors: str, shifted: bool = False) -> Path:
    """Render (or resume) one set; the seconds spent rendering it are kept in work/render_s.json."""
    spec = factors_label(parse_factors(factors))
    n = args.n_shifted if shifted else args.n
    t0 = time.perf_counter()
    folder = ll.synth_set(
        args, work / (("shifted_" if shifted else "synth_") + spec.replace(",", "_")), n, shifted, factors
    )
    spent = time.perf_counter() - t0
    if spent > 2:
        ll.log(f"rendered {n} faces ({spec}{', shifted' if shifted else ''}) in {spent / 60:.1f} min")
        times = render_times(work)
        times[folder.name] = times.get(folder.name, 0.0) + spent
        write_json(work / "render_s.json", times)
    return folder


def render_times(work: Path) -> dict[str, float]:
    path = work / "render_s.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def text_prior(args, work: Path) -> tuple[Path, dict]:
    """The offline reference prior (zero_shot.priors) unless --text-cache is given; limited_labels' facts about it."""
    if args.text_cache is None:
        import zero_shot

        args.reference_prior = True
        ns = argparse.Namespace(descriptions=args.descriptions, gate=False, shuffle_seed=0)
        args.text_cache = str(zero_shot.priors(ns, work, args.aus)[0])
    return ll.text_prior(args, work)


def evaluate(run: Path, name: str, data: str, args) -> dict:
    """Metrics of a run on one test set, cached in the run folder."""
    from hiva_core.evaluate import evaluate_run

    path = run / f"{name}_metrics.json"
    if not path.is_file():
        write_json(path, evaluate_run(run, data, batch_size=2 * args.batch_size, device=args.device))
    return json.loads(path.read_text())


def commands(args, factors: str, augment: str) -> list[str]:
    """The hiva_core commands that make one run by hand (the bench does the same through the library)."""
    spec = factors_label(parse_factors(factors))
    return [
        f"hiva_core synth --out synth --n {args.n} --size {args.size} --seed {args.synth_seed} --factors {spec} "
        f"--labels {args.labels}",
        f"hiva_core synth --out shifted --n {args.n_shifted} --size {args.size} --seed {args.synth_seed} "
        f"--factors all --shifted --labels {args.labels}",
        f"hiva_core train --text-cache CACHE --data synth --fold 1 --out runs/NAME --model {args.model} "
        f"--epochs {args.epochs} --batch-size {args.batch_size} --lr {args.lr} --image-size {args.size} "
        f"--set data.aus={','.join(map(str, args.aus))} --set data.augment={augment} "
        f"--set model.backbone={args.backbone} --set model.dim={args.dim}",
        "hiva_core eval --run runs/NAME --data shifted",
    ]


def pct(x) -> str:
    return ll.pct(x)


def write_report(args, records: list[dict], info: dict) -> None:
    result = {
        "benchmark": "transfer",
        "created_utc": ll.now_utc(),
        "command": " ".join(["python", "bench/bench_transfer.py", *args.argv]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out_json", "out_md", "argv", "reference_prior")},
        "info": info,
        "environment": ll.environment(),
        "runs": records,
    }
    write_json(args.out_json, result)
    floors = {s: next((r["tests"][s]["avg"]["floor_f1"] for r in records if s in r["tests"]), None) for s in TEST_SETS}
    n = {s: next((r["tests"][s]["n"] for r in records if s in r["tests"]), 0) for s in TEST_SETS}
    md = [
        "# SynthAU built for transfer: leave one factor out",
        "",
        f"Scale (scaled down for a shared 2-core CPU): {args.n} renders per variant at {args.size} px "
        f"({args.n * 2 // 3} training images: identity folds 2-3; fold 1 held out), {args.n_shifted} shifted faces "
        f"per look, {args.model} on {args.backbone}{' (ImageNet weights)' if args.backbone != 'tiny' else ''}, "
        f"{args.epochs} epochs, batch {args.batch_size}, AdamW lr {args.lr:g}, "
        f"{', '.join(au_label(a) for a in args.aus)}, reference text prior, one seed, torch threads "
        f"{args.threads or 'default'}. The issue's goal (shifted >= 65 avg F1, held-out >= 85) is for 4,000 renders "
        "at 128 px and 10 epochs; see the README for that command.",
        "",
        "Average F1 x100 at threshold 0.5 (average AUC x100 in brackets) on: "
        + "; ".join(f"**{k}** = {v} ({n[k]} faces)" for k, v in TEST_SETS.items())
        + ". The AUC needs no threshold: it reads how well a model ranks faces even where F1 at 0.5 is near the "
        "floor (AUC 50 is chance).",
        "",
        "| variant | factors | augment | " + " | ".join(TEST_SETS) + " | train min |",
        "|---|---|---|" + "---:|" * (len(TEST_SETS) + 1),
    ]
    for r in records:
        cells = [
            f"{pct(r['tests'][s]['avg']['f1'])} ({pct(r['tests'][s]['avg'].get('auc'))})" if s in r["tests"] else "·"
            for s in TEST_SETS
        ]
        md.append(
            f"| {r['variant']} | {r['factors']} | {r['augment']} | " + " | ".join(cells) + f" | {r['train_min']} |"
        )
    md.append("| all-positive floor | | | " + " | ".join(pct(floors[s]) for s in TEST_SETS) + " | |")
    by = {r["variant"]: r for r in records}
    if "full+strong" in by:
        ref = by["full+strong"]["tests"]
        md += [
            "",
            "Change against full+strong, F1 (AUC) points; for a factor left out, negative means the factor helped:",
            "",
        ]
        md += ["| variant | " + " | ".join(TEST_SETS) + " |", "|---|" + "---:|" * len(TEST_SETS)]
        for r in records:
            if r["variant"] == "full+strong":
                continue
            d = [
                _delta_cell(r["tests"][s]["avg"], ref[s]["avg"]) if s in r["tests"] and s in ref else "·"
                for s in TEST_SETS
            ]
            md.append(f"| {r['variant']} | " + " | ".join(d) + " |")
    aus = [au_label(a) for a in args.aus]
    md += ["", "Per-AU F1 on the shifted split (all factors):", "", "| variant | " + " | ".join(aus) + " |"]
    md.append("|---|" + "---:|" * len(aus))
    for r in records:
        if "shifted" in r["tests"]:
            per = r["tests"]["shifted"]["per_au"]
            md.append(f"| {r['variant']} | " + " | ".join(pct(per[a]["f1"]) for a in aus) + " |")
    md += [
        "",
        "- Text prior: "
        + (
            "the reference descriptions (augtext generate --backend reference)"
            if getattr(args, "reference_prior", False)
            else f"the cache {args.text_cache}"
        )
        + f", {info['text']['embed_model']} ({info['text']['dim']}-d), fingerprint {info['text']['fingerprint'][:12]}.",
        f"- Wall time: renders {info['render_s'] / 60:.1f} min, training and evaluation "
        f"{sum(r['train_min'] or 0 for r in records):.1f} min (as measured when each ran; cached steps cost ~0); "
        f"machine: {result['environment']['cpus']} CPUs, load average at the end "
        f"{result['environment']['load_avg_1m']}.",
        f"- Reproduce: `{result['command']}` (work folder {_shown(args.work)}); one run by hand:",
        "",
        "```bash",
        *commands(args, "all", "strong"),
        "```",
        "",
    ]
    Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
    with ll.atomic_write(Path(args.out_md), "w") as fh:
        fh.write("\n".join(md))


def _shown(path: str) -> str:
    """A path inside the repository as a relative one."""
    p = Path(path).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)


def _delta_cell(a: dict, b: dict) -> str:
    """'F1 change (AUC change)' in points."""

    def one(key: str) -> str:
        return "·" if a.get(key) is None or b.get(key) is None else f"{100 * (a[key] - b[key]):+.1f}"

    return f"{one('f1')} ({one('auc')})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="all", help="all, or names: full,narrow,-pose,full+basic,...")
    ap.add_argument("--n", type=int, default=960, help="renders per variant (2/3 train, 1/3 held-out identities)")
    ap.add_argument("--n-shifted", type=int, default=400, help="shifted faces per look")
    ap.add_argument("--size", type=int, default=96, help="render and training size in pixels")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--model", default="hiva")
    ap.add_argument("--backbone", default="mobilenetv2", help="mobilenetv2 (offline ImageNet weights) or tiny")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--aus", default="bp4d")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--num-workers", type=int, default=1, help="DataLoader workers")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 on a shared machine)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--synth-seed", type=int, default=0)
    ap.add_argument("--labels", default="bp4d", help=ll.LABELS_HELP)
    ap.add_argument("--render-workers", type=int, default=1)
    ap.add_argument("--text-cache", default=None, help="an embedded augtext cache (default: the reference prior)")
    ap.add_argument("--descriptions", type=int, default=8, help="reference descriptions per AU and style")
    ap.add_argument("--embed-model", default=None)
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "transfer"))
    ap.add_argument("--out-json", default=str(REPO / "bench" / "results" / "transfer.json"))
    ap.add_argument("--out-md", default=str(REPO / "bench" / "results" / "transfer.md"))
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.aus = parse_au_spec(args.aus)
    # limited_labels' names for the same settings (its Plan and synth_set read them)
    args.render_size = args.image_size = args.size
    args.pretrained, args.backbone_weights = args.backbone != "tiny", None
    args.align_weight, args.min_steps, args.extra = 0.1, 0, []
    if args.n < 24 or args.n_shifted < 1 or args.epochs < 1:
        raise UserError("--n must be at least 24 (three identities), --n-shifted and --epochs at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    plan_of = variants(args.variants)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shifted = {
        "shifted": render_set(args, work, "all", shifted=True),
        "shifted_narrow": render_set(args, work, "none", shifted=True),
    }
    cache, text_info = text_prior(args, work)
    info = {"render_s": 0.0, "text": text_info}
    full_set = render_set(args, work, "all")
    full_manifest = _manifest(full_set, work, args.seed)  # the "full" test set
    used = {shifted["shifted"].name, shifted["shifted_narrow"].name, full_set.name}
    records: list[dict] = []
    for i, (name, factors, augment) in enumerate(plan_of):
        synth = render_set(args, work, factors)
        used.add(synth.name)
        manifest = _manifest(synth, work, args.seed)
        plan = dataclasses.replace(ll.plan_from_args(args, text_info["fingerprint"]), extra=[f"data.augment={augment}"])
        run = work / "runs" / f"{name}_{plan.tag()}_s{args.seed}"  # the seed is not part of the plan
        ll.log(f"run {i + 1}/{len(plan_of)}: {name} (factors {factors}, augment {augment})")
        rec = ll.train_and_eval(
            args, plan, args.model, _train_count(synth), args.seed, manifest, cache, shifted["shifted"], run
        )
        tests = {"own": rec["test"], "shifted": rec["shifted"]}
        tests["shifted_narrow"] = evaluate(run, "shifted_narrow", str(shifted["shifted_narrow"]), args)
        tests["full"] = evaluate(run, "full_heldout", str(full_manifest), args)
        records.append(
            {
                "variant": name,
                "factors": factors_label(parse_factors(factors)),
                "augment": augment,
                "run": str(run),
                "train_min": round(rec["train_s"] / 60, 1) if rec.get("train_s") else None,
                "train_images": rec["budget"],
                "epochs": rec["epochs"],
                "tests": tests,
                "commands": commands(args, factors, augment),
            }
        )
        ll.log(
            f"  {name}: "
            + ", ".join(f"{s} {pct(tests[s]['avg']['f1'])}" for s in TEST_SETS if s in tests)
            + f" (floor shifted {pct(tests['shifted']['avg']['floor_f1'])})"
        )
        info["render_s"] = sum(t for name, t in render_times(work).items() if name in used)
        write_report(args, records, info)
    print(Path(args.out_md).read_text())
    return json.loads(Path(args.out_json).read_text())


def _train_count(synth: Path) -> int:
    """Images in the training folds (2 and 3) of a SynthAU set: the whole training budget."""
    import pandas as pd

    df = pd.read_csv(synth / "manifest.csv", usecols=["fold"])
    return int((df["fold"] != ll.TEST_FOLD).sum())


def _manifest(synth: Path, work: Path, seed: int) -> Path:
    """limited_labels' train/test manifest of a whole set (every training image), named after the set."""
    manifest = ll.budget_manifest(synth, work, _train_count(synth), seed)
    return manifest.rename(manifest.with_name(f"{synth.name}_s{seed}.csv"))


if __name__ == "__main__":
    ll.cli(main)
