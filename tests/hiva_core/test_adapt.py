"""hiva_core adapt: a run's BatchNorm statistics re-estimated on unlabelled faces of a new domain, as a new run."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from augtext.errors import UserError
from hiva_core.adapt import MIN_FACES, adapt_batchnorm, batchnorm_layers
from hiva_core.checkpoint import load_run
from hiva_core.cli import main

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def fold_files(manifest: Path, fold: int) -> list[str]:
    rows = pd.read_csv(manifest)
    return [str(manifest.parent / p) for p in rows.loc[rows["fold"] == fold, "path"]]


def test_adapt_batchnorm_keeps_the_mean_over_every_image(trained_run, one_thread):
    """Batches of unequal size count by their size: the first layer's running mean is the mean of its input over all
    images, its variance the size-weighted mean of the batches' variances; nothing but the statistics changes."""
    run, _ = trained_run
    loaded = load_run(run, device="cpu")
    model = loaded.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = batchnorm_layers(model)
    assert layers and all(m.momentum == 0.1 for m in layers)
    trained_mean = layers[0].running_mean.clone()
    images = torch.randn(11, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 + 0.5
    batches = [images[:4], images[4:8], images[8:]]

    inputs = []
    hook = layers[0].register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    seen = adapt_batchnorm(model, batches, (loaded.text_emb, loaded.text_mask))
    hook.remove()

    assert seen == 11
    first = torch.cat(inputs)  # what the first BatchNorm saw: the stem's output, before any adapted statistic
    torch.testing.assert_close(layers[0].running_mean, first.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    var = sum(len(x) * x.transpose(0, 1).flatten(1).var(dim=1) for x in inputs) / 11
    torch.testing.assert_close(layers[0].running_var, var, rtol=1e-4, atol=1e-5)
    after = model.state_dict()
    for key, value in before.items():
        if key.rsplit(".", 1)[-1] in BN_BUFFERS:
            continue
        assert torch.equal(after[key], value), key
    assert not torch.allclose(layers[0].running_mean, trained_mean)
    assert not model.training and all(m.momentum == 0.1 for m in layers)


def test_adapt_batchnorm_needs_batchnorm():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.LayerNorm([4, 6, 6]))
    with pytest.raises(UserError, match="no BatchNorm"):
        adapt_batchnorm(model, [torch.zeros(2, 3, 8, 8)], ())


def test_cli_adapt_writes_a_run_that_eval_uses(trained_run, tiny_faces, tmp_path, one_thread, capsys):
    """--data takes the rows eval would score; the new run holds the run's prior, thresholds and config with an
    `adapted` record, and weights equal to the run's but for the BatchNorm statistics; the run itself is untouched."""
    source = tmp_path / "run"
    shutil.copytree(trained_run[0], source)
    assert (
        main(
            [
                "eval",
                "--run",
                str(source),
                "--data",
                str(tiny_faces),
                "--fold",
                "2",
                "--save-thresholds",
                str(source / "thresholds.json"),
            ]
        )
        == 0
    )
    original = files_of(source)
    out = tmp_path / "adapted"

    assert main(["adapt", "--run", str(source), "--out", str(out), "--data", str(tiny_faces), "--fold", "2"]) == 0
    err = capsys.readouterr().err
    assert f"wrote {out}" in err and "32 faces" in err and "fold 2" in err
    assert files_of(source) == original
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "text_prior.safetensors",
        "thresholds.json",
        "train_faces.npy",  # the faces its weights were trained on: eval still counts them
    ]
    assert (out / "thresholds.json").read_bytes() == original["thresholds.json"]
    assert (out / "train_faces.npy").read_bytes() == original["train_faces.npy"]
    assert (out / "text_prior.safetensors").read_bytes() == original["text_prior.safetensors"]
    config = json.loads((out / "config.json").read_text())
    (record,) = config["adapted"]
    assert record["from"] == str(source) and record["faces"] == 32 and "fold 2" in record["on"]
    assert {k: v for k, v in config.items() if k != "adapted"} == json.loads(original["config.json"])

    a, b = load_run(source, device="cpu").model.state_dict(), load_run(out, device="cpu").model.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.rsplit(".", 1)[-1] in BN_BUFFERS for k in changed)
    json_out = tmp_path / "eval.json"
    assert main(["eval", "--run", str(out), "--data", str(tiny_faces), "--json", str(json_out)]) == 0
    assert json.loads(json_out.read_text())["n"] == 32


