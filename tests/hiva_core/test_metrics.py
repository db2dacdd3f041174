from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hiva_core.metrics import (
    aggregate_folds,
    au_metrics,
    auc_roc,
    f1_from_counts,
    format_folds_table,
    format_table,
    to_jsonable,
)

NAN = float("nan")
# AU1: TP 2 (rows 0, 4), FP 1 (row 2), FN 1 (row 1), TN 2. AU2: no positives, last label unknown.
PROBS = np.array([[0.9, 0.1], [0.4, 0.2], [0.6, 0.3], [0.1, 0.1], [0.7, 0.4], [0.2, 0.9]])
LABELS = np.array([[1, 0], [1, 0], [0, 0], [0, 0], [1, 0], [0, NAN]])


def test_hand_computed_values():
    m = au_metrics(PROBS, LABELS, None, [1, 2])
    au1, au2 = m["per_au"]["AU1"], m["per_au"]["AU2"]
    assert (au1["tp"], au1["fp"], au1["fn"], au1["tn"], au1["n"]) == (2, 1, 1, 2, 6)
    assert au1["f1"] == pytest.approx(2 / 3)  # 2·2 / (2·2 + 1 + 1)
    assert au1["auc"] == pytest.approx(8 / 9)  # 8 of the 9 positive/negative pairs are ordered right
    assert au1["pos_rate"] == pytest.approx(0.5)
    assert au1["floor_f1"] == pytest.approx(2 / 3)  # all positive: TP 3, FP 3 -> 6 / 9
    # AU2: the NaN label is left out (n = 5); no positive and no positive prediction -> F1 0 by definition.
    assert au2["n"] == 5 and au2["fp"] == 0
    assert au2["f1"] == 0.0 and au2["floor_f1"] == 0.0 and au2["pos_rate"] == 0.0
    assert math.isnan(au2["auc"])
    assert m["avg"]["f1"] == pytest.approx(1 / 3)
    assert m["avg"]["auc"] == pytest.approx(8 / 9)  # the mean over AUs where AUC is defined
    assert m["aus"] == [1, 2] and m["n"] == 6


def test_mask_excludes_labels():
    mask = np.ones_like(LABELS, dtype=bool)
    mask[1, 0] = False  # AU1's only false negative becomes unknown
    au1 = au_metrics(PROBS, LABELS, mask, [1, 2])["per_au"]["AU1"]
    assert (au1["tp"], au1["fp"], au1["fn"]) == (2, 1, 0)
    assert au1["f1"] == pytest.approx(0.8)


def test_threshold_is_inclusive():
    m = au_metrics(np.array([[0.5], [0.49]]), np.array([[1], [0]]), None, [12])
    assert m["per_au"]["AU12"]["f1"] == 1.0


def test_f1_zero_division():
    assert f1_from_counts(0, 0, 0) == 0.0
    assert f1_from_counts(0, 3, 0) == 0.0
    assert f1_from_counts(5, 0, 0) == 1.0


def test_against_sklearn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 4)) < [0.1, 0.3, 0.5, 0.8]).astype(float)
    probs = np.clip(labels * 0.3 + rng.random((300, 4)) * 0.7, 0, 1)
    probs[:50, 2] = 0.5  # ties, and some exactly at the threshold
    mask = rng.random((300, 4)) > 0.1
    m = au_metrics(probs, labels, mask, [1, 2, 4, 6])
    for j, au in enumerate(["AU1", "AU2", "AU4", "AU6"]):
        y, p = labels[mask[:, j], j], probs[mask[:, j], j]
        assert m["per_au"][au]["f1"] == pytest.approx(sklearn.f1_score(y, p >= 0.5, zero_division=0))
        assert m["per_au"][au]["auc"] == pytest.approx(sklearn.roc_auc_score(y, p))


def test_auc_one_class_is_nan():
    assert math.isnan(auc_roc(np.array([0.1, 0.9]), np.array([1, 1])))
    assert math.isnan(auc_roc(np.array([]), np.array([])))
    assert auc_roc(np.array([0.2, 0.2]), np.array([0, 1])) == 0.5


def test_shape_errors():
    with pytest.raises(ValueError):
        au_metrics(np.zeros((3, 2)), np.zeros((3, 3)), None, [1, 2])
    with pytest.raises(ValueError):
        au_metrics(np.zeros((3, 2)), np.zeros((3, 2)), None, [1])


def test_format_table_markdown():
    table = format_table(au_metrics(PROBS, LABELS, None, [1, 2]))
    lines = table.splitlines()
    assert lines[0] == "| AU | F1 | AUC | Pos. rate | Floor F1 |"
    assert lines[2] == "| AU1 | 66.7 | 88.9 | 50.0 | 66.7 |"
    assert lines[3] == "| AU2 | 0.0 | – | 0.0 | 0.0 |"  # undefined AUC prints as a dash
    assert lines[4].startswith("| **Avg** | **33.3** | 88.9 |")
    assert all(line.count("|") == 6 for line in lines[:5])
    # AU2 is labelled and never present: a note says why its F1 is 0 and what the average does with it
    assert lines[5:] == [
        "",
        "AU2: never present in this split (every known label 0), so F1 0 whatever the run calls and AUC undefined; "
        "counted in the average F1 (--aus without them leaves them out).",
    ]


