"""Per-AU thresholds: chosen on validation rows at training, stored in the run, used by eval and predict."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augtext.errors import UserError
from hiva_core.checkpoint import load_run
from hiva_core.cli import main
from hiva_core.metrics import au_metrics, choose_thresholds, format_table
from hiva_core.run_folder import RunFolder
from tests.hiva_core.conftest import train_argv


# ------------------------------------------------------------------------------------------------ choosing them
def test_choose_thresholds_maximises_f1_between_scores():
    probs = np.array([[0.9, 0.2], [0.35, 0.2], [0.3, 0.2], [0.1, 0.2], [0.05, 0.2]])
    labels = np.array([[1, 0], [1, 0], [0, 0], [1, 0], [0, 0]], dtype=np.float32)
    chosen = choose_thresholds(probs, labels, None, [1, 2])
    # AU1: the top 4 scores hold all 3 positives (F1 6/7 > 4/5 for the top 2); the cut is halfway from 0.1 to 0.05.
    assert chosen["AU1"] == pytest.approx(0.075)
    assert chosen["AU2"] == 0.5  # no positive: nothing to choose, 0.5 stays
    at = au_metrics(probs, labels, None, [1, 2], threshold=[chosen["AU1"], chosen["AU2"]])
    half = au_metrics(probs, labels, None, [1, 2])
    assert at["per_au"]["AU1"]["f1"] == pytest.approx(6 / 7) and half["per_au"]["AU1"]["f1"] == pytest.approx(0.5)
    assert at["per_au"]["AU1"]["f1_at_05"] == half["per_au"]["AU1"]["f1"] and at["threshold"] is None
    # Tied scores are never split, unknown labels are ignored.
    tied = choose_thresholds(np.array([[0.6], [0.6], [0.2]]), np.array([[1.0], [0.0], [np.nan]]), None, [4])
    assert tied["AU4"] == pytest.approx(0.3)


def test_thresholds_need_five_frames_of_each_class():
    """A threshold fitted to a handful of frames is noise (on 8 frames one fell to 0.013 and called its AU on 22 of
    23 faces): an AU with fewer than 5 positive or 5 negative known frames keeps 0.5, and the record says why."""
    from hiva_core.evaluate import threshold_record

    rng = np.random.default_rng(0)
    labels = np.zeros((12, 3), dtype=np.float32)
    labels[:4, 0] = 1  # AU1: 4 positive, 8 negative
    labels[:5, 1] = 1  # AU2: 5 positive, 7 negative
    labels[:8, 2] = 1
    probs = 0.3 * labels + rng.uniform(0, 0.2, labels.shape)  # every AU ranked perfectly, all below 0.5
    labels[7, 2] = np.nan  # AU4: 7 positive, 4 negative (an unknown label does not count)
    assert all(t != 0.5 for t in choose_thresholds(probs, labels, None, [1, 2, 4]).values())  # no floor: all chosen
    chosen = choose_thresholds(probs, labels, None, [1, 2, 4], min_each=5)
    assert chosen["AU1"] == chosen["AU4"] == 0.5 and chosen["AU2"] < 0.5
    record = threshold_record({"probs": probs, "labels": labels, "mask": ~np.isnan(labels)}, [1, 2, 4], "rows")
    assert record["thresholds"] == chosen | {"AU2": 0.5}  # AU2's choice cannot be checked on halves of 12 frames
    assert record["kept_05"] == {
        "AU1": "4 positive and 8 negative frames; choosing needs 5 of each",
        "AU2": "5 positive and 7 negative frames, too few to check a threshold chosen on half of them against the "
        "other half (each half needs 5 of each)",
        "AU4": "7 positive and 4 negative frames; choosing needs 5 of each",
    }
    assert all(np.isnan(gain) for gain in record["gain"].values())  # null in the file: no half could choose


def test_a_threshold_is_kept_only_where_choosing_pays_on_other_subjects():
    """A threshold that maximises F1 on the validation rows always beats 0.5 there, noise included: it is kept only
    where one chosen on half of the subjects beats 0.5 on the other half (metrics.threshold_gains)."""
    from hiva_core.evaluate import threshold_record
    from hiva_core.metrics import threshold_gains

    rng = np.random.default_rng(1)
    subjects = np.repeat([f"S{i}" for i in range(10)], 12)
    labels = (rng.uniform(size=(120, 3)) < 0.4).astype(np.float32)
    probs = np.empty_like(labels)
    # AU1: ranked perfectly but every probability below 0.5 (positives 0.30-0.45): 0.5 calls none, a cut between pays.
    probs[:, 0] = np.where(labels[:, 0] > 0, rng.uniform(0.30, 0.45, 120), rng.uniform(0.0, 0.25, 120))
    # AU2: ranked perfectly around 0.5 already: a chosen cut cannot do better than 0.5 anywhere.
    probs[:, 1] = np.where(labels[:, 1] > 0, rng.uniform(0.6, 0.9, 120), rng.uniform(0.1, 0.4, 120))
    # AU4: no better than chance.
    probs[:, 2] = rng.uniform(0.0, 1.0, 120)
    out = {"probs": probs, "labels": labels, "mask": np.ones_like(labels, dtype=bool)}
    gains = threshold_gains(probs, labels, None, [1, 2, 4], subjects, min_each=5)
    assert gains["AU1"] == pytest.approx(1.0) and gains["AU2"] == 0.0
    assert gains == threshold_gains(probs, labels, None, [1, 2, 4], subjects, min_each=5)  # the same rows, the same
    record = threshold_record(out, [1, 2, 4], "rows", subjects)
    chosen = choose_thresholds(probs, labels, None, [1, 2, 4], min_each=5)
    assert record["thresholds"]["AU1"] == chosen["AU1"] < 0.45 and record["thresholds"]["AU2"] == 0.5
    assert record["kept_05"]["AU2"] == (
        "a threshold chosen on half of these frames scored +0.0 F1 against 0.5 on the other half: choosing does not "
        "pay here"
    )
    assert record["gain"]["AU1"] == pytest.approx(1.0) and record["val_f1"]["AU1"] == 1.0
    # Chance scores: calling the AU on every face is F1's own floor and beats 0.5's coin flips on any half, so F1
    # keeps choosing low there; the record shows it by the AU's AUC (about 0.5).
    assert (record["thresholds"]["AU4"] < 0.5) == (gains["AU4"] > 0) and abs(record["val_auc"]["AU4"] - 0.5) < 0.1


def test_table_shows_both_thresholds_only_when_they_differ():
    probs, labels = np.array([[0.4], [0.1]]), np.array([[1.0], [0.0]])
    plain = format_table(au_metrics(probs, labels, None, [12]))
    both = format_table(au_metrics(probs, labels, None, [12], threshold=[0.3]))
    assert plain.splitlines()[0] == "| AU | F1 | AUC | Pos. rate | Floor F1 |"
    assert both.splitlines()[0] == "| AU | F1 | Thr. | F1 at 0.5 | AUC | Pos. rate | Floor F1 |"
    assert "| AU12 | 100.0 | 0.30 | 0.0 |" in both


# --------------------------------------------------------------------------------------------- a real tiny run
@pytest.fixture(scope="module")
def thresholded_run(tmp_path_factory, text_cache, tiny_faces):
    """Fold 1 of the tiny faces with a validation slice of 4 of the 8 training subjects (32 frames: every AU has the
    5 positive and 5 negative frames per half of them that a threshold is chosen and checked on; the default 10 %,
    8 frames, leaves them all at 0.5)."""
    import torch

    out = tmp_path_factory.mktemp("thr") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(train_argv(text_cache, tiny_faces, out, "--fold", "1", "--set", "data.val_fraction=0.5")) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_train_stores_thresholds_chosen_on_held_out_subjects(thresholded_run, tiny_faces):
    run = RunFolder(thresholded_run)
    record = json.loads(run.thresholds_file.read_text())
    assert record["format"] == "hiva_core.thresholds/1" and set(record["thresholds"]) == {"AU1", "AU2", "AU4"}
    assert record["validation"].startswith("4 of 8 training subjects held out of training")
    metrics = json.loads(run.metrics_file.read_text())  # the kept epoch (the last) and its thresholds: on those rows
    assert record["epoch"] == metrics["best_epoch"] and metrics["best_score"] == record["val_auc"]["avg"]
    assert metrics["selected_on"] == "the last epoch; validation avg AUC"  # train.select's default, last
    assert metrics["best_epoch"] == metrics["last_epoch"]
    assert record["frames"] == 32 and all(0.0 <= t <= 1.0 for t in record["thresholds"].values())
    assert record["kept_05"] == {}  # each AU has 5 positive and 5 negative frames in each half of them
    assert all(record["gain"][au] > 0 for au in ("AU1", "AU2", "AU4"))  # and choosing paid on the other half
    assert record["val_f1"]["avg"] >= record["val_f1_at_05"]["avg"]  # chosen to maximise F1 on those rows
    info = run.read_config()
    assert info["config"]["data"]["val_fraction"] == 0.5 and info["data"]["train_frames"] == 64 - 32
    assert run.read_thresholds() == {int(k[2:]): v for k, v in record["thresholds"].items()}
    assert load_run(thresholded_run, device="cpu").thresholds == run.read_thresholds()


def test_eval_uses_stored_thresholds_and_reports_f1_at_half(thresholded_run, tiny_faces, tmp_path, capsys):
    stored = RunFolder(thresholded_run).read_thresholds()
    best = json.loads(RunFolder(thresholded_run).metrics_file.read_text())["best"]
    out = tmp_path / "eval.json"
    assert main(["eval", "--run", str(thresholded_run), "--data", str(tiny_faces), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fold 1, 32 frames; the run's per-AU thresholds" in printed
    assert "| AU | F1 | Thr. | F1 at 0.5 | AUC |" in printed
    result = json.loads(out.read_text())
    for au, row in result["per_au"].items():
        assert row["threshold"] == pytest.approx(stored[int(au[2:])])
        assert row["f1_at_05"] == best["per_au"][au]["f1"]  # the trainer's own number at 0.5, reproduced
    assert result["avg"]["f1_at_05"] == pytest.approx(best["avg"]["f1"])
    # --threshold 0.5 restores the plain rule: the trainer's table exactly, and no second column.
    assert main(["eval", "--run", str(thresholded_run), "--data", str(tiny_faces), "--threshold", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "threshold 0.5 (--threshold)" in printed and "| AU | F1 | AUC | Pos. rate | Floor F1 |" in printed
    half = f"| **Avg** | **{100 * best['avg']['f1']:.1f}** |"
    assert half in printed


def test_predict_uses_stored_thresholds_unless_told(thresholded_run, tiny_faces, tmp_path, capsys):
    from hiva_core.predict import run_predict

    images = sorted(tiny_faces.parent.glob("img/*.png"))[:24]
    copy = tmp_path / "run"
    shutil.copytree(thresholded_run, copy)
    folder = RunFolder(copy)
    plain = run_predict(images, copy, detect=False, device="cpu", threshold=0.5).rows
    assert (plain["AU1"] == (plain["AU1_prob"] >= 0.5)).all()
    # An AU1 threshold that labels every one of these faces the other way round from 0.5 on some of them.
    below = bool((plain["AU1_prob"] < 0.5).any())
    record = json.loads(folder.thresholds_file.read_text())
    record["thresholds"]["AU1"] = 0.0 if below else 1.0
    folder.write_thresholds(record)
    stored = folder.read_thresholds()
    rows = run_predict(images, copy, detect=False, device="cpu").rows
    assert (rows["AU1"] == int(below)).all() and (rows["AU1"] != plain["AU1"]).any()
    for au in (2, 4):
        assert (rows[f"AU{au}"] == (rows[f"AU{au}_prob"] >= stored[au])).all()
    out = tmp_path / "rows.csv"
    assert main(["predict", *map(str, images), "--run", str(copy), "--no-detect", "--out", str(out)]) == 0
    assert (pd.read_csv(out)["AU1"] == int(below)).all()
    assert "AU labels at the run's per-AU thresholds" in capsys.readouterr().err


def test_predict_names_the_aus_its_validation_faces_found_weak(thresholded_run, tiny_faces, tmp_path, capsys):
    """An AU the run ranks little better than chance on its validation faces (AUC below 0.70) is named under
    predict's summary: its 0/1 labels, at an F1-optimal threshold, are often wrong."""
    from hiva_core.predict import run_predict

    copy = tmp_path / "run"
    shutil.copytree(thresholded_run, copy)
    folder = RunFolder(copy)
    record = json.loads(folder.thresholds_file.read_text())
    record["val_auc"] |= {"AU1": float("nan"), "AU2": 0.62, "AU4": 0.7}  # undefined, weak, and just good enough
    folder.write_thresholds(record)
    images = sorted(tiny_faces.parent.glob("img/*.png"))[:3]
    assert run_predict(images, copy, detect=False, device="cpu").summary["weak_aus"] == {"AU2": 0.62}
    assert (
        main(["predict", *map(str, images), "--run", str(copy), "--no-detect", "--out", str(tmp_path / "a.csv")]) == 0
    )
    err = capsys.readouterr().err
    assert "weak on the run's validation faces, AUC below 0.70: AU2 (0.62); their 0/1 labels are often wrong" in err
    assert run_predict(images, thresholded_run, detect=False, device="cpu").summary["weak_aus"] == {}


