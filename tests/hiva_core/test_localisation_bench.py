"""bench/bench_localisation.py at toy scale: real SynthAU renders, an untrained-weights MobileNetV2 at 64 px, one
epoch per run (strides 32 and 16, and 16 with the region loss), the session's text cache."""

from __future__ import annotations

from tests.hiva_core.benchscript import bench_main


def test_localisation_bench_toy(tmp_path, shared_data, text_cache, one_thread):
    out = tmp_path / "loc.json"
    argv = [
        *("--n", "24", "--image-size", "64", "--epochs", "1", "--aus", "1,2,4", "--batch-size", "8"),
        *("--no-pretrained", "--dim", "32", "--text-cache", str(text_cache)),
        *("--work", str(tmp_path / "work"), "--out", str(out)),
    ]
    result = bench_main("bench_localisation", argv, shared_data)
    runs = result["runs"]
    assert {k: (r["grid"], r["output_stride"], r["region_weight"]) for k, r in runs.items()} == {
        "32": ("2×2", 32, 0.0),
        "16": ("4×4", 16, 0.0),
        "16r1": ("4×4", 16, 1.0),
    }
    for run in runs.values():
        for block in (run["localisation"], run["attribution"]):
            assert set(block["per_au"]) == {"AU1", "AU2", "AU4"} and block["images"] == run["test_frames"]
        assert run["localisation"]["chance"] is not None and run["train_s_per_image"] > 0
    assert all((tmp_path / f"loc_s{k}.png").is_file() for k in ("32", "16", "16r1"))
    log = (tmp_path / "work" / "runs" / "hiva_s16r1_e1_seed0" / "log.csv").read_text().splitlines()
    assert float(log[1].split(",")[log[0].split(",").index("region")]) > 0  # the region term was trained
    md = out.with_suffix(".md").read_text()
    assert "| AU1 | inner_brows_forehead |" in md and "s16 grad×act" in md
