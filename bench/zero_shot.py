"""Zero-shot AUs on SynthAU: does hiva_open score AUs it never saw, from their descriptions alone?

Steps, each resumable from the work folder (default bench/work/zero_shot, git-ignored):
  1. render SynthAU (hiva_core.synth.run_synth): identity-exclusive folds, fold 1 = held-out identities (the test);
  2. the reference prior: `augtext generate --backend reference` for the training AUs and every unseen AU the
     reference set describes, embedded with the offline MiniLM; and its control, the same cache with every AU's
     descriptions handed to another AU (augtext.prior.shuffle_cache: architecture kept, meaning destroyed);
  3. train hiva_open on the training AUs (default the 12 of BP4D) with each prior, and hiva with the reference prior
     (the seen-AU yardstick);
  4. evaluate on the held-out identities with `--aus` = training AUs + unseen AUs (hiva_core.evaluate.evaluate_run):
     per-AU AUC and F1 at 0.5 beside the all-positive floor. hiva_open learns the expression's geometry from the
     renders' neutral landmarks (model.geometry) and scores an unseen AU along the measures its descriptions name
     (augtext.grounding; what each prior's descriptions name is in the results, `groundings`);
  5. with --groups, leave-group-out: hiva_open trained on every described SynthAU AU but one group, with each
     prior, for each group in turn; every AU of the held-out group is scored zero-shot.
Writes bench/results/zero_shot.json and .md. Unseen AUs without an offline description source are listed, not scored.

    python bench/zero_shot.py [--n 600] [--size 96] [--epochs 30] [--threads 1] [--groups default]

On a machine shared with other work use --threads 1: two torch threads beside another busy process ran an epoch
17x slower here (116 s instead of 6.8 s), the threads waiting on each other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from augtext.facs import au_label, parse_au_spec  # noqa: E402
from augtext.io import atomic_write  # noqa: E402
from hiva_core import run_folder  # noqa: E402
from hiva_core.checkpoint import load_run  # noqa: E402
from hiva_core.serialize import write_json  # noqa: E402

UNSEEN = "5,9,16,18,20,22,25,26,27,28,43"  # the SynthAU AUs outside BP4D
TEST_FOLD = 1
# Leave-group-out: every SynthAU AU is held out once. Each group takes AUs from several face regions, so that every
# held-out AU keeps related AUs in training (brows 1/2/4, eyes 5/6/7/43, nose and upper lip 9/10, lip corners
# 12/14/15/20, chin and lower lip 16/17, lips 18/22/23/24/28, mouth opening 25/26/27).
GROUPS = "1,6,9,14,16,22,26;2,7,10,15,18,24,27,43;4,5,12,17,20,23,25,28"


def log(message: str) -> None:
    print(f"[{datetime.now(timezone.utc).strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def render(args, work: Path) -> Path:
    from hiva_core.synth import run_synth

    folder = work / "synth"
    log(f"SynthAU: {args.n} faces at {args.size} px in {folder}")
    run_synth(
        folder,
        n=args.n,
        size=args.size,
        seed=args.synth_seed,
        workers=args.render_workers,
        labels=args.labels,
        progress=sys.stderr.isatty(),
    )
    return folder


def priors(args, work: Path, aus: list[int]) -> tuple[Path, Path, dict[int, int]]:
    """The reference cache (generated + embedded unless done) and its shuffled copy."""
    from augtext.cli import main as augtext_main
    from augtext.embed import embed_cache
    from augtext.prior import shuffle_cache

    reference, shuffled = work / "cache_reference", work / "cache_shuffled"
    if not (reference / "manifest.json").is_file():
        log(f"reference descriptions for {len(aus)} AUs -> {reference}")
        rc = augtext_main(
            [
                "generate",
                "--backend",
                "reference",
                "--au",
                ",".join(map(str, aus)),
                "--n",
                str(args.descriptions),
                "--cache",
                str(reference),
                "--gate" if args.gate else "--no-gate",
            ]
        )
        if rc not in (0, 1):  # 1: some AU/style kept fewer than --n (the gate's choice); still usable
            raise SystemExit(f"augtext generate failed (exit {rc})")
        embed_cache(reference, progress=False)
    holds = shuffle_cache(reference, shuffled, seed=args.shuffle_seed)
    return reference, shuffled, holds


def groundings(cache: Path, aus: list[int]) -> dict[str, str]:
    """What each AU's descriptions in `cache` say its face does (augtext.grounding), in words."""
    from augtext.grounding import describe, ground
    from augtext.prior import load_descriptions

    return {au_label(a): describe(ground(texts)) for a, texts in load_descriptions(cache, aus).items()}


