"""bench/prior_control.py at toy scale: real renders, the real reference/name/shuffled priors, tiny models, 2 seeds."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.hiva_core.benchscript import bench_main


def test_prior_control_toy(tmp_path, shared_data, one_thread):
    out_json, out_md = tmp_path / "pc.json", tmp_path / "pc.md"
    argv = [
        "--arms",
        "hiva_reference,hiva_name,hiva_shuffled,linear",
        "--aus",
        "1,2,4",
        "--backbone",
        "tiny",
        "--dim",
        "32",
        "--budgets",
        "8",
        "--seeds",
        "0,1",
        "--epochs",
        "1",
        "--min-steps",
        "0",
        "--image-size",
        "32",
        "--n-shifted",
        "8",
        "--num-workers",
        "0",
        "--work",
        str(tmp_path / "work"),
        "--out-json",
        str(out_json),
        "--out-md",
        str(out_md),
    ]
    result = bench_main("prior_control", argv, shared_data)
    runs = {(r["arm"], r["seed"]) for r in result["runs"]}
    assert runs == {(a, s) for a in ("hiva_reference", "hiva_name", "hiva_shuffled", "linear") for s in (0, 1)}

    # The priors say what they should: 50 reference texts per AU, one name sentence, the same texts shuffled.
    priors = tmp_path / "work" / "priors"
    name = pq.read_table(priors / "name" / "descriptions.parquet").to_pydict()
    assert sorted(zip(name["au"], name["text"], strict=True)) == [
        (1, "Inner brow raiser."),
        (2, "Outer brow raiser."),
        (4, "Brow lowerer."),
    ]
    ref = pq.read_table(priors / "reference" / "descriptions.parquet").to_pydict()
    shuf = pq.read_table(priors / "shuffled" / "descriptions.parquet").to_pydict()
    assert sorted(ref["text"]) == sorted(shuf["text"]) and len(ref["text"]) >= 140  # the gate may drop a few
    moved = {t: a for a, t in zip(shuf["au"], shuf["text"], strict=True)}
    assert all(moved[t] != a for a, t in zip(ref["au"], ref["text"], strict=True))
    assert result["shuffled_holds"] and result["priors"]["name"]["total"] == 3

    # Paired differences against the reference arm, seed by seed.
    pairs = result["paired_vs_reference"]["test"]
    assert set(pairs) == {"hiva_name@8", "hiva_shuffled@8", "linear@8"}
    for p in pairs.values():
        assert p["seeds"] == [0, 1] and len(p["diffs"]) == 2 and p["std"] is not None
    md = out_md.read_text()
    assert "hiva_reference − hiva_shuffled" in md and "## Reading" in md and "reference − shuffled" in md
    assert json.loads(out_json.read_text())["summary"]["shifted"]
