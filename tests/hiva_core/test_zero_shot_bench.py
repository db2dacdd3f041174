"""bench/zero_shot.py at toy scale: real SynthAU renders, the reference backend, the tiny backbone, one epoch."""

from __future__ import annotations

import json

import numpy as np

from augtext.reference import REFERENCE_AUS, reference_set
from hiva_core.synth import SYNTH_AUS
from tests.hiva_core.benchscript import bench_main, bench_script


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
    # the renders carry neutral landmarks: hiva_open learns the geometry and reads the unseen AUs from it
    assert result["runs"]["hiva_open_reference"]["geometry"] and not result["runs"]["hiva_reference"]["geometry"]
    assert result["groundings"]["reference"]["AU5"] == "eye_opening +1.00"
    assert result["groundings"]["shuffled"]["AU5"] != "eye_opening +1.00"
    md = out_md.read_text()
    assert "| eye_opening +1.00 |" in md
    assert "| AU5 |" in md and "| AU16 |" in md and "shuffled" in md and "Not scored" not in md
    assert json.loads(out_json.read_text())["settings"]["dim_used"] == 32
    # a run's folder names its epochs unless 10 (the runs made when 10 was the default keep their folders)
    assert (tmp_path / "work" / "runs" / "hiva_open_reference_e1" / "metrics.json").is_file()

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

    # The ceilings (labels only) and the baseline from hiva's detectors, for every scored AU, in the JSON and the table.
    assert list(result["ceiling"]["trained_on_train_aus"]) == ["AU5", "AU9", "AU16"]
    assert sorted(result["ceiling"]["leave_group_out"]) == ["AU1", "AU2", "AU5", "AU9"]
    transfer = result["detector_transfer"]
    assert list(transfer) == ["AU5", "AU9", "AU16"]
    assert all(r["nearest_reference"] in ("AU1", "AU2", "AU4") for r in transfer.values())
    assert "Relatedness ceiling" in md and "nearest (reference)" in md

    # --ceiling-only: the same ceilings from the same renders, nothing trained
    only_json = tmp_path / "ceiling.json"
    only = bench_main(
        "zero_shot",
        [
            *argv[: argv.index("--out-json")],
            "--ceiling-only",
            "--out-json",
            str(only_json),
            "--out-md",
            str(tmp_path / "ceiling.md"),
        ],
        shared_data,
    )
    assert json.loads(only_json.read_text())["ceiling"] == json.loads(json.dumps(result["ceiling"])) == only["ceiling"]

    # Another training seed trains its own runs (folders named by it), never reading back the seed-0 ones.
    at = argv.index("--groups")
    seeded = [*argv[:at], *argv[at + 2 : argv.index("--out-json")], "--no-hiva", "--seed", "1"]
    seeded += ["--out-json", str(tmp_path / "s1.json"), "--out-md", str(tmp_path / "s1.md")]
    bench_main("zero_shot", seeded, shared_data)
    config = json.loads((tmp_path / "work" / "runs" / "hiva_open_reference_e1_s1" / "config.json").read_text())
    assert config["config"]["train"]["seed"] == 1


def test_relatedness_ceiling_finds_the_au_that_gives_an_unseen_one_away(tmp_path):
    """An unseen AU present exactly when a seen AU is strong is ranked perfectly by that AU, and by the fit on all
    seen AUs (trained on the other folds); an unrelated one is not."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({f"AU{a}_int": rng.uniform(0, 1, n) for a in (1, 2, 4)})
    df["AU9"] = (df["AU2_int"] > 0.6).astype(int)  # given away by AU2
    df["AU5"] = rng.integers(0, 2, n)  # related to nothing
    df["fold"] = np.arange(n) % 3 + 1
    (tmp_path / "synth").mkdir()
    df.to_csv(tmp_path / "synth" / "manifest.csv", index=False)
    out = bench_script("zero_shot").relatedness_ceiling(tmp_path / "synth", [1, 2, 4], [9, 5])
    assert out["AU9"]["best_seen"] == "AU2" and out["AU9"]["auc_best_seen"] == 1.0 and out["AU9"]["auc_fitted"] > 0.95
    assert out["AU5"]["auc_fitted"] < 0.7