def test_runs_without_thresholds_keep_half(trained_run, tiny_faces, tmp_path, capsys):
    """A run trained without a validation slice (or before thresholds existed) has no thresholds.json: 0.5."""
    run, _ = trained_run
    assert not RunFolder(run).thresholds_file.exists() and load_run(run, device="cpu").thresholds == {}
    assert main(["eval", "--run", str(run), "--data", str(tiny_faces)]) == 0
    assert "threshold 0.5 (the run stores no thresholds)" in capsys.readouterr().out
    # A config.json from before validation slices resumes as it was trained: on every subject.
    info = json.loads((run / "config.json").read_text())
    del info["config"]["data"]["val_fraction"]
    del info["config"]["train"]["region_weight"]
    del info["config"]["train"]["select"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps(info))
    cfg = RunFolder(old).read_train_config()
    assert cfg.data.val_fraction == 0.0 and cfg.train.region_weight == 0.0  # and without the region loss
    assert cfg.train.select == "test"  # and its epochs chosen on the test split, as then
    today = RunFolder(run).read_train_config().train
    assert (today.region_weight, today.select) == (0.1, "last")  # a run of today keeps its own


def test_eval_saves_target_domain_thresholds_that_eval_and_predict_read(thresholded_run, tiny_faces, tmp_path, capsys):
    """A labelled sample of the domain to predict on: `eval --save-thresholds FILE` picks each AU's threshold on its
    rows; `--threshold FILE` then scores (eval) and labels (predict) with them instead of the run's own."""
    from hiva_core.predict import run_predict

    saved, scored = tmp_path / "target.json", tmp_path / "eval.json"
    argv = ["eval", "--run", str(thresholded_run), "--data", str(tiny_faces)]
    assert main([*argv, "--save-thresholds", str(saved), "--json", str(scored)]) == 0
    assert f"thresholds chosen on these 32 frames written to {saved}" in capsys.readouterr().out
    record = json.loads(saved.read_text())
    assert record["format"] == "hiva_core.thresholds/1" and record["frames"] == 32
    assert record["validation"].startswith(f"hiva_core eval of {thresholded_run} on {tiny_faces} (fold 1")
    result = json.loads(scored.read_text())
    assert set(record["thresholds"]) == {"AU1", "AU2", "AU4"}
    assert record["val_f1"]["avg"] >= result["avg"]["f1_at_05"]  # chosen to maximise F1 on exactly these rows
    assert json.loads((thresholded_run / "thresholds.json").read_text())["thresholds"] != {}  # the run's untouched

    assert main([*argv, "--threshold", str(saved), "--json", str(scored)]) == 0
    assert f"the per-AU thresholds of {saved}" in capsys.readouterr().out
    again = json.loads(scored.read_text())
    assert again["avg"]["f1"] == pytest.approx(record["val_f1"]["avg"])  # the same rows at those thresholds
    assert {au: row["threshold"] for au, row in again["per_au"].items()} == pytest.approx(record["thresholds"])

    images = sorted(tiny_faces.parent.glob("img/*.png"))[:12]
    rows = run_predict(images, thresholded_run, detect=False, device="cpu", threshold=str(saved)).rows
    for au, t in record["thresholds"].items():
        assert (rows[au] == (rows[f"{au}_prob"] >= t)).all()
    out = tmp_path / "rows.csv"
    argv = ["predict", *map(str, images), "--run", str(thresholded_run), "--no-detect", "--out", str(out)]
    assert main([*argv, "--threshold", str(saved)]) == 0
    assert f"AU labels at the per-AU thresholds of {saved}" in capsys.readouterr().err