def train_and_score(
    args, name: str, prior: str, cache: Path, synth: Path, run: Path, train_aus: list[int], unseen: list[int]
) -> dict:
    """Train `name` on `train_aus` with `cache` (unless done), evaluate on the held-out identities with the training
    AUs plus `unseen` (hiva_open only); per-AU AUC/F1 of both sets and their means."""
    from hiva_core.evaluate import evaluate_run

    train_s = train(args, name, cache, synth, run, train_aus)
    timing = run / "timing.json"
    if train_s is not None:
        write_json(timing, {"train_s": train_s})
    open_vocab = name == "hiva_open"
    metrics = evaluate_run(
        run,
        str(synth),
        fold=TEST_FOLD,
        aus=[*train_aus, *unseen] if open_vocab else train_aus,
        text_cache=cache if open_vocab else None,
    )
    seen, new = per_au(metrics, train_aus), per_au(metrics, unseen) if open_vocab else {}
    record = {
        "run": str(run),
        "geometry": bool(json.loads((run / run_folder.CONFIG).read_text())["model_config"].get("geometry")),
        "n": metrics["n"],
        "train_s": json.loads(timing.read_text())["train_s"] if timing.is_file() else None,
        "seen": seen,
        "unseen": new,
        "seen_mean": {k: mean(v[k] for v in seen.values()) for k in ("f1", "auc", "floor_f1")},
        "unseen_mean": {k: mean(v[k] for v in new.values()) for k in ("f1", "auc", "floor_f1")},
    }
    log(
        f"{run.name} ({prior}): seen avg F1 {record['seen_mean']['f1']:.3f}"
        + (f", unseen mean AUC {record['unseen_mean']['auc']:.3f}" if new else "")
    )
    return record


def group_train_aus(groups: list[list[int]], group: list[int]) -> list[int]:
    """Leave-group-out's training AUs when `group` is held out: every AU of the other groups, in SynthAU's order."""
    from hiva_core.synth import SYNTH_AUS

    held = {a for g in groups for a in g}
    return [a for a in SYNTH_AUS if a in held and a not in group]


def leave_group_out(args, groups: list[list[int]], reference: Path, shuffled: Path, synth: Path, work: Path) -> dict:
    """hiva_open trained on every described SynthAU AU but one group, for each group, with the reference and the
    shuffled prior; every AU of a group is scored zero-shot. Returns per-AU results (each AU held out once)."""
    per_au_rows: dict[str, dict] = {}
    runs = {}
    for i, group in enumerate(groups, 1):
        train_aus = group_train_aus(groups, group)
        for prior, cache in (("reference", reference), ("shuffled", shuffled)):
            key = f"g{i}_{prior}"
            runs[key] = train_and_score(
                args, "hiva_open", prior, cache, synth, work / "runs" / f"lgo_{key}{args.run_suffix}", train_aus, group
            )
        for a in group:
            r, c = runs[f"g{i}_reference"]["unseen"][au_label(a)], runs[f"g{i}_shuffled"]["unseen"][au_label(a)]
            per_au_rows[au_label(a)] = {
                "group": i,
                "n": r["n"],
                "pos_rate": r["pos_rate"],
                "floor_f1": r["floor_f1"],
                "auc_reference": r["auc"],
                "auc_shuffled": c["auc"],
                "f1_reference": r["f1"],
                "f1_shuffled": c["f1"],
            }
    return {
        "groups": groups,
        "runs": runs,
        "per_au": per_au_rows,
        "mean": {k: mean(v[k] for v in per_au_rows.values()) for k in next(iter(per_au_rows.values())) if k != "group"},
    }


