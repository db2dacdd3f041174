"""AU detection metrics as the field reports them: per-AU F1 pooled over a fold, AUC-ROC, the all-positive floor.

Conventions (DESIGN.md "Metrics"):
- F1 per AU = 2·TP / (2·TP + FP + FN) with TP/FP/FN pooled over every frame of the split whose label is known
  (mask); a prediction is positive when its probability is >= the threshold (0.5).
- Zero division: when 2·TP + FP + FN = 0 (no positive label and no positive prediction) F1 is 0.0, as
  scikit-learn's `f1_score(..., zero_division=0)` and the AU literature's evaluation scripts do. The average F1 is
  the plain mean over AUs, so such an AU pulls the average down; the table says so by its positive rate of 0.
- An AU without any known label in the split (n = 0: every label unknown) has no score at all: its F1, precision,
  recall, positive rate and floor are NaN ("–" in tables, null in JSON), it is left out of every average, it is
  listed under `unlabelled`, and the table ends with a note naming it. (Counting it as F1 0 would decide the
  average of DISFA/GFT subsets by which AUs happen to be coded.)
- AUC-ROC per AU (Mann-Whitney statistic, ties count one half); undefined (NaN, printed "–") when the split has
  only one class for that AU. The average AUC is the mean over the AUs where it is defined (NaN if none).
- The all-positive floor is the F1 of predicting every frame positive: 2P / (N + P) for P positives among N known
  labels; it is what a model gets without looking at the face, and it flatters frequent AUs.
All values are fractions in [0, 1]; `format_table` prints them x100 with one decimal, as papers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

NAN_TEXT = "–"  # what a table shows for an undefined value (AUC with one class)


def _label(code: int) -> str:
    return f"AU{int(code)}"


def f1_from_counts(tp: float, fp: float, fn: float) -> float:
    """F1 = 2TP / (2TP + FP + FN), 0.0 when the denominator is 0 (see the module docstring)."""
    denom = 2.0 * tp + fp + fn
    return float(2.0 * tp / denom) if denom > 0 else 0.0


def auc_roc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve for one AU (1-D scores, 0/1 labels); NaN when only one class is present.

    Uses the rank-sum (Mann-Whitney U) identity with average ranks for ties, which equals the trapezoidal ROC area.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Average rank (1-based) for each run of equal scores: run j spans sorted positions [starts[j], ends[j]).
    new_run = np.concatenate([[True], np.diff(sorted_scores) != 0])
    starts = np.flatnonzero(new_run)
    ends = np.concatenate([starts[1:], [scores.size]])
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(new_run) - 1]
    rank_sum = ranks[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _counts(pred: np.ndarray, y: np.ndarray) -> tuple[int, int, int, int]:
    """TP, FP, FN, TN of boolean predictions against boolean labels."""
    return int(np.sum(pred & y)), int(np.sum(pred & ~y)), int(np.sum(~pred & y)), int(np.sum(~pred & ~y))


MIN_THRESHOLD_FRAMES = 5  # of each class, among the known labels, for a threshold to be chosen (threshold_record)


def _known(labels: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    known = ~np.isnan(labels)
    return known if mask is None else known & np.asarray(mask, dtype=bool)


def class_counts(labels: np.ndarray, mask: np.ndarray | None, aus: Sequence[int]) -> dict[str, tuple[int, int]]:
    """Per AU, (positive, negative) frames among the known labels (mask, and not NaN): `{"AU1": (p, n), ...}`."""
    labels = np.asarray(labels, dtype=np.float64)
    known = _known(labels, mask)
    pos = ((labels > 0.5) & known).sum(axis=0)
    return {_label(code): (int(pos[j]), int(known[:, j].sum() - pos[j])) for j, code in enumerate(aus)}


def too_few_to_choose(
    counts: Mapping[str, tuple[int, int]], least: int = MIN_THRESHOLD_FRAMES
) -> dict[str, tuple[int, int]]:
    """The AUs of `counts` (class_counts) without a positive frame or with fewer than `least` positive or negative
    frames, with their counts: the AUs that choose_thresholds(min_each=least) leaves at 0.5."""
    return {name: (pos, neg) for name, (pos, neg) in counts.items() if pos == 0 or min(pos, neg) < least}


def choose_thresholds(
    probs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None, aus: Sequence[int], min_each: int = 0
) -> dict:
    """Per AU, the threshold that maximises F1 on these (validation) rows: `{"AU1": t, ...}`.

    Every cut between two distinct probabilities is tried; the threshold is the midpoint of the cut (the halfway
    point between the lowest probability predicted positive and the next one below it, or half the lowest
    probability when every frame is positive), so that it does not sit on one frame's score. Of equal F1s the highest
    threshold wins. An AU without a positive (or any known) label keeps 0.5: F1 has nothing to choose from; so does
    one with fewer than `min_each` positive or negative known frames (too_few_to_choose): a cut fitted to a handful
    of frames is noise (on 8 frames one AU's threshold fell to 0.013 and called the AU on almost every face)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    known = _known(labels, mask)
    few = too_few_to_choose(class_counts(labels, mask, aus), min_each)
    out = {}
    for j, code in enumerate(aus):
        p, y = probs[known[:, j], j], labels[known[:, j], j] > 0.5
        if _label(code) in few:
            out[_label(code)] = 0.5
            continue
        order = np.argsort(-p, kind="mergesort")
        ps, ys = p[order], y[order]
        f1 = 2.0 * np.cumsum(ys) / (y.sum() + np.arange(1, len(ps) + 1))  # top-k predicted positive
        f1[np.r_[ps[:-1] == ps[1:], False]] = -1.0  # a cut must fall between distinct probabilities
        i = int(np.argmax(f1))
        below = ps[i + 1] if i + 1 < len(ps) else 0.0
        out[_label(code)] = float((ps[i] + below) / 2.0)
    return out


CHECK_SPLITS = 3  # random halvings of the rows that threshold_gains scores a choice on
MIN_GROUPS = 4  # subjects for threshold_gains to halve the rows by subject (fewer: by frame)


def threshold_gains(
    probs: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray | None,
    aus: Sequence[int],
    groups: Sequence | None = None,
    min_each: int = 0,
) -> dict[str, float]:
    """Per AU, the F1 that choosing its threshold gains over 0.5 on rows it was not chosen on: the rows' groups
    (subjects; each row its own group when None or fewer than MIN_GROUPS) are split into two halves at random,
    thresholds are chosen on each half (choose_thresholds, `min_each`) and scored on the other, and the F1 there
    minus the F1 at 0.5 there is averaged over both halves of CHECK_SPLITS splits (fixed seed: the same rows give
    the same gains).

    A threshold that maximises F1 on the rows it is chosen on always beats 0.5 there; on a validation slice of a
    few hundred frames much of that is the slice's noise. A gain of 0 or less says choosing does not pay on these
    rows (threshold_record then keeps 0.5); NaN when no half had the frames to choose on (too_few_to_choose)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    known = _known(labels, mask)
    groups = np.arange(len(probs)) if groups is None else np.asarray(groups, dtype=object)
    if len(set(groups.tolist())) < MIN_GROUPS:  # a few subjects do not halve: frames do
        groups = np.arange(len(probs))
    names = np.array(sorted(set(groups.tolist()), key=str), dtype=object)
    rng = np.random.default_rng(0)
    gains, checked = np.zeros(len(aus)), np.zeros(len(aus), dtype=bool)
    for _ in range(CHECK_SPLITS):
        first = set(rng.permutation(names)[: len(names) // 2].tolist())
        in_first = np.array([g in first for g in groups], dtype=bool)
        for fit in (in_first, ~in_first):
            chosen = choose_thresholds(probs[fit], labels[fit], known[fit], aus, min_each=min_each)
            few = too_few_to_choose(class_counts(labels[fit], known[fit], aus), min_each)
            score = ~fit
            for j, code in enumerate(aus):
                p, y = probs[score & known[:, j], j], labels[score & known[:, j], j] > 0.5
                at = f1_from_counts(*_counts(p >= chosen[_label(code)], y)[:3])
                gains[j] += at - f1_from_counts(*_counts(p >= 0.5, y)[:3])
                checked[j] |= _label(code) not in few
    gains = np.where(checked, gains / (2 * CHECK_SPLITS), np.nan)
    return {_label(code): float(g) for code, g in zip(aus, gains, strict=True)}


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else float("nan")


def au_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray | None,
    aus: Sequence[int],
    threshold: float | Sequence[float] = 0.5,
) -> dict:
    """Per-AU and average F1 / AUC / positive rate / all-positive floor for one split.

    probs (N, A) in [0, 1]; labels (N, A) 0/1 (NaN = unknown); mask (N, A) bool, True where the label is known
    (None: known wherever the label is not NaN); threshold: one for every AU, or one per AU (a run's stored
    thresholds). Returns a JSON-ready dict:
    `{"aus": [...], "threshold", "n", "per_au": {"AU1": {"f1", "threshold", "auc", "precision", "recall",
    "pos_rate", "floor_f1", "tp", "fp", "fn", "tn", "n"}, ...}, "avg": {"f1", "auc", "pos_rate", "floor_f1"}}`;
    "threshold" is None when the AUs have different ones. When any AU's threshold is not 0.5, every AU and the
    average also get `f1_at_05`, the F1 at 0.5, so that a table shows both.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != labels.shape:
        raise ValueError(f"probs {probs.shape} and labels {labels.shape} must both be (N, A)")
    if len(aus) != probs.shape[1]:
        raise ValueError(f"{len(aus)} AU codes for {probs.shape[1]} columns")
    known = ~np.isnan(labels)
    if mask is not None:
        known &= np.asarray(mask, dtype=bool)
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(aus),))
    also_half = bool((thresholds != 0.5).any())
    per_au: dict[str, dict] = {}
    for j, code in enumerate(aus):
        keep = known[:, j]
        y = labels[keep, j] > 0.5
        p = probs[keep, j]
        tp, fp, fn, tn = _counts(p >= thresholds[j], y)
        n = int(y.size)
        pos = int(y.sum())
        per_au[_label(code)] = {
            "f1": f1_from_counts(tp, fp, fn),
            "threshold": float(thresholds[j]),
            "auc": auc_roc(p, y),
            "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
            "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
            "pos_rate": float(pos / n) if n else float("nan"),
            # Predicting every frame positive: TP = P, FP = N - P, FN = 0.
            "floor_f1": f1_from_counts(pos, n - pos, 0),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
            "n": n,
        }
        if also_half:
            per_au[_label(code)]["f1_at_05"] = f1_from_counts(*_counts(p >= 0.5, y)[:3])
        if n == 0:  # no known label: nothing to score, and nothing for the averages
            row = per_au[_label(code)]
            row.update({k: float("nan") for k in ("f1", "f1_at_05", "precision", "recall", "floor_f1") if k in row})
    rows = list(per_au.values())
    keys = ("f1", "f1_at_05", "auc", "pos_rate", "floor_f1") if also_half else ("f1", "auc", "pos_rate", "floor_f1")
    avg = {k: _nanmean([r[k] for r in rows]) for k in keys}  # NaN: left out
    return {
        "aus": [int(a) for a in aus],
        "threshold": _common(thresholds),
        "n": int(probs.shape[0]),
        "per_au": per_au,
        "avg": avg,
        "unlabelled": unlabelled(per_au),
    }


