"""Thresholds for a new domain without labels: does `hiva_core adapt --priors` win back the F1 a fixed threshold loses?

A run's per-AU thresholds are chosen on validation rows of its training domain. On faces whose AUs come at other
rates (posed expressions: 1.8 BP4D AUs per face instead of 3.9) or that look otherwise (the shifted split), F1 at those
thresholds falls while the ranking (AUC) holds. `adapt --priors` estimates each AU's rate on the unlabelled faces by EM
on probabilities calibrated on the validation rows (hiva_core.priors) and moves the thresholds with it. Per run and
test set this bench scores:

* the run as trained: F1 at its validation thresholds, and at 0.5;
* `adapt --priors --no-batchnorm` on the test faces themselves (labels unused): F1 at the moved thresholds;
* `adapt --priors` (BatchNorm statistics re-estimated first, then the rates): F1 at its moved thresholds;
* the oracle: F1 at each AU's best threshold on the test faces (chosen with their labels: the ceiling of any
  threshold), and the rates: each AU's estimated rate against its true rate on the test faces and its training rate.

    python bench/bench_priors.py --runs runs/a runs/b --names s0,s1 \\
        --set held=synth_cli:1 --set posed=posed_all:1:1,2,4,6,7,10,12,15,17,23,24 --set shifted=shifted_all

A set is NAME=DATA[:FOLD[:AUS]] (FOLD empty: as eval chooses; AUS: the AUs scored, e.g. without AU14 for posed
faces, which have no AU14). The adapted runs are written under --work (resumable: what exists is reused).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.io import atomic_write  # noqa: E402

CONDITIONS = {
    "trained": "as trained, the validation thresholds",
    "priors": "adapt --priors --no-batchnorm on the test faces",
    "bn_priors": "adapt --priors (BatchNorm statistics, then the rates) on the test faces",
}


def parse_set(text: str) -> tuple[str, str, int | None, str | None]:
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise UserError(f"--set {text!r}: expected NAME=DATA[:FOLD[:AUS]]")
    data, _, tail = rest.partition(":")
    fold, _, aus = tail.partition(":")
    try:
        return name, data, int(fold) if fold else None, aus or None
    except ValueError:
        raise UserError(f"--set {text!r}: FOLD must be a number") from None


def summary(metrics: dict) -> dict:
    avg = metrics["avg"]
    return {
        "f1": round(100 * avg["f1"], 2),
        "f1_at_05": round(100 * avg.get("f1_at_05", avg["f1"]), 2),
        "auc": round(100 * avg["auc"], 2),
        "floor_f1": round(100 * avg["floor_f1"], 2),
        "per_au": {
            name: {"f1": round(100 * row["f1"], 1), "threshold": round(row["threshold"], 4)}
            for name, row in metrics["per_au"].items()
        },
    }


def measure(run: Path, name: str, set_spec: tuple, work: Path) -> dict:
    from hiva_core.adapt import run_adapt
    from hiva_core.evaluate import evaluate_run

    set_name, data, fold, aus = set_spec
    out = {"run": str(run), "set": set_name, "data": data, "fold": fold, "aus": aus}
    done = work / f"{name}_{set_name}.json"
    if done.is_file():
        return json.loads(done.read_text())
    scratch = work / f"{name}_{set_name}"
    scratch.mkdir(parents=True, exist_ok=True)
    # as trained; and each AU's best threshold on these very rows, chosen with their labels (a ceiling)
    trained = evaluate_run(run, data, fold=fold, aus=aus, save_thresholds=scratch / "oracle_thresholds.json")
    out["trained"] = summary(trained)
    out["oracle_f1"] = round(100 * trained["saved_thresholds"]["val_f1"]["avg"], 2)
    for cond, batchnorm in (("priors", False), ("bn_priors", True)):
        adapted = scratch / cond
        if not adapted.is_dir():
            run_adapt(run, adapted, data=data, fold=fold, batchnorm=batchnorm, priors=True, progress=False)
        metrics = evaluate_run(adapted, data, fold=fold, aus=aus)
        out[cond] = summary(metrics)
        per_au = json.loads((adapted / "thresholds.json").read_text())["priors"]["per_au"]
        out[cond]["rates"] = {  # the AUs scored: their true rate on these faces
            au: {
                "trained": round(row["rate"], 4),
                "estimated": round(row["estimated"], 4),
                "true": round(metrics["per_au"][au]["pos_rate"], 4),
            }
            for au, row in per_au.items()
            if row["estimated"] is not None and au in metrics["per_au"]
        }
        rates = out[cond]["rates"].values()
        out[cond]["rate_error"] = round(100 * float(np.mean([abs(r["estimated"] - r["true"]) for r in rates])), 2)
        out[cond]["training_rate_error"] = round(
            100 * float(np.mean([abs(r["trained"] - r["true"]) for r in rates])), 2
        )
    with atomic_write(done, "w") as fh:
        json.dump(out, fh, indent=1)
    return out


def table(records: list[dict]) -> str:
    lines = [
        "| run | test set | F1 at 0.5 | as trained (val thresholds) | adapt --priors | AdaBN + --priors | oracle "
        "thresholds | AUC | rate error: trained → estimated |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        t, p, b = r["trained"], r["priors"], r["bn_priors"]
        lines.append(
            f"| {r['name']} | {r['set']} | {t['f1_at_05']:.1f} | {t['f1']:.1f} | {p['f1']:.1f} | {b['f1']:.1f} | "
            f"{r['oracle_f1']:.1f} | {t['auc']:.1f} | {p['training_rate_error']:.1f} → {p['rate_error']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders (trained with validation rows)")
    ap.add_argument("--names", default=None, help="comma-separated names of the runs (default: folder names)")
    ap.add_argument("--set", action="append", required=True, help="NAME=DATA[:FOLD[:AUS]], repeatable")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "priors", help="adapted runs, resumable")
    ap.add_argument("--out-json", type=Path, default=REPO / "bench" / "results" / "priors.json")
    ap.add_argument("--out-md", type=Path, default=REPO / "bench" / "results" / "priors.md")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    try:
        names = args.names.split(",") if args.names else [r.name for r in args.runs]
        if len(names) != len(args.runs):
            raise UserError(f"--names gives {len(names)} names for {len(args.runs)} runs")
        sets = [parse_set(s) for s in args.set]
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        records = []
        for run, name in zip(args.runs, names, strict=True):
            for spec in sets:
                record = measure(run, name, spec, args.work)
                records.append({"name": name, **record})
                print(table(records[-1:]).splitlines()[-1], flush=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {
        "benchmark": "priors",
        "what": CONDITIONS,
        "command": "python bench/bench_priors.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "records": records,
    }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out_json, "w") as fh:
        json.dump(result, fh, indent=1)
    with atomic_write(args.out_md, "w") as fh:
        fh.write(table(records) + "\n")
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