def test_bad_thresholds_are_clear_errors(thresholded_run, tiny_faces, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(thresholded_run, copy)
    (copy / "thresholds.json").write_text('{"thresholds": {"AU1": 1.5}}')
    assert main(["eval", "--run", str(copy), "--data", str(tiny_faces)]) == 2
    err = capsys.readouterr().err
    assert "thresholds.json" in err and "[0, 1]" in err
    image = str(next(tiny_faces.parent.glob("img/*.png")))
    assert main(["predict", image, "--run", str(thresholded_run), "--no-detect", "--threshold", "2"]) == 2
    assert main(["eval", "--run", str(thresholded_run), "--data", str(tiny_faces), "--threshold", "-1"]) == 2
    assert capsys.readouterr().err.count("--threshold must be between 0 and 1") == 2
    missing = tmp_path / "nowhere.json"
    assert main(["eval", "--run", str(thresholded_run), "--data", str(tiny_faces), "--threshold", str(missing)]) == 2
    assert f"{missing} not found: no thresholds file there" in capsys.readouterr().err
    argv = ["eval", "--run", str(thresholded_run), "--data", str(tiny_faces), "--folds", "all"]
    assert main([*argv, "--save-thresholds", str(tmp_path / "t.json")]) == 2
    assert "--save-thresholds takes one run" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()
    with pytest.raises(UserError, match="val_fraction"):
        from hiva_core.config import DataSection

        DataSection(val_fraction=1.0)


def test_data_val_rows_are_used_as_they_are(tmp_path, text_cache, tiny_faces):
    """A manifest whose split column marks val rows: those choose the thresholds; training keeps every train row."""
    frame = pd.read_csv(tiny_faces)
    frame["path"] = [str(tiny_faces.parent / p) for p in frame["path"]]
    frame["split"] = frame["fold"].map({1: "test", 2: "train", 3: "train"})
    frame.loc[frame.index[frame["fold"] == 3][:10], "split"] = "Val"
    manifest = tmp_path / "split.csv"
    frame.drop(columns="fold").to_csv(manifest, index=False)
    out = tmp_path / "run"
    assert main(train_argv(text_cache, manifest, out, epochs=1)) == 0  # val_fraction=0: val rows are used anyway
    record = json.loads(RunFolder(out).thresholds_file.read_text())
    assert record["validation"] == "the data's validation rows (split=val, 10 frames)" and record["frames"] == 10
    assert RunFolder(out).read_config()["data"]["train_frames"] == 54


def test_threshold_files_are_named_by_the_run_folder(tmp_path):
    assert RunFolder(tmp_path).thresholds_file == Path(tmp_path) / "thresholds.json"
    assert RunFolder(tmp_path).read_thresholds() == {}


def test_log_line_names_every_score_and_an_epoch_without_evaluation(tmp_path, text_cache, tiny_faces, capsys):
    """Each epoch's line: the test F1, the validation F1 and AUC, the kept epoch; an epoch that train.eval_every
    skips says so instead of printing empty scores."""
    argv = train_argv(text_cache, tiny_faces, tmp_path / "run", "--fold", "1", epochs=2)
    argv += ["--set", "data.val_fraction=0.1", "--set", "train.eval_every=2", "--set", "train.max_steps_per_epoch=1"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    err = printed.err.splitlines()
    lines = [line for line in err if line.lstrip().startswith("epoch ")]
    assert len(lines) == 2
    assert "not evaluated (train.eval_every)" in lines[0] and "kept epoch" not in lines[0] and "nan" not in lines[0]
    assert re.search(r"test avg F1 [\d.]+ +val F1 [\d.]+ AUC [\d.]+ +kept epoch 2 \([\d.]+\)", lines[1]), lines[1]
    # What the scores are: the test split's F1 at 0.5 (eval's are at the run's thresholds), said once above the
    # epochs and again under them.
    legend = "each epoch: test avg F1 at 0.5, val F1 at the per-AU thresholds chosen on the validation rows, val AUC"
    assert err[err.index(lines[0]) - 1] == legend
    assert re.search(r"; test avg F1 at 0\.5 [\d.]+ \(the table below, at 0\.5\)", printed.out), printed.out
    # 8 validation frames: too few for any AU's threshold, and one line says which and why.
    assert (
        "per-AU thresholds stay 0.5 for AU1 (2 positive, 6 negative), AU2 (4 positive, 4 negative), AU4 (5 positive, "
        "3 negative): choosing one needs 5 positive and 5 negative validation frames" in printed.err
    )
    assert set(json.loads((tmp_path / "run" / "thresholds.json").read_text())["kept_05"]) == {"AU1", "AU2", "AU4"}


# ------------------------------------------------------------------------------------------------ per face
def test_eval_writes_every_face_with_its_calls_and_labels(thresholded_run, tiny_faces, tmp_path, capsys):
    """`eval --per-face FILE`: one row per scored face whose calls and labels give back eval's own F1; an unknown
    label stays empty and is not counted."""
    from hiva_core.metrics import f1_from_counts

    manifest = pd.read_csv(tiny_faces)
    manifest["AU2"] = manifest["AU2"].astype("Float64")
    test_rows = manifest.index[manifest["fold"] == 1]
    manifest.loc[test_rows[:5], "AU2"] = pd.NA  # five test faces without an AU2 label
    data = tiny_faces.parent / "partly_unknown.csv"
    manifest.to_csv(data, index=False)
    faces, scored = tmp_path / "faces.csv", tmp_path / "eval.json"
    argv = ["eval", "--run", str(thresholded_run), "--data", str(data)]
    assert main([*argv, "--per-face", str(faces), "--json", str(scored)]) == 0
    capsys.readouterr()
    table, result = pd.read_csv(faces), json.loads(scored.read_text())
    assert len(table) == result["n"] == len(test_rows) and result["per_face"] == str(faces)
    assert list(table.columns[:4]) == ["path", "subject", "sequence", "frame"]
    expected = list(manifest.loc[test_rows, "path"])  # the manifest's own values, in the dataset's order
    assert list(table["path"]) == expected
    assert [Path(p) for p in table["file"]] == [tiny_faces.parent / p for p in expected]  # the files read
    assert table["AU2_label"].isna().sum() == 5 and table["AU1_label"].notna().all()
    for au, row in result["per_au"].items():
        assert ((table[f"{au}_prob"] >= row["threshold"]).astype(int) == table[au]).all()
        known = table[table[f"{au}_label"].notna()]
        y, call = known[f"{au}_label"] == 1, known[au] == 1
        f1 = f1_from_counts((y & call).sum(), (~y & call).sum(), (y & ~call).sum())
        assert f1 == pytest.approx(row["f1"]) and len(known) == row["n"]

    parquet = tmp_path / "faces.parquet"  # the same rows in Parquet, labels as nullable integers
    assert main([*argv, "--per-face", str(parquet)]) == 0
    again = pd.read_parquet(parquet)
    assert again["AU2_label"].dtype == "Int8" and again["AU1"].dtype == "Int8"
    assert np.allclose(again["AU1_prob"], table["AU1_prob"], atol=1e-5)

    for bad, message in (
        ([*argv, "--per-face", str(tmp_path / "faces.txt")], "--per-face"),
        ([*argv, "--folds", "all", "--per-face", str(tmp_path / "f.csv")], "--per-face takes one run"),
        ([*argv, "--per-face", str(tmp_path)], "is a folder"),
    ):
        assert main(bad) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "faces.txt").exists() and not (tmp_path / "f.csv").exists()
