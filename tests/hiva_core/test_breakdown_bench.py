"""bench/bench_breakdown.py: a run's SynthAU scores split by the conditions each face was rendered with."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiva_core.synth.sampling import sample_params
from tests.hiva_core.benchscript import bench_main, render_synth


@pytest.fixture(scope="module")
def small_synth(shared_data, tmp_path_factory):
    return render_synth(shared_data, tmp_path_factory.mktemp("breakdown") / "synth", n=48, size=40, seed=5)


def test_breakdown_scores_a_run_and_splits_its_faces(small_synth, trained_run, shared_data, tmp_path, capsys):
    run, _ = trained_run
    outs = ["--out-json", str(tmp_path / "b.json"), "--out-md", str(tmp_path / "b.md"), "--work", str(tmp_path)]
    argv = ["--run", str(run), "--data", str(small_synth), "--fold", "1", "--name", "tiny", *outs]
    assert bench_main("bench_breakdown", argv, shared_data) == 0
    entry = json.loads((tmp_path / "b.json").read_text())["tiny"]
    faces = pd.read_csv(tmp_path / "tiny.csv")  # eval --per-face's file, fold 1 of the renders
    manifest = pd.read_csv(small_synth / "manifest.csv")
    assert len(faces) == (manifest["fold"] == 1).sum() == entry["groups"]["all faces"]["faces"]
    assert entry["aus"] == ["AU1", "AU2", "AU4"] and "avg F1" in entry["what"]
    pose = np.maximum(manifest["yaw"].abs(), manifest["pitch"].abs())[manifest["fold"] == 1]
    assert entry["groups"]["pose within 15 deg"]["faces"] == (pose <= 15).sum()
    assert "| all faces | " in (tmp_path / "b.md").read_text() and "| all faces | " in capsys.readouterr().out


def test_breakdown_counts_each_condition_and_intensity(small_synth, shared_data, tmp_path):
    """Calls made by rule on every face of the set: right exactly on the faces within 15 deg, and on the AUs at 0.5
    or more; the bench must find those faces and those pairs."""
    manifest = pd.read_csv(small_synth / "manifest.csv")
    aus = ["AU1", "AU2", "AU4", "AU6", "AU12"]
    frontal = np.maximum(manifest["yaw"].abs(), manifest["pitch"].abs()) <= 15
    assert 0 < frontal.sum() < len(manifest)
    # as eval writes them when its --data was given relative to where it ran: joined by the folder's name and below
    faces = pd.DataFrame({"path": [f"{small_synth.name}/{p}" for p in manifest["path"]]})
    for au in aus:
        strong = (manifest[f"{au}_int"] >= 0.5).astype(int)
        faces[f"{au}_prob"] = manifest[f"{au}_int"]
        faces[au] = np.where(frontal, strong, 0)  # turned faces: nothing called
        faces[f"{au}_label"] = manifest[au]
    faces.sample(frac=1.0, random_state=0).to_csv(tmp_path / "faces.csv", index=False)  # joined by path, any order
    outs = ["--out-json", str(tmp_path / "b.json"), "--out-md", str(tmp_path / "b.md")]
    argv = ["--faces", str(tmp_path / "faces.csv"), "--data", str(small_synth), "--name", "rule", *outs]
    assert bench_main("bench_breakdown", argv, shared_data) == 0
    entry = json.loads((tmp_path / "b.json").read_text())["rule"]
    groups, pairs = entry["groups"], entry["pairs"]
    assert groups["pose within 15 deg"]["faces"] == frontal.sum()
    assert groups["pose over 30 deg"]["f1"] in (None, 0.0) and groups["pose 15-30 deg"]["f1"] in (None, 0.0)
    assert groups["easy faces, clear AUs only"]["f1"] == 1.0  # frontal, and only the clear labels count
    assert groups["all faces"]["f1"] < 1.0  # turned faces called nothing, but the intensities rank every label right:
    assert groups["all faces, each AU's best threshold on them (oracle)"]["f1"] == 1.0  # labels are 0.3 or more
    level = manifest[[f"{au}_int" for au in aus]].to_numpy()
    labels = manifest[aus].to_numpy()
    slight = (labels == 1) & (level < 0.5)
    assert pairs["present, slight (0.3-0.5)"]["pairs"] == slight.sum()
    called = frontal.to_numpy()[:, None] & (level >= 0.5)
    assert pairs["present, slight (0.3-0.5)"]["called"] == pytest.approx(called[slight].mean())
    traces = (labels == 0) & (level > 0)
    assert pairs["absent, with a trace"]["pairs"] == traces.sum()
    mix = json.loads((small_synth / "synth.json").read_text())["labels"]
    kinds = [{o["kind"] for o in sample_params(5, int(i), False, "all", mix).occluders} for i in manifest["index"]]
    for kind, group in (("hand", "a hand"), ("mask", "a mask"), ("glasses", "glasses")):
        assert groups.get(group, {"faces": 0})["faces"] == sum(kind in k for k in kinds)
    assert groups["nothing over the face"]["faces"] == sum(not k for k in kinds)
    sharp, blurred = (groups.get(g, {"faces": 0})["faces"] for g in ("sharp (neither)", "blurred or shrunk"))
    assert sharp + blurred == len(manifest)


def test_breakdown_refuses_faces_of_another_set(small_synth, shared_data, tmp_path):
    from augtext.errors import UserError

    first = pd.read_csv(small_synth / "manifest.csv")["path"].iloc[0]  # a face of the same layout, another folder
    for path in ("/elsewhere/x.jpg", f"/elsewhere/other_synth/{first}"):
        pd.DataFrame({"path": [path], "AU1_prob": [0.5], "AU1": [1], "AU1_label": [1]}).to_csv(
            tmp_path / "f.csv", index=False
        )
        argv = ["--faces", str(tmp_path / "f.csv"), "--data", str(small_synth), "--name", "x", "--out-json",
                str(tmp_path / "b.json"), "--out-md", str(tmp_path / "b.md")]  # fmt: skip
        with pytest.raises(UserError, match="is not a face of"):
            bench_main("bench_breakdown", argv, shared_data)
        assert not (tmp_path / "b.json").exists()
