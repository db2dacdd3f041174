"""hiva_core predict: images, folders and videos in; one row per face (or per frame without a face) out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augtext.errors import UserError

pytest.importorskip("facenet_pytorch", reason="face detection needs: pip install --no-deps facenet-pytorch")

AUS = [1, 2, 4, 6, 12]
IMAGE_SIZE = 64
_RUNS: dict[str, Path] = {}


def make_tiny_run(folder: Path, aus=AUS, image_size: int = IMAGE_SIZE, model: str = "hiva") -> Path:
    """A run folder as `hiva_core train` writes it, with an untrained tiny HiVA and a real (MiniLM) text prior."""
    import torch

    from augtext.prior import load_text_prior
    from hiva_core.config import DataSection, ModelSection, TrainConfig
    from hiva_core.models import create_model
    from hiva_core.run_folder import RunFolder
    from tests.textcache import make_text_cache

    prior = load_text_prior(make_text_cache(folder / "text_cache", aus=aus, per_au=3), aus=aus)
    cfg = TrainConfig(
        data=DataSection(image_size=image_size), model=ModelSection(name=model, backbone="tiny", dim=64, heads=4)
    )
    torch.manual_seed(0)
    net = create_model(cfg.model.name, num_aus=len(aus), text_dim=prior.dim, **cfg.model.overrides())
    run = RunFolder(folder / "run")
    run.write_model(net)
    run.write_prior(prior)
    run.write_config(cfg, net, aus, prior)
    return run.path


def tiny_run(tmp_path_factory) -> Path:
    """One tiny run per test session (shared by the predict and export tests)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _RUNS:
        _RUNS[key] = make_tiny_run(tmp_path_factory.mktemp("tiny_run"))
    return _RUNS[key]


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = w, h, "yuv420p", 4_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(run_dir):
    from hiva_core.checkpoint import load_run

    return load_run(run_dir, device="cpu")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture()
def image_folder(tmp_path, astronaut) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "astronaut.jpg")
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(folder / "wall.png")  # no face
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")  # unreadable
    (folder / "notes.txt").write_text("not an image, not listed")
    return folder


def test_predict_folder_reports_faces_no_face_and_unreadable(image_folder, loaded, tmp_path):
    from hiva_core.predict import run_predict

    out = tmp_path / "results.csv"
    result = run_predict([image_folder], loaded, out=out, threshold=0.5, quiet=True)
    table = pd.read_csv(out)
    assert list(table["source"].map(lambda s: Path(s).name)) == ["astronaut.jpg", "broken.jpg", "wall.png"]
    astro, broken, wall = (table.iloc[i] for i in range(3))
    assert astro["status"] == "ok" and astro["face"] == 0 and astro["score"] > 0.9
    assert 160 < astro["x1"] < 200 and 250 < astro["x2"] < 290
    for au in AUS:
        p = astro[f"AU{au}_prob"]
        assert 0.0 <= p <= 1.0 and astro[f"AU{au}"] == int(p >= 0.5)
    assert broken["status"] == "unreadable" and "UnidentifiedImageError" in broken["error"]
    assert wall["status"] == "no_face" and np.isnan(wall["AU12_prob"])
    s = result.summary
    assert (s["images"], s["frames_read"], s["faces"], s["frames_without_face"]) == (3, 2, 1, 1)
    assert [Path(u["source"]).name for u in s["unreadable"]] == ["broken.jpg"]
    assert set(result.timings) >= {"detect", "align", "model", "total"}


def test_predict_matches_the_model_on_the_aligned_crop(image_folder, loaded):
    """The probabilities are the model's on the aligned, centre-cropped face (same pipeline as training)."""
    from hiva_core.data.transforms import build_transforms
    from hiva_core.faces import align, detect_faces
    from hiva_core.faces.media import read_image
    from hiva_core.predict import run_predict

    table = run_predict([image_folder / "astronaut.jpg"], loaded, quiet=True).rows
    image = read_image(image_folder / "astronaut.jpg")
    crop, _ = align(image, detect_faces(image)[0].landmarks)
    expected = loaded.predict(build_transforms(IMAGE_SIZE)(Image.fromarray(crop))[None])["probs"][0].numpy()
    np.testing.assert_allclose(table[[f"AU{a}_prob" for a in AUS]].to_numpy()[0], expected, atol=1e-5)


