"""Test-time flip (`eval --flip`, `predict --flip`): each face scored as the mean of it and its mirror image; and
the evaluation loader on a machine smaller than the one a run was trained on."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.hiva_core.test_predict import IMAGE_SIZE, tiny_run


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from hiva_core.checkpoint import load_run

    return load_run(tiny_run(tmp_path_factory), device="cpu")


def test_flip_averages_a_face_with_its_mirror(loaded, one_thread):
    torch.manual_seed(0)
    images = torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE)
    plain, mirror = loaded.predict(images), loaded.predict(images.flip(-1))
    assert not torch.allclose(plain["probs"], mirror["probs"], atol=1e-4)  # the model alone is not symmetric
    flipped = dataclasses.replace(loaded, flip=True)
    assert loaded.flip is False  # replace leaves the caller's run as it was
    out = flipped.predict(images)
    torch.testing.assert_close(out["probs"], (plain["probs"] + mirror["probs"]) / 2)
    torch.testing.assert_close(out["maps"], (plain["maps"] + mirror["maps"].flip(-1)) / 2)
    # A face and its mirror image now get the same probabilities, and mirrored maps.
    again = flipped.predict(images.flip(-1))
    torch.testing.assert_close(again["probs"], out["probs"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(again["maps"], out["maps"].flip(-1), atol=1e-6, rtol=1e-5)


def test_predict_flip_scores_the_mean_of_face_and_mirror(tmp_path, tmp_path_factory, loaded, one_thread):
    from hiva_core.cli import main
    from hiva_core.data.transforms import build_transforms

    rng = np.random.default_rng(0)
    crop = Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8))
    crop.save(tmp_path / "face.png")
    run = str(tiny_run(tmp_path_factory))
    x = build_transforms(IMAGE_SIZE)(crop)[None]
    expected = {
        False: loaded.predict(x)["probs"][0].numpy(),
        True: dataclasses.replace(loaded, flip=True).predict(x)["probs"][0].numpy(),
    }
    for flip in (False, True):
        out = tmp_path / f"flip{flip}.json"
        argv = [
            "predict",
            str(tmp_path / "face.png"),
            "--run",
            run,
            "--out",
            str(out),
            "--no-detect",
            "--device",
            "cpu",
        ]
        assert main(argv + (["--flip"] if flip else [])) == 0
        row = json.loads(out.read_text())[0]
        got = np.array([row[f"AU{a}_prob"] for a in loaded.aus])
        np.testing.assert_allclose(got, expected[flip], atol=1e-5)
    assert not np.allclose(expected[False], expected[True], atol=1e-4)


def test_eval_flip_reports_the_mirror_averaged_metrics(tmp_path_factory, tiny_faces, tmp_path, capsys, one_thread):
    """On the untrained tiny run (scores not yet separable, so the mirror moves them), the toy faces' 3 AUs."""
    from hiva_core.checkpoint import load_run
    from hiva_core.cli import main
    from hiva_core.evaluate import collect_probs, run_dataset, run_loader
    from hiva_core.metrics import au_metrics
    from hiva_core.vocabulary import select_aus

    run = tiny_run(tmp_path_factory)
    reports = {}
    for flip in (False, True):
        out = tmp_path / f"flip{flip}.json"
        argv = ["eval", "--run", str(run), "--data", str(tiny_faces), "--json", str(out), "--threshold", "0.5"]
        argv += ["--aus", "1,2,4"]
        assert main(argv + (["--flip"] if flip else [])) == 0
        reports[flip] = (json.loads(out.read_text()), capsys.readouterr().out)
    (plain, plain_text), (flipped, flipped_text) = reports[False], reports[True]
    assert plain["flip"] is False and flipped["flip"] is True
    assert "mirror" in flipped_text.splitlines()[0] and "mirror" not in plain_text.splitlines()[0]
    # The same numbers as the mean of each face's and its mirror's probabilities, scored by hand.
    loaded = select_aus(load_run(run, device="cpu"), "1,2,4", None)
    dataset, _ = run_dataset(loaded, str(tiny_faces), None, None, None)

    def mean_of_both(images):
        return (loaded.predict(images)["probs"] + loaded.predict(images.flip(-1))["probs"]) / 2

    out = collect_probs(mean_of_both, run_loader(loaded, dataset, 64), loaded.device, len(loaded.aus))
    by_hand = au_metrics(out["probs"], out["labels"], out["mask"], loaded.aus, threshold=0.5)
    for au in ("AU1", "AU2", "AU4"):
        assert flipped["per_au"][au]["auc"] == pytest.approx(by_hand["per_au"][au]["auc"], abs=1e-6)
        assert flipped["per_au"][au]["f1"] == pytest.approx(by_hand["per_au"][au]["f1"], abs=1e-6)
    assert any(flipped["per_au"][a]["auc"] != plain["per_au"][a]["auc"] for a in ("AU1", "AU2", "AU4"))
    # from Python: a loaded run (its flip as set) is evaluated as its folder is
    from hiva_core.evaluate import evaluate_run

    given = evaluate_run(dataclasses.replace(loaded, flip=True), str(tiny_faces), threshold=0.5)
    assert given["flip"] is True
    for au in ("AU1", "AU2", "AU4"):
        assert given["per_au"][au]["auc"] == pytest.approx(flipped["per_au"][au]["auc"], abs=1e-6)


def test_eval_loader_uses_no_more_workers_than_cpus(loaded):
    """A run trained with many loader workers on a server is evaluated on a small machine with one per CPU at most."""
    import os

    from hiva_core.evaluate import run_loader

    config = {**loaded.config, "config": {**loaded.config["config"], "data": {"num_workers": 512}}}
    server_run = dataclasses.replace(loaded, config=config)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert run_loader(server_run, list(range(4)), 2).num_workers == min(512, cpus)
    one = {**loaded.config, "config": {**loaded.config["config"], "data": {"num_workers": 1}}}
    assert run_loader(dataclasses.replace(loaded, config=one), list(range(4)), 2).num_workers == 1
