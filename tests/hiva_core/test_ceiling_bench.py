"""bench/bench_ceiling.py: readers that see what SynthAU rendered (its motion, its landmarks) scored on the set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from augtext.errors import UserError
from tests.hiva_core.benchscript import bench_main, bench_script, render_synth

AUS = ["AU1", "AU2", "AU4", "AU6", "AU12"]


@pytest.fixture(scope="module")
def synth(shared_data, tmp_path_factory):
    # the readers need people and labels, not pixels: many small faces
    return render_synth(shared_data, tmp_path_factory.mktemp("ceiling") / "synth", n=360, size=32, seed=3, msaa=0)


def _outs(tmp_path):
    return ["--out-json", str(tmp_path / "c.json"), "--out-md", str(tmp_path / "c.md")]


def test_landmarks_are_put_in_one_frame():
    bench = bench_script("bench_ceiling")
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(68, 2))
    a = np.radians(20.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (reference @ rot.T) * 1.7 + np.array([5.0, -3.0])  # the same shape, turned, scaled and shifted
    framed = bench.to_frame(np.stack([moved, reference]), reference[bench.STABLE])
    assert np.allclose(framed, reference[None], atol=1e-9)


def test_detected_landmarks_move_by_the_eye_distance():
    bench = bench_script("bench_ceiling")
    rng = np.random.default_rng(1)
    faces = rng.normal(size=(4000, 68, 2)) * 10
    assert bench.detected(faces, 0.0, rng) is faces
    moved = bench.detected(faces, 0.02, np.random.default_rng(2))
    eyes = np.linalg.norm(faces[:, 36] - faces[:, 45], axis=1)
    error = np.linalg.norm(moved - faces, axis=2).mean(1) / eyes  # each face's normalised mean error (300-W's)
    assert error.mean() == pytest.approx(0.02 * np.sqrt(np.pi / 2), rel=0.02)


def test_readers_rank_by_what_they_see_and_the_run_is_scored_face_for_face(synth, shared_data, tmp_path, capsys):
    manifest = pd.read_csv(synth / "manifest.csv")
    test = manifest[manifest["fold"] == 1]
    # a "run" that calls each AU from its intensity at 0.5 and ranks by it: AUC 1, F1 = the share of present AUs at 0.5
    faces = pd.DataFrame({"path": [f"{synth.name}/{p}" for p in test["path"]], "subject": test["subject"]})
    for au in AUS:
        faces[f"{au}_prob"] = test[f"{au}_int"].to_numpy()
        faces[au] = (test[f"{au}_int"] >= 0.5).astype(int).to_numpy()
        faces[f"{au}_label"] = test[au].to_numpy()
    faces.sample(frac=1.0, random_state=0).to_csv(tmp_path / "faces.csv", index=False)  # joined by path
    argv = ["--data", str(synth), "--fold", "1", "--faces", str(tmp_path / "faces.csv"), "--aus", "1,2,4,6,7,12"]
    assert bench_main("bench_ceiling", [*argv, "--name", "tiny", *_outs(tmp_path)], shared_data) == 0
    entry = json.loads((tmp_path / "c.json").read_text())["tiny"]
    assert f"{len(test)} faces" in entry["what"] and f"{(manifest['fold'] != 1).sum()} faces" in entry["what"]
    for au in AUS:
        run = entry["run"]["per_au"][au]
        present = test[au] == 1
        assert run["auc"] == pytest.approx(1.0)
        assert run["f1"] == pytest.approx(
            2 * (test.loc[present, f"{au}_int"] >= 0.5).mean() / (1 + (test.loc[present, f"{au}_int"] >= 0.5).mean())
        )
    readers = entry["readers"]
    assert all(list(r["per_au"]) == AUS for r in readers.values())  # AU7: asked for, not scored by the run
    assert set(readers) == {"motion", "landmarks minus the neutral", "landmarks"}
    # exact motion reads the AUs best, the face's geometry against its neutral next, one image's geometry last
    assert readers["motion"]["auc"] > 0.95
    assert readers["motion"]["auc"] > readers["landmarks minus the neutral"]["auc"] > readers["landmarks"]["auc"]
    table = (tmp_path / "c.md").read_text()
    assert "| **avg** |" in table and "the run" in table and "| AU12 |" in capsys.readouterr().out


def test_trains_on_the_folds_of_train_and_on_fewer_faces(synth, shared_data, tmp_path):
    manifest = pd.read_csv(synth / "manifest.csv")
    argv = ["--train", str(synth), "--train-fold", "2", "--data", str(synth), "--fold", "2", "--train-faces", "100"]
    assert bench_main("bench_ceiling", [*argv, "--aus", "12", "--name", "few", *_outs(tmp_path)], shared_data) == 0
    entry = json.loads((tmp_path / "c.json").read_text())["few"]
    n = (manifest["fold"] == 2).sum()
    assert "fold 2 left out, 100 faces" in entry["what"] and f"(fold 2: {n} faces)" in entry["what"]
    assert "run" not in entry and list(entry["readers"]["motion"]["per_au"]) == ["AU12"]


def test_landmark_noise_blurs_the_geometry_not_the_motion(synth, shared_data, tmp_path):
    argv = ["--data", str(synth), "--fold", "1", "--aus", "2,12", *_outs(tmp_path)]
    assert bench_main("bench_ceiling", [*argv, "--name", "exact"], shared_data) == 0
    assert bench_main("bench_ceiling", [*argv, "--landmark-noise", "0.1", "--name", "noisy"], shared_data) == 0
    results = json.loads((tmp_path / "c.json").read_text())
    exact, noisy = results["exact"]["readers"], results["noisy"]["readers"]
    assert "landmark_noise" not in results["exact"] and results["noisy"]["landmark_noise"] == 0.1
    assert "noise 0.1 outer-eye-corner distances" in results["noisy"]["what"]
    assert noisy["motion"] == exact["motion"]
    against = "landmarks minus the neutral"
    assert noisy[against]["auc"] < exact[against]["auc"] - 0.05


def test_refuses_what_it_cannot_score(synth, shared_data, tmp_path):
    manifest = pd.read_csv(synth / "manifest.csv")
    outside = manifest[manifest["fold"] == 2].head(3)
    pd.DataFrame(
        {"path": synth.name + "/" + outside["path"], "AU1_prob": 0.5, "AU1": 1, "AU1_label": outside["AU1"]}
    ).to_csv(tmp_path / "f.csv", index=False)
    cases = [
        (["--fold", "1", "--faces", str(tmp_path / "f.csv")], "outside fold 1"),
        ([], "give --fold"),
        (["--fold", "1", "--aus", "1,x"], "not a comma-separated list"),
        (["--fold", "1", "--aus", "1,99"], "no AU99 label"),
        (["--fold", "1", "--train-faces", "100000"], "training faces"),
        (["--train", str(synth)], "must be the fold left out"),  # the test faces would be training faces
        (["--train", str(synth), "--fold", "2"], "must be the fold left out"),
        (["--fold", "1", "--landmark-noise", "-0.1"], "share of the eye distance"),
    ]
    for extra, message in cases:
        with pytest.raises(UserError, match=message):
            bench_main("bench_ceiling", ["--data", str(synth), *extra, "--name", "x", *_outs(tmp_path)], shared_data)
    with pytest.raises(UserError, match="not a SynthAU folder"):
        bench_main(
            "bench_ceiling", ["--data", str(tmp_path), "--fold", "1", "--name", "x", *_outs(tmp_path)], shared_data
        )
    assert not (tmp_path / "c.json").exists()