def test_predict_video_with_a_no_face_stretch(tmp_path, loaded, astronaut):
    from hiva_core.predict import run_predict

    face = np.asarray(Image.fromarray(astronaut).resize((256, 256)))
    blank = np.full_like(face, 70)
    frames = [face] * 3 + [blank] * 4 + [face] * 3
    video = tmp_path / "clip.mp4"
    write_video(video, frames, fps=10)
    out = tmp_path / "clip.parquet"
    result = run_predict([video], loaded, out=out, batch_size=4, quiet=True)
    table = pd.read_parquet(out)
    assert list(table["frame"]) == list(range(10))
    np.testing.assert_allclose(table["time_s"].to_numpy(), np.arange(10) / 10.0, atol=1e-6)
    assert list(table["status"]) == ["ok"] * 3 + ["no_face"] * 4 + ["ok"] * 3
    assert (table["kind"] == "video").all()
    assert table.loc[table["status"] == "ok", "AU1_prob"].notna().all()
    assert result.summary["frames_without_face"] == 4 and result.summary["faces"] == 6
    # --every 3: frames 0, 3, 6, 9, the same rows as in the full read (a long clip read 3x faster)
    every = run_predict([video], loaded, batch_size=4, every=3).rows
    assert list(every["frame"]) == [0, 3, 6, 9] and list(every["status"]) == ["ok", "no_face", "no_face", "ok"]
    full = table.set_index("frame").loc[[0, 3, 6, 9]]
    np.testing.assert_allclose(every["AU1_prob"].to_numpy(), full["AU1_prob"].to_numpy(), atol=1e-6)
    from hiva_core.faces.stream import frame_total

    assert frame_total([(video, "video")], 3) == 4 and frame_total([(video, "video")], 1) == 10


def test_heatmap_grid_per_face(image_folder, loaded, tmp_path):
    from hiva_core.heatmaps import TILE_SIZE, TITLE_HEIGHT, grid_shape
    from hiva_core.predict import run_predict

    heat = tmp_path / "heat"
    other = tmp_path / "other"
    other.mkdir()
    (other / "astronaut.jpg").write_bytes((image_folder / "astronaut.jpg").read_bytes())  # same name, other folder
    table = run_predict(
        [image_folder / "astronaut.jpg", image_folder / "wall.png", other / "astronaut.jpg"],
        loaded,
        heatmaps=heat,
        quiet=True,
    ).rows
    pngs = sorted(heat.glob("*.png"))
    assert [p.name for p in pngs] == ["astronaut_jpg_2_face0.png", "astronaut_jpg_face0.png"]
    assert list(table["heatmap"]) == [str(pngs[1]), "", str(pngs[0])]
    rows, cols = grid_shape(len(AUS))
    assert rows * cols >= len(AUS) > (rows - 1) * cols  # exactly enough tiles for the AUs
    with Image.open(pngs[0]) as im:
        assert im.size == (cols * TILE_SIZE, rows * (TILE_SIZE + TITLE_HEIGHT))
        grid = np.asarray(im.convert("RGB"))
    tiles = [
        grid[
            r * (TILE_SIZE + TITLE_HEIGHT) + TITLE_HEIGHT : (r + 1) * (TILE_SIZE + TITLE_HEIGHT),
            c * TILE_SIZE : (c + 1) * TILE_SIZE,
        ]
        for r in range(rows)
        for c in range(cols)
    ]
    drawn = [t for t in tiles if t.std() > 1.0]  # empty grid cells are plain white
    assert len(drawn) == len(AUS)


