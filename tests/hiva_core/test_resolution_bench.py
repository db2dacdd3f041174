"""bench/bench_resolution.py: a run evaluated on its test faces captured at fewer pixels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augtext.errors import UserError
from tests.hiva_core.benchscript import bench_script


def test_captured_keeps_the_size_and_drops_the_detail(tmp_path):
    bench = bench_script("bench_resolution")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    same = bench.captured(image, 40)
    assert np.array_equal(np.asarray(same), np.asarray(image))  # at its own width nothing changes
    low = bench.captured(image, 10)
    assert low.size == (40, 40)
    expected = image.resize((10, 10), Image.BICUBIC).resize((40, 40), Image.BICUBIC)
    assert np.array_equal(np.asarray(low), np.asarray(expected))
    # the detail is gone: a pixel-wise noise image loses most of its contrast
    assert np.asarray(low, float).std() < 0.6 * np.asarray(image, float).std()


def test_captured_set_copies_faces_and_neutral_frames(tiny_faces, tmp_path):
    bench = bench_script("bench_resolution")
    manifest = pd.read_csv(tiny_faces).head(6)
    manifest["neutral"] = manifest["path"].iloc[::-1].to_numpy()  # any other image as the neutral frame
    manifest.loc[0, "neutral"] = manifest.loc[1, "path"]  # one neutral frame shared by two rows: copied once
    out = bench.captured_set(manifest, tiny_faces.parent, 20, tmp_path / "c")
    copy = pd.read_csv(out)
    assert list(copy.columns) == list(manifest.columns)
    assert copy.drop(columns=["path", "neutral"]).equals(manifest.drop(columns=["path", "neutral"]))
    for column in ("path", "neutral"):
        for rel, new in zip(manifest[column], copy[column], strict=True):
            with Image.open(tiny_faces.parent / rel) as original:
                expected = bench.captured(original, 20)
            assert np.array_equal(np.asarray(Image.open(out.parent / new)), np.asarray(expected))
    assert len(list((tmp_path / "c" / "neutral").iterdir())) == manifest["neutral"].nunique()
    with pytest.raises(UserError, match="wider than"):
        bench.captured_set(manifest, tiny_faces.parent, 80, tmp_path / "d")


def _detail_faces(root, n: int = 150):
    """40-px noisy faces: AU1 a fine checkerboard (2-px squares, the background's mean) in the top rows, seen only
    in fine detail; AU2 and AU4 bright bands, seen at any resolution. Three folds."""
    from tests.hiva_core.imagefix import write_manifest

    rng = np.random.default_rng(5)
    check = (np.indices((12, 40)) // 2).sum(0) % 2 * 120 - 60  # +-60 around the mean
    rows = []
    for i in range(n):
        labels = {au: int(rng.random() < 0.5) for au in (1, 2, 4)}
        image = rng.normal(100, 8, (40, 40, 3))
        image[2:14] += labels[1] * check[..., None]
        image[18:26] += labels[2] * 100
        image[30:38] += labels[4] * 100
        rel = f"img/{i:03d}.png"
        (root / "img").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / rel)
        rows.append({"path": rel, **{f"AU{a}": v for a, v in labels.items()}, "fold": i % 3 + 1, "subject": f"S{i}"})
    return write_manifest(root / "manifest.csv", rows)


def test_a_run_loses_what_it_read_from_detail_at_fewer_pixels(text_cache, tmp_path, one_thread):
    """At the images' own width the copies score as the originals, to the digit; captured at 10 px the fine pattern
    of AU1 is gone (its AUC falls to chance) while the bands of AU2 and AU4 stay readable."""
    from hiva_core.cli import main as hiva_main
    from tests.hiva_core.conftest import train_argv

    bench = bench_script("bench_resolution")
    data = _detail_faces(tmp_path / "faces")
    run = tmp_path / "run"
    assert hiva_main(train_argv(text_cache, data, run, "--fold", "1", "--image-size", "40", epochs=8)) == 0
    outs = ["--out-json", str(tmp_path / "r.json"), "--out-md", str(tmp_path / "r.md")]
    argv = ["--run", str(run), "--data", str(data.parent), "--fold", "1", "--sizes", "40,10", "--name", "detail"]
    assert bench.main([*argv, *outs]) == 0
    entry = json.loads((tmp_path / "r.json").read_text())["detail"]
    native, low = entry["native"], entry["sizes"]["10"]
    assert entry["sizes"]["40"] == native  # lossless copies at the images' own width
    assert native["per_au"]["AU1"]["auc"] > 0.9, native
    assert low["per_au"]["AU1"]["auc"] < 0.7, low  # the checkerboard is gone at 10 px
    for au in ("AU2", "AU4"):
        assert low["per_au"][au]["auc"] > 0.9, low  # the bands are not
    assert "| 10 px |" in (tmp_path / "r.md").read_text()
    with pytest.raises(UserError, match="at least 4"):
        bench.main([*argv[:-4], "--sizes", "2", "--name", "x", *outs])
    with pytest.raises(UserError, match="no manifest.parquet or manifest.csv in folder"):
        bench.main(["--run", str(run), "--data", str(tmp_path), "--name", "x", *outs])
    with pytest.raises(UserError, match="no faces in fold 7"):
        bench.main([*argv[:5], "7", "--name", "x", *outs])
