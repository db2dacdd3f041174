"""bench/limited_labels.py at toy scale: real SynthAU renders, a real text cache, the tiny backbone, one epoch."""

from __future__ import annotations

import json

import pandas as pd

from tests.hiva_core.benchscript import bench_main, bench_script


def test_limited_labels_toy(tmp_path, shared_data, text_cache, one_thread, monkeypatch):
    out_json, out_md = tmp_path / "ll.json", tmp_path / "ll.md"
    argv = [
        "--aus",
        "1,2,4",
        "--text-cache",
        str(text_cache),
        "--backbone",
        "tiny",
        "--dim",
        "32",
        "--budgets",
        "8,16",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--n-shifted",
        "8",
        "--models",
        "hiva,linear",
        "--num-workers",
        "0",
        "--work",
        str(tmp_path / "work"),
        "--out-json",
        str(out_json),
        "--out-md",
        str(out_md),
    ]
    result = bench_main("limited_labels", argv, shared_data)
    runs = {(r["model"], r["budget"]): r for r in result["runs"]}
    assert set(runs) == {(m, b) for m in ("hiva", "linear") for b in (8, 16)}
    for r in runs.values():
        assert r["test"]["aus"] == [1, 2, 4] and r["shifted"]["n"] == 8
        assert 0.0 <= r["test"]["avg"]["f1"] <= 1.0 and 0.0 <= r["shifted"]["avg"]["f1"] <= 1.0
    md = out_md.read_text()
    assert "| 8 | " in md and "| 16 | " in md and "all-positive floor" in md and "λ = 0.1" in md
    assert json.loads(out_json.read_text())["summary"]["test"]

    # Budgets are nested subsets of whole identities from folds 2-3; the test split is fold 1 only.
    m8, m16 = (pd.read_csv(tmp_path / "work" / "manifests" / f"b{b}_s0.csv") for b in (8, 16))
    train8, train16 = (set(m[m.split == "train"].path) for m in (m8, m16))
    assert len(train8) == 8 and len(train16) == 16 and train8 < train16
    test_subjects = set(m16[m16.split == "test"].subject)
    assert test_subjects and not test_subjects & set(m16[m16.split == "train"].subject)

    # A rerun trains nothing: every finished run is read back from its folder.
    import hiva_core.train

    def no_fit(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(hiva_core.train, "fit", no_fit)
    again = bench_main("limited_labels", argv, shared_data)
    assert [r["test"] for r in again["runs"]] == [r["test"] for r in result["runs"]]


def test_render_for_renders_the_held_out_fold_of_a_larger_budget(tmp_path, monkeypatch):
    """Small budgets with `--render-for N` are scored on the held-out faces a budget of N would have (the prior
    control at 50 and 100 images on the 504 faces of the 1,000-image experiment), not on a handful."""
    ll = bench_script("limited_labels")
    asked: list[tuple[str, int]] = []
    monkeypatch.setattr(ll, "synth_set", lambda args, folder, n, shifted=False: asked.append((folder.name, n)))
    ll.render(ll.parse_args(["--budgets", "50,100", "--render-for", "1000"]), tmp_path)
    ll.render(ll.parse_args(["--budgets", "50,100"]), tmp_path)
    assert asked == [("synth", 1512), ("synth_shifted", 500), ("synth", 168), ("synth_shifted", 500)]