def test_cli_predict_json_no_detect_and_exit_status(tmp_path, run_dir, astronaut, capsys):
    from hiva_core.cli import main
    from hiva_core.faces import align, detect_faces

    crop, _ = align(astronaut, detect_faces(astronaut)[0].landmarks)
    Image.fromarray(crop).save(tmp_path / "aligned.png")
    out = tmp_path / "r.json"
    code = main(["predict", str(tmp_path / "aligned.png"), "--run", str(run_dir), "--out", str(out), "--no-detect"])
    assert code == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["x2"] == 256.0
    assert set(rows[0]) >= {"AU1_prob", "AU12", "frame", "time_s", "score"}
    # Nothing readable at all: exit status 2 with the reason.
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    assert main(["predict", str(tmp_path / "bad.png"), "--run", str(run_dir)]) == 2
    assert "could be read" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.jpg"), "--run", str(run_dir)]) == 2
    assert main(["predict", str(tmp_path / "aligned.png"), "--run", str(run_dir), "--out", "x.xlsx"]) == 2


def test_predict_prints_a_table_without_out(image_folder, run_dir, capsys):
    """The command prints the rows (without --out) and the summary; the library function prints nothing."""
    from hiva_core.cli import main
    from hiva_core.predict import run_predict

    assert main(["predict", str(image_folder / "astronaut.jpg"), "--run", str(run_dir), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "AU12" in captured.out and "astronaut" in captured.out
    assert "1 face(s)" in captured.err
    run_predict([image_folder / "astronaut.jpg"], run_dir, device="cpu")
    assert capsys.readouterr() == ("", "")


def test_face_stream_and_timer(image_folder):
    """The face stream yields one row per face, or per frame without a face / unreadable file, in input order, with
    an aligned crop for faces only; the timer sums each stage."""
    from hiva_core.faces.align import DEFAULT_SIZE
    from hiva_core.faces.stream import FaceStream, StageTimer, collect_inputs

    timer, frames_seen = StageTimer(), []
    faces = list(FaceStream(collect_inputs([image_folder]), timer, batch_size=2, on_frames=frames_seen.append))
    assert [(Path(f.row["source"]).name, f.row["status"]) for f in faces] == [
        ("astronaut.jpg", "ok"),
        ("broken.jpg", "unreadable"),
        ("wall.png", "no_face"),
    ]
    assert faces[0].crop.size == (DEFAULT_SIZE, DEFAULT_SIZE) and faces[1].crop is None and faces[2].crop is None
    assert frames_seen == [2, 1]
    totals = timer.totals()
    assert totals["detect"] > 0 and totals["align"] > 0 and totals["model"] == 0
    assert totals["total"] >= totals["read"] + totals["detect"] + totals["align"]
    plain = list(FaceStream(collect_inputs([image_folder / "wall.png"]), StageTimer(), detect=False))
    assert plain[0].row["status"] == "ok" and plain[0].crop.size == (160, 120) and plain[0].row["x2"] == 160.0


def test_bad_options_are_user_errors(image_folder, loaded):
    from hiva_core.predict import run_predict

    with pytest.raises(UserError, match="batch-size"):
        run_predict([image_folder], loaded, batch_size=0)
    with pytest.raises(UserError, match="holds no images"):
        empty = image_folder / "empty"
        empty.mkdir()
        run_predict([empty], loaded)


def test_heatmaps_need_a_model_with_ddca_maps(tmp_path, image_folder):
    from hiva_core.predict import run_predict

    linear = make_tiny_run(tmp_path, model="linear")
    with pytest.raises(UserError, match="no DDCA attention maps"):
        run_predict([image_folder / "astronaut.jpg"], linear, heatmaps=tmp_path / "heat", quiet=True)
    rows = run_predict([image_folder / "astronaut.jpg"], linear, quiet=True).rows  # without heatmaps it runs
    assert rows.loc[0, "status"] == "ok" and 0.0 <= rows.loc[0, "AU4_prob"] <= 1.0


# ------------------------------------------------------------------------------------- odd inputs (issue 11)
def test_images_too_small_for_a_face_are_no_face_rows(tmp_path, loaded, astronaut):
    """An image whose short side is under the smallest face searched for (a 1x1 PNG, a 15-px strip) cannot hold a
    face: a `no_face` row beside the valid photo, not a crash of the detector."""
    from hiva_core.faces import detect_faces
    from hiva_core.predict import run_predict

    Image.fromarray(astronaut).save(tmp_path / "astronaut.jpg")
    Image.new("RGB", (1, 1), (200, 150, 120)).save(tmp_path / "dot.png")
    Image.new("RGB", (15, 300), (90, 90, 90)).save(tmp_path / "strip.png")
    assert detect_faces(np.zeros((1, 1, 3), np.uint8)) == []
    table = run_predict([tmp_path / "astronaut.jpg", tmp_path / "dot.png", tmp_path / "strip.png"], loaded).rows
    assert list(table["status"]) == ["ok", "no_face", "no_face"]


def _grey_astronaut(astronaut: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).convert("L"))


@pytest.mark.parametrize("mode", ["I;16", "I", "L", "LA", "P", "RGBA", "1"])
def test_read_image_scales_every_mode_to_8_bit_rgb(tmp_path, astronaut, mode):
    """16-bit greyscale (I;16, I: 0-65535) is scaled to 0-255, not clipped to white; greyscale, palette and alpha
    modes become RGB. `read_image` is the one reader of predict, prepare and the datasets."""
    from hiva_core.data.dataset import AUDataset
    from hiva_core.faces.media import read_image

    grey = _grey_astronaut(astronaut)[::4, ::4]
    if mode in ("I;16", "I"):
        image = Image.fromarray(grey.astype(np.uint16) * 257)  # 16-bit: 0..65535
        image = image if mode == "I;16" else image.convert("I")
        path = tmp_path / f"g.{'png' if mode == 'I;16' else 'tif'}"
    else:
        image, path = Image.fromarray(grey).convert(mode), tmp_path / "g.png"
    image.save(path)
    with Image.open(path) as check:
        assert check.mode == mode
    got = read_image(path)
    assert got.dtype == np.uint8 and got.shape == (*grey.shape, 3)
    if mode in ("P", "1"):  # what the mode itself keeps of the grey values (a palette, black and white)
        expected = np.asarray(Image.fromarray(grey).convert(mode).convert("RGB"))
    else:
        expected = np.repeat(grey[..., None], 3, axis=-1)
    assert np.array_equal(got, expected)
    # the dataset reads the same pixels
    dataset = AUDataset([path.name], np.zeros((1, 1), np.float32), [1], root=tmp_path)
    assert np.array_equal(np.asarray(dataset.load_image(0)), got)


def test_a_16_bit_grey_photo_has_its_face_found(tmp_path, loaded, astronaut):
    from hiva_core.predict import run_predict

    Image.fromarray(_grey_astronaut(astronaut).astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    Image.fromarray(_grey_astronaut(astronaut)).save(tmp_path / "grey8.png")
    table = run_predict([tmp_path / "grey16.png", tmp_path / "grey8.png"], loaded).rows
    assert list(table["status"]) == ["ok", "ok"]
    np.testing.assert_allclose(
        table.loc[0, "x1":"y2"].to_numpy(float), table.loc[1, "x1":"y2"].to_numpy(float), atol=1.0
    )


def test_predict_prints_csv_when_stdout_is_not_a_terminal(image_folder, run_dir, tmp_path, capsys):
    """Piped output is CSV, the same table as --out FILE.csv; a terminal gets the rich table."""
    import io

    from hiva_core.cli import main
    from hiva_core.views import print_predict_table

    assert main(["predict", str(image_folder), "--run", str(run_dir), "--device", "cpu"]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert (
        main(["predict", str(image_folder), "--run", str(run_dir), "--device", "cpu", "--out", str(tmp_path / "r.csv")])
        == 0
    )
    written = pd.read_csv(tmp_path / "r.csv")
    pd.testing.assert_frame_equal(printed, written)
    assert list(printed["status"]) == ["ok", "unreadable", "no_face"]
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:  # a terminal: the table
        mp.setattr("sys.stdout.isatty", lambda: True)
        print_predict_table(written, AUS, 0.5)
    shown = capsys.readouterr().out
    assert "┃" in shown and "source," not in shown


def test_a_folder_gives_its_gifs_as_a_gif_given_alone_is_read(tmp_path):
    """A GIF inside a folder is an input like a GIF named directly (its first frame, as RGB); other files are not."""
    from hiva_core.faces.media import read_image
    from hiva_core.faces.stream import collect_inputs

    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("P", (40, 30), 3).save(folder / "face.gif")
    (folder / "notes.txt").write_text("not an image")
    assert collect_inputs([folder]) == [(folder / "face.gif", "image")]
    assert collect_inputs([folder / "face.gif"]) == [(folder / "face.gif", "image")]
    assert np.asarray(read_image(folder / "face.gif")).shape == (30, 40, 3)


# ------------------------------------------------------------------------------------------- heatmaps (user reports)
def test_heatmap_captions_give_the_call_the_csv_gives():
    """Each AU's caption says present or absent at its threshold, with enough decimals to tell the two apart."""
    from hiva_core.heatmaps import caption

    assert caption(2, 0.03, 0.013) == ("AU2  p=0.03  ", "present", " (thr 0.01)")
    assert caption(2, 0.012, 0.013) == ("AU2  p=0.012  ", "absent", " (thr 0.013)")  # not "0.01 absent (thr 0.01)"
    assert caption(12, 0.50001, 0.5) == ("AU12  p=0.5000  ", "present", " (thr 0.5000)")  # at the threshold: present
    assert caption(4, 0.98) == ("AU4  p=0.98", "", "")  # no threshold given: the probability alone


def _bars(png: Path, count: int) -> list[bool]:
    """Per AU tile of a predict heatmap: whether its caption is underlined in the colour of a present AU."""
    from hiva_core.heatmaps import PRESENT_COLOUR, TILE_SIZE, TITLE_HEIGHT, grid_shape

    _, cols = grid_shape(count)
    with Image.open(png) as im:
        grid = np.asarray(im.convert("RGB"))
    bars = []
    for i in range(count):
        y, x = (i // cols) * (TILE_SIZE + TITLE_HEIGHT) + TITLE_HEIGHT - 1, (i % cols) * TILE_SIZE
        bars.append(bool((grid[y, x + 5 : x + TILE_SIZE - 5] == PRESENT_COLOUR).all()))
    return bars


def test_heatmap_captions_agree_with_the_rows_at_per_au_thresholds(tmp_path, loaded, astronaut):
    """The PNG says present exactly for the AUs the CSV calls present (here thresholds just below or above each
    probability, so both calls occur), and the caption carries the call in words."""
    from hiva_core.predict import run_predict
    from hiva_core.thresholds import write_thresholds

    Image.fromarray(astronaut).resize((96, 96)).save(tmp_path / "crop.png")
    probs = run_predict([tmp_path / "crop.png"], loaded, detect=False).rows.iloc[0]
    cuts = {f"AU{a}": float(probs[f"AU{a}_prob"]) + (-1e-3 if i % 2 else 1e-3) for i, a in enumerate(AUS)}
    write_thresholds(tmp_path / "thr.json", {"thresholds": cuts})
    row = run_predict(
        [tmp_path / "crop.png"], loaded, detect=False, threshold=tmp_path / "thr.json", heatmaps=tmp_path / "heat"
    ).rows.iloc[0]
    calls = [bool(row[f"AU{a}"]) for a in AUS]
    assert calls == [bool(i % 2) for i in range(len(AUS))]
    assert _bars(Path(row["heatmap"]), len(AUS)) == calls


def test_heatmap_grid_caption_strip_shows_the_call(loaded):
    """Drawn with thresholds, a tile's title strip differs between a present and an absent call (the words and the
    underline), and from the strip without a call."""
    from hiva_core.heatmaps import TITLE_HEIGHT, heatmap_grid

    crop = np.full((64, 64, 3), 120, np.uint8)
    maps = np.random.default_rng(0).random((1, 4, 4))
    strips = [
        np.asarray(heatmap_grid(crop, maps, [2], [0.03], thresholds=t))[:TITLE_HEIGHT] for t in ([0.013], [0.05], None)
    ]
    assert not np.array_equal(strips[0], strips[1]) and not np.array_equal(strips[1], strips[2])
    with pytest.raises(ValueError, match="thresholds"):
        heatmap_grid(crop, maps, [2], [0.03], thresholds=[0.5, 0.5])


def test_a_failed_predict_leaves_no_heatmap_folder_behind(tmp_path, loaded):
    """No input readable (exit status 2): neither the heatmap folder nor its parent that predict would have made."""
    from hiva_core.predict import run_predict

    (tmp_path / "corrupt.jpg").write_bytes(b"not a JPEG")
    with pytest.raises(UserError, match="could be read"):
        run_predict([tmp_path / "corrupt.jpg"], loaded, out=tmp_path / "e" / "c.csv", heatmaps=tmp_path / "e" / "hm3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.jpg"]


def test_an_interrupted_predict_leaves_the_heatmap_folder_as_it_was(tmp_path, loaded, astronaut, monkeypatch):
    """Ctrl-C after some PNGs of a video were drawn: no PNG of this run, no CSV, no staging folder, and the files
    already in the folder untouched; a run that ends well puts its PNGs and their index beside them."""
    import hiva_core.heatmaps as heatmaps
    from hiva_core.predict import run_predict

    face = np.asarray(Image.fromarray(astronaut).resize((96, 96)))
    write_video(tmp_path / "clip.mp4", [face] * 8)
    heat = tmp_path / "heat"
    heat.mkdir()
    (heat / "clip_f000000_face0.png").write_bytes(b"an earlier run's")
    real, drawn = heatmaps.save_heatmap_grid, []

    def interrupted(path, *args, **kwargs):
        if len(drawn) == 3:
            raise KeyboardInterrupt
        drawn.append(path)
        real(path, *args, **kwargs)

    monkeypatch.setattr(heatmaps, "save_heatmap_grid", interrupted)
    out = tmp_path / "c.csv"
    with pytest.raises(KeyboardInterrupt):
        run_predict([tmp_path / "clip.mp4"], loaded, out=out, heatmaps=heat, detect=False, batch_size=2)
    assert len(drawn) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "heat"]  # no CSV, no staging folder
    assert [p.name for p in heat.iterdir()] == ["clip_f000000_face0.png"]
    assert (heat / "clip_f000000_face0.png").read_bytes() == b"an earlier run's"

    monkeypatch.setattr(heatmaps, "save_heatmap_grid", real)
    rows = run_predict([tmp_path / "clip.mp4"], loaded, out=out, heatmaps=heat, detect=False, batch_size=2).rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "clip.mp4", "heat"]
    written = sorted(Path(p).name for p in rows["heatmap"])
    assert sorted(p.name for p in heat.iterdir()) == sorted([heatmaps.INDEX, "clip_f000000_face0.png", *written])
    assert (heat / "clip_f000000_face0.png").read_bytes() == b"an earlier run's"  # not predict's: kept
    assert all(Path(p).parent == heat and Path(p).is_file() for p in rows["heatmap"]) and len(rows) == 8


# ---------------------------------------------------------------------------------------- LoadedRun.predict inputs
def test_loaded_run_predicts_aligned_crops_given_as_images_or_files(tmp_path, loaded, astronaut):
    """`run.predict` takes the normalised tensor, or aligned crops as PIL images or files (transformed as predict
    --no-detect does); anything else is a TypeError that names what it takes."""
    import torch

    from hiva_core.data.transforms import build_transforms

    crop = Image.fromarray(astronaut).resize((128, 128))
    crop.save(tmp_path / "crop.png")
    expected = loaded.predict(build_transforms(IMAGE_SIZE)(crop)[None])["probs"]
    for given in ([crop], crop, [tmp_path / "crop.png"], [str(tmp_path / "crop.png")]):
        np.testing.assert_allclose(loaded.predict(given)["probs"], expected, atol=1e-6)
    assert loaded.predict([crop, crop])["probs"].shape == (2, len(AUS))
    for bad in (np.asarray(crop), [np.asarray(crop)], 3, {"a": crop}):
        with pytest.raises(TypeError, match=r"aligned.*\(PIL images or image file paths\)"):
            loaded.predict(bad)
    with pytest.raises(ValueError, match=rf"shape \(3, {IMAGE_SIZE}, {IMAGE_SIZE}\).*float tensor \(B, 3"):
        loaded.predict(torch.zeros(3, IMAGE_SIZE, IMAGE_SIZE))


def test_loaded_run_reads_crops_from_any_iterable_in_batches(tmp_path, loaded, astronaut):
    """A pandas column, a numpy array or a generator of paths reads as a list does; none gives an empty result; the
    crops are scored `batch_size` at a time with the same probabilities; a missing or unreadable file is a UserError
    naming it."""
    crops = [Image.fromarray(astronaut).resize((100 + 7 * i, 100 + 7 * i)) for i in range(5)]
    paths = []
    for i, crop in enumerate(crops):
        crop.save(tmp_path / f"c{i}.png")
        paths.append(str(tmp_path / f"c{i}.png"))
    expected = loaded.predict(crops)
    for given in (pd.Series(paths), np.asarray(paths), (p for p in paths), tuple(paths)):
        np.testing.assert_allclose(loaded.predict(given)["probs"], expected["probs"], atol=1e-6)
    for size in (1, 2):
        out = loaded.predict(crops, batch_size=size)
        np.testing.assert_allclose(out["probs"], expected["probs"], atol=1e-5)
        np.testing.assert_allclose(out["maps"], expected["maps"], atol=1e-5)
    empty = loaded.predict([])
    assert empty["probs"].shape == (0, len(AUS)) and empty["maps"].shape[:2] == (0, len(AUS))
    (tmp_path / "notes.png").write_text("not an image")
    for bad, what in ((tmp_path / "gone.png", "not found"), (tmp_path / "notes.png", "not a readable image")):
        with pytest.raises(UserError, match=rf"{bad.name} is {what}"):
            loaded.predict([paths[0], bad])


def test_loaded_run_reads_16_bit_pil_images_as_the_file_reader_does(loaded, astronaut):
    """A 16-bit PIL image (I;16, I) is scaled to 8 bits as an image file is (`to_rgb`), not clipped to near-white by
    Pillow's convert("RGB")."""
    grey = np.asarray(Image.fromarray(astronaut).resize((96, 96)).convert("L"))
    expected = loaded.predict([Image.fromarray(grey)])["probs"]
    deep = Image.fromarray(grey.astype(np.uint16) * 257)
    for image in (deep, deep.convert("I")):
        assert image.mode in ("I;16", "I")
        np.testing.assert_allclose(loaded.predict([image])["probs"], expected, atol=1e-5)


def test_loaded_run_refuses_tensors_it_would_misread(loaded):
    """A tensor of another size than the run's, uint8 pixels, or float pixels of 0-255 were scored silently: a
    ValueError naming the (B, 3, S, S) expected, a TypeError saying the crops must be normalised floats."""
    import torch

    s = IMAGE_SIZE
    assert loaded.predict(torch.zeros(2, 3, s, s))["probs"].shape == (2, len(AUS))
    with pytest.raises(ValueError, match=rf"shape \(1, 3, {2 * s}, {2 * s}\); give a float tensor \(B, 3, {s}, {s}\)"):
        loaded.predict(torch.zeros(1, 3, 2 * s, 2 * s))
    with pytest.raises(TypeError, match=r"torch.uint8 tensor.*normalised with the ImageNet mean.*build_transforms"):
        loaded.predict(torch.full((1, 3, s, s), 200, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN or infinite"):
        loaded.predict(torch.full((1, 3, s, s), float("nan")))
    with pytest.raises(ValueError, match=r"values up to 200, not ImageNet-normalised"):
        loaded.predict(torch.full((1, 3, s, s), 200.0))


def _crop_files(folder: Path, astronaut: np.ndarray, *names: str) -> list[Path]:
    folder.mkdir(exist_ok=True)
    crop = Image.fromarray(astronaut).resize((64, 64))
    for name in names:
        crop.save(folder / name)
    return [folder / name for name in names]


def test_a_rerun_into_a_heatmap_folder_leaves_what_its_rows_name(tmp_path, loaded, astronaut):
    """The folder matches the CSV after each run: the PNGs an earlier predict wrote there (its index lists them) go,
    the user's own files stay; sources that differ in their suffix only (gray.jpg, gray.png) get names of their
    own."""
    from hiva_core.heatmaps import INDEX, read_index
    from hiva_core.predict import run_predict

    heat = tmp_path / "heat"
    heat.mkdir()
    (heat / "mine.png").write_bytes(b"the user's")
    jpg, png = _crop_files(tmp_path / "in", astronaut, "gray.jpg", "gray.png")
    first = run_predict([jpg, png], loaded, heatmaps=heat, detect=False).rows
    assert [Path(p).name for p in first["heatmap"]] == ["gray_jpg_face0.png", "gray_png_face0.png"]
    second = run_predict([png], loaded, heatmaps=heat, detect=False).rows
    assert list(second["heatmap"]) == [str(heat / "gray_png_face0.png")]
    assert sorted(p.name for p in heat.iterdir()) == sorted([INDEX, "gray_png_face0.png", "mine.png"])
    assert read_index(heat) == ["gray_png_face0.png"] and (heat / "mine.png").read_bytes() == b"the user's"


def test_a_failed_rerun_puts_the_heatmap_folder_back(tmp_path, loaded, astronaut, monkeypatch):
    """A run that fails after its PNGs were moved in (writing --out) leaves the folder as the run before left it:
    its PNGs, the one it replaced, and its index."""
    from hiva_core import predict
    from hiva_core.heatmaps import INDEX

    heat = tmp_path / "heat"
    a, b = _crop_files(tmp_path / "in", astronaut, "a.png", "b.png")
    predict.run_predict([a, b], loaded, heatmaps=heat, detect=False)
    before = {p.name: p.read_bytes() for p in heat.iterdir()}
    assert sorted(before) == [INDEX, "a_png_face0.png", "b_png_face0.png"]

    def full_disk(table, out):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(predict, "write_rows", full_disk)
    with pytest.raises(OSError, match="No space"):
        predict.run_predict([b], loaded, heatmaps=heat, detect=False, out=tmp_path / "r.csv", flip=True)
    assert {p.name: p.read_bytes() for p in heat.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat", "in"]  # no staging folder left


def test_staging_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path, loaded, astronaut):
    """A run killed (SIGKILL) leaves its hidden staging folder beside the heatmap folder; the next run into that
    folder removes those of processes that no longer run, and keeps a running one's and anything else."""
    import os
    import subprocess
    import sys

    from hiva_core.predict import run_predict

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    names = {
        f".heat.{dead}.abcd_123.tmp": False,  # a killed run's: removed
        ".heat.k2j4h5g6.tmp": False,  # a killed run of an older version (no pid in the name): removed
        f".heat.{os.getppid()}.zzzzzzzz.tmp": True,  # a run still going: kept
        ".other.abcdefgh.tmp": True,  # another folder's
        ".heat.notmine": True,
    }
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "x_face0.png").write_bytes(b"png")
        os.utime(tmp_path / name, (1e9, 1e9))  # long before this process started
    (a,) = _crop_files(tmp_path / "in", astronaut, "a.png")
    run_predict([a], loaded, heatmaps=tmp_path / "heat", detect=False)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == sorted(name for name, kept in names.items() if kept)


def test_json_output_writes_plain_slashes(tmp_path, loaded, astronaut):
    from hiva_core.predict import run_predict

    (a,) = _crop_files(tmp_path / "in", astronaut, "a.png")
    run_predict([a], loaded, detect=False, out=tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert "\\/" not in text and f'"source": "{a}"' in text
    assert json.loads(text)[0]["time_s"] is None


def test_the_readmes_align_recipe_scores_a_photo_as_predict_does(tmp_path, loaded, astronaut):
    """The README's second Python block (a photo detected and aligned by hand, then `run.predict`) gives what
    `hiva_core predict` gives for it."""
    import re

    from hiva_core.predict import run_predict
    from tests.hiva_core.conftest import REPO

    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    assert '"photo.jpg"' in code, "the README's recipe no longer reads photo.jpg"
    scope = {"run": loaded}
    exec(compile(code.replace('"photo.jpg"', repr(str(photo))), "README.md (align recipe)", "exec"), scope)  # noqa: S102
    table = run_predict([photo], loaded, quiet=True).rows
    expected = table[[f"AU{a}_prob" for a in loaded.aus]].to_numpy(dtype=float)
    np.testing.assert_allclose(scope["probs"].numpy(), expected, atol=1e-4)
