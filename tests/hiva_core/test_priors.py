"""AU rates of a new domain estimated without labels (hiva_core.priors) and `hiva_core adapt --priors`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hiva_core.checkpoint import load_run
from hiva_core.cli import main
from hiva_core.metrics import au_metrics
from hiva_core.priors import (
    adapt_thresholds,
    estimate_rate,
    fit_calibration,
    fit_platt,
    logit,
    shifted_threshold,
    sigmoid,
)


def scored_faces(n: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels at `rate` and the probabilities of an over-confident model that ranks them well: the true log-odds
    are 3·z + logit(rate) for z ~ N(±1.5, 1); the model says 0.5·z + 1 whatever the rate."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rate
    z = np.where(y, rng.normal(1.5, 1.0, n), rng.normal(-1.5, 1.0, n))
    return y, sigmoid(0.5 * z + 1.0)


def test_platt_recovers_the_scale_and_shift_of_a_logistic_model():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20000)
    y = rng.random(20000) < sigmoid(1.7 * z - 0.8)
    scale, shift = fit_platt(sigmoid(z), y)
    assert scale == pytest.approx(1.7, abs=0.08) and shift == pytest.approx(-0.8, abs=0.08)
    assert fit_platt(sigmoid(z), np.zeros(20000, bool)) is None  # nothing to calibrate on
    assert fit_platt(sigmoid(z), z > 0) is not None  # separable rows still give a finite fit (Platt's targets)
    assert fit_platt(sigmoid(z), z < 0) is None  # a fit that ranks against the model is refused


def test_em_recovers_a_new_rate_and_the_threshold_moves_with_it():
    """Calibrated on rows at rate 0.4, the model's faces at rate 0.1 (the same look, fewer AUs) are estimated at
    0.1; the moved threshold makes fewer false alarms and raises F1 well above the validation threshold's."""
    y, p = scored_faces(4000, 0.4, seed=1)
    calibration = fit_calibration(p[:, None], y[:, None].astype(float), None, [10])
    assert calibration["AU10"]["rate"] == pytest.approx(y.mean())
    y2, p2 = scored_faces(4000, 0.1, seed=2)
    (row,) = adapt_thresholds(p2[:, None], [10], calibration, {10: 0.6}).values()
    assert row["estimated"] == pytest.approx(y2.mean(), abs=0.015)
    assert row["threshold"] == 0.6 and row["adapted"] > 0.6
    f1 = [au_metrics(p2[:, None], y2[:, None].astype(float), None, [10], t)["avg"]["f1"] for t in (0.6, row["adapted"])]
    assert f1[1] > f1[0] + 0.1
    y3, p3 = scored_faces(4000, 0.4, seed=3)  # the training rate again: the threshold barely moves
    (same,) = adapt_thresholds(p3[:, None], [10], calibration, {10: 0.6}).values()
    assert same["adapted"] == pytest.approx(0.6, abs=0.03)


def test_shifted_threshold_and_rates_at_the_edges():
    assert shifted_threshold(0.3, 2.0, 0.2, 0.2) == pytest.approx(0.3)
    assert shifted_threshold(0.3, 2.0, 0.2, 0.05) > 0.3 > shifted_threshold(0.3, 2.0, 0.2, 0.5)
    # the same change of log-odds moves a sharp model's threshold less than a flat one's
    sharp, flat = shifted_threshold(0.5, 4.0, 0.2, 0.05), shifted_threshold(0.5, 0.5, 0.2, 0.05)
    assert logit(sharp) == pytest.approx(np.log(0.2 / 0.8 * 0.95 / 0.05) / 4.0, rel=1e-6) and flat > sharp
    assert estimate_rate(np.zeros(50), 0.3) == pytest.approx(1e-3)  # kept inside RATE_RANGE
    assert estimate_rate(np.ones(50), 0.3) == pytest.approx(1 - 1e-3)


def test_an_au_without_calibration_keeps_its_threshold():
    y, p = scored_faces(500, 0.3, seed=4)
    labels = np.stack([y, np.zeros_like(y)], axis=1).astype(float)  # AU2 never present: no fit
    calibration = fit_calibration(np.stack([p, p], axis=1), labels, None, [1, 2])
    assert set(calibration) == {"AU1"}
    rows = adapt_thresholds(np.stack([p, p], axis=1), [1, 2], calibration, {1: 0.4})
    assert rows["AU2"] == {"rate": None, "estimated": None, "threshold": 0.5, "adapted": 0.5}
    assert rows["AU1"]["estimated"] is not None


def save_domain_thresholds(run, tiny_faces, fold: str) -> None:
    """The tiny run's thresholds and calibration chosen on a fold of 32 faces (its own validation slice is 8)."""
    argv = ["eval", "--run", str(run), "--data", str(tiny_faces), "--fold", fold]
    assert main([*argv, "--save-thresholds", str(run / "thresholds.json")]) == 0


