"""predict on the photos users have: phone photos stored rotated (EXIF orientation), CMYK JPEGs, folders of large
photos of one size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("facenet_pytorch", reason="face detection needs: pip install --no-deps facenet-pytorch")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from tests.hiva_core.test_predict import tiny_run

    return tiny_run(tmp_path_factory)


def _record_calls(monkeypatch) -> list[list[tuple[int, ...]]]:
    """Replace the MTCNN call with one that finds nothing and records the shapes of every batch it was given."""
    from hiva_core.faces import detect

    calls: list[list[tuple[int, ...]]] = []

    def fake(self, images, **kwargs):
        calls.append([im.shape for im in images])
        return [[] for _ in images]

    monkeypatch.setattr(detect.FaceDetector, "__call__", fake)
    return calls


def test_large_photos_of_one_size_are_not_detected_all_at_once(monkeypatch):
    """MTCNN needs about 50 bytes per input pixel of a batch: 16 photos of 6000x4000 in one call need ~20 GB and the
    process is killed, losing every row. Detection calls are capped in pixels; 16 frames of 1080p video still go
    together."""
    from hiva_core.faces import detect

    calls = _record_calls(monkeypatch)
    photo = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (4000, 6000, 3))  # a view: no memory
    phone = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (3000, 4000, 3))
    assert detect.detect_faces_batch([photo] * 16 + [phone] * 16) == [[]] * 32
    assert sum(len(c) for c in calls) == 32
    for call in calls:
        assert len(call) == 1 or len(call) * call[0][0] * call[0][1] <= detect.MAX_BATCH_PIXELS
    assert max(len(c) for c in calls if c[0] == photo.shape) == 1
    calls.clear()
    frame = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (1080, 1920, 3))
    detect.detect_faces_batch([frame] * 16)
    assert [len(c) for c in calls] == [16]


def test_split_detection_finds_the_same_faces_in_input_order(monkeypatch, astronaut):
    """Splitting a batch changes nothing: the same faces, each list where its image was (shapes interleaved)."""
    from hiva_core.faces import detect

    small = np.asarray(Image.fromarray(astronaut).resize((160, 160)))
    wide = np.zeros((160, 320, 3), np.uint8)
    wide[:, 80:240] = small
    images = [small, wide, small[:, ::-1].copy(), wide, small]
    whole = detect.detect_faces_batch(images)
    monkeypatch.setattr(detect, "MAX_BATCH_PIXELS", 160 * 160)  # one image per call
    split = detect.detect_faces_batch(images)
    assert [len(f) for f in whole] == [1, 1, 1, 1, 1]
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_allclose([f.box for f in a], [f.box for f in b], atol=1e-3)
    assert whole[1][0].box[0] > whole[0][0].box[0] + 60  # the wide image's face is where it was pasted


def test_cli_finds_faces_in_rotated_phone_photos_and_cmyk_jpegs(tmp_path, run_dir, astronaut):
    """A phone photo stored sideways with EXIF orientation 6 or 8 is read as displayed (upright: the face is found,
    its box in displayed coordinates); a CMYK JPEG is read in colour. Guards the reader that predict shares."""
    from hiva_core.cli import main

    shown = Image.fromarray(astronaut).crop((0, 0, 512, 384))  # landscape as displayed
    folder = tmp_path / "phone photos"
    folder.mkdir()
    for tag, stored in ((6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)):
        exif = Image.Exif()
        exif[0x0112] = tag
        shown.transpose(stored).save(folder / f"rotated {tag}.jpg", exif=exif.tobytes())
    shown.save(folder / "upright.jpg")
    shown.convert("CMYK").save(folder / "cmyk.jpg")
    out = tmp_path / "aus.csv"
    assert main(["predict", str(folder), "--run", str(run_dir), "--device", "cpu", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    table.index = table["source"].map(lambda s: Path(s).name)
    assert list(table.index) == ["cmyk.jpg", "rotated 6.jpg", "rotated 8.jpg", "upright.jpg"]
    assert (table["status"] == "ok").all()
    boxes = table[["x1", "y1", "x2", "y2"]].to_numpy(float)
    np.testing.assert_allclose(boxes, np.repeat(boxes[-1:], 4, axis=0), atol=4.0)


def test_jpegs_saved_as_jfif_or_jpe_are_found_in_folders(tmp_path):
    """Browsers and Windows save JPEGs as .jfif or .jpe: a folder scan picks them up like .jpg."""
    from hiva_core.faces.stream import collect_inputs

    for name in ("a.jfif", "b.JPE", "c.jpg"):
        Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(tmp_path / name, format="JPEG")
    (tmp_path / "notes.txt").write_text("not an image")
    found = sorted(path.name for path, kind in collect_inputs([tmp_path]) if kind == "image")
    assert found == ["a.jfif", "b.JPE", "c.jpg"]