def _common(thresholds: np.ndarray) -> float | None:
    """The one threshold of every AU, or None when they differ."""
    values = set(thresholds.tolist()) or {0.5}
    return float(values.pop()) if len(values) == 1 else None


def unlabelled(per_au: Mapping[str, Mapping]) -> list[str]:
    """The AUs without any known label in a split (n = 0), left out of the averages."""
    return [name for name, row in per_au.items() if row.get("n") == 0]


def _unlabelled_note(names: Sequence[str], where: str = "this split") -> str:
    return f"\n\n– {', '.join(names)}: no known label in {where}; left out of the average." if names else ""


def never_present(per_au: Mapping[str, Mapping]) -> list[str]:
    """The AUs labelled in a split but never present there (every known label 0): their F1 is 0 whatever is called."""
    return [name for name, row in per_au.items() if row.get("n") and row.get("tp", 0) + row.get("fn", 0) == 0]


def _never_present_note(names: Sequence[str]) -> str:
    if not names:
        return ""
    return (
        f"\n\n{', '.join(names)}: never present in this split (every known label 0), so F1 0 whatever the run calls "
        "and AUC undefined; counted in the average F1 (--aus without them leaves them out)."
    )


def _pct(value: float) -> str:
    return NAN_TEXT if value is None or math.isnan(value) else f"{100.0 * value:.1f}"


