"""Bad input a user plausibly gives the `hiva_core` command line: one `error: ...` line naming the thing, exit status 2,
nothing written. Real files and the real entry point (`hiva_core.cli.main`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from hiva_core.cli import main
from tests.hiva_core.conftest import train_argv
from tests.hiva_core.imagefix import write_images, write_list_pair


def _error_line(capsys) -> str:
    """The command's stderr, checked to be the one `error: ...` line of the contract."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _manifest(tiny_faces: Path, folder: Path, rows: int = 12) -> pd.DataFrame:
    """The first rows of the tiny faces' manifest, with absolute image paths (manifests written under `folder`)."""
    df = pd.read_csv(tiny_faces).head(rows).drop(columns=["fold", "subject"])
    df["path"] = [str(tiny_faces.parent / p) for p in df["path"]]
    folder.mkdir(parents=True, exist_ok=True)
    return df


def _train_fails(text_cache: Path, data: Path, out: Path, capsys, *extra: str) -> str:
    assert main(train_argv(text_cache, data, out, *extra, epochs=1)) == 2
    assert not out.exists()  # nothing made
    return _error_line(capsys)


# ------------------------------------------------------------------------------------------------------ manifests
def test_manifest_column_named_twice(tmp_path, text_cache, tiny_faces, capsys):
    """pandas renames a second AU1 to AU1.1, whose labels were then silently left out of training."""
    data = tmp_path / "m.csv"
    text = _manifest(tiny_faces, tmp_path).to_csv(index=False)
    data.write_text(text.replace("path,AU1,AU2,AU4", "path,AU1,AU2,AU1", 1))
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert f"{data}: line 1" in line and "AU1 more than once" in line


def test_manifest_path_listed_twice(tmp_path, text_cache, tiny_faces, capsys):
    df = _manifest(tiny_faces, tmp_path)
    data = tmp_path / "m.csv"
    pd.concat([df, df.iloc[[3]].assign(AU1=1 - df["AU1"].iloc[3])]).to_csv(data, index=False)
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert f"{data}: line 14" in line and "listed again (first on line 5)" in line


def test_manifest_header_with_spaces_is_read(tmp_path, text_cache, tiny_faces, capsys):
    """`path, AU1, AU2` (spaces after the commas) names the columns it looks like: the bad label on line 4 is what
    fails, not 'no AU label columns'."""
    df = _manifest(tiny_faces, tmp_path).astype({"AU2": object})
    df.loc[2, "AU2"] = "x"
    data = tmp_path / "m.csv"
    data.write_text(df.to_csv(index=False).replace(",", ", "))
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert f"{data}: line 4: AU2 = 'x' is not allowed" in line


def test_manifest_semicolons_say_so(tmp_path, text_cache, tiny_faces, capsys):
    data = tmp_path / "m.csv"
    _manifest(tiny_faces, tmp_path).to_csv(data, index=False, sep=";")
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert "no 'path' column" in line and "separated by ';'" in line and "comma-separated" in line


def test_manifest_with_a_header_only_says_it_has_no_rows(tmp_path, text_cache, tiny_faces, capsys):
    data = tmp_path / "m.csv"
    _manifest(tiny_faces, tmp_path).head(0).to_csv(data, index=False)
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert f"manifest {data} has no rows, only its header" in line


def test_list_file_images_named_without_their_dataset(tmp_path, text_cache, capsys):
    """`--data IMAGES --lists DIR` without `bp4d:`: train says how to name it, the dataset guessed from the list
    files DIR holds (it said only that the folder holds no manifest)."""
    write_images(tmp_path / "img", ["S1/0.png"])
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "DISFA_train_path_fold1.txt").write_text("S1/0.png\n")
    line = _train_fails(text_cache, tmp_path / "img", tmp_path / "run", capsys, "--lists", str(lists))
    assert f"list-file data is named with its dataset, disfa:{tmp_path / 'img'}; a manifest" in line


def test_eval_on_data_lacking_some_of_the_runs_aus_says_which_to_score(tmp_path, trained_run, tiny_faces, capsys):
    """The run predicts AU1, AU2, AU4; data labelling only AU2 and AU4: the error says to score those with --aus,
    which then works."""
    run, _ = trained_run
    data = tmp_path / "m.csv"
    _manifest(tiny_faces, tmp_path, rows=40).drop(columns="AU1").to_csv(data, index=False)
    assert main(["eval", "--run", str(run), "--data", str(data)]) == 2
    line = _error_line(capsys)
    assert "AU1 not labelled in" in line and "score those it labels with --aus 2,4" in line, line
    assert main(["eval", "--run", str(run), "--data", str(data), "--aus", "2,4"]) == 0


