"""bench/bench_transfer.py at toy scale: real SynthAU renders per factor variant, the tiny backbone, one epoch."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from augtext.errors import UserError
from tests.hiva_core.benchscript import bench_main, bench_script


def test_transfer_bench_toy(tmp_path, shared_data, text_cache, one_thread):
    out_json, out_md = tmp_path / "t.json", tmp_path / "t.md"
    argv = [
        *("--variants", "narrow+basic,full+strong,-occluders"),
        *("--aus", "1,2,4", "--text-cache", str(text_cache)),
        *("--backbone", "tiny", "--dim", "32", "--n", "24", "--n-shifted", "8", "--size", "32", "--epochs", "1"),
        *("--num-workers", "0", "--work", str(tmp_path / "work"), "--out-json", str(out_json), "--out-md", str(out_md)),
    ]
    result = bench_main("bench_transfer", argv, shared_data)
    runs = {r["variant"]: r for r in result["runs"]}
    assert list(runs) == ["narrow+basic", "full+strong", "-occluders+strong"]
    assert runs["-occluders+strong"]["factors"] == "all,-occluders" and runs["narrow+basic"]["factors"] == "none"
    for r in runs.values():
        assert set(r["tests"]) == {"own", "full", "shifted", "shifted_narrow"}
        assert r["tests"]["shifted"]["n"] == 8 and r["tests"]["shifted_narrow"]["n"] == 8
        assert all(0.0 <= t["avg"]["f1"] <= 1.0 for t in r["tests"].values())
        config = json.loads((tmp_path / "work" / "runs" / r["run"].split("/")[-1] / "config.json").read_text())
        assert config["config"]["data"]["augment"] == r["augment"]
    # Every variant is scored on the same held-out people of the all-factor set; its own test is its own look.
    assert runs["full+strong"]["tests"]["full"]["avg"] == runs["full+strong"]["tests"]["own"]["avg"]
    sets = {p.name for p in (tmp_path / "work").iterdir() if p.name.startswith(("synth_", "shifted_"))}
    assert sets == {"synth_all", "synth_none", "synth_all_-occluders", "shifted_all", "shifted_none"}
    meta = json.loads((tmp_path / "work" / "synth_all_-occluders" / "synth.json").read_text())
    assert "occluders" not in meta["factors"] and len(meta["factors"]) == 9
    # The same people and labels in every variant: factors change the look, not the AUs.
    a, b = (pd.read_csv(tmp_path / "work" / s / "manifest.csv") for s in ("synth_all", "synth_none"))
    assert (a["AU12"] == b["AU12"]).all() and (a["identity"] == b["identity"]).all()
    md = out_md.read_text()
    assert "| -occluders+strong | all,-occluders | strong |" in md and "all-positive floor" in md
    assert "hiva_core synth --out synth" in md and "--factors all" in md

    # A rerun trains nothing.
    import hiva_core.train

    def no_fit(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    original, hiva_core.train.fit = hiva_core.train.fit, no_fit
    try:
        again = bench_main("bench_transfer", argv, shared_data)
    finally:
        hiva_core.train.fit = original
    assert [r["tests"]["shifted"]["avg"] for r in again["runs"]] == [
        r["tests"]["shifted"]["avg"] for r in result["runs"]
    ]

    # Another training seed is another run, not the finished seed-0 one read back.
    at = argv.index("--variants") + 1
    seed1 = bench_main("bench_transfer", [*argv[:at], "full", *argv[at + 1 :], "--seed", "1"], shared_data)
    run1 = seed1["runs"][0]["run"]
    assert run1 != runs["full+strong"]["run"] and run1.endswith("_s1")
    config = json.loads((tmp_path / "work" / "runs" / run1.split("/")[-1] / "config.json").read_text())
    assert config["config"]["train"]["seed"] == 1


def test_transfer_bench_variant_names():
    script = bench_script("bench_transfer")
    every = script.variants("all")
    assert len(every) == 4 + 10 and every[:2] == [("narrow+basic", "none", "basic"), ("full+strong", "all", "strong")]
    assert script.variants("full,-pose") == [("full+strong", "all", "strong"), ("-pose+strong", "all,-pose", "strong")]
    assert script.variants("narrow,narrow+strong") == [
        ("narrow+basic", "none", "basic"),
        ("narrow+strong", "none", "strong"),
    ]
    with pytest.raises(UserError, match="unknown variant"):
        script.variants("-nose")
