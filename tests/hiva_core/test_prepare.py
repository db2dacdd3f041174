"""hiva_core prepare: tiny raw BP4D / DISFA / GFT trees in the real formats -> crops + list files that
hiva_core.data reads back with the right labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augtext.errors import UserError
from augtext.facs import DATASET_AUS

pytest.importorskip("facenet_pytorch", reason="face detection needs: pip install --no-deps facenet-pytorch")

BP4D_SUBJECTS = {"F004": 1, "M002": 2, "F001": 3}  # one subject from each standard fold
DISFA_SUBJECTS = {"SN003": 1, "SN006": 2, "SN001": 3}
CODED = (10, 11, 12)  # BP4D frames with AU codes; 12 shows no face
DISFA_ALL_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()[30:330, 120:330]).resize((140, 200)))


def frame(face: np.ndarray, with_face: bool = True, shift: int = 0) -> np.ndarray:
    image = np.full((240, 240, 3), 100, np.uint8)
    if with_face:
        image[20:220, 50 + shift : 190 + shift] = face
    return image


def bp4d_code(au: int, frame_no: int) -> int:
    """The AU code the tiny BP4D tree holds; frame 11 has AU4 unknown (9)."""
    return 9 if (frame_no, au) == (11, 4) else int((au + frame_no) % 3 == 0)


def write_au_csv(path: Path, codes: dict[int, dict[int, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(range(1, 28))
    lines = [",".join(["0", *map(str, columns)])]
    lines += [",".join([str(f), *(str(codes[f].get(a, 0)) for a in columns)]) for f in sorted(codes)]
    lines.append(",".join(["13", *["9"] * len(columns)]))  # a frame never coded: not listed
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def bp4d_root(tmp_path_factory, face) -> Path:
    root = tmp_path_factory.mktemp("bp4d_raw")
    for subject in BP4D_SUBJECTS:
        seq = root / "Sequences" / subject / "T1"
        seq.mkdir(parents=True)
        for f in CODED:
            Image.fromarray(frame(face, f != 12, f - 10)).save(seq / f"{f:04d}.jpg")
        write_au_csv(
            root / "AUCoding" / f"{subject}_T1.csv", {f: {a: bp4d_code(a, f) for a in range(1, 28)} for f in CODED}
        )
    # A decoy found first in the walk (like BP4D's 3D textures): the folder under Sequences/ must win.
    decoy = root / "3D" / "F004" / "T1"
    decoy.mkdir(parents=True)
    for f in CODED:
        Image.fromarray(frame(face, with_face=False)).save(decoy / f"{f:04d}.jpg")
    return root


def disfa_intensity(au: int, frame_no: int) -> int:
    return (au + frame_no) % 4


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    from tests.hiva_core.test_predict import write_video as _write

    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, frames, fps=20)


@pytest.fixture(scope="module")
def disfa_root(tmp_path_factory, face) -> Path:
    root = tmp_path_factory.mktemp("disfa_raw")
    frames = [frame(face), frame(face, shift=3), frame(face, with_face=False)]  # label frames 1, 2, 3
    for subject in DISFA_SUBJECTS:
        labels = root / "ActionUnit_Labels" / subject
        labels.mkdir(parents=True)
        for au in DISFA_ALL_AUS:
            (labels / f"{subject}_au{au}.txt").write_text("".join(f"{f},{disfa_intensity(au, f)}\n" for f in (1, 2, 3)))
        if subject == "SN001":  # the left camera video ...
            write_video(root / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi", frames)
        else:  # ... or frames extracted beforehand, named by label frame number
            folder = root / "Images_LeftCamera" / subject
            folder.mkdir(parents=True)
            for i, image in enumerate(frames, start=1):
                Image.fromarray(image).save(folder / f"{i}.png")
    return root


def test_prepare_bp4d_lists_read_back_with_the_right_labels(bp4d_root, tmp_path):
    from hiva_core.data import build_dataset
    from hiva_core.prepare import run_prepare

    out = tmp_path / "bp4d"
    summary = run_prepare("bp4d", bp4d_root, out, progress=False)
    assert summary["cropped"] == 6 and summary["problems"] == {"no_face": 3}
    report = pd.read_csv(out / "prepare_report.csv")
    assert sorted(report["crop"]) == [f"{s}/T1/12.jpg" for s in sorted(BP4D_SUBJECTS)]
    aus = DATASET_AUS["bp4d"]
    for fold in (1, 2, 3):
        test = build_dataset(f"bp4d:{out / 'images'}", split="test", fold=fold, lists=out / "lists", image_size=64)
        train = build_dataset(f"bp4d:{out / 'images'}", split="train", fold=fold, lists=out / "lists", image_size=64)
        subjects = {s for s, k in BP4D_SUBJECTS.items() if k == fold}
        assert {test[i]["meta"]["subject"] for i in range(len(test))} == subjects
        assert {train[i]["meta"]["subject"] for i in range(len(train))} == set(BP4D_SUBJECTS) - subjects
        for i in range(len(test)):
            item = test[i]
            f = int(item["meta"]["frame"])
            expected = np.array([bp4d_code(a, f) for a in aus], dtype=float)
            assert item["image"].shape == (3, 64, 64)
            np.testing.assert_array_equal(item["mask"].numpy(), expected != 9)
            np.testing.assert_array_equal(item["labels"].numpy()[expected != 9], expected[expected != 9])
    with Image.open(out / "images" / "F001" / "T1" / "10.jpg") as crop:
        assert crop.size == (256, 256)
    weights = np.loadtxt(out / "lists" / "BP4D_train_weight_fold1.txt")
    assert weights.shape == (12,) and np.isclose(weights.mean(), 1.0)


def test_prepare_is_resumable(bp4d_root, tmp_path, monkeypatch):
    """A second run writes nothing new and only retries the frames that had no face."""
    import hiva_core.faces.detect as detect
    from hiva_core.prepare import run_prepare

    out = tmp_path / "bp4d"
    run_prepare("bp4d", bp4d_root, out, progress=False)
    crop = out / "images" / "M002" / "T1" / "11.jpg"
    before = crop.stat().st_mtime_ns
    seen = []
    monkeypatch.setattr(detect, "detect_faces_batch", lambda images, **kw: seen.extend(images) or [[] for _ in images])
    summary = run_prepare("bp4d", bp4d_root, out, progress=False)
    assert len(seen) == 3 and summary["cropped"] == 6
    assert crop.stat().st_mtime_ns == before


def test_prepare_command_prints_the_summary_and_nothing_else(bp4d_root, tmp_path, capsys):
    """run_prepare returns its summary silently; the command shows it (hiva_core.views) on stderr."""
    from hiva_core.cli import main
    from hiva_core.prepare import run_prepare

    summary = run_prepare("bp4d", bp4d_root, tmp_path / "lib", progress=False)
    assert capsys.readouterr() == ("", "")
    assert summary["report"] == str(tmp_path / "lib" / "prepare_report.csv")
    out = tmp_path / "bp4d"
    assert main(["prepare", "bp4d", "--root", str(bp4d_root), "--out", str(out), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"prepare bp4d: 6/9 labelled frames cropped; not used: 3 no_face (see {out / 'prepare_report.csv'})\n"
        f"train with: --data bp4d:{out / 'images'} --lists {out / 'lists'}\n"
    )


def test_prepare_disfa_from_video_and_frames(disfa_root, tmp_path):
    from hiva_core.data import build_dataset
    from hiva_core.prepare import run_prepare

    out = tmp_path / "disfa"
    summary = run_prepare("disfa", disfa_root, out, progress=False)
    assert summary["cropped"] == 6 and summary["problems"] == {"no_face": 3}
    aus = DATASET_AUS["disfa"]
    paths = (out / "lists" / "DISFA_test_path_fold3.txt").read_text().split()
    assert paths == ["SN001/SN001_0.png", "SN001/SN001_1.png"]  # from the video; names from 0 as in MDHR lists
    for fold in (1, 2, 3):
        ds = build_dataset(f"disfa:{out / 'images'}", split="test", fold=fold, lists=out / "lists", image_size=64)
        assert {ds[i]["meta"]["subject"] for i in range(len(ds))} == {s for s, k in DISFA_SUBJECTS.items() if k == fold}
        for i in range(len(ds)):
            label_frame = int(ds[i]["meta"]["frame"]) + 1
            expected = [float(disfa_intensity(a, label_frame) >= 2) for a in aus]
            np.testing.assert_array_equal(ds[i]["labels"].numpy(), expected)


def test_prepare_gft_with_test_subjects_file(tmp_path, face):
    from hiva_core.data import build_dataset
    from hiva_core.prepare import run_prepare

    root = tmp_path / "gft_raw"
    aus = DATASET_AUS["gft"]
    for n, subject in enumerate(["001A", "002B", "003C"]):
        write_au_csv(
            root / "AUCoding" / f"{subject}.csv", {f: {a: int((a + f + n) % 2 == 0) for a in aus} for f in (1, 2)}
        )
        if subject == "003C":
            write_video(root / "Videos" / f"{subject}.mp4", [frame(face), frame(face, shift=2)])
        else:
            (root / "Sequences" / subject).mkdir(parents=True)
            for f in (1, 2):
                Image.fromarray(frame(face, shift=f)).save(root / "Sequences" / subject / f"{f}.jpg")
    (root / "test_subjects.txt").write_text("003C\n")
    out = tmp_path / "gft"
    assert run_prepare("gft", root, out, progress=False)["cropped"] == 6
    test = build_dataset(f"gft:{out / 'images'}", split="test", lists=out / "lists", image_size=64)
    train = build_dataset(f"gft:{out / 'images'}", split="train", lists=out / "lists", image_size=64)
    assert [p.name for p in test.paths] == ["1.jpg", "2.jpg"] and len(train) == 4
    np.testing.assert_array_equal(test.labels[1], [float((a + 2 + 2) % 2 == 0) for a in aus])


def test_prepare_errors_name_the_file(tmp_path):
    from hiva_core.prepare import run_prepare

    with pytest.raises(UserError, match="unknown dataset"):
        run_prepare("ckplus", tmp_path, tmp_path / "out")
    with pytest.raises(UserError, match="not found"):
        run_prepare("bp4d", tmp_path / "nope", tmp_path / "out")
    with pytest.raises(UserError, match="no BP4D AU coding files"):
        run_prepare("bp4d", tmp_path, tmp_path / "out")
    bad = tmp_path / "raw" / "AUCoding" / "F001_T1.csv"
    write_au_csv(bad, {5: {1: 3}})
    with pytest.raises(UserError, match=r"F001_T1.csv: line 2: AU code 3"):
        run_prepare("bp4d", tmp_path / "raw", tmp_path / "out")
    labels = tmp_path / "disfa" / "SN001"
    labels.mkdir(parents=True)
    (labels / "SN001_au1.txt").write_text("1,0\n")
    with pytest.raises(UserError, match="SN001 has no label file for AU2"):
        run_prepare("disfa", tmp_path / "disfa", tmp_path / "out")


def test_prepare_out_that_is_a_file_is_a_user_error(bp4d_root, tmp_path):
    from hiva_core.prepare import run_prepare

    taken = tmp_path / "taken"
    taken.write_text("a file")
    with pytest.raises(UserError, match=r"--out .*taken is a file, not a folder"):
        run_prepare("bp4d", bp4d_root, taken)
    assert taken.read_text() == "a file"


# ------------------------------------------------------------------------------------------------ your own videos
def test_prepare_videos_with_label_csvs_beside_them(tmp_path, face, capsys, text_cache):
    """Your own labelled videos, as an engineer keeps them: subject folders of clips, each with a CSV of its frames'
    labels in its own spelling (Frame / frame_idx, AU01 / au12, 9 or empty for unknown), a clip without labels
    (left out, said), a subject column naming another person. The manifest holds each labelled frame that shows a
    face, with its labels, subject and a subject-exclusive fold; it trains and evaluates as any manifest."""
    from hiva_core.cli import main
    from hiva_core.data import build_dataset
    from hiva_core.prepare import run_prepare
    from tests.hiva_core.conftest import train_argv

    root = tmp_path / "videos"
    clips = {  # path: (frames shown, CSV text)
        "S01/smile.mp4": (
            [frame(face), frame(face, shift=2), frame(face, with_face=False), frame(face, shift=4)],
            "Frame,AU01,AU12\n0,1,0\n1,0,1\n2,1,1\n3,9,1\n",
        ),
        "S02/talk.mp4": ([frame(face, shift=1), frame(face, shift=3)], "frame_idx,au1,au12,au4\n0,0,,1\n1,1,0,0\n"),
        "S03/a.mp4": ([frame(face), frame(face, shift=1)], "frame,AU1,subject\n1,1,Anna\n"),  # only frame 1 labelled
        "S03/unlabelled.mp4": ([frame(face)], None),
    }
    for rel, (frames, text) in clips.items():
        write_video(root / rel, frames)
        if text is not None:
            (root / rel).with_suffix(".csv").write_text(text)
    out = tmp_path / "out"
    summary = run_prepare("videos", root, out, progress=False)
    assert "1 video(s) without a label CSV beside them left out: S03/unlabelled.mp4" in capsys.readouterr().err
    assert summary["cropped"] == 6 and summary["problems"] == {"no_face": 1} and summary["aus"] == [1, 4, 12]
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(manifest.columns) == ["path", "subject", "sequence", "frame", "fold", "AU1", "AU4", "AU12"]
    smile = manifest[manifest["sequence"] == "S01/smile"]
    assert list(smile["frame"]) == [0, 1, 3] and list(smile["path"]) == [f"images/S01/smile/{f}.jpg" for f in (0, 1, 3)]
    assert list(smile["AU1"].astype(str)) == ["1", "0", ""] and list(smile["AU4"].astype(str)) == ["", "", ""]
    assert list(manifest["subject"]) == ["S01"] * 3 + ["S02"] * 2 + ["Anna"]
    assert manifest.groupby("subject")["fold"].nunique().eq(1).all() and manifest["fold"].nunique() == 3
    ds = build_dataset(out / "manifest.csv", split="all", image_size=64, aus=[1, 4, 12])
    assert len(ds) == 6 and ds[0]["image"].shape == (3, 64, 64)
    np.testing.assert_array_equal(ds.labels[3], [0, 1, np.nan])  # S02 frame 0: AU1 0, AU4 1, AU12 unknown
    # a second run redoes nothing; the command says what to train with, and that trains
    assert run_prepare("videos", root, out, progress=False)["cropped"] == 6
    assert main(["prepare", "videos", "--root", str(root), "--out", str(out)]) == 0
    assert f"train with: --data {out / 'manifest.csv'} (6 rows, 3 subject(s), folds 1, 2, 3)" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(train_argv(text_cache, out / "manifest.csv", run, "--set", "data.aus=1,4", epochs=1)) == 0
    assert main(["eval", "--run", str(run)]) == 0  # its held-out subject, Anna (fold 1)
    assert "(fold 1, 1 frames;" in capsys.readouterr().out


def test_prepare_videos_errors_name_the_file(tmp_path, face):
    from hiva_core.prepare import run_prepare

    root = tmp_path / "videos"
    with pytest.raises(UserError, match="no video with a label CSV beside it"):
        run_prepare("videos", tmp_path, tmp_path / "out")
    write_video(root / "clip.mp4", [frame(face), frame(face)])
    for text, match in [
        ("t,AU1\n0,1\n", r"clip.csv has no frame column"),
        ("frame,AU1\n0,1\n1.5,0\n", r"clip.csv: line 3: frame = '1.5' is not a frame number"),
        ("frame,AU1\n0,1\n0,0\n", r"clip.csv: line 3: frame 0 is listed again \(first on line 2\)"),
        ("frame,AU1\n0,2\n", r"clip.csv: line 2: AU1 = 2 is not allowed"),
        ("frame,AU1,subject\n0,1,Ann\n1,1,Bob\n", r"one video, one subject"),
    ]:
        (root / "clip.csv").write_text(text)
        with pytest.raises(UserError, match=match):
            run_prepare("videos", root, tmp_path / "out")
    (root / "clip.csv").write_text("frame,AU1\n0,1\n")
    with pytest.raises(UserError, match=r"line 2: frame = '0' is not a frame number \(whole, from --frame-base 1\)"):
        run_prepare("videos", root, tmp_path / "out", frame_base=1)
    with pytest.raises(UserError, match="--frame-base is for `prepare videos`"):
        run_prepare("bp4d", root, tmp_path / "out", frame_base=1)
