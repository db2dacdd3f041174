"""bench/bench_small_faces.py on one real photo (skimage's astronaut, its face 87 px wide) with the session's tiny
trained run: every size below the photo's own is read end to end and compared with the photo at its own size."""

from __future__ import annotations

import json

import pytest

from tests.hiva_core.benchscript import bench_script

pytest.importorskip("facenet_pytorch", reason="face detection needs: pip install --no-deps facenet-pytorch")


def test_small_faces_bench_reads_each_size_against_the_photo_at_its_own(trained_run, tmp_path, monkeypatch, one_thread):
    from PIL import Image
    from skimage import data

    module = bench_script("bench_small_faces")
    monkeypatch.setattr(module, "fetch_media", lambda work: work)
    monkeypatch.setattr(module, "photos", lambda media: {"astronaut": Image.fromarray(data.astronaut())})
    monkeypatch.setattr(module, "WIDTHS", (80, 40, 20))
    run, _ = trained_run
    out = tmp_path / "small.json"
    result = module.main(["--run", str(run), "--work", str(tmp_path), "--out", str(out)])
    assert json.loads(out.read_text())["table"] == result["table"]
    table = {row["box_px"]: row for row in result["table"]}
    assert set(table) <= {80, 40, 20} and {80, 40} <= set(table)  # 20 px: found or not, never a size above 87
    readings = result["readings"]["astronaut"]
    assert 80 < readings["full"]["box_px"] < 95 and "80" in readings and "40" in readings
    assert 35 < readings["full"]["eye_px"] < 50 and readings["40"]["eye_px"] < readings["80"]["eye_px"]
    assert table[40]["enlarged"] > table[80]["enlarged"] > 0
    assert result["run_eye_px"] == pytest.approx(0.3 * round(result["image_size"] * 256 / 224))
    assert table[80]["enlarged"] == pytest.approx(result["run_eye_px"] / table[80]["eye_px"])
    for row in table.values():
        assert 0 <= row["mean_change"] <= row["max_change"] <= 1 and 0 <= row["calls_flipped"] <= 1
