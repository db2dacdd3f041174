"""hiva_core export: the run (text prior folded in) as ONNX, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from augtext.errors import UserError

pytest.importorskip("onnx", reason="ONNX export needs: pip install onnx onnxscript onnxruntime")
pytest.importorskip("onnxscript", reason="ONNX export needs: pip install onnx onnxscript onnxruntime")
ort = pytest.importorskip("onnxruntime", reason="the parity check needs: pip install onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from hiva_core.checkpoint import load_run
    from hiva_core.export import export_onnx
    from tests.hiva_core.test_predict import tiny_run

    run_dir = tiny_run(tmp_path_factory)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    report = export_onnx(run_dir, path)
    return load_run(run_dir, device="cpu"), path, report


def test_onnx_matches_pytorch_for_probs_and_maps(exported):
    loaded, path, report = exported
    assert report["outputs"] == ["probs", "maps"] and report["max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    size = loaded.image_size
    images = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))  # not the export batch size
    probs, maps = session.run(["probs", "maps"], {"images": images.numpy()})
    expected = loaded.predict(images)  # the model with the prior passed in at run time
    assert probs.shape == (3, len(loaded.aus)) and maps.shape[:2] == (3, len(loaded.aus))
    np.testing.assert_allclose(probs, expected["probs"].numpy(), atol=1e-4)
    np.testing.assert_allclose(maps, expected["maps"].numpy(), atol=1e-4)


def test_onnx_needs_no_text_prior_and_carries_metadata(exported):
    import onnx

    loaded, path, _ = exported
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["images"]  # the prior is inside, not an input
    # ... and folded: the raw (A, K, D) embeddings were consumed by constant folding of the text branch.
    prior_shape = list(loaded.prior.embeddings.shape)
    assert all(list(init.dims) != prior_shape for init in model.graph.initializer)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["hiva.aus"]) == loaded.aus and int(meta["hiva.image_size"]) == loaded.image_size
    assert model.opset_import[0].version >= 17


def test_onnx_metadata_holds_the_thresholds_that_give_predicts_calls(exported, tmp_path):
    """`hiva.thresholds` are the run's per-AU thresholds: the ONNX probabilities of an aligned crop, fed as the
    module docstring says (resize, centre crop, ImageNet mean/std), at them are `hiva_core predict`'s calls."""
    import dataclasses

    import onnx
    from PIL import Image

    from hiva_core.data.transforms import build_transforms
    from hiva_core.export import export_onnx
    from hiva_core.predict import run_predict

    loaded, _, _ = exported
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    probs = run_predict([tmp_path / "c.png"], loaded, detect=False).rows.iloc[0]
    # thresholds just above or below each probability: both calls occur, and 0.5 would not give them
    cuts = {a: float(probs[f"AU{a}_prob"]) + (-2e-3 if i % 2 else 2e-3) for i, a in enumerate(loaded.aus)}
    run = dataclasses.replace(loaded, thresholds=cuts)
    report = export_onnx(run, tmp_path / "t.onnx", verify=False)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "t.onnx")).metadata_props}
    stored = json.loads(meta["hiva.thresholds"])
    assert list(stored) == [f"AU{a}" for a in json.loads(meta["hiva.aus"])] and report["thresholds"] == stored
    assert (
        stored == pytest.approx({f"AU{a}": t for a, t in cuts.items()}) and "per-AU" in meta["hiva.thresholds_source"]
    )

    size, mean, std = int(meta["hiva.image_size"]), json.loads(meta["hiva.mean"]), json.loads(meta["hiva.std"])
    assert mean == [0.485, 0.456, 0.406] and std == [0.229, 0.224, 0.225]
    images = build_transforms(size)(Image.open(tmp_path / "c.png").convert("RGB"))[None].numpy()
    session = ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    (onnx_probs,) = session.run(["probs"], {"images": images})
    onnx_calls = [int(p >= stored[f"AU{a}"]) for a, p in zip(loaded.aus, onnx_probs[0], strict=True)]
    row = run_predict([tmp_path / "c.png"], run, detect=False).rows.iloc[0]
    assert onnx_calls == [int(row[f"AU{a}"]) for a in loaded.aus] == [i % 2 for i in range(len(loaded.aus))]


def test_cli_export_and_bad_output_name(exported, tmp_path):
    from hiva_core.cli import main

    loaded, _, _ = exported
    assert main(["export", "--run", str(loaded.run_dir), "--onnx", str(tmp_path / "m.txt")]) == 2
    with pytest.raises(UserError, match="must end in .onnx"):
        from hiva_core.export import export_onnx

        export_onnx(loaded, tmp_path / "m.txt")


@pytest.mark.slow
def test_export_of_a_model_without_maps_has_only_probs(tmp_path):
    from hiva_core.checkpoint import load_run
    from hiva_core.export import export_onnx
    from tests.hiva_core.test_predict import make_tiny_run

    run_dir = make_tiny_run(tmp_path, model="linear")
    report = export_onnx(run_dir, tmp_path / "linear.onnx")
    assert report["outputs"] == ["probs"] and report["max_abs_diff"] <= 1e-4
    loaded = load_run(run_dir, device="cpu")
    images = np.random.default_rng(0).normal(size=(2, 3, loaded.image_size, loaded.image_size)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "linear.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"images": images})
    np.testing.assert_allclose(probs, loaded.predict(torch.from_numpy(images))["probs"].numpy(), atol=1e-4)


# ------------------------------------------------------------------------------------------ refusals (issue 11)
def test_the_requested_opset_is_written_or_refused(exported, tmp_path, capsys):
    """The file holds exactly the opset asked for; one this torch cannot write (below 18, above onnx's newest) is
    refused before any work, with one line and exit 2, instead of a traceback, exit 0 and another opset."""
    import onnx

    from hiva_core.cli import main

    loaded, path, report = exported
    assert onnx.load(str(path)).opset_import[0].version == report["opset"] == 18
    for opset in ("16", "17", "99"):
        target = tmp_path / f"m{opset}.onnx"
        assert main(["export", "--run", str(loaded.run_dir), "--onnx", str(target), "--opset", opset]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --opset") and "18" in err and len(err.strip().splitlines()) == 1, err
        assert not target.exists()


@pytest.mark.slow
def test_opset_above_the_default_is_honoured(exported, tmp_path):
    import onnx

    from hiva_core.export import export_onnx

    loaded, _, _ = exported
    report = export_onnx(loaded, tmp_path / "m20.onnx", opset=20)
    assert onnx.load(str(tmp_path / "m20.onnx")).opset_import[0].version == report["opset"] == 20


def test_export_refuses_non_finite_weights_and_output_folders(exported, tmp_path, capsys):
    import copy

    from hiva_core.cli import main
    from hiva_core.export import export_onnx

    loaded, _, _ = exported
    (tmp_path / "taken.onnx").mkdir()
    assert main(["export", "--run", str(loaded.run_dir), "--onnx", str(tmp_path / "taken.onnx")]) == 2
    assert f"is a folder; give a file name (e.g. {tmp_path / 'taken.onnx' / 'model.onnx'})" in capsys.readouterr().err
    spoiled = copy.copy(loaded)
    spoiled.model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        next(spoiled.model.parameters()).fill_(float("nan"))
    with pytest.raises(UserError, match="non-finite weights"):
        export_onnx(spoiled, tmp_path / "nan.onnx")
    assert not (tmp_path / "nan.onnx").exists()
