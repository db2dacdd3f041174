"""`hiva_core neutral`: each frame's neutral frame (its clip's resting frame) for data without them: BP4D list files
(a `*_neutral*` list the list loader reads) and manifests (a copy with a `neutral` column), by the labels or a run."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augtext.errors import UserError
from hiva_core.cli import main
from hiva_core.data import build_dataset
from tests.hiva_core.imagefix import write_protocol_sample


def _expected(paths: list[str], scores: np.ndarray, clip) -> list[str]:
    """Per row, the path of its clip's lowest-scored frame, the middle one of a tie (what the docs promise)."""
    rows = defaultdict(list)
    for i, path in enumerate(paths):
        rows[clip(path)].append(i)
    chosen = {}
    for members in rows.values():
        low = min(scores[i] for i in members)
        tied = [i for i in members if scores[i] == low]
        for i in members:
            chosen[i] = paths[tied[len(tied) // 2]]
    return [chosen[i] for i in range(len(paths))]


def test_bp4d_lists_get_each_clips_least_labelled_frame(shared_data, tmp_path, capsys):
    root, lists = write_protocol_sample(shared_data / "protocols", tmp_path, "bp4d", n=40, size=(40, 48))
    spec = f"bp4d:{root}"
    paths = (lists / "BP4D" / "BP4D_test_img_path_fold1.txt").read_text().splitlines()
    labels = np.loadtxt(lists / "BP4D" / "BP4D_test_label_fold1.txt")
    assert build_dataset(spec, split="test", lists=lists).references is None
    assert main(["neutral", "--data", spec, "--lists", str(lists), "--split", "test", "--fold", "1"]) == 0
    written = lists / "BP4D" / "BP4D_test_neutral_fold1.txt"
    assert "frames in" in capsys.readouterr().err and written.is_file()
    clip = lambda p: tuple(p.split("/")[:2])  # noqa: E731 - F007/T1
    expected = _expected(paths, labels.sum(1), clip)
    assert written.read_text().splitlines() == expected
    assert len({clip(p) for p in paths}) >= 2  # the sample spans clips
    for path, rest in zip(paths, expected, strict=True):
        assert clip(rest) == clip(path)  # the same subject and task
    # The list loader reads it line for line; a run with model.reference pairs the rows.
    ds = build_dataset(spec, split="test", fold=1, lists=lists, image_size=32)
    assert ds.references == expected
    assert ds.pair_references()[0]["image"].shape == (6, 32, 32)
    assert build_dataset(spec, split="train", lists=lists).references is None  # train has none yet
    written.write_text("\n".join(expected[:-1]) + "\n")
    with pytest.raises(UserError, match=r"BP4D_test_neutral_fold1.txt has 39 lines but .* 40 image lines"):
        build_dataset(spec, split="test", lists=lists)
    assert main(["neutral", "--data", spec, "--lists", str(lists), "--split", "test"]) == 0  # written anew
    assert written.read_text().splitlines() == expected
    assert main(["neutral", "--data", spec, "--lists", str(lists), "--out", str(tmp_path / "x.txt")]) == 2
    assert "drop --out" in capsys.readouterr().err
    assert main(["neutral", "--data", spec, "--lists", str(lists), "--clip", "task"]) == 2
    assert "--clip must be one of sequence, subject" in capsys.readouterr().err


def test_clip_subject_takes_the_resting_frame_from_any_of_the_subjects_tasks(tmp_path):
    """A subject whose task T1 never rests but whose T2 does: by sequence T1 keeps its least expressive frame, by
    subject every frame gets T2's resting one."""
    from hiva_core.neutral import run_neutral

    lists = tmp_path / "lists"
    lists.mkdir()
    paths = ["F001/T1/1.jpg", "F001/T1/2.jpg", "F001/T2/1.jpg", "F001/T2/2.jpg", "M002/T1/1.jpg"]
    present = [[1, 2], [1], [6, 12], [], [4]]  # AUs present per frame
    rows = [
        " ".join("1" if au in aus else "0" for au in (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)) for aus in present
    ]
    (lists / "BP4D_train_img_path_fold1.txt").write_text("\n".join(paths) + "\n")
    (lists / "BP4D_train_label_fold1.txt").write_text("\n".join(rows) + "\n")
    written = lists / "BP4D_train_neutral_fold1.txt"
    run_neutral(f"bp4d:{tmp_path}", lists=lists)
    assert written.read_text().splitlines() == [paths[1], paths[1], paths[3], paths[3], paths[4]]
    summary = run_neutral(f"bp4d:{tmp_path}", lists=lists, clip="subject")
    assert written.read_text().splitlines() == [paths[3]] * 4 + [paths[4]]
    assert summary["clips"] == 2 and summary["resting_with_aus"] == 1  # M002 never rests


def _files(manifest: Path, column: str) -> list[Path]:
    """The files a manifest's column names (relative paths are relative to the manifest)."""
    table = pd.read_parquet(manifest) if manifest.suffix == ".parquet" else pd.read_csv(manifest)
    return [(manifest.parent / p).resolve() for p in table[column]]


def test_a_manifest_gets_a_neutral_column_chosen_by_a_run(trained_run, tiny_faces, tmp_path, capsys):
    """A copy of the manifest (in another folder: its relative paths rewritten to name the same files) with each
    row's neutral frame: its subject's frame the run reads alone as least expressive, or the least labelled."""
    import torch

    from hiva_core.checkpoint import load_run

    run, _ = trained_run
    out = tmp_path / "with_neutral.csv"
    assert main(["neutral", "--data", str(tiny_faces), "--run", str(run), "--out", str(out)]) == 0
    assert f"read alone by {run}" in capsys.readouterr().err
    source = pd.read_csv(tiny_faces)
    table = pd.read_csv(out)
    pd.testing.assert_frame_equal(table.drop(columns=["neutral", "path"]), source.drop(columns="path"))
    assert _files(out, "path") == _files(tiny_faces, "path")
    loaded = load_run(run)
    ds = build_dataset(tiny_faces, split="all", image_size=loaded.image_size)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    scores = loaded.predict(images)["probs"].float().mean(1).numpy()
    subjects = dict(zip(source["path"], source["subject"], strict=True))
    expected = [(tiny_faces.parent / p).resolve() for p in _expected(list(source["path"]), scores, subjects.get)]
    assert _files(out, "neutral") == expected
    read = build_dataset(out, split="all")
    assert [Path(read.reference_path(i)).resolve() for i in range(len(read))] == expected
    # by the labels
    labelled = tmp_path / "by_labels.parquet"
    assert main(["neutral", "--data", str(tiny_faces), "--out", str(labelled)]) == 0
    counts = source[["AU1", "AU2", "AU4"]].sum(1).to_numpy()
    by_labels = _expected(list(source["path"]), counts, subjects.get)
    assert _files(labelled, "neutral") == [(tiny_faces.parent / p).resolve() for p in by_labels]
    for argv, match in (
        ([], "--out: name the manifest"),
        (["--out", str(tiny_faces)], "is the manifest read"),
        (["--out", str(tmp_path / "x.json")], r"\.csv or \.parquet"),
    ):
        assert main(["neutral", "--data", str(tiny_faces), *argv]) == 2
        assert re.search(match, capsys.readouterr().err), match
    assert not Path(tmp_path / "x.json").exists()
