"""One framing for train, eval and predict: raw manifests aligned on the fly (`data.align`), and which rows `eval`
scores (data without folds is evaluated whole)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hiva_core.cli import main
from hiva_core.run_folder import RunFolder
from tests.hiva_core.conftest import train_argv


def _manifest(tiny_faces: Path, path: Path, edit) -> Path:
    frame = pd.read_csv(tiny_faces)
    frame["path"] = [str(tiny_faces.parent / p) for p in frame["path"]]
    edit(frame).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------------ which rows eval scores
def test_eval_of_a_fold_run_on_data_without_folds_scores_every_row(trained_run, tiny_faces, tmp_path, capsys):
    run, _ = trained_run  # trained with --fold 1
    whole = _manifest(tiny_faces, tmp_path / "whole.csv", lambda f: f.drop(columns="fold"))
    out = tmp_path / "whole.json"
    assert main(["eval", "--run", str(run), "--data", str(whole), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    # every row, 64 of them the run's training faces (folds 2 and 3): said in the header, the JSON and a warning
    rows = (
        "all rows: no fold or split column; 64 of these 96 faces are training faces of the run: a training score there"
    )
    assert f"({rows}, 96 frames;" in captured.out and "training faces (train_faces.npy)" in captured.err
    result = json.loads(out.read_text())
    assert result["n"] == 96 and result["fold"] is None and result["rows"] == rows and result["trained_faces"] == 64
    # A split column: its test rows. Folds: the run's fold, as before.
    split = _manifest(
        tiny_faces,
        tmp_path / "split.csv",
        lambda f: f.assign(split=np.where(f["fold"] == 1, "test", "train")).drop(columns="fold"),  # held out
    )
    assert main(["eval", "--run", str(run), "--data", str(split)]) == 0
    assert "(split test, 32 frames;" in capsys.readouterr().out
    assert main(["eval", "--run", str(run), "--data", str(tiny_faces)]) == 0
    assert "(fold 1, 32 frames;" in capsys.readouterr().out
    # A fold the user names still needs folds in the data.
    assert main(["eval", "--run", str(run), "--data", str(whole), "--fold", "2"]) == 2
    assert "no fold column" in capsys.readouterr().err


def test_eval_selection_rules(tiny_faces, tmp_path):
    from hiva_core.data.splits import eval_selection

    whole = _manifest(tiny_faces, tmp_path / "whole.csv", lambda f: f.drop(columns="fold"))
    assert eval_selection(tiny_faces, None, 2).fold == 2 and eval_selection(tiny_faces, 3, 2).fold == 3
    assert eval_selection(whole, None, 2).split == "all"
    assert eval_selection("gft:/x", None, 1).text == "split test"  # GFT: one official split, no folds
    assert eval_selection("bp4d:/x", None, None).fold == 1


# --------------------------------------------------------------------------------------------------- data.align
@pytest.fixture(scope="module")
def raw_faces(tmp_path_factory) -> Path:
    """A manifest of unaligned photos: the astronaut at three scales and places, mirrored, and one image with no
    face; split train / test."""
    pytest.importorskip("facenet_pytorch", reason="face detection needs: pip install --no-deps facenet-pytorch")
    from skimage import data

    root = tmp_path_factory.mktemp("raw")
    face = data.astronaut()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        canvas = np.full((420, 380, 3), 40 + 20 * i, dtype=np.uint8)
        side = 220 + 20 * (i % 4)
        img = np.asarray(Image.fromarray(face).resize((side, side)))
        img = img[:, ::-1] if i % 2 else img
        y, x = 10 + 15 * (i % 3), 5 + 20 * (i % 5)
        canvas[y : y + side, x : x + side] = img
        Image.fromarray(canvas).save(root / f"photo{i}.jpg", quality=95)
        rows.append({"path": f"photo{i}.jpg", "split": "test" if i >= 6 else "train"})
    wall = rng.integers(0, 255, size=(200, 200, 3), dtype=np.uint8)
    Image.fromarray(wall).save(root / "wall.png")
    rows.append({"path": "wall.png", "split": "train"})
    frame = pd.DataFrame(rows)
    for au in (1, 2, 4):
        frame[f"AU{au}"] = rng.integers(0, 2, size=len(frame))
    frame.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_align_caches_predicts_crops_and_leaves_out_faceless_images(raw_faces, capsys):
    from hiva_core.data import build_dataset
    from hiva_core.data.aligned import CACHE_NAME, CropCache, align_dataset
    from hiva_core.faces.stream import FaceStream, StageTimer

    raw = build_dataset(raw_faces, split="train", image_size=32)
    aligned = align_dataset(raw, progress=False, split="train")
    err = capsys.readouterr().err
    assert f"no face found in {raw_faces.parent / 'wall.png'}; left out of the train rows" in err
    assert len(aligned) == 6 and list(aligned.labels[:, 0]) == list(raw.labels[:6, 0])
    cache = raw_faces.parent / CACHE_NAME
    assert len(list(cache.glob("*/*.png"))) == 6 and len(list(cache.glob("*/*.noface"))) == 1
    # The cached crop is predict's crop of the same photo, pixel for pixel.
    face = next(iter(FaceStream([(raw_faces.parent / "photo3.jpg", "image")], StageTimer())))
    assert np.array_equal(np.asarray(Image.open(aligned.path(3))), np.asarray(face.crop))
    assert aligned.origin(3) == raw.path(3) != aligned.path(3)  # the photo a crop came from (eval --per-face)
    assert aligned.subset([3]).origin(0) == raw.path(3)
    assert aligned[0]["image"].shape == (3, 32, 32)
    # A second pass reads the cache; an edited image is aligned again (its key follows mtime and size).
    store = CropCache(cache)
    key = store.key(raw_faces.parent / "photo0.jpg")
    st = os.stat(raw_faces.parent / "photo0.jpg")
    os.utime(raw_faces.parent / "photo0.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert store.key(raw_faces.parent / "photo0.jpg") != key


def test_align_works_from_a_relative_manifest_path(raw_faces, monkeypatch):
    """A manifest named relative to the working folder: the crops are found where they were written (their folder
    was once joined to the relative root twice: work/set/work/set/hiva_aligned/...)."""
    from hiva_core.data import build_dataset
    from hiva_core.data.aligned import align_dataset

    monkeypatch.chdir(raw_faces.parent.parent)
    relative = Path(raw_faces.parent.name) / raw_faces.name
    aligned = align_dataset(build_dataset(relative, split="test", image_size=32), progress=False, split="test")
    assert len(aligned) == 2
    assert all(Path(aligned.path(i)).is_file() for i in range(len(aligned)))
    assert aligned[1]["image"].shape == (3, 32, 32)


def test_train_eval_with_align_see_one_framing(raw_faces, text_cache, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    cache = tmp_path / "crops"
    align = ("--set", "data.align=true", "--set", f"data.align_cache={cache}")
    assert main(train_argv(text_cache, raw_faces, out, *align, epochs=1)) == 0
    info = RunFolder(out).read_config()
    assert info["config"]["data"]["align"] is True and info["data"]["train_frames"] == 6  # wall.png left out
    assert "no face found" in capsys.readouterr().err
    crops = sorted(cache.glob("*/*.png"))
    assert len(crops) == 8
    # eval of that run aligns as it was trained, from the cache: no detector call.
    import hiva_core.faces.detect as detect

    def no_detector(*args, **kwargs):
        raise AssertionError("the crops were cached")

    monkeypatch.setattr(detect, "detect_faces_batch", no_detector)
    assert main(["eval", "--run", str(out), "--data", str(raw_faces)]) == 0
    assert "(split test, 2 frames;" in capsys.readouterr().out
    assert main(["eval", "--run", str(out), "--data", str(raw_faces), "--no-align"]) == 0  # the raw photos
    assert "(split test, 2 frames;" in capsys.readouterr().out
    # A test image without a face: left out, and the header and the JSON say so (not only a warning).
    walled = raw_faces.parent / "walled.csv"
    pd.read_csv(raw_faces).assign(split=lambda d: d["split"].where(d["path"] != "wall.png", "test")).to_csv(
        walled, index=False
    )
    monkeypatch.undo()  # the wall's crop was cached as no face; a copy of the manifest finds it all the same
    scored = tmp_path / "walled.json"
    assert main(["eval", "--run", str(out), "--data", str(walled), "--json", str(scored)]) == 0
    assert "split test; 1 of its 3 frames left out: no face found, 2 frames;" in capsys.readouterr().out
    result = json.loads(scored.read_text())
    assert result["no_face"] == 1 and result["n"] == 2 and result["trained_faces"] == 0


def test_align_errors_name_the_problem(raw_faces, tmp_path, capsys):
    from augtext.errors import UserError
    from hiva_core.data import build_dataset
    from hiva_core.data.aligned import align_dataset

    walls = tmp_path / "walls.csv"
    pd.DataFrame([{"path": str(raw_faces.parent / "wall.png"), "AU1": 1}]).to_csv(walls, index=False)

    with pytest.raises(UserError, match="found no face in any of the 1 images"):
        align_dataset(build_dataset(walls, split="all"), tmp_path / "c", progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="data.align_cache"):
        align_dataset(build_dataset(walls, split="all"), blocker, progress=False)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    bad = tmp_path / "bad.csv"
    pd.DataFrame([{"path": str(broken), "AU1": 1}]).to_csv(bad, index=False)
    with pytest.raises(UserError, match="cannot read image .*broken.jpg"):
        align_dataset(build_dataset(bad, split="all"), tmp_path / "c", progress=False)


def test_align_aligns_neutral_frames_too_each_file_once(raw_faces, text_cache, tmp_path, capsys):
    """A manifest's `neutral` column is aligned with the faces (a run with model.reference reads both in one
    framing): each neutral file once however many rows name it; a row whose neutral frame has no face is left out."""
    from hiva_core.data import build_dataset
    from hiva_core.data.aligned import align_dataset
    from hiva_core.faces.stream import FaceStream, StageTimer

    frame = pd.read_csv(raw_faces)
    frame["path"] = [str(raw_faces.parent / p) for p in frame["path"]]
    frame["neutral"] = [str(raw_faces.parent / ("photo1.jpg" if i % 2 else "photo0.jpg")) for i in range(len(frame))]
    frame.loc[5, "neutral"] = str(raw_faces.parent / "wall.png")  # a neutral frame without a face
    manifest = tmp_path / "with_neutral.csv"
    frame.to_csv(manifest, index=False)
    cache = tmp_path / "crops"
    aligned = align_dataset(build_dataset(manifest, split="train"), cache, progress=False, split="train")
    err = capsys.readouterr().err
    assert f"no face found in {raw_faces.parent / 'wall.png'} (a neutral frame)" in err
    assert len(aligned) == 5  # wall.png's own row and the row beside it left out
    assert len(list(cache.glob("*/*.png"))) == 6 and len(list(cache.glob("*/*.noface"))) == 1  # 6 photos, 1 wall
    rest = next(iter(FaceStream([(raw_faces.parent / "photo1.jpg", "image")], StageTimer()))).crop
    # predict's crop of that photo (up to a grey level here and there: MTCNN's batch of 7 against a batch of 1)
    assert np.abs(np.asarray(Image.open(aligned.reference_path(1))).astype(int) - np.asarray(rest)).mean() < 0.01
    assert aligned.reference_path(1) == aligned.path(1)  # photo1 beside itself: one crop, one file
    assert aligned.pair_references()[0]["image"].shape[0] == 6
    out = tmp_path / "run"
    argv = train_argv(text_cache, manifest, out, "--set", "data.align=true", "--set", f"data.align_cache={cache}")
    assert main([*argv, "--set", "model.reference=true", "--epochs", "1"]) == 0
    assert RunFolder(out).read_config()["data"]["train_frames"] == 5


def test_neutral_by_a_run_reads_the_faces_as_the_run_was_trained(raw_faces, text_cache, tmp_path, capsys, monkeypatch):
    """`hiva_core neutral --run` of a run trained with data.align detects and aligns the raw photos first (the run's
    crop cache), maps each crop's score back to its row, never chooses a frame without a face, and gives a clip
    without any face its middle frame, with a warning; --no-align reads the photos as they are."""
    import hiva_core.neutral as neutral

    out = tmp_path / "run"
    cache = tmp_path / "crops"
    argv = train_argv(text_cache, raw_faces, out, "--set", "data.align=true", "--set", f"data.align_cache={cache}")
    assert main([*argv, "--epochs", "1"]) == 0
    Image.fromarray(np.full((90, 90, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    frame = pd.read_csv(raw_faces)
    frame["path"] = [str(raw_faces.parent / p) for p in frame["path"]]
    frame = pd.concat([frame, frame.iloc[[8]].assign(path=str(tmp_path / "grey.png"))], ignore_index=True)
    frame["subject"] = ["A"] * 4 + ["B"] * 5 + ["C"]  # B: 4 photos and the wall; C: a grey image alone
    manifest = tmp_path / "people.csv"
    frame.to_csv(manifest, index=False)
    capsys.readouterr()

    seen = []
    real = neutral.run_scores

    def recorded(loaded, dataset, batch_size, progress=None):
        scores = real(loaded, dataset, batch_size, progress)
        rows = range(len(dataset))
        seen.append(([dataset.origin(i) for i in rows], [dataset.path(i) for i in rows], scores))
        return scores

    monkeypatch.setattr(neutral, "run_scores", recorded)
    written = tmp_path / "with_neutral.csv"
    assert main(["neutral", "--data", str(manifest), "--run", str(out), "--out", str(written)]) == 0
    err = capsys.readouterr().err
    assert "(faces detected and aligned)" in err and "2 frame(s) without a face found" in err
    assert "warning: 1 clip(s) without any face found: each given its middle frame" in err
    origins, paths, scores = seen[-1]
    assert len(origins) == 8 and all(Path(p).is_relative_to(cache) for p in paths)  # the 8 photos' crops
    score = dict(zip(origins, scores, strict=True))
    chosen = pd.read_csv(written)["neutral"].tolist()
    for subject in ("A", "B"):
        faces = [p for p, s in zip(frame["path"], frame["subject"], strict=True) if s == subject and p in score]
        best = min(faces, key=score.get)
        assert [c for c, s in zip(chosen, frame["subject"], strict=True) if s == subject] == [best] * (
            (frame["subject"] == subject).sum()
        )
    assert chosen[-1] == str(tmp_path / "grey.png")  # C: no face, its middle (only) frame

    assert main(["neutral", "--data", str(manifest), "--run", str(out), "--out", str(written), "--no-align"]) == 0
    assert "detected and aligned" not in capsys.readouterr().err
    assert seen[-1][1] == frame["path"].tolist()  # the raw files, wall included
    assert main(["neutral", "--data", str(manifest), "--out", str(written), "--align"]) == 2
    assert "only with --run" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- faces framed unlike the run's
def test_framing_is_measured_against_the_template(raw_faces, tmp_path):
    """The astronaut pasted small and off centre on a canvas is not framed; its aligned crops are, and so is a crop
    that is only a little off (a SynthAU render's turned head measures no worse)."""
    from hiva_core.data import build_dataset
    from hiva_core.data.aligned import Framing, align_dataset, measure_framing

    raw = build_dataset(raw_faces, split="all", image_size=32)
    paths = [raw.path(i) for i in range(len(raw))]
    loose = measure_framing(paths)
    assert loose is not None and not loose.framed and loose.found == 8 and loose.sampled == 9  # the wall: no face
    crops = align_dataset(raw, tmp_path / "crops", progress=False)
    tight = measure_framing([crops.path(i) for i in range(len(crops))])
    assert tight is not None and tight.framed and abs(tight.scale - 1) < 0.05 and tight.shift < 0.03
    assert measure_framing([str(raw_faces.parent / "wall.png")]) is None
    assert "0.50 times the template's size" in Framing(2.0, 0.2, 3, 4).describe()


def test_eval_aligns_faces_framed_unlike_the_runs_training_faces(raw_faces, text_cache, tmp_path, capsys):
    """A run trained on aligned crops (no data.align: they are framed already) records their framing; `eval` of raw
    photos of the same faces, not told --align, finds them framed otherwise and aligns them first, saying so;
    --no-align scores them as they are; the crops themselves are scored as they are without a word. A run without
    the record (trained before it) gets a warning and the photos as they are."""
    from hiva_core.data import build_dataset
    from hiva_core.data.aligned import align_dataset

    raw = build_dataset(raw_faces, split="all", image_size=32)
    crops = align_dataset(raw, tmp_path / "crops", progress=False)
    frame = pd.read_csv(raw_faces)
    frame = frame[frame["path"] != "wall.png"].assign(path=[crops.path(i) for i in range(len(crops))])
    frame.to_csv(tmp_path / "crops.csv", index=False)
    out = tmp_path / "run"
    assert main(train_argv(text_cache, tmp_path / "crops.csv", out, epochs=1)) == 0
    framing = RunFolder(out).read_config()["data"]["framing"]
    assert framing["found"] == 6 and abs(framing["scale"] - 1) < 0.05
    capsys.readouterr()

    assert main(["eval", "--run", str(out), "--data", str(raw_faces)]) == 0
    captured = capsys.readouterr()
    assert "not framed as the run's training faces: each face is detected and aligned first" in captured.err
    assert "(split test; faces detected and aligned first: framed unlike the run's, 2 frames;" in captured.out
    assert main(["eval", "--run", str(out), "--data", str(raw_faces), "--no-align"]) == 0
    assert "framed" not in capsys.readouterr().err
    assert main(["eval", "--run", str(out), "--data", str(tmp_path / "crops.csv")]) == 0
    assert "framed" not in capsys.readouterr().err

    photo = str(raw_faces.parent / "photo0.jpg")
    assert main(["predict", photo, "--run", str(out), "--out", str(tmp_path / "p.csv")]) == 0
    assert "not aligned" not in capsys.readouterr().err  # trained on aligned crops: predict frames faces alike
    adapted = tmp_path / "adapted"  # adapt --data reads the rows eval would, framed the same way (too few to adapt)
    assert main(["adapt", "--run", str(out), "--out", str(adapted), "--data", str(raw_faces)]) == 2
    err = capsys.readouterr().err
    assert "not framed as the run's training faces: each face is detected and aligned first" in err
    assert "found 2 face(s)" in err and "faces detected and aligned first" in err and not adapted.exists()

    info = json.loads((out / "config.json").read_text())
    info["data"].pop("framing")  # a run saved before the record
    (out / "config.json").write_text(json.dumps(info))
    assert main(["eval", "--run", str(out), "--data", str(raw_faces)]) == 0
    err = capsys.readouterr().err
    assert "not framed as hiva_core's template; scored as they are (the run has no record" in err and "--align" in err


def test_a_run_trained_on_unaligned_faces_is_told_so_and_predict_warns(raw_faces, text_cache, tmp_path, capsys):
    """Raw photos trained on as they are (no data.align): train notes that predict will frame new faces otherwise and
    says how to align them; predict with that run warns; eval reads photos as the run was trained, without a word."""
    out = tmp_path / "raw_run"
    assert main(train_argv(text_cache, raw_faces, out, epochs=1)) == 0
    err = capsys.readouterr().err
    assert "note: the run's training faces were not aligned (faces at " in err and "--set data.align=true" in err
    photo = str(raw_faces.parent / "photo0.jpg")
    assert main(["predict", photo, "--run", str(out), "--out", str(tmp_path / "p.csv")]) == 0
    assert "warning: the run's training faces were not aligned" in capsys.readouterr().err
    assert main(["eval", "--run", str(out), "--data", str(raw_faces)]) == 0
    assert "framed" not in capsys.readouterr().err


def test_without_the_detector_package_train_and_eval_read_faces_as_before(
    tiny_faces, text_cache, tmp_path, capsys, monkeypatch
):
    """The framing check needs facenet-pytorch; where it is not installed, train records no framing and eval scores
    the data as it is: neither needs the detector otherwise, and neither fails for the lack of it."""
    import sys

    import hiva_core.faces.detect as detect
    from hiva_core.data.aligned import measure_framing

    for name in [m for m in sys.modules if m.startswith("facenet_pytorch")] + ["facenet_pytorch"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(detect, "_DETECTORS", {})
    assert measure_framing([str(tiny_faces.parent / p) for p in pd.read_csv(tiny_faces)["path"][:4]]) is None
    out = tmp_path / "run"
    assert main(train_argv(text_cache, tiny_faces, out, epochs=1)) == 0
    assert RunFolder(out).read_config()["data"]["framing"] is None
    assert main(["eval", "--run", str(out), "--data", str(tiny_faces)]) == 0
    assert "framed" not in capsys.readouterr().err