def test_cli_adapt_priors_moves_the_thresholds_and_nothing_else(trained_run, tiny_faces, tmp_path, one_thread, capsys):
    """`--priors --no-batchnorm`: the weights stay; thresholds.json holds the moved thresholds, the validation ones
    and each AU's rates; eval and predict read the moved ones. Adapting the adapted run starts from the validation
    thresholds again (the same faces: the same thresholds), and a BatchNorm adaptation adds the statistics."""
    source = tmp_path / "run"
    shutil.copytree(trained_run[0], source)
    save_domain_thresholds(source, tiny_faces, "2")
    before = json.loads((source / "thresholds.json").read_text())
    assert set(before["calibration"]) <= set(before["thresholds"]) and before["calibration"]
    out, again, both = tmp_path / "priors", tmp_path / "again", tmp_path / "both"
    common = ["--data", str(tiny_faces), "--fold", "1"]

    assert main(["adapt", "--run", str(source), "--out", str(out), "--no-batchnorm", "--priors", *common]) == 0
    err = capsys.readouterr().err
    assert "thresholds moved with the AU rates estimated (AU" in err and "BatchNorm" not in err and "32 faces" in err
    record = json.loads((out / "thresholds.json").read_text())
    assert record["validation_thresholds"] == before["thresholds"] and record["calibration"] == before["calibration"]
    assert record["thresholds"] != before["thresholds"] and record["priors"]["faces"] == 32
    for name, row in record["priors"]["per_au"].items():
        assert row["adapted"] == record["thresholds"][name] and row["threshold"] == before["thresholds"][name]
    (adapted,) = json.loads((out / "config.json").read_text())["adapted"]
    assert adapted["batchnorm_layers"] == 0 and set(adapted["priors"]) == set(record["thresholds"])
    a, b = load_run(source, device="cpu"), load_run(out, device="cpu")
    assert all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items())
    assert b.thresholds == {int(k[2:]): v for k, v in record["thresholds"].items()}

    assert main(["adapt", "--run", str(out), "--out", str(again), "--no-batchnorm", "--priors", *common]) == 0
    assert json.loads((again / "thresholds.json").read_text())["thresholds"] == record["thresholds"]
    assert main(["adapt", "--run", str(source), "--out", str(both), "--priors", *common]) == 0
    (adapted,) = json.loads((both / "config.json").read_text())["adapted"]
    assert adapted["batchnorm_layers"] > 0 and adapted["priors"]
    assert "BatchNorm layers re-estimated and its thresholds moved" in capsys.readouterr().err


def test_cli_adapt_priors_refuses_what_it_cannot_do(trained_run, tiny_faces, tmp_path, one_thread, capsys):
    """A run without validation rows (no thresholds.json) or whose thresholds hold no calibration (saved before it
    existed), and --no-batchnorm without --priors, are one clear line each, exit 2, nothing written."""
    source = tmp_path / "run"
    shutil.copytree(trained_run[0], source)
    (source / "thresholds.json").unlink(missing_ok=True)
    out = tmp_path / "out"
    common = ["--out", str(out), "--data", str(tiny_faces), "--fold", "1"]
    assert main(["adapt", "--run", str(source), "--priors", *common]) == 2
    assert "has no thresholds.json (no validation rows)" in capsys.readouterr().err and not out.exists()
    save_domain_thresholds(source, tiny_faces, "2")
    record = json.loads((source / "thresholds.json").read_text())
    del record["calibration"]
    (source / "thresholds.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["adapt", "--run", str(source), "--priors", *common]) == 2
    assert "holds no calibration of the validation rows" in capsys.readouterr().err and not out.exists()
    assert main(["adapt", "--run", str(source), "--no-batchnorm", *common]) == 2
    assert "nothing to adapt" in capsys.readouterr().err and not out.exists()


def test_bench_priors_scores_each_condition(trained_run, tiny_faces, tmp_path, one_thread):
    """bench/bench_priors.py: per run and set, F1 as trained, after each adaptation and at the oracle thresholds (the
    best on these rows: no other threshold beats it), and each AU's rates; resumable from its work folder."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import bench_priors

    source = tmp_path / "run"
    shutil.copytree(trained_run[0], source)
    save_domain_thresholds(source, tiny_faces, "2")
    out_json, work = tmp_path / "priors.json", tmp_path / "work"
    argv = ["--runs", str(source), "--names", "tiny", "--set", f"f1={tiny_faces}:1:1,2", "--work", str(work)]
    argv += ["--out-json", str(out_json), "--out-md", str(tmp_path / "priors.md")]
    assert bench_priors.main(argv) == 0
    (record,) = json.loads(out_json.read_text())["records"]
    assert record["name"] == "tiny" and record["set"] == "f1" and record["fold"] == 1
    for cond in ("trained", "priors", "bn_priors"):
        assert set(record[cond]["per_au"]) == {"AU1", "AU2"}
        assert record["oracle_f1"] >= record[cond]["f1"] - 1e-9
    assert set(record["priors"]["rates"]) <= {"AU1", "AU2"} and record["priors"]["rate_error"] >= 0
    assert "| tiny | f1 |" in (tmp_path / "priors.md").read_text()
    assert bench_priors.main(argv) == 0  # again: everything reused
    assert json.loads(out_json.read_text())["records"] == [record]
    assert bench_priors.main(["--runs", str(source), "--set", "bad"]) == 2