def test_adapt_data_needs_no_labels_of_the_runs_aus(trained_run, tiny_faces, tmp_path, one_thread):
    """Adapting reads no label: a manifest that labels only some of the run's AUs (a set from another source) adapts
    the run exactly as the fully labelled one with the same rows."""
    import pandas as pd

    run = trained_run[0]
    aus = load_run(run, device="cpu").aus
    partial = pd.read_csv(tiny_faces).drop(columns=[f"AU{a}" for a in aus[1:]])
    partial["path"] = [str(tiny_faces.parent / p) for p in partial["path"]]
    partial.to_csv(tmp_path / "partial.csv", index=False)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["adapt", "--run", str(run), "--out", str(full), "--data", str(tiny_faces), "--fold", "3"]) == 0
    assert (
        main(["adapt", "--run", str(run), "--out", str(part), "--data", str(tmp_path / "partial.csv"), "--fold", "3"])
        == 0
    )
    a, b = load_run(full, device="cpu").model.state_dict(), load_run(part, device="cpu").model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_adapt_data_needs_no_label_column(trained_run, tiny_faces, tmp_path, one_thread, capsys):
    """A manifest of paths alone (with a fold column, or the fold's rows only) adapts the run as the labelled one
    with the same rows; eval, which scores labels, still refuses it."""
    run = trained_run[0]
    rows = pd.read_csv(tiny_faces)
    rows["path"] = [str(tiny_faces.parent / p) for p in rows["path"]]
    rows[["path", "fold"]].to_csv(tmp_path / "paths_fold.csv", index=False)
    rows.loc[rows["fold"] == 3, ["path"]].to_csv(tmp_path / "paths.csv", index=False)
    runs = {name: tmp_path / name for name in ("full", "paths_fold", "paths")}
    assert main(["adapt", "--run", str(run), "--out", str(runs["full"]), "--data", str(tiny_faces), "--fold", "3"]) == 0
    paths_fold = ["--data", str(tmp_path / "paths_fold.csv"), "--fold", "3"]
    assert main(["adapt", "--run", str(run), "--out", str(runs["paths_fold"]), *paths_fold]) == 0
    assert main(["adapt", "--run", str(run), "--out", str(runs["paths"]), "--data", str(tmp_path / "paths.csv")]) == 0
    capsys.readouterr()
    full = load_run(runs["full"], device="cpu").model.state_dict()
    for name in ("paths_fold", "paths"):
        adapted = load_run(runs[name], device="cpu").model.state_dict()
        for key in full:
            torch.testing.assert_close(adapted[key], full[key])
    assert main(["eval", "--run", str(run), "--data", str(tmp_path / "paths.csv")]) == 2
    assert "has no AU label columns" in capsys.readouterr().err


def test_adapting_to_images_matches_adapting_to_the_same_rows(trained_run, tiny_faces, tmp_path, one_thread):
    """Aligned crops given as files (--no-detect) go through the same transform as the data's rows: the same faces in
    the same order give the same statistics; an adapted run can be adapted again and keeps both records."""
    run = trained_run[0]
    by_rows, by_files, again = tmp_path / "rows", tmp_path / "files", tmp_path / "again"
    assert (
        main(
            [
                "adapt",
                "--run",
                str(run),
                "--out",
                str(by_rows),
                "--data",
                str(tiny_faces),
                "--fold",
                "3",
                "--batch-size",
                "8",
            ]
        )
        == 0
    )
    files = fold_files(tiny_faces, 3)
    assert main(["adapt", "--run", str(run), "--out", str(by_files), "--no-detect", "--batch-size", "8", *files]) == 0
    a, b = load_run(by_rows, device="cpu").model.state_dict(), load_run(by_files, device="cpu").model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    record = json.loads((by_files / "config.json").read_text())["adapted"][0]
    assert record["faces"] == len(files) and record["detect"] is False and "more input(s)" in record["on"]

    assert main(["adapt", "--run", str(by_files), "--out", str(again), "--data", str(tiny_faces), "--fold", "1"]) == 0
    assert [r["from"] for r in json.loads((again / "config.json").read_text())["adapted"]] == [str(run), str(by_files)]