@pytest.mark.parametrize("column", ["AUl2", "AU 2", "AU2_c"])
def test_mistyped_au_column_is_refused(tmp_path, text_cache, tiny_faces, capsys, column):
    """AU2 mistyped: its labels were silently left out and the run trained without AU2 (exit 0)."""
    data = tmp_path / "m.csv"
    _manifest(tiny_faces, tmp_path).rename(columns={"AU2": column}).to_csv(data, index=False)
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert line.startswith(f"error: {data}: column '{column}' is not an AU column; ") and "AU<number>_int" in line


def test_au_columns_in_any_case_train(tmp_path, text_cache, tiny_faces, capsys):
    data = tmp_path / "m.csv"
    df = _manifest(tiny_faces, tmp_path).rename(columns={"AU2": "au2", "AU4": "Au4"})
    df.assign(split=["test"] * 4 + ["train"] * 8).to_csv(data, index=False)
    assert main(train_argv(text_cache, data, tmp_path / "run", "--set", "train.max_steps_per_epoch=1", epochs=1)) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["aus"] == [1, 2, 4]


def test_corrupt_test_image_fails_before_training(tmp_path, text_cache, tiny_faces, capsys):
    """A test image that is not an image: named before the first step, not after a whole epoch of training."""
    df = _manifest(tiny_faces, tmp_path).assign(split=["test"] * 4 + ["train"] * 8)
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    df.loc[2, "path"] = str(bad)
    data = tmp_path / "m.csv"
    df.to_csv(data, index=False)
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert line == (
        f"error: 1 of 4 images cannot be read ({data}): {bad} is not an image file Pillow can read; replace the file, "
        f"or remove its row from {data}"
    )


def test_unknown_dataset_name_is_named(tmp_path, trained_run, capsys):
    run_dir, _ = trained_run
    assert main(["eval", "--run", str(run_dir), "--data", f"bp4:{tmp_path}", "--lists", str(tmp_path)]) == 2
    assert "unknown dataset 'bp4'" in _error_line(capsys)


def _split_manifest(tiny_faces: Path, folder: Path, train_labels: dict[str, object]) -> Path:
    """A manifest of 24 tiny faces with a split column: 16 train rows whose columns in `train_labels` are set to that
    value, 8 test rows labelled as made."""
    df = _manifest(tiny_faces, folder, rows=24).astype(object)
    df["split"] = ["train"] * 16 + ["test"] * 8
    for column, value in train_labels.items():
        df.loc[df["split"] == "train", column] = value
    data = folder / "m.csv"
    df.to_csv(data, index=False)
    return data


@pytest.mark.parametrize("unknown", [9, ""], ids=["nine", "empty"])
def test_training_rows_without_any_known_label(tmp_path, text_cache, tiny_faces, capsys, unknown):
    """Every training label unknown: training ran on nothing, exited 0 with `test avg F1 nan` and left a run."""
    data = _split_manifest(tiny_faces, tmp_path, {"AU1": unknown, "AU2": unknown, "AU4": unknown})
    line = _train_fails(text_cache, data, tmp_path / "run", capsys)
    assert f"{data}: the train split has no known label at all" in line and "AU1, AU2, AU4" in line


def test_training_rows_without_a_known_label_for_some_aus(tmp_path, text_cache, tiny_faces, capsys):
    """AU2 and AU4 never labelled in training: their heads would learn nothing; say which and how to leave them out.
    An --out folder that already existed (empty) is left as it was."""
    data = _split_manifest(tiny_faces, tmp_path, {"AU2": 9, "AU4": ""})
    out = tmp_path / "run"
    out.mkdir()
    assert main(train_argv(text_cache, data, out, epochs=1)) == 2
    line = _error_line(capsys)
    assert f"{data}: the train split has no known label for AU2, AU4" in line and "(--set data.aus=1)" in line
    assert list(out.iterdir()) == []
    # As suggested, without them: trains.
    assert main([*train_argv(text_cache, data, out, epochs=1), "--set", "data.aus=1"]) == 0


def test_validation_slice_taking_an_aus_only_labels(tmp_path, text_cache, tiny_faces, capsys):
    """AU4 is labelled on one training frame only, and the validation slice (drawn with the run's seed, as
    validation_split draws it) holds that frame out: what is left trains AU4's head on nothing."""
    import numpy as np

    from hiva_core.data.dataset import AUDataset
    from hiva_core.data.splits import validation_split

    # 16 training frames naming no subject: the slice is half of them, at random from the seed.
    _, val, _ = validation_split(AUDataset([str(i) for i in range(16)], np.zeros((16, 1)), [4]), 0.5, 0)
    held = int(val.files[0])
    df = _manifest(tiny_faces, tmp_path, rows=24).astype(object)
    df["split"] = ["train"] * 16 + ["test"] * 8
    df.loc[:15, "AU4"] = 9
    df.loc[held, "AU4"] = 1
    data = tmp_path / "m.csv"
    df.to_csv(data, index=False)
    extra = ("--set", "data.val_fraction=0.5", "--set", "train.seed=0")
    line = _train_fails(text_cache, data, tmp_path / "run", capsys, *extra)
    slice_text = "the train split, less its validation slice (data.val_fraction=0.5)"
    assert f"{data}: {slice_text}, has no known label for AU4" in line and "(--set data.aus=1,2)" in line