def format_table(metrics: Mapping) -> str:
    """A markdown table to paste into a paper: one row per AU, then Avg; values x100, undefined AUC as "–".

    With per-AU thresholds (`f1_at_05` present) F1 is at those thresholds, followed by the threshold and F1 at 0.5."""
    avg = metrics["avg"]
    both = "f1_at_05" in avg
    middle = " Thr. | F1 at 0.5 |" if both else ""
    lines = [f"| AU | F1 |{middle} AUC | Pos. rate | Floor F1 |", "|---|" + "---:|" * (6 if both else 4)]

    def extra(row: Mapping) -> str:
        if not both:
            return ""
        threshold = f"{row['threshold']:.2f}" if row.get("threshold") is not None else ""
        return f" {threshold} | {_pct(row['f1_at_05'])} |"

    for name, row in metrics["per_au"].items():
        lines.append(
            f"| {name} | {_pct(row['f1'])} |{extra(row)} {_pct(row['auc'])} | {_pct(row['pos_rate'])} | "
            f"{_pct(row['floor_f1'])} |"
        )
    lines.append(
        f"| **Avg** | **{_pct(avg['f1'])}** |{extra(avg)} {_pct(avg['auc'])} | {_pct(avg['pos_rate'])} | "
        f"{_pct(avg['floor_f1'])} |"
    )
    per_au = metrics["per_au"]
    return "\n".join(lines) + _unlabelled_note(unlabelled(per_au)) + _never_present_note(never_present(per_au))


