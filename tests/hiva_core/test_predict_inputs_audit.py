"""predict on the photos users have: phone photos stored rotated (EXIF orientation), CMYK JPEGs, folders of large
photos of one size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augtext.errors import UserError

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


# ------------------------------------------------------------------------- phone videos, GIFs, folders (user report)
@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_a_phone_video_is_read_upright_by_its_display_rotation(tmp_path, astronaut, rotation):
    """Phones store a portrait video sideways and record the turn that shows it upright (the display matrix): its
    frames are read as displayed, like a photo's EXIF orientation, or every frame is `no_face`."""
    import av

    from hiva_core.faces.media import iter_video

    shown = np.asarray(Image.fromarray(astronaut).resize((96, 64)))
    stored = np.ascontiguousarray(np.rot90(shown, -rotation // 90))  # turned back by `rotation` it is `shown`
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = stored.shape[1], stored.shape[0], "yuv420p", 4e6
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display matrix")
        stream.set_display_rotation(rotation)
        for _ in range(2):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode())
    frames = [image for _, _, image in iter_video(path)]
    assert len(frames) == 2
    for image in frames:
        assert image.shape == shown.shape and image.flags["C_CONTIGUOUS"]
        assert np.abs(image.astype(int) - shown).mean() < 10  # lossy codec: close, not equal


def test_video_rotation_of_older_pyav_and_older_files():
    """Without `frame.rotation` (PyAV before 14) the display matrix is read from the frame's side data; a file of
    older phones has a `rotate` tag (clockwise degrees) instead."""
    from types import SimpleNamespace

    from hiva_core.faces.media import video_rotation

    quarter = np.array([0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30], dtype=np.int32)  # a phone's portrait matrix
    side = type("SideData", (), {"type": "Type.DISPLAYMATRIX", "__bytes__": lambda self: quarter.tobytes()})()
    plain = SimpleNamespace(metadata={})
    assert video_rotation(SimpleNamespace(rotation=-90), plain) == -90
    assert video_rotation(SimpleNamespace(side_data=[side]), plain) == pytest.approx(-90)
    assert video_rotation(SimpleNamespace(side_data=[]), SimpleNamespace(metadata={"rotate": "90"})) == -90
    assert video_rotation(SimpleNamespace(side_data=[]), plain) == 0


def test_an_animated_gif_is_read_as_a_video(tmp_path, astronaut):
    """A GIF of several frames is a clip: every frame read, with its index and time (from the frames' durations);
    a still GIF stays an image."""
    from hiva_core.faces.media import video_frame_count
    from hiva_core.faces.stream import collect_inputs, iter_frames

    face = Image.fromarray(astronaut).resize((64, 64))
    frames = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), Image.new("RGB", (64, 64), (0, 90, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=200, loop=0)
    face.save(tmp_path / "still.gif")
    sources = collect_inputs([tmp_path])
    assert [(p.name, kind) for p, kind in sources] == [("anim.gif", "video"), ("still.gif", "image")]
    assert video_frame_count(tmp_path / "anim.gif") == 3
    read = list(iter_frames(sources[:1]))
    assert [(f.kind, f.index, f.time) for f in read] == [("video", 0, 0.0), ("video", 1, 0.2), ("video", 2, 0.4)]
    assert all(f.image.shape == (64, 64, 3) and f.image.dtype == np.uint8 for f in read)
    assert read[2].image[..., 1].mean() > 80 > read[2].image[..., 0].mean()  # the green frame, in colour


def test_a_folder_reads_every_photo_format_pillow_opens_and_says_what_it_skipped(tmp_path, astronaut):
    """An .avif (which Pillow here opens) in a folder is read like one named directly; other files, hidden files and
    subfolders are skipped, and the result says which (`summary["skipped"]`) instead of dropping them silently."""
    from PIL import features

    from hiva_core.faces.media import IMAGE_SUFFIXES
    from hiva_core.faces.stream import collect_inputs

    assert ".mpg" not in IMAGE_SUFFIXES and ".mpeg" not in IMAGE_SUFFIXES  # Pillow's MPEG probe is not a photo
    image = Image.fromarray(astronaut).resize((64, 64))
    names = ["a.jpg"]
    image.save(tmp_path / "a.jpg")
    if features.check("avif"):
        image.save(tmp_path / "b.avif")
        names.append("b.avif")
    (tmp_path / "notes.txt").write_text("not an image")
    image.save(tmp_path / ".hidden.jpg")
    (tmp_path / "sub").mkdir()
    sources = collect_inputs([tmp_path])
    assert [p.name for p, _ in sources] == names
    assert [p.name for p in sources.skipped] == [".hidden.jpg", "notes.txt", "sub"]
    with pytest.raises(UserError, match=r"holds no images or videos.*3 other file\(s\) or folder\(s\): notes.txt"):
        (tmp_path / "sub" / "notes.txt").write_text("")
        for name in ("one.doc", "two.doc"):
            (tmp_path / "sub" / name).write_text("")
        collect_inputs([tmp_path / "sub"])


def test_the_summary_names_the_skipped_files(tmp_path, run_dir, astronaut):
    from hiva_core.predict import run_predict

    Image.fromarray(astronaut).resize((64, 64)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    summary = run_predict(tmp_path, run_dir, detect=False, device="cpu").summary
    assert summary["skipped"] == [str(tmp_path / "notes.txt")]


# ------------------------------------------------------------------------------------- messages (user report)
def test_run_predict_takes_paths_and_says_so(tmp_path, run_dir, astronaut):
    """An image in memory is not a path: a TypeError that says what run_predict takes and where images go; one path
    given alone (not in a list) is one input, not a list of its letters."""
    from hiva_core.predict import run_predict

    photo = Image.fromarray(astronaut).resize((64, 64))
    for given in ([photo], [np.asarray(photo)], photo):
        with pytest.raises(TypeError, match=r"paths of images, videos or folders.*LoadedRun.predict"):
            run_predict(given, run_dir, device="cpu")
    photo.save(tmp_path / "one.png")
    for given in (str(tmp_path / "one.png"), tmp_path / "one.png"):
        rows = run_predict(given, run_dir, detect=False, device="cpu").rows
        assert list(rows["source"]) == [str(tmp_path / "one.png")] and list(rows["status"]) == ["ok"]


def test_a_url_is_named_as_given():
    """A Path folds "https://" into "https:/" (the CLI's arguments are Paths): the message shows the URL given."""
    from hiva_core.faces.stream import collect_inputs

    for given in ("https://example.com/face.jpg", Path("https://example.com/face.jpg")):
        with pytest.raises(UserError, match=r"input https://example\.com/face\.jpg: a URL"):
            collect_inputs([given])


def test_a_truncated_video_says_where_decoding_stopped(tmp_path, monkeypatch):
    """FFmpeg's error names its internals (`avcodec_receive_frame()`): the row says the video could not be decoded
    past the last frame read, and that the file is damaged or truncated."""
    import av

    from hiva_core.faces import stream

    def truncated(path):
        for index in range(3):
            yield index, index / 10, np.zeros((8, 8, 3), np.uint8)
        raise av.error.InvalidDataError(
            1094995529, "Invalid data found when processing input", "avcodec_receive_frame()"
        )

    monkeypatch.setattr(stream, "iter_video", truncated)
    frames = list(stream.iter_frames([(tmp_path / "clip.mp4", "video")]))
    assert [f.error for f in frames[:3]] == [None] * 3
    assert frames[3].index == 3 and "avcodec" not in frames[3].error
    assert frames[3].error.startswith("the video could not be decoded past frame 2 (3 frame(s) read; damaged or trunc")
    (tmp_path / "cut.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))  # a header, then nothing
    monkeypatch.undo()
    (frame,) = stream.iter_frames([(tmp_path / "cut.mp4", "video")])
    assert frame.error.startswith("the video could not be decoded (damaged or truncated file")


def test_threshold_that_is_neither_a_number_nor_a_file(run_dir, tmp_path):
    from hiva_core.checkpoint import load_run

    loaded = load_run(run_dir, device="cpu")
    with pytest.raises(UserError, match=r"^abc not found.*--threshold takes a number in \[0, 1\].*thresholds JSON"):
        loaded.au_thresholds("abc")
    with pytest.raises(UserError, match=r"is a folder; --threshold takes a number in \[0, 1\].*thresholds.json\?"):
        loaded.au_thresholds(str(tmp_path))


def test_a_folder_of_fold_runs_is_named_as_such(run_dir, tmp_path):
    """`--run runs/bp4d` of a `--folds all` training holds fold1/, fold2/, ...: the hint eval gives, not "config.json
    not found"."""
    import shutil

    from hiva_core.checkpoint import load_run
    from hiva_core.predict import run_predict

    for k in (1, 2, 3):
        shutil.copytree(run_dir, tmp_path / "bp4d" / f"fold{k}")
    with pytest.raises(UserError, match=r"bp4d holds one run per fold \(fold1, fold2, fold3\); give --run .*foldK"):
        load_run(tmp_path / "bp4d")
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    with pytest.raises(UserError, match="one run per fold"):
        run_predict([tmp_path / "a.png"], tmp_path / "bp4d")


def test_a_face_cut_off_by_the_frame_is_named(astronaut, run_dir, tmp_path, capsys):
    """A face the image's edge cuts off is aligned into a crop that is black past the edge: its row says how much of
    the face lies inside the image (face_in_image) and the summary names it; a whole face reads 1.0."""
    from hiva_core.cli import main
    from hiva_core.faces.align import align, face_in_image
    from hiva_core.faces.detect import detect_faces
    from hiva_core.predict import run_predict

    face = max(detect_faces(astronaut), key=lambda f: f.size)
    _, matrix = align(astronaut, face.landmarks)
    assert face_in_image(matrix, astronaut.shape) == 1.0
    assert face_in_image(matrix, (150, 512)) < 0.9  # the same face with the image ending at its mouth
    whole, chin = tmp_path / "whole.png", tmp_path / "no_chin.png"
    Image.fromarray(astronaut).save(whole)
    Image.fromarray(astronaut[:150]).save(chin)  # the frame ends below the nose: mouth and chin cut off
    result = run_predict([whole, chin], run_dir, device="cpu")
    rows = result.rows.set_index(result.rows["source"].map(lambda s: Path(s).name))
    assert rows.loc["whole.png", "face_in_image"] == 1.0 and rows.loc["no_chin.png", "face_in_image"] < 0.9
    assert [Path(p["source"]).name for p in result.summary["partial_faces"]] == ["no_chin.png"]
    out = tmp_path / "rows.csv"
    assert main(["predict", str(whole), str(chin), "--run", str(run_dir), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 face(s) partly outside the image (under 90% of the face inside, column face_in_image" in err
    assert "no_chin.png (" in err and "whole.png (" not in err
    assert "face_in_image" in pd.read_csv(out).columns


def test_a_face_with_few_pixels_is_named_with_its_eye_distance(astronaut, run_dir, tmp_path, capsys):
    """A face with its eyes under SMALL_EYE_PX apart in the image reads less reliably: its row's eye_px (the eye
    distance in the image) says so, and the summary names it; the same face at full size and an aligned crop with
    enough pixels are not named."""
    from hiva_core.cli import main
    from hiva_core.predict import SMALL_EYE_PX, run_predict

    assert SMALL_EYE_PX == 25
    whole, small, crop = tmp_path / "whole.png", tmp_path / "small.png", tmp_path / "crop.png"
    Image.fromarray(astronaut).save(whole)
    Image.fromarray(astronaut).resize((102, 102), Image.Resampling.LANCZOS).save(small)  # eyes about 8.5 px apart
    Image.fromarray(astronaut).resize((100, 100)).save(crop)
    result = run_predict([whole, small], run_dir, device="cpu", min_face=8)
    rows = result.rows.set_index(result.rows["source"].map(lambda s: Path(s).name))
    assert 40 < rows.loc["whole.png", "eye_px"] < 46 and 7 < rows.loc["small.png", "eye_px"] < 10
    assert [Path(p["source"]).name for p in result.summary["small_faces"]] == ["small.png"]
    assert result.summary["small_below_px"] == SMALL_EYE_PX
    aligned = run_predict([crop], run_dir, device="cpu", detect=False)
    assert aligned.rows["eye_px"].tolist() == [pytest.approx(30.0)] and aligned.summary["small_faces"] == []
    out = tmp_path / "rows.csv"
    assert main(["predict", str(whole), str(small), "--run", str(run_dir), "--min-face", "8", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 face(s) small in the image (eyes under 25 px apart, column eye_px; their AUs read less reliably)" in err
    assert "small.png (8 px)" in err or "small.png (9 px)" in err
    assert "whole.png (" not in err
    assert "eye_px" in pd.read_csv(out).columns


def test_a_video_cut_off_mid_stream_is_not_read_as_whole(tmp_path):
    """An MP4 with its header at the front (a phone's, or `-movflags faststart`) cut off mid-stream decodes up to the
    cut without any FFmpeg error: the frames read are kept, and a row after them says the file ends early."""
    import av

    from hiva_core.faces import stream

    whole = tmp_path / "whole.mp4"
    container = av.open(str(whole), "w", options={"movflags": "faststart"})
    video = container.add_stream("h264", rate=30)
    video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
    for i in range(60):
        image = np.full((64, 64, 3), 4 * i, np.uint8)
        for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    container.close()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 4])
    frames = list(stream.iter_frames([(whole, "video")]))
    assert len(frames) == 60 and all(f.error is None for f in frames)
    frames = list(stream.iter_frames([(cut, "video")]))
    read, last = [f for f in frames if f.error is None], frames[-1]
    assert 0 < len(read) < 50 and last.index == len(read) and len(frames) == len(read) + 1
    assert last.error == (
        f"the video ended after {len(read)} of the 60 frames its header declares (damaged or truncated file)"
    )