def test_folds_all_checks_every_folds_labels_before_training(tmp_path, text_cache, tiny_faces, capsys):
    """--folds all: fold 2's training rows (folds 1 and 3) never label AU4 while fold 1's do. Refused before fold 1
    trains (it used to train fold 1, then refuse fold 2), naming fold 2; nothing is made."""
    df = _manifest(tiny_faces, tmp_path, rows=24).astype(object)
    df["fold"] = [1, 2, 3] * 8
    df.loc[df["fold"] != 2, "AU4"] = 9
    data = tmp_path / "m.csv"
    df.to_csv(data, index=False)
    line = _train_fails(text_cache, data, tmp_path / "run", capsys, "--folds", "all")
    assert f"{data}: the train split of fold 2 has no known label for AU4" in line and "(--set data.aus=1,2)" in line


def test_folds_all_checks_the_labels_left_after_traces_go(tmp_path, text_cache, tiny_faces, capsys):
    """--folds all with data.traces=unknown: fold 2's training rows (folds 1 and 3) label AU4 only as traces (absent
    beside an intensity above 0), which the option leaves unknown. Refused before fold 1 trains, naming fold 2."""
    df = _manifest(tiny_faces, tmp_path, rows=24).astype(object)
    df["fold"] = [1, 2, 3] * 8
    df["AU4_int"] = [0.0 if f == 2 else 0.1 for f in df["fold"]]
    df.loc[df["fold"] != 2, "AU4"] = 0
    data = tmp_path / "m.csv"
    df.to_csv(data, index=False)
    line = _train_fails(text_cache, data, tmp_path / "run", capsys, "--folds", "all", "--set", "data.traces=unknown")
    assert f"{data}: the train split of fold 2 has no known label for AU4" in line


def test_au_without_positives_trains_and_unlabelled_test_au_is_a_dash(tmp_path, text_cache, tiny_faces, capsys):
    """Not refused: an AU whose training labels are all 0 (it learns "absent"), and an AU with no known label in
    the evaluated split (no F1: "–", listed under `unlabelled`)."""
    df = _manifest(tiny_faces, tmp_path, rows=24).astype(object)
    df["split"] = ["train"] * 16 + ["test"] * 8
    df.loc[df["split"] == "train", "AU4"] = 0
    df.loc[df["split"] == "test", "AU2"] = ""
    data = tmp_path / "m.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "run"
    assert main(train_argv(text_cache, data, out, epochs=1)) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())["last"]
    assert metrics["unlabelled"] == ["AU2"] and metrics["per_au"]["AU4"]["f1"] is not None


def test_text_cache_that_is_a_file(tmp_path, text_cache, tiny_faces, capsys):
    """A file given as --text-cache said "not found" although it exists."""
    line = _train_fails(tiny_faces, tiny_faces, tmp_path / "run", capsys)
    assert f"text cache {tiny_faces} is a file, not a cache folder" in line and "not found" not in line


# ------------------------------------------------------------------------------------------------------ list files
def test_list_files_from_windows_editors_read(tmp_path, text_cache, capsys, one_thread):
    """A byte-order mark, old Mac (CR) line ends, spaces after a path and commas between labels are how editors save
    list files: read as the paths and labels they hold."""
    labels = [[i % 2, (i + 1) % 2, 0, 1, 0, i % 2, 0, 1] for i in range(8)]
    lists = tmp_path / "lists"
    for split, subject in (("train", "SN001"), ("test", "SN002")):  # subject-exclusive, as the protocol is
        paths = [f"{subject}/{i}.png" for i in range(8)]
        write_images(tmp_path / "img", paths)
        path_file, label_file = write_list_pair(
            lists / f"DISFA_{split}_path_fold1.txt", lists / f"DISFA_{split}_label_fold1.txt", paths, labels
        )
        path_file.write_bytes(b"\xef\xbb\xbf" + path_file.read_bytes().replace(b"\n", b"  \r\n"))
        label_file.write_bytes(b"\xef\xbb\xbf" + label_file.read_bytes().replace(b"\n", b"\r"))
        if split == "test":  # labels separated by commas, as a spreadsheet saves them
            label_file.write_bytes(label_file.read_bytes().replace(b" ", b","))
    out = tmp_path / "run"
    argv = train_argv(text_cache, f"disfa:{tmp_path / 'img'}", out, "--lists", str(lists), epochs=1)
    assert main([*argv, "--set", "data.aus=1,2,4,6"]) == 0, capsys.readouterr().err
    assert (out / "model.safetensors").is_file()