def aggregate_folds(fold_metrics: Mapping[str, Mapping]) -> dict:
    """Mean over folds: per AU and for the folds' averages, of F1, AUC, positive rate and floor F1. The figure to
    report is the mean of the per-AU means (`hiva_core.evaluate.fold_summary`'s `mean.avg`); `mean.avg` here is the
    mean of the folds' own averages, which differs when an AU is unknown in a fold.

    `fold_metrics` maps a fold name ("fold1") to that fold's `au_metrics` dict; every fold must have the same AUs.
    Returns `{"folds": {name: metrics}, "mean": {"aus", "per_au": {AU: {...}}, "avg": {...}}}`; means skip folds
    where a value is undefined (AUC with one class; every value of an AU without known labels in that fold).
    """
    if not fold_metrics:
        raise ValueError("no folds to aggregate")
    names = list(fold_metrics)
    first = fold_metrics[names[0]]
    au_names = list(first["per_au"])
    for name in names[1:]:
        if list(fold_metrics[name]["per_au"]) != au_names:
            raise ValueError(f"{name} has AUs {list(fold_metrics[name]['per_au'])}, {names[0]} has {au_names}")
    keys = ("f1", "auc", "pos_rate", "floor_f1")
    if any("f1_at_05" in fold_metrics[n]["avg"] for n in names):  # per-AU thresholds: F1 at 0.5 too
        keys = ("f1", "f1_at_05", "auc", "pos_rate", "floor_f1")
        fold_metrics = {n: _at_05_too(fold_metrics[n]) for n in names}
    per_au = {au: {k: _nanmean([fold_metrics[n]["per_au"][au][k] for n in names]) for k in keys} for au in au_names}
    # The average over folds is the mean of the per-fold averages (the paper's figure).
    avg = {k: _nanmean([fold_metrics[n]["avg"][k] for n in names]) for k in keys}
    return {
        "folds": {n: dict(fold_metrics[n]) for n in names},
        "mean": {"aus": list(first["aus"]), "per_au": per_au, "avg": avg},
    }


def _at_05_too(metrics: Mapping) -> dict:
    """A fold's metrics with `f1_at_05` (and each AU's `threshold`) as a fold scored at per-AU thresholds has them:
    a fold whose run keeps 0.5 for every AU was scored at 0.5, so its F1 is its F1 at 0.5. Every fold of one table
    then has the same columns and keys."""
    if "f1_at_05" in metrics["avg"]:
        return dict(metrics)
    per_au = {au: {**row, "threshold": 0.5, "f1_at_05": row["f1"]} for au, row in metrics["per_au"].items()}
    return {**metrics, "per_au": per_au, "avg": {**metrics["avg"], "f1_at_05": metrics["avg"]["f1"]}}


def format_folds_table(summary: Mapping) -> str:
    """Markdown table of F1 per AU and fold, the mean over folds, the mean AUC and the mean all-positive floor."""
    folds = summary["folds"]
    mean = summary["mean"]
    names = list(folds)
    both = "f1_at_05" in mean["avg"]
    header = "| AU | " + " | ".join(f"F1 {n}" for n in names) + " | F1 mean |" + (" F1 at 0.5 mean |" if both else "")
    lines = [header + " AUC mean | Floor F1 |", "|---|" + "---:|" * (len(names) + 3 + both)]

    def half(row: Mapping) -> str:
        return f" {_pct(row['f1_at_05'])} |" if both else ""

    for au, row in mean["per_au"].items():
        cells = [_pct(folds[n]["per_au"][au]["f1"]) for n in names]
        lines.append(
            f"| {au} | " + " | ".join(cells) + f" | {_pct(row['f1'])} |{half(row)} {_pct(row['auc'])} | "
            f"{_pct(row['floor_f1'])} |"
        )
    cells = [_pct(folds[n]["avg"]["f1"]) for n in names]
    avg = mean["avg"]
    lines.append(
        "| **Avg** | " + " | ".join(cells) + f" | **{_pct(avg['f1'])}** |{half(avg)} {_pct(avg['auc'])} | "
        f"{_pct(avg['floor_f1'])} |"
    )
    missing = [
        f"{au} ({', '.join(n for n in names if au in unlabelled(folds[n]['per_au']))})"
        for au in mean["per_au"]
        if any(au in unlabelled(folds[n]["per_au"]) for n in names)
    ]
    return "\n".join(lines) + _unlabelled_note(missing, "these folds")


def to_jsonable(obj):
    """NaN/inf -> None recursively, so that json.dump writes strict JSON (null for an undefined AUC)."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    return obj