def test_adapted_record_holds_absolute_paths(trained_run, tiny_faces, tmp_path, one_thread, monkeypatch):
    """Paths typed relative to the working folder are stored absolute, as train's config.json stores them: the run
    adapted from, the manifest and the input folder adapted on."""
    shutil.copytree(trained_run[0], tmp_path / "run")
    (tmp_path / "faces").mkdir()
    for path in fold_files(tiny_faces, 3):
        shutil.copy(path, tmp_path / "faces")
    monkeypatch.chdir(tmp_path)
    manifest = os.path.relpath(tiny_faces, tmp_path)
    assert main(["adapt", "--run", "run", "--out", "by_rows", "--data", manifest, "--fold", "3"]) == 0
    assert main(["adapt", "--run", "run", "--out", "by_files", "--no-detect", "faces"]) == 0
    by_rows, by_files = (
        json.loads(Path(name, "config.json").read_text())["adapted"][0] for name in ("by_rows", "by_files")
    )
    assert by_rows["from"] == by_files["from"] == str(tmp_path / "run")
    assert by_rows["on"] == f"{tiny_faces} (fold 3)"
    assert by_files["on"] == str(tmp_path / "faces")


def test_adapt_to_photos_finds_and_aligns_the_faces(trained_run, tmp_path, one_thread, capsys):
    """Without --no-detect, faces are found and aligned as predict does; frames without a face and unreadable files
    add nothing."""
    pytest.importorskip("facenet_pytorch", reason="face detection needs: pip install --no-deps facenet-pytorch")
    from skimage import data

    photos = tmp_path / "photos"
    photos.mkdir()
    face = data.astronaut()
    for k in range(MIN_FACES):
        scaled = np.clip(face.astype(np.float32) * (0.8 + 0.025 * k), 0, 255).astype(np.uint8)
        Image.fromarray(scaled).resize((256, 256)).save(photos / f"face{k:02d}.jpg")
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(photos / "wall.png")
    (photos / "broken.jpg").write_bytes(b"not a JPEG")
    out = tmp_path / "adapted"
    assert main(["adapt", "--run", str(trained_run[0]), "--out", str(out), str(photos)]) == 0
    record = json.loads((out / "config.json").read_text())["adapted"][0]
    assert record["faces"] == MIN_FACES and record["detect"] is True
    assert f"{MIN_FACES} faces" in capsys.readouterr().err


def test_adapt_refuses_bad_requests_and_writes_nothing(trained_run, tiny_faces, tmp_path, one_thread, capsys):
    run = str(trained_run[0])
    few = fold_files(tiny_faces, 1)[: MIN_FACES - 1]
    out = tmp_path / "out"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    cases = [
        (["--no-detect", *few], f"found {MIN_FACES - 1} face(s)"),
        ([], "give the faces to adapt to"),
        (["--data", str(tiny_faces), *few], "give the faces to adapt to"),
        (["--data", str(tiny_faces), "--batch-size", "1"], "--batch-size must be at least 2"),
        (["--data", str(tiny_faces), "--out", str(busy)], "is not empty"),
        (["--data", str(tiny_faces), "--run", str(tmp_path)], "not a run folder"),
        (["--data", str(tmp_path / "missing.csv")], "missing.csv"),
        # an option for the other way of giving the faces: named, not ignored
        ([*few, "--fold", "2"], "--fold applies to --data only"),
        ([*few, "--lists", str(tmp_path / "nowhere"), "--align"], "--lists applies to --data only"),
        ([*few, "--align"], "--align applies to --data only"),
        ([*few, "--no-align", "--no-detect"], "--no-align applies to --data only"),
        ([*few, "--no-detect", "--min-face", "30"], "with --no-detect none is searched"),
        (["--data", str(tiny_faces), "--no-detect"], "--no-detect applies to faces given as images"),
        (["--data", str(tiny_faces), "--min-face", "30"], "--min-face applies to faces searched for"),
        (["--data", str(tiny_faces), "--lists", str(tmp_path)], "--lists applies to --data bp4d:|disfa:|gft:ROOT"),
    ]
    for extra, message in cases:
        assert main(["adapt", "--run", run, "--out", str(out), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, extra  # one line
        assert not out.exists(), extra
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    assert files_of(busy) == {"keep.txt": b"mine"}


def test_help_names_the_values_the_code_takes():
    """export's --opset help names the lowest opset export_onnx takes (and its default), adapt's --min-face help the
    default run_adapt uses: help written apart from the code must not drift from it."""
    import typer

    from hiva_core import export
    from hiva_core.adapt import MIN_FACE_PX
    from hiva_core.cli import app

    commands = typer.main.get_command(app).commands
    opset = next(p for p in commands["export"].params if p.name == "opset")
    assert re.findall(r"\d+", opset.help)[0] == str(export.MIN_OPSET) and opset.default == export.OPSET
    min_face = next(p for p in commands["adapt"].params if p.name == "min_face")
    assert f"default {MIN_FACE_PX:g})" in min_face.help