# ------------------------------------------------------------------------------------------------------ run folders
@pytest.mark.parametrize(
    "edit",
    [{"aus": "1,2,4"}, {"image_size": "big"}, {"model_config": None}],
    ids=["aus-text", "image-size-text", "model-config-null"],
)
def test_run_config_edited_by_hand(tmp_path, trained_run, tiny_faces, capsys, edit):
    run_dir, _ = trained_run
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **edit}))
    key = next(iter(edit))
    assert main(["eval", "--run", str(run), "--data", str(tiny_faces), "--json", str(tmp_path / "e.json")]) == 2
    line = _error_line(capsys)
    assert f"{run / 'config.json'}: {key} = " in line and "restore it or train the run again" in line
    assert not (tmp_path / "e.json").exists()
    image = tiny_faces.parent / "img" / "000.png"
    assert main(["predict", str(image), "--run", str(run), "--no-detect", "--out", str(tmp_path / "p.csv")]) == 2
    assert f"{key} = " in _error_line(capsys) and not (tmp_path / "p.csv").exists()


def test_run_that_is_a_file(tmp_path, tiny_faces, capsys):
    assert main(["eval", "--run", str(tiny_faces), "--data", str(tiny_faces)]) == 2
    assert f"run folder {tiny_faces} is a file, not a run folder" in _error_line(capsys)


# ------------------------------------------------------------------------------------------------------ options
def test_config_yaml_error_is_one_line(tmp_path, text_cache, tiny_faces, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train: [1, 2\n")
    line = _train_fails(text_cache, tiny_faces, tmp_path / "run", capsys, "--config", str(config))
    assert f"config file {config} is not valid YAML" in line


def test_infinite_learning_rate_refused_before_training(tmp_path, text_cache, tiny_faces, capsys):
    line = _train_fails(text_cache, tiny_faces, tmp_path / "run", capsys, "--set", "optim.lr=inf")
    assert "optim.lr must be a finite number > 0" in line


# ------------------------------------------------------------------------------------------------------ predict, adapt
def test_predict_inputs_that_are_not_files(trained_run, capsys):
    run_dir, _ = trained_run
    assert main(["predict", "https://example.com/face.jpg", "--run", str(run_dir), "--no-detect"]) == 2
    line = _error_line(capsys)
    assert "example.com/face.jpg: a URL" in line and "download it" in line  # https:/ or, as typed, https://
    assert main(["predict", "/dev/null", "--run", str(run_dir), "--no-detect"]) == 2
    assert "input /dev/null is neither a file nor a folder" in _error_line(capsys)


@pytest.mark.parametrize("value", ["-5", "0", "nan"])
def test_min_face_must_be_positive(tmp_path, trained_run, tiny_faces, capsys, value):
    """A min face of 0, below or NaN found no face at all: every frame came out no_face with exit status 0."""
    run_dir, _ = trained_run
    image = str(tiny_faces.parent / "img" / "000.png")
    out = tmp_path / "p.csv"
    assert main(["predict", image, "--run", str(run_dir), "--min-face", value, "--out", str(out)]) == 2
    assert "--min-face must be a positive number of pixels" in _error_line(capsys)
    assert not out.exists()
    assert main(["adapt", image, "--run", str(run_dir), "--out", str(tmp_path / "a"), "--min-face", value]) == 2
    assert "--min-face must be a positive number of pixels" in _error_line(capsys)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("value", ["0", "-2"])
def test_predict_every_must_be_at_least_one(tmp_path, trained_run, tiny_faces, capsys, value):
    run_dir, _ = trained_run
    out = tmp_path / "p.csv"
    image = str(tiny_faces.parent / "img" / "000.png")
    assert main(["predict", image, "--run", str(run_dir), "--every", value, "--out", str(out)]) == 2
    assert f"--every must be at least 1 (1: every frame of a video, 10: every tenth), got {value}" in _error_line(
        capsys
    )
    assert not out.exists()


def test_cuda_asked_for_without_cuda_names_the_option(trained_run, tiny_faces, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run_dir, _ = trained_run
    image = str(tiny_faces.parent / "img" / "000.png")
    assert main(["predict", image, "--run", str(run_dir), "--no-detect", "--device", "cuda"]) == 2
    assert "use --device cpu" in _error_line(capsys)