def relatedness_ceiling(synth: Path, seen: list[int], unseen: list[int]) -> dict[str, dict]:
    """How well the seen AUs alone can tell each unseen AU, from SynthAU's true intensities (labels, no model): the
    held-out identities' AUC of (a) the single seen AU whose intensity ranks the unseen AU best (chosen on the test
    rows: optimistic), (b) a logistic regression on all seen AUs' intensities, fitted on the training identities.

    What co-occurrence alone gives: a model that scores an unseen AU from what it learned of the seen ones gets this
    much for free, through the AUs the expressions draw together; above it, it has seen the unseen AU's own look (or a
    seen AU that looks like it). Lead-in for reading the zero-shot AUCs (goal 0.75)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from hiva_core.metrics import auc_roc

    df = pd.read_csv(synth / "manifest.csv")
    test, fit = df[df["fold"] == TEST_FOLD], df[df["fold"] != TEST_FOLD]
    cols = [f"{au_label(a)}_int" for a in seen]
    out = {}
    for u in unseen:
        y_fit, y_test = fit[au_label(u)].to_numpy(), test[au_label(u)].to_numpy()
        single = {a: auc_roc(test[f"{au_label(a)}_int"].to_numpy(), y_test) for a in seen}
        best = max(single, key=lambda a: single[a])
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(fit[cols].to_numpy(), y_fit)
        out[au_label(u)] = {
            "best_seen": au_label(best),
            "auc_best_seen": single[best],
            "auc_fitted": auc_roc(model.decision_function(test[cols].to_numpy()), y_test),
        }
    return out


def text_means(cache: Path, aus: list[int]) -> np.ndarray:
    """(A, D) each AU's mean description embedding in `cache`, centred on the mean over `aus`, unit length: what two
    AUs' descriptions share beyond what all of them share (every AU's text is about a face)."""
    from augtext.prior import load_text_prior

    prior = load_text_prior(cache, aus=aus)
    unit = prior.embeddings / np.maximum(np.linalg.norm(prior.embeddings, axis=-1, keepdims=True), 1e-12)
    means = (unit * prior.mask[..., None]).sum(1) / prior.mask.sum(1, keepdims=True)
    centred = means - means.mean(0)
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def detector_transfer(run: Path, synth: Path, caches: dict[str, Path], seen: list[int], unseen: list[int]) -> dict:
    """A zero-shot baseline from a trained run's own detectors (hiva on the seen AUs): score an unseen AU with the
    detector of the seen AU whose descriptions are nearest to its own (text_means' cosine), under each prior, on the
    held-out identities; beside it, the best seen detector chosen with hindsight on the test rows (how far any
    mapping onto the seen detectors could go). The shuffled prior's nearest AU is a random one: its control."""
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader

    from hiva_core.data import build_dataset
    from hiva_core.evaluate import collect_probs
    from hiva_core.metrics import auc_roc

    loaded = load_run(run)
    if list(loaded.aus) != list(seen):
        raise SystemExit(f"{run} predicts {loaded.aus}, expected the seen AUs {seen}")
    data = build_dataset(
        str(synth), split="test", fold=TEST_FOLD, image_size=loaded.image_size, augment=False, aus=loaded.aus
    )
    with torch.no_grad():
        probs = collect_probs(
            lambda x: loaded.predict(x)["probs"], DataLoader(data, batch_size=64), loaded.device, len(seen)
        )["probs"]
    truth = pd.read_csv(synth / "manifest.csv").set_index("path").loc[[str(f) for f in data.files]]
    nearest = {prior: text_means(cache, [*unseen, *seen]) for prior, cache in caches.items()}
    out = {}
    for i, u in enumerate(unseen):
        y = truth[au_label(u)].to_numpy()
        aucs = [auc_roc(probs[:, j], y) for j in range(len(seen))]
        best = int(np.nanargmax(aucs))
        row = {"best_seen": au_label(seen[best]), "auc_best_seen": aucs[best]}
        for prior, means in nearest.items():
            j = int(np.argmax(means[len(unseen) :] @ means[i]))
            row[f"nearest_{prior}"] = au_label(seen[j])
            row[f"auc_nearest_{prior}"] = aucs[j]
        out[au_label(u)] = row
    return out


def train(args, name: str, cache: Path, synth: Path, run: Path, train_aus: list[int]) -> float | None:
    """Train one run unless it is finished; returns the training seconds (None when it was already done)."""
    from hiva_core.config import resolve_config
    from hiva_core.train import fit

    metrics = run / run_folder.METRICS
    if metrics.is_file() and json.loads(metrics.read_text()).get("last_epoch") == args.epochs:
        return None
    cli = {
        "text.cache": str(cache),
        "data.spec": str(synth),
        "data.fold": TEST_FOLD,
        "data.image_size": args.size,
        "data.num_workers": 0,
        "data.aus": ",".join(map(str, train_aus)),
        "data.val_fraction": 0,  # every training identity is trained on; F1 at 0.5 as before
        "model.name": name,
        "model.backbone": args.backbone,
        "model.pretrained": args.backbone == "mobilenetv2",
        "model.dim": args.dim,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "optim.lr": args.lr,
        "train.seed": args.seed,
        "train.eval_every": args.epochs,
        "train.progress": False,
        "train.tensorboard": False,
        "train.region_weight": args.region_weight,
    }
    log(f"train {name} with {cache.name} -> {run}")
    t0 = time.perf_counter()
    fit(resolve_config(cli=cli), run, resume=(run / run_folder.LAST).is_file())
    return time.perf_counter() - t0


def per_au(metrics: dict, aus: list[int]) -> dict[str, dict]:
    keep = ("auc", "f1", "floor_f1", "pos_rate", "n")
    return {au_label(a): {k: metrics["per_au"][au_label(a)].get(k) for k in keep} for a in aus}


def mean(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def markdown(result: dict) -> str:
    s, unseen = result["settings"], result["unseen_scored"]
    ref, shuf = result["runs"]["hiva_open_reference"], result["runs"]["hiva_open_shuffled"]
    lines = [
        f"Zero-shot AUs on SynthAU ({s['n']} renders at {s['size']} px, {s['backbone']}, d = {s['dim_used']}, "
        f"{s['epochs']} epochs, batch {s['batch_size']}, lr {s['lr']}, region loss weight "
        f"{s.get('region_weight', 0):g}; trained on {len(s['train_aus'])} AUs "
        f"({', '.join(au_label(a) for a in s['train_aus'])}), tested on the held-out identities (fold 1, "
        f"{ref['n']} images)). Prior: the reference descriptions; control: the same descriptions shuffled across "
        "AUs. "
        + (
            "hiva_open predicts the expression's geometry (model.geometry): an unseen AU is scored along the measures "
            "its descriptions name (last columns); an AU whose descriptions name none, by the cosine head."
            if ref.get("geometry")
            else "hiva_open without the geometry head: every unseen AU is scored by the cosine head."
        ),
        "",
        "| unseen AU | positives | all-positive floor F1 | AUC reference | AUC shuffled | F1 reference | F1 shuffled "
        "| its descriptions name | the shuffled ones name |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    named = result.get("groundings") or {}
    for a in unseen:
        r, c, k = ref["unseen"][au_label(a)], shuf["unseen"][au_label(a)], au_label(a)
        lines.append(
            f"| {k} | {round(r['pos_rate'] * r['n'])} | {100 * r['floor_f1']:.1f} | "
            f"{r['auc']:.3f} | {c['auc']:.3f} | {100 * r['f1']:.1f} | {100 * c['f1']:.1f} | "
            f"{named.get('reference', {}).get(k, '')} | {named.get('shuffled', {}).get(k, '')} |"
        )
    lines.append(
        f"| **mean** | | {100 * ref['unseen_mean']['floor_f1']:.1f} | {ref['unseen_mean']['auc']:.3f} | "
        f"{shuf['unseen_mean']['auc']:.3f} | {100 * ref['unseen_mean']['f1']:.1f} | "
        f"{100 * shuf['unseen_mean']['f1']:.1f} | | |"
    )
    lines += ["", "| seen AUs (trained on) | avg F1 | avg AUC | train s |", "|---|---:|---:|---:|"]
    names = {
        "hiva_open_reference": "hiva_open, reference prior",
        "hiva_open_shuffled": "hiva_open, shuffled prior",
        "hiva_reference": "hiva, reference prior",
    }
    for key, label in names.items():
        if key in result["runs"]:
            r = result["runs"][key]
            train_s = f"{r['train_s']:.0f}" if r.get("train_s") else "–"
            lines.append(f"| {label} | {100 * r['seen_mean']['f1']:.1f} | {r['seen_mean']['auc']:.3f} | {train_s} |")
    transfer = result.get("detector_transfer")
    if transfer:
        lines += [
            "",
            "A baseline from hiva's own detectors (the hiva run above): each unseen AU scored by the seen AU whose "
            "descriptions are nearest to its own (centred mean embeddings), under each prior; and the best seen "
            "detector chosen with hindsight on the test rows.",
            "",
            "| unseen AU | nearest (reference) | AUC | nearest (shuffled) | AUC | best seen detector | AUC |",
            "|---|---|---:|---|---:|---|---:|",
        ]
        for a, r in transfer.items():
            lines.append(
                f"| {a} | {r['nearest_reference']} | {r['auc_nearest_reference']:.3f} | {r['nearest_shuffled']} | "
                f"{r['auc_nearest_shuffled']:.3f} | {r['best_seen']} | {r['auc_best_seen']:.3f} |"
            )
        cols = ("auc_nearest_reference", "auc_nearest_shuffled", "auc_best_seen")
        means = [mean(r[c] for r in transfer.values()) for c in cols]
        lines.append(f"| **mean** | | {means[0]:.3f} | | {means[1]:.3f} | | {means[2]:.3f} |")
    lgo = result.get("leave_group_out")
    if lgo:
        lines += [
            "",
            f"Leave-group-out: hiva_open trained on every SynthAU AU but one group, {len(lgo['groups'])} groups "
            "rotated, so each AU below is scored once, never having been trained on; seen-AU F1 of each run in "
            f"{Path(s['out_json']).name}.",
            "",
            "| held-out AU | group | positives | floor F1 | AUC reference | AUC shuffled | F1 reference "
            "| F1 shuffled |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for a, r in sorted(lgo["per_au"].items(), key=lambda kv: int(kv[0][2:])):
            lines.append(
                f"| {a} | {r['group']} | {round(r['pos_rate'] * r['n'])} | {100 * r['floor_f1']:.1f} | "
                f"{r['auc_reference']:.3f} | {r['auc_shuffled']:.3f} | {100 * r['f1_reference']:.1f} | "
                f"{100 * r['f1_shuffled']:.1f} |"
            )
        m = lgo["mean"]
        lines.append(
            f"| **mean** | | | {100 * m['floor_f1']:.1f} | {m['auc_reference']:.3f} | {m['auc_shuffled']:.3f} | "
            f"{100 * m['f1_reference']:.1f} | {100 * m['f1_shuffled']:.1f} |"
        )
    if result.get("ceiling"):
        lines += ["", ceiling_markdown(result["ceiling"]).rstrip("\n")]
    if result["unseen_without_descriptions"]:
        lines += [
            "",
            "Not scored (no offline descriptions: the reference set does not cover them): "
            + ", ".join(au_label(a) for a in result["unseen_without_descriptions"])
            + ".",
        ]
    return "\n".join(lines) + "\n"


def ceiling_markdown(ceiling: dict) -> str:
    """The relatedness ceiling (relatedness_ceiling) of both settings as markdown tables."""
    lines = [
        "Relatedness ceiling (labels only, no model): how well the seen AUs' true intensities rank each unseen AU on"
        " the held-out identities — the best single seen AU (chosen on the test rows: optimistic) and a logistic "
        "regression on all of them fitted on the training identities. It is what co-occurrence with the seen AUs "
        "gives: a zero-shot score above it has seen something of the unseen AU's own appearance (or of a seen AU "
        "that looks like it).",
    ]
    for key, title in (("trained_on_train_aus", "trained on the training AUs"), ("leave_group_out", "leave-group-out")):
        rows = ceiling.get(key) or {}
        if not rows:
            continue
        lines += [
            "",
            f"| unseen AU ({title}) | best seen AU | its AUC | fitted on all seen AUs |",
            "|---|---|---:|---:|",
        ]
        for a, r in sorted(rows.items(), key=lambda kv: int(kv[0][2:])):
            lines.append(f"| {a} | {r['best_seen']} | {r['auc_best_seen']:.3f} | {r['auc_fitted']:.3f} |")
        lines.append(
            f"| **mean** | | {mean(r['auc_best_seen'] for r in rows.values()):.3f} | "
            f"{mean(r['auc_fitted'] for r in rows.values()):.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-aus", default="bp4d", help="AU spec of the training AUs")
    ap.add_argument("--unseen", default=UNSEEN, help="AU spec of the AUs scored zero-shot")
    ap.add_argument("--n", type=int, default=600, help="SynthAU renders (2/3 train, 1/3 test identities)")
    ap.add_argument("--size", type=int, default=96, help="render and training size in pixels")
    ap.add_argument(
        "--epochs", type=int, default=30, help="30: at 10 (120 steps) hiva_open had not yet told its AUs apart"
    )
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--backbone", default="mobilenetv2", help="mobilenetv2 (offline ImageNet weights) or tiny")
    ap.add_argument("--dim", type=int, default=None, help="model width (default: follows the backbone)")
    ap.add_argument("--descriptions", type=int, default=8, help="reference descriptions per AU and style")
    ap.add_argument("--no-hiva", action="store_true", help="skip the hiva yardstick run")
    ap.add_argument(
        "--ceiling-only",
        action="store_true",
        help="render (or reuse) the set and write only the relatedness ceiling (labels, no training): seconds",
    )
    ap.add_argument(
        "--groups",
        default=None,
        help=f"leave-group-out: ';'-separated AU groups, each held out once (e.g. {GROUPS!r}; 'default' for that)",
    )
    ap.add_argument(
        "--gate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="augtext's semantic gate on the reference descriptions (default on, as generate does)",
    )
    ap.add_argument(
        "--region-weight", type=float, default=0.0, help="train.region_weight: AU maps asked to look at the AU's region"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shuffle-seed", type=int, default=0)
    ap.add_argument("--synth-seed", type=int, default=0)
    ap.add_argument("--labels", default="bp4d", help="SynthAU --labels of the renders (default bp4d, as in the README)")
    ap.add_argument("--render-workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "zero_shot")
    ap.add_argument("--out-json", type=Path, default=REPO / "bench" / "results" / "zero_shot.json")
    ap.add_argument("--out-md", type=Path, default=REPO / "bench" / "results" / "zero_shot.md")
    args = ap.parse_args(argv)
    # a run's folder names what it was trained with; earlier runs keep theirs: 10 epochs (the default until 30),
    # no region loss, seed 0
    args.run_suffix = (
        (f"_e{args.epochs}" if args.epochs != 10 else "")
        + (f"_r{args.region_weight:g}" if args.region_weight else "")
        + (f"_s{args.seed}" if args.seed else "")
    )

    import torch

    from augtext.reference import reference_set
    from hiva_core.synth import SYNTH_AUS

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    train_aus = parse_au_spec(args.train_aus)
    described = {au for au, _ in reference_set()}
    unseen = [a for a in parse_au_spec(args.unseen) if a in SYNTH_AUS and a not in train_aus]
    scored = [a for a in unseen if a in described]
    missing = [a for a in unseen if a not in described]
    groups = []
    if args.groups:
        spec = GROUPS if args.groups == "default" else args.groups
        groups = [[a for a in parse_au_spec(g) if a in SYNTH_AUS and a in described] for g in spec.split(";")]
        groups = [g for g in groups if g]
    work = args.work
    synth = render(args, work)
    ceiling = {
        "trained_on_train_aus": relatedness_ceiling(synth, train_aus, scored),
        "leave_group_out": {
            k: v for g in groups for k, v in relatedness_ceiling(synth, group_train_aus(groups, g), g).items()
        },
    }
    settings = {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "train_aus": train_aus}
    if args.ceiling_only:
        out = {"settings": settings, "ceiling": ceiling}
        with atomic_write(args.out_json, "w") as fh:
            json.dump(out, fh, indent=2, allow_nan=True)
        text = ceiling_markdown(ceiling)
        with atomic_write(args.out_md, "w") as fh:
            fh.write(text)
        print(text)
        return out
    in_prior = sorted({*train_aus, *scored, *(a for g in groups for a in g)})
    reference, shuffled, holds = priors(args, work, in_prior)

    result = {
        "settings": settings,
        "unseen_scored": scored,
        "unseen_without_descriptions": missing,
        "shuffled_holds": {au_label(a): au_label(b) for a, b in holds.items()},
        "groundings": {"reference": groundings(reference, scored), "shuffled": groundings(shuffled, scored)},
        "ceiling": ceiling,
        "runs": {},
    }
    plans = [("hiva_open", "reference", reference), ("hiva_open", "shuffled", shuffled)]
    if not args.no_hiva:
        plans.append(("hiva", "reference", reference))
    for name, prior, cache in plans:
        result["runs"][f"{name}_{prior}"] = train_and_score(
            args, name, prior, cache, synth, work / "runs" / f"{name}_{prior}{args.run_suffix}", train_aus, scored
        )
    if not args.no_hiva:
        caches = {"reference": reference, "shuffled": shuffled}
        run = work / "runs" / f"hiva_reference{args.run_suffix}"
        result["detector_transfer"] = detector_transfer(run, synth, caches, train_aus, scored)
    if groups:
        result["leave_group_out"] = leave_group_out(args, groups, reference, shuffled, synth, work)
    config = json.loads((work / "runs" / f"hiva_open_reference{args.run_suffix}" / run_folder.CONFIG).read_text())
    result["settings"]["dim_used"] = config["model_config"]["dim"]
    result["environment"] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "seconds": time.perf_counter() - start,
    }
    with atomic_write(args.out_json, "w") as fh:
        json.dump(result, fh, indent=2, allow_nan=True)
    with atomic_write(args.out_md, "w") as fh:
        fh.write(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
