"""bench/zero_shot.py at toy scale: real SynthAU renders, the reference backend, the tiny backbone, one epoch."""

from __future__ import annotations

import json

import numpy as np

from augtext.reference import REFERENCE_AUS, reference_set
from hiva_core.synth import SYNTH_AUS
from tests.hiva_core.benchscript import bench_main


def test_reference_set_describes_every_synthau_au():
    """The zero-shot bench scores only the AUs the reference set describes: it describes every SynthAU label."""
    assert set(SYNTH_AUS) <= set(REFERENCE_AUS) == {au for au, _ in reference_set()}


def test_zero_shot_toy(tmp_path, shared_data, one_thread):
    out_json, out_md = tmp_path / "zs.json", tmp_path / "zs.md"
    argv = [
        "--backbone",
        "tiny",
        "--dim",
        "32",
        "--n",
        "48",
        "--size",
        "32",
        "--epochs",
        "1",
        "--train-aus",
        "1,2,4",
        "--unseen",
        "5,9,16",
        "--descriptions",
        "2",
        "--no-gate",
        "--groups",
        "1,5;2,9",
        "--work",
        str(tmp_path / "work"),
        "--out-json",
        str(out_json),
        "--out-md",
        str(out_md),
    ]
    result = bench_main("zero_shot", argv, shared_data)
    assert result["unseen_scored"] == [5, 9, 16] and result["unseen_without_descriptions"] == []
    assert set(result["runs"]) == {"hiva_open_reference", "hiva_open_shuffled", "hiva_reference"}
    for name, run in result["runs"].items():
        assert list(run["seen"]) == ["AU1", "AU2", "AU4"]
        assert list(run["unseen"]) == ([] if name == "hiva_reference" else ["AU5", "AU9", "AU16"])
        assert all(np.isfinite(v["auc"]) or np.isnan(v["auc"]) for v in run["unseen"].values())
    holds = result["shuffled_holds"]
    assert sorted(holds) == sorted(holds.values()) and all(k != v for k, v in holds.items())  # a derangement
    md = out_md.read_text()
    assert "| AU5 |" in md and "| AU16 |" in md and "shuffled" in md and "Not scored" not in md
    assert json.loads(out_json.read_text())["settings"]["dim_used"] == 32

    # Leave-group-out: each group held out once from every described AU in the groups; both priors per group.
    lgo = result["leave_group_out"]
    assert lgo["groups"] == [[1, 5], [2, 9]] and sorted(lgo["runs"]) == [
        "g1_reference",
        "g1_shuffled",
        "g2_reference",
        "g2_shuffled",
    ]
    assert list(lgo["runs"]["g1_reference"]["seen"]) == ["AU2", "AU9"]
    assert list(lgo["runs"]["g2_shuffled"]["unseen"]) == ["AU2", "AU9"]
    assert sorted(lgo["per_au"]) == ["AU1", "AU2", "AU5", "AU9"] and lgo["per_au"]["AU9"]["group"] == 2
    assert "Leave-group-out" in md and "| AU5 | 1 |" in md
