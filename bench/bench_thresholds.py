"""Benchmark: per-AU thresholds chosen on a validation slice, with and without the check on other subjects.

Input: the per-face tables of `hiva_core eval --per-face` (AU<n>_prob and AU<n>_label per face, the `subject`
column) on faces the run never trained on. Each repeat draws whole subjects as a validation slice of about
`--val` frames, chooses thresholds on it three ways, and scores the remaining faces:

- `0.5`: every AU at 0.5;
- `chosen`: each AU at the threshold that maximises F1 on the slice (metrics.choose_thresholds, 5 frames of each
  class), as runs stored it before the check;
- `checked`: the same, kept only where one chosen on half of the slice's subjects beats 0.5 on the other half
  (evaluate.threshold_record, metrics.threshold_gains): what `train` and `eval --save-thresholds` store now.

Reported per rule (mean and spread over the repeats): average F1, precision and false-alarm rate (FP / negatives,
averaged over AUs), the share of AUs whose threshold is not 0.5, and how often a lip-corner or lip AU (AU15, AU23,
AU24) is called on a smile without it (AU12 present, the AU absent). With `--thresholds RUN/thresholds.json` each
table is also scored at those stored thresholds (no slice: the run's own choice).

    python bench/bench_thresholds.py faces.csv [more.csv ...] [--val 120 400] [--repeats 40] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hiva_core.evaluate import threshold_record  # noqa: E402
from hiva_core.metrics import MIN_THRESHOLD_FRAMES, choose_thresholds  # noqa: E402

RULES = ("0.5", "chosen", "checked")
ON_SMILES = (15, 23, 24)  # AUs a smile (AU12) rarely carries, whose false calls a reader sees at once


def read_faces(path: Path) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """AU codes, probabilities (N, A), labels (N, A; NaN unknown) and subjects of an `eval --per-face` table."""
    table = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    aus = [int(c[2:-5]) for c in table.columns if c.startswith("AU") and c.endswith("_prob")]
    probs = table[[f"AU{a}_prob" for a in aus]].to_numpy(np.float64)
    labels = table[[f"AU{a}_label" for a in aus]].to_numpy(np.float64)
    return aus, probs, labels, table["subject"].astype(str).to_numpy()


def scores(probs: np.ndarray, labels: np.ndarray, aus: list[int], thresholds: np.ndarray) -> dict[str, float]:
    """Average F1, precision and false-alarm rate over the AUs with both classes, and false calls on smiles."""
    f1s, precisions, alarms = [], [], []
    calls = probs >= thresholds
    for j in range(len(aus)):
        known = ~np.isnan(labels[:, j])
        y, c = labels[known, j] > 0.5, calls[known, j]
        if y.all() or not y.any():
            continue
        tp, fp, fn = int((c & y).sum()), int((c & ~y).sum()), int((~c & y).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn))
        precisions.append(tp / (tp + fp) if tp + fp else 0.0)
        alarms.append(fp / int((~y).sum()))
    smiles = []
    if 12 in aus:
        smile = labels[:, aus.index(12)] > 0.5
        for au in (a for a in ON_SMILES if a in aus):
            without = smile & (labels[:, aus.index(au)] < 0.5)
            if without.any():
                smiles.append(float(calls[without, aus.index(au)].mean()))
    return {
        "f1": float(np.mean(f1s)),
        "precision": float(np.mean(precisions)),
        "false_alarms": float(np.mean(alarms)),
        "on_smiles": float(np.mean(smiles)) if smiles else float("nan"),
    }


def rule_thresholds(probs, labels, subjects, aus) -> dict[str, np.ndarray]:
    mask = ~np.isnan(labels)
    chosen = choose_thresholds(probs, labels, mask, aus, min_each=MIN_THRESHOLD_FRAMES)
    record = threshold_record({"probs": probs, "labels": labels, "mask": mask}, aus, "slice", list(subjects))
    return {
        "0.5": np.full(len(aus), 0.5),
        "chosen": np.array([chosen[f"AU{a}"] for a in aus]),
        "checked": np.array([record["thresholds"][f"AU{a}"] for a in aus]),
    }


def bench(path: Path, val: int, repeats: int) -> dict:
    aus, probs, labels, subjects = read_faces(path)
    names = np.unique(subjects)
    per_subject = len(subjects) / len(names)
    take = max(2, round(val / per_subject))
    rng = np.random.default_rng(0)
    rows: dict[str, list[dict]] = {rule: [] for rule in RULES}
    for _ in range(repeats):
        in_slice = np.isin(subjects, rng.permutation(names)[:take])
        rest = ~in_slice
        for rule, t in rule_thresholds(probs[in_slice], labels[in_slice], subjects[in_slice], aus).items():
            rows[rule].append(scores(probs[rest], labels[rest], aus, t) | {"not_05": float(np.mean(t != 0.5))})
    out = {"faces": str(path), "aus": aus, "slice_subjects": take, "slice_frames": round(take * per_subject)}
    for rule, runs in rows.items():
        out[rule] = {k: float(np.nanmean([r[k] for r in runs])) for k in runs[0]}
        out[rule]["f1_spread"] = float(np.std([r["f1"] for r in runs]))
    return out


def markdown(results: list[dict]) -> str:
    lines = [
        "| faces | slice | rule | F1 | precision | false alarms | AU15/23/24 on smiles | AUs not at 0.5 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for rule in RULES:
            s = r[rule]
            lines.append(
                f"| {Path(r['faces']).name} | {r['slice_frames']} | {rule} | {100 * s['f1']:.1f} ± "
                f"{100 * s['f1_spread']:.1f} | {100 * s['precision']:.1f} | {100 * s['false_alarms']:.1f} | "
                f"{100 * s['on_smiles']:.1f} | {100 * s['not_05']:.0f} % |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("faces", nargs="+", type=Path, help="`hiva_core eval --per-face` tables")
    parser.add_argument("--val", type=int, nargs="+", default=[120, 400], help="validation slice sizes (frames)")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "thresholds.json")
    args = parser.parse_args()
    results = [bench(path, val, args.repeats) for path in args.faces for val in args.val]
    table = markdown(results)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "table": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
