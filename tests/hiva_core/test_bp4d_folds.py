"""The BP4D user's path end to end: real ME-GraphAU/MDHR fold lists (a few rows of each, with placeholder images),
`hiva_core train --folds all` then `hiva_core eval --folds all`, through the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from augtext.facs import DATASET_AUS, au_label
from hiva_core.cli import main
from tests.hiva_core.conftest import train_argv
from tests.hiva_core.imagefix import write_protocol_sample
from tests.textcache import make_text_cache


@pytest.fixture(scope="module")
def bp4d_folds(tmp_path_factory, shared_data):
    """(image root, lists, run folder of `train --folds all`, text cache, tmp folder) on 12 real rows of every
    split of the 3 BP4D folds, trained one epoch per fold."""
    import torch

    tmp = tmp_path_factory.mktemp("bp4d_folds")
    root, lists = write_protocol_sample(shared_data / "protocols", tmp / "bp4d", "bp4d", n=12, folds=(1, 2, 3), size=40)
    cache = make_text_cache(tmp / "cache", aus=DATASET_AUS["bp4d"], per_au=2)
    out = tmp / "runs" / "bp4d"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = main(train_argv(cache, f"bp4d:{root}", out, "--lists", str(lists), "--folds", "all", epochs=1))
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return root, lists, out, cache, tmp


def test_train_and_eval_every_bp4d_fold_from_list_files(bp4d_folds, tmp_path, one_thread, capsys):
    root, lists, out, _, _ = bp4d_folds
    for fold in (1, 2, 3):
        assert json.loads((out / f"fold{fold}" / "config.json").read_text())["config"]["data"]["fold"] == fold
        assert (out / f"fold{fold}" / "model.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["folds"]) == ["fold1", "fold2", "fold3"]
    assert summary["mean"]["aus"] == DATASET_AUS["bp4d"]
    folds_f1 = [summary["folds"][f"fold{k}"]["avg"]["f1"] for k in (1, 2, 3)]
    # Every AU labelled in every fold: the mean of the per-AU means is the mean of the fold averages
    assert abs(summary["mean"]["avg"]["f1"] - sum(folds_f1) / 3) < 1e-9
    assert summary["mean"]["avg_of_folds"]["f1"] == pytest.approx(sum(folds_f1) / 3)

    argv = ["eval", "--run", str(out), "--data", f"bp4d:{root}", "--lists", str(lists), "--folds", "all"]
    assert main([*argv, "--json", str(tmp_path / "eval.json")]) == 0
    table = capsys.readouterr().out
    for au in DATASET_AUS["bp4d"]:
        assert f"| {au_label(au)} |" in table  # every BP4D AU has its row, ready to paste
    result = json.loads((tmp_path / "eval.json").read_text())
    assert abs(result["mean"]["avg"]["f1"] - summary["mean"]["avg"]["f1"]) < 1e-6  # eval reproduces training's


def test_folds_eval_says_what_the_table_is_of_and_its_avg_is_the_column_mean(bp4d_folds, tmp_path, one_thread, capsys):
    """A header line as single-fold eval prints (run, data, folds, frames, thresholds) and the same at the JSON's top
    level; with AU24 unknown in fold 1's test rows the bold Avg is the mean of the "F1 mean" column (each AU's F1
    averaged over the folds where it is labelled, then over the AUs: the paper's figure), and a note gives the mean
    of the fold averages (fold 1 averages 11 AUs) as mean.avg_of_folds."""
    root, lists, out, _, _ = bp4d_folds
    nines = tmp_path / "lists"
    shutil.copytree(lists, nines)
    labels = nines / "BP4D" / "BP4D_test_label_fold1.txt"
    labels.write_text("".join(" ".join([*line.split()[:-1], "9"]) + "\n" for line in labels.read_text().splitlines()))
    json_out = tmp_path / "all.json"
    spec = f"bp4d:{root}"
    argv = ["eval", "--run", str(out), "--data", spec, "--lists", str(nines), "--folds", "all", "--json", str(json_out)]
    assert main([*argv, "--threshold", "0.001"]) == 0  # (nearly) every frame called present: F1 of the floor
    printed = capsys.readouterr().out
    header = f"{out} on {spec} (folds 1, 2, 3, each scored by the run that held it out, 36 frames in all; every fold "
    assert printed.startswith(header + "at threshold 0.001 (--threshold))\n"), printed[:300]
    result = json.loads(json_out.read_text())
    assert {k: result[k] for k in ("run", "data", "rows", "n", "thresholds", "flip")} == {
        "run": str(out),
        "data": spec,
        "rows": "folds 1, 2, 3, each scored by the run that held it out",
        "n": 36,
        "thresholds": "every fold at threshold 0.001 (--threshold)",
        "flip": False,
    }
    mean = result["mean"]
    column = [row["f1"] for row in mean["per_au"].values()]
    assert mean["avg"]["f1"] == pytest.approx(sum(column) / len(column))
    folds = [result["folds"][f"fold{k}"]["avg"]["f1"] for k in (1, 2, 3)]
    assert mean["avg_of_folds"]["f1"] == pytest.approx(sum(folds) / 3)
    assert result["folds"]["fold1"]["unlabelled"] == ["AU24"]
    avg_row = next(line for line in printed.splitlines() if line.startswith("| **Avg** |"))
    assert f"| **{100 * mean['avg']['f1']:.1f}** |" in avg_row
    assert abs(mean["avg"]["f1"] - mean["avg_of_folds"]["f1"]) >= 5e-4  # the two differ here
    assert f"Avg of the F1 mean column, {100 * mean['avg']['f1']:.1f}: each AU's F1 averaged over the folds" in printed
    assert f"The mean of the folds' own averages is {100 * mean['avg_of_folds']['f1']:.1f}" in printed
    assert "fold1 averages 11 of 12 AUs" in printed
    assert result["missing_folds"] == []
    # A fold without its run: the mean of the others is said to be one, in the header, the JSON and a warning.
    two = tmp_path / "two"
    shutil.copytree(out, two, ignore=shutil.ignore_patterns("fold3"))
    partial = tmp_path / "two.json"
    assert (
        main(
            ["eval", "--run", str(two), "--data", spec, "--lists", str(lists), "--folds", "all", "--json", str(partial)]
        )
        == 0
    )
    captured = capsys.readouterr()
    rows = (
        f"folds 1, 2, each scored by the run that held it out; not fold 3 (no run under {two}): a mean of 2 folds, "
        "not all"
    )
    assert json.loads(partial.read_text())["rows"] == rows and json.loads(partial.read_text())["missing_folds"] == [3]
    assert rows in captured.out and "the mean covers 2 of its folds" in captured.err


def test_eval_of_a_fold_the_run_trained_on_is_refused(bp4d_folds, tmp_path, one_thread, capsys):
    """fold1 held out fold 1: fold 2's test rows are its training rows; `--fold 2` is refused naming the run's fold
    and the run to use; its own fold is scored; `--save-thresholds` on fold 2 (no test F1) only warns."""
    root, lists, out, _, _ = bp4d_folds
    argv = ["eval", "--run", str(out / "fold1"), "--data", f"bp4d:{root}", "--lists", str(lists)]
    assert main([*argv, "--fold", "2", "--json", str(tmp_path / "f2.json")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {out / 'fold1'} was trained with fold 1 held out ({out / 'fold1' / 'config.json'}: data.fold 1); "
        "fold 2's test rows are among its training rows, so their F1 would be a training score: evaluate it on fold "
        f"1 (leave --fold out), or evaluate the run that held out fold 2 (--run {out / 'fold2'})\n"
    )
    assert not (tmp_path / "f2.json").exists()
    assert main([*argv, "--fold", "1"]) == 0
    capsys.readouterr()
    # Choosing thresholds on them is allowed, with a warning that they fit faces the run has seen; the table printed
    # beside says its F1 is a training score, not a test F1.
    scored = tmp_path / "f2_choose.json"
    assert main([*argv, "--fold", "2", "--save-thresholds", str(tmp_path / "thr.json"), "--json", str(scored)]) == 0
    warning = (
        f"warning: {out / 'fold1'} was trained with fold 1 held out ({out / 'fold1' / 'config.json'}: data.fold 1)"
    )
    printed = capsys.readouterr()
    assert printed.err.startswith(warning + "; fold 2's test rows are among its training rows: thresholds")
    assert "(fold 2; rows the run trained on: a training score, not a test F1, " in printed.out
    assert json.loads(scored.read_text())["trained_rows"] is True
    assert (tmp_path / "thr.json").is_file()


def test_lists_sharing_a_subject_are_refused_before_any_fold_trains(bp4d_folds, tmp_path, one_thread, capsys):
    """A test subject of fold 2 copied into fold 2's training lists: train --folds all refuses (exit 2) before fold 1
    trains, naming the subject and both list files; eval of the trained run on those lists refuses too."""
    root, lists, out, cache, _ = bp4d_folds
    leaky = tmp_path / "lists"
    shutil.copytree(lists, leaky)
    folder = leaky / "BP4D"
    test_paths = (folder / "BP4D_test_img_path_fold2.txt").read_text().splitlines()
    test_labels = (folder / "BP4D_test_label_fold2.txt").read_text().splitlines()
    for name, extra in (("img_path", test_paths[0]), ("label", test_labels[0])):
        with open(folder / f"BP4D_train_{name}_fold2.txt", "a") as fh:
            fh.write(extra + "\n")
    subject = test_paths[0].split("/")[0]
    runs = tmp_path / "runs"
    assert main(train_argv(cache, f"bp4d:{root}", runs, "--lists", str(leaky), "--folds", "all", epochs=1)) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: 1 subject(s) of {folder / 'BP4D_test_img_path_fold2.txt'} are also in "
        f"{folder / 'BP4D_train_img_path_fold2.txt'}: {subject} ("
    ), err
    assert not runs.exists()
    argv = ["eval", "--run", str(out / "fold2"), "--data", f"bp4d:{root}", "--lists", str(leaky)]
    assert main(argv) == 2
    assert f"{subject} (" in capsys.readouterr().err


def test_list_files_with_an_image_twice_are_refused(bp4d_folds, tmp_path, one_thread, capsys):
    root, lists, _, cache, _ = bp4d_folds
    dup = tmp_path / "lists"
    shutil.copytree(lists, dup)
    folder = dup / "BP4D"
    for name in ("img_path", "label"):
        lines = (folder / f"BP4D_train_{name}_fold1.txt").read_text().splitlines()
        (folder / f"BP4D_train_{name}_fold1.txt").write_text("\n".join([*lines, lines[1]]) + "\n")
    out = tmp_path / "run"
    assert main(train_argv(cache, f"bp4d:{root}", out, "--lists", str(dup), "--fold", "1", epochs=1)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder / 'BP4D_train_img_path_fold1.txt'}: line {len(lines) + 1} names ")
    assert "again (first on line 2)" in err and not out.exists()


def test_a_runs_relative_list_folder_from_another_folder(bp4d_folds, tmp_path, one_thread, capsys, monkeypatch):
    """New runs store absolute paths: eval finds the lists from any working directory. A run saved before, with
    `lists` as typed (relative), names its config.json and --lists when the folder is not found from here."""
    root, lists, out, _, _ = bp4d_folds
    info = json.loads((out / "fold1" / "config.json").read_text())
    assert info["config"]["data"]["lists"] == str(lists) and Path(info["config"]["data"]["lists"]).is_absolute()
    old = tmp_path / "old"
    shutil.copytree(out / "fold1", old)
    info["config"]["data"]["lists"] = "lists_sub"
    (old / "config.json").write_text(json.dumps(info))
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--run", str(old), "--data", f"bp4d:{root}"]) == 2
    assert capsys.readouterr().err == (
        f"error: list folder not found: lists_sub (data.lists of {old / 'config.json'}, as the run was trained; a "
        "relative path is relative to the folder it was trained in): give --lists DIR\n"
    )
    assert main(["eval", "--run", str(old), "--data", f"bp4d:{root}", "--lists", str(lists)]) == 0
    assert main(["eval", "--run", str(out / "fold1"), "--data", f"bp4d:{root}"]) == 0
    capsys.readouterr()


def test_a_phd_students_mistakes_with_bp4d_lists_get_the_right_words(bp4d_folds, tmp_path, one_thread, capsys):
    """Found by the third user test: a fold the data does not have, the `--folds all` folder given as one run, data
    moved since training, list-file data named without its dataset, a list file given as --lists: each one line
    that says what is wrong and what to give instead."""
    root, lists, out, _, _ = bp4d_folds
    spec = f"bp4d:{root}"

    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, lines
        return lines[0]

    fold1 = str(out / "fold1")
    assert "--fold 4: " in error("eval", "--run", fold1, "--data", spec, "--lists", str(lists), "--fold", "4")
    assert "its folds: 1, 2, 3" in error("eval", "--run", fold1, "--fold", "4")
    assert f"evaluate them with --folds all, or give --run {out}/foldK" in error(
        "eval", "--run", str(out), "--fold", "1"
    )
    moved = tmp_path / "moved"
    shutil.copytree(out / "fold1", moved / "fold1")
    config = json.loads((moved / "fold1" / "config.json").read_text())
    config["config"]["data"]["lists"] = str(tmp_path / "gone")
    (moved / "fold1" / "config.json").write_text(json.dumps(config))
    line = error("eval", "--run", str(moved / "fold1"))
    assert f"data.lists {str(tmp_path / 'gone')!r} not found (from {moved / 'fold1' / 'config.json'}" in line
    assert "give --lists DIR" in line
    line = error("eval", "--run", fold1, "--data", str(root), "--lists", str(lists))
    assert f"named with their dataset: --data bp4d:{root} --lists DIR" in line
    a_file = next((lists / "BP4D").glob("BP4D_test_img_path_fold1.txt"), None) or next(lists.rglob("*.txt"))
    assert f"--lists {a_file} is a file" in error("eval", "--run", fold1, "--data", spec, "--lists", str(a_file))