def test_fold_aggregation():
    fold1 = au_metrics(PROBS, LABELS, None, [1, 2])
    fold2 = au_metrics(np.array([[0.9, 0.8], [0.1, 0.2]]), np.array([[1, 1], [0, 0]]), None, [1, 2])
    summary = aggregate_folds({"fold1": fold1, "fold2": fold2})
    mean = summary["mean"]
    assert mean["per_au"]["AU1"]["f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert mean["per_au"]["AU2"]["auc"] == pytest.approx(1.0)  # NaN in fold 1 is skipped
    assert mean["avg"]["f1"] == pytest.approx((1 / 3 + 1) / 2)
    table = format_folds_table(summary)
    assert "F1 fold1 | F1 fold2 | F1 mean" in table.splitlines()[0]
    assert "| AU2 | 0.0 | 100.0 | 50.0 |" in table
    # strict JSON: NaN becomes null
    text = json.dumps(to_jsonable(summary), allow_nan=False)
    assert json.loads(text)["folds"]["fold1"]["per_au"]["AU2"]["auc"] is None
    with pytest.raises(ValueError):
        aggregate_folds({"fold1": fold1, "fold2": au_metrics(PROBS[:, :1], LABELS[:, :1], None, [1])})
    # One fold scored at per-AU thresholds, the other at 0.5 (its run kept 0.5 for every AU): both have F1 at 0.5
    # (the second's is its F1), so the table has the column and every fold's JSON the key.
    tuned = au_metrics(PROBS, LABELS, None, [1, 2], threshold=[0.3, 0.5])
    mixed = aggregate_folds({"fold1": tuned, "fold2": fold2})
    assert all("f1_at_05" in m["avg"] and "f1_at_05" in m["per_au"]["AU1"] for m in mixed["folds"].values())
    assert mixed["folds"]["fold2"]["avg"]["f1_at_05"] == fold2["avg"]["f1"]
    assert mixed["mean"]["avg"]["f1_at_05"] == pytest.approx((tuned["avg"]["f1_at_05"] + fold2["avg"]["f1"]) / 2)
    assert "F1 at 0.5 mean" in format_folds_table(mixed).splitlines()[0]


@pytest.mark.parametrize("name, folder, floor", [("bp4d", "BP4D", 48.0), ("disfa", "DISFA", 18.6)])
def test_all_positive_floor_on_real_folds(shared_data, name, folder, floor):
    """DESIGN.md: predicting every AU present scores 48.0 (BP4D) / 18.6 (DISFA) average F1 over the 3 test folds."""
    from augtext.facs import DATASET_AUS
    from hiva_core.data.lists import read_label_list

    aus = DATASET_AUS[name]
    per_fold = {}
    for k in (1, 2, 3):
        labels = read_label_list(shared_data / "protocols" / folder / f"{folder}_test_label_fold{k}.txt", aus)
        m = au_metrics(np.ones_like(labels), labels, None, aus)
        assert m["avg"]["f1"] == pytest.approx(m["avg"]["floor_f1"])  # all-positive predictions score the floor
        per_fold[f"fold{k}"] = m
    mean = aggregate_folds(per_fold)["mean"]["avg"]["floor_f1"]
    assert round(100 * mean, 1) == floor


def test_an_au_without_known_labels_is_left_out_of_the_average():
    """AU2 has no known label in this split: its F1, precision, recall and floor are undefined ("–", null in JSON),
    the averages are over the AUs that have labels, and the table says so in a note."""
    labels = LABELS.copy()
    labels[:, 1] = NAN
    m = au_metrics(PROBS, labels, None, [1, 2])
    au2 = m["per_au"]["AU2"]
    assert au2["n"] == 0 and all(math.isnan(au2[k]) for k in ("f1", "precision", "recall", "floor_f1", "pos_rate"))
    assert m["avg"]["f1"] == pytest.approx(2 / 3) and m["avg"]["floor_f1"] == pytest.approx(2 / 3)
    assert m["unlabelled"] == ["AU2"]
    assert au_metrics(PROBS, LABELS, None, [1, 2])["unlabelled"] == []
    lines = format_table(m).splitlines()
    assert lines[3] == "| AU2 | – | – | – | – |"
    assert lines[4].startswith("| **Avg** | **66.7** |")
    assert "AU2" in lines[-1] and "no known label" in lines[-1] and "left out of the average" in lines[-1]
    data = json.loads(json.dumps(to_jsonable(m), allow_nan=False))
    assert data["per_au"]["AU2"]["f1"] is None and data["avg"]["f1"] == pytest.approx(2 / 3)
    # over folds: the fold without labels is skipped for that AU, and the folds table notes it too
    other = au_metrics(np.array([[0.9, 0.8], [0.1, 0.2]]), np.array([[1, 1], [0, 0]]), None, [1, 2])
    summary = aggregate_folds({"fold1": m, "fold2": other})
    assert summary["mean"]["per_au"]["AU2"]["f1"] == pytest.approx(1.0)
    table = format_folds_table(summary)
    assert "| AU2 | – | 100.0 | 100.0 |" in table and "AU2 (fold1)" in table.splitlines()[-1]
