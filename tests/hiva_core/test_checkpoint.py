"""The run folder: load_run without the text cache, and clear errors for missing or corrupt files."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from augtext.errors import UserError
from hiva_core import serialize
from hiva_core.checkpoint import load_run
from hiva_core.cli import main
from hiva_core.device import autocast, pick_device
from hiva_core.run_folder import CONFIG, RUN_FORMAT, RunFolder
from tests.hiva_core.conftest import train_argv

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run_copy(trained_run, tmp_path):
    run, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def test_load_run_needs_no_text_cache(run_copy, text_cache, tmp_path):
    info = json.loads((run_copy / "config.json").read_text())
    assert info["config"]["text"]["cache"] == str(text_cache)
    moved = tmp_path / "elsewhere"
    shutil.move(str(run_copy), moved)
    loaded = load_run(moved, device="cpu")
    assert loaded.prior.dim == 384 and loaded.prior.aus == [1, 2, 4]
    assert loaded.prior.fingerprint == info["text_prior"]["fingerprint"]
    out = loaded.predict(torch.zeros(2, 3, 32, 32))
    assert out["probs"].shape == (2, 3) and out["probs"].dtype == torch.float32
    assert ((out["probs"] >= 0) & (out["probs"] <= 1)).all()


@pytest.mark.parametrize(
    "name, damage, needle",
    [
        ("config.json", "delete", "config.json not found"),
        ("config.json", "garble", "config.json is not valid JSON"),
        ("model.safetensors", "delete", "model.safetensors not found"),
        ("model.safetensors", "garble", "model.safetensors is not a readable safetensors file"),
        ("text_prior.safetensors", "delete", "text_prior.safetensors not found"),
        ("text_prior.safetensors", "garble", "text_prior.safetensors is not a readable safetensors file"),
    ],
)
def test_load_run_damaged(run_copy, name, damage, needle):
    path = run_copy / name
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(b"\x00garbage{")
    with pytest.raises(UserError, match=needle):
        load_run(run_copy, device="cpu")


def test_load_run_weights_of_another_model(run_copy):
    info = json.loads((run_copy / "config.json").read_text())
    info["model_config"]["dim"] = 64  # config.json no longer describes the stored weights
    (run_copy / "config.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="model.safetensors does not match"):
        load_run(run_copy, device="cpu")


def test_eval_damaged_run_exits_2(run_copy, tiny_faces, capsys):
    (run_copy / "model.safetensors").write_bytes(b"junk")
    assert main(["eval", "--run", str(run_copy), "--data", str(tiny_faces)]) == 2
    assert "model.safetensors" in capsys.readouterr().err


def test_eval_hints_folds_all(tmp_path, tiny_faces, capsys):
    (tmp_path / "fold1").mkdir()
    (tmp_path / "fold1" / "config.json").write_text("{}")
    assert main(["eval", "--run", str(tmp_path), "--data", str(tiny_faces)]) == 2
    assert "--folds all" in capsys.readouterr().err


def test_resume_corrupt_last_exits_2(run_copy, text_cache, tiny_faces, capsys):
    (run_copy / "last.pt").write_bytes(b"truncated")
    before = (run_copy / "model.safetensors").read_bytes()
    assert main(train_argv(text_cache, tiny_faces, run_copy, "--resume", "--epochs", "8")) == 2
    assert "last.pt is not a readable checkpoint" in capsys.readouterr().err
    assert (run_copy / "model.safetensors").read_bytes() == before


def test_last_pt_is_weights_only(trained_run):
    run, _ = trained_run
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 6 and state["best_epoch"] >= 1
    assert {"task", "optimizer", "scheduler", "rng", "step", "best_f1"} <= set(state)


def test_rng_state_round_trip():
    state = serialize.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123), np.random.seed(5), random.seed(7)
    serialize.set_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_pick_device_and_autocast():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(UserError, match="unknown device"):
        pick_device("tpu:x")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            pick_device("cuda")
    with autocast(torch.device("cpu")):  # a no-op on CPU: full precision
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


# ------------------------------------------------------------------------------------------------------ RunFolder
def _metrics(f1: float) -> dict:
    return {"avg": {"f1": f1, "auc": 0.5}, "per_au": {}}


def test_run_folder_keeps_the_best_and_always_the_last(tmp_path):
    """As timm's CheckpointSaver: last.pt every epoch, model.safetensors only when the average F1 improves (a tie
    keeps the earlier epoch); an epoch without evaluation changes no best. `resume` restores that state."""
    from safetensors.torch import load_file

    run = RunFolder(tmp_path / "run")
    model = torch.nn.Linear(2, 1)
    written = []
    for epoch, f1 in enumerate([0.5, 0.7, 0.7, None, 0.6], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        run.save_checkpoint(epoch, None if f1 is None else _metrics(f1), model, {"epoch": epoch, "step": 10 * epoch})
        written.append(float(load_file(run.model_file)["weight"][0, 0]))
        run.append_log({"epoch": epoch, "step": 10 * epoch})
    assert written == [1, 2, 2, 2, 2]  # epoch 2's weights: the first 0.7
    assert (run.best_f1, run.best_epoch, run.last_metrics["avg"]["f1"]) == (0.7, 2, 0.6)
    last = torch.load(run.last_file, weights_only=True)
    assert list(last) == ["epoch", "step", "best_f1", "best_epoch", "rng"] and last["epoch"] == 5
    saved = json.loads(run.metrics_file.read_text())
    assert (saved["best_epoch"], saved["last_epoch"], saved["best"]["avg"]["f1"]) == (2, 5, 0.7)

    again = RunFolder(run.path)
    assert again.resume()["step"] == 50
    assert (again.best_f1, again.best_epoch, again.best_metrics["avg"]["f1"]) == (0.7, 2, 0.7)
    assert [int(r["epoch"]) for r in again.log_rows] == [1, 2, 3, 4, 5]


def test_a_save_that_fails_part_way_changes_no_file(tmp_path, monkeypatch):
    """A full disk while last.pt is written, after the new best model and metrics.json were: every file stays at the
    epoch before (the one --resume redoes from), and no temp file is left."""
    import errno

    run = RunFolder(tmp_path / "run")
    model = torch.nn.Linear(2, 1)
    val = {"thresholds": {"AU1": 0.4}, "validation": "val", "frames": 9}
    run.save_checkpoint(1, _metrics(0.5), model, {"epoch": 1, "step": 1}, val, "test")
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    assert {"model.safetensors", "thresholds.json", "metrics.json", "last.pt"} <= set(before)

    def full(obj, path):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with torch.no_grad():
        model.weight.fill_(7.0)
    with pytest.raises(OSError, match="No space"):
        run.save_checkpoint(2, _metrics(0.9), model, {"epoch": 2, "step": 2}, {**val, "thresholds": {"AU1": 0.2}})
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before
    monkeypatch.undo()
    assert RunFolder(run.path).resume()["epoch"] == 1


def test_run_folder_selects_on_validation_when_asked_and_possible(tmp_path):
    """train.select=val keeps the epoch with the best validation F1 (at its thresholds), whatever the test split
    says; metrics.json names what chose it, and resume reads that back. Without thresholds (no validation rows)
    the test split chooses, and says so."""
    from safetensors.torch import load_file

    def val(f1: float, auc: float = 0.5) -> dict:
        return {
            "thresholds": {"AU1": 0.4},
            "validation": "v",
            "frames": 3,
            "val_f1": {"AU1": f1, "avg": f1},
            "val_auc": {"AU1": auc, "avg": auc},
        }

    run = RunFolder(tmp_path / "run")
    model = torch.nn.Linear(2, 1)
    for epoch, (test_f1, val_f1) in enumerate([(0.5, 0.6), (0.9, 0.4), (0.6, 0.7)], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        run.save_checkpoint(epoch, _metrics(test_f1), model, {"epoch": epoch, "step": epoch}, val(val_f1), "val")
    assert float(load_file(run.model_file)["weight"][0, 0]) == 3  # not epoch 2, the test split's best
    assert (run.best_epoch, run.best_f1, run.best_metrics["avg"]["f1"]) == (3, 0.7, 0.6)
    saved = json.loads(run.metrics_file.read_text())
    assert saved["selected_on"] == "validation avg F1 at its per-AU thresholds" and saved["best_score"] == 0.7
    assert json.loads(run.thresholds_file.read_text())["epoch"] == 3
    again = RunFolder(run.path)
    again.resume()
    assert (again.best_epoch, again.selected_on) == (3, saved["selected_on"])

    test_only = RunFolder(tmp_path / "test_only")
    for epoch, f1 in enumerate([0.5, 0.9, 0.6], start=1):
        test_only.save_checkpoint(epoch, _metrics(f1), model, {"epoch": epoch, "step": epoch}, None, "val")
    assert test_only.best_epoch == 2 and test_only.selected_on == "test avg F1 at 0.5 (no validation score)"
    undefined = RunFolder(tmp_path / "undefined")  # validation rows without a positive label: F1 NaN
    for epoch, f1 in enumerate([0.5, 0.9, 0.6], start=1):
        undefined.save_checkpoint(epoch, _metrics(f1), model, {"epoch": epoch, "step": epoch}, val(float("nan")), "val")
    assert undefined.best_epoch == 2 and undefined.model_file.is_file()

    # val_auc follows the validation AUC, not its F1 at thresholds fitted on the same rows
    by_auc = RunFolder(tmp_path / "by_auc")
    for epoch, (f1, auc) in enumerate([(0.8, 0.70), (0.6, 0.85), (0.7, 0.80)], start=1):
        by_auc.save_checkpoint(epoch, _metrics(0.5), model, {"epoch": epoch, "step": epoch}, val(f1, auc), "val_auc")
    assert (by_auc.best_epoch, by_auc.best_f1, by_auc.selected_on) == (2, 0.85, "validation avg AUC")

    # last (the default) keeps every evaluated epoch, whatever the scores: the model, its thresholds and metrics are
    # the last evaluated epoch's, and the score it reports is that epoch's validation AUC (else its test F1)
    last = RunFolder(tmp_path / "last")
    for epoch, (f1, auc, test_f1) in enumerate([(0.8, 0.70, 0.9), (0.6, 0.85, 0.8), (0.7, 0.60, 0.4)], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        last.save_checkpoint(epoch, _metrics(test_f1), model, {"epoch": epoch, "step": epoch}, val(f1, auc), "last")
    last.save_checkpoint(4, None, model, {"epoch": 4, "step": 4}, None, "last")  # not evaluated: nothing kept
    assert float(load_file(last.model_file)["weight"][0, 0]) == 3
    assert (last.best_epoch, last.best_f1, last.best_metrics["avg"]["f1"]) == (3, 0.6, 0.4)
    assert json.loads(last.thresholds_file.read_text())["epoch"] == 3
    saved = json.loads(last.metrics_file.read_text())
    assert (saved["best_epoch"], saved["last_epoch"]) == (3, 4)
    assert saved["selected_on"] == "the last epoch; validation avg AUC"
    no_val = RunFolder(tmp_path / "last_no_val")
    for epoch, f1 in enumerate([0.9, 0.5], start=1):
        no_val.save_checkpoint(epoch, _metrics(f1), model, {"epoch": epoch, "step": epoch}, None, "last")
    assert (no_val.best_epoch, no_val.best_f1, no_val.selected_on) == (2, 0.5, "the last epoch; test avg F1 at 0.5")


def test_run_folder_refuses_to_overwrite_or_resume_nothing(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.check_new(resume=False)  # an empty (or absent) folder is fine
    with pytest.raises(UserError, match="nothing to resume"):
        run.check_new(resume=True)
    run.save_checkpoint(1, None, torch.nn.Linear(2, 1), {"epoch": 1, "step": 1})
    with pytest.raises(UserError, match="already holds a trained run"):
        run.check_new(resume=False)
    run.check_new(resume=True)


def test_resuming_a_finished_run_says_how_to_train_further(tmp_path):
    """--resume of a run that has trained all its epochs trains nothing: refused, saying how to go on; more --epochs
    continue it."""
    run = RunFolder(tmp_path / "run")
    run.check_unfinished(2)  # nothing saved yet: fit's own checks speak
    run.save_checkpoint(2, None, torch.nn.Linear(2, 1), {"epoch": 2, "step": 2})
    for epochs in (2, 1):
        with pytest.raises(UserError) as caught:
            run.check_unfinished(epochs)
        assert str(caught.value) == (
            f"{run.path} already finished all 2 epochs; pass --epochs N (more than 2) with --resume to train further"
        )
    run.check_unfinished(3)


def test_run_folder_config_round_trip(tmp_path):
    """config.json written through RunFolder is what load_run and --resume read back."""
    from augtext.textprior import TextPrior
    from hiva_core.config import DataSection, ModelSection, TrainConfig
    from hiva_core.models import create_model

    prior = TextPrior(
        aus=[1, 2],
        embeddings=np.ones((2, 3, 8), np.float32),
        mask=np.ones((2, 3), bool),
        model="m",
        fingerprint="f" * 64,
    )
    cfg = TrainConfig(data=DataSection(image_size=32, fold=2), model=ModelSection(backbone="tiny", dim=32, heads=4))
    net = create_model(cfg.model.name, num_aus=2, text_dim=8, **cfg.model.overrides())
    run = RunFolder(tmp_path / "run")
    run.write_config(cfg, net, prior.aus, prior, train_frames=10, test_frames=5)
    run.write_prior(prior)
    run.write_model(net)
    info = run.read_config()
    assert info["format"] == RUN_FORMAT and info["aus"] == [1, 2] and info["image_size"] == 32
    assert info["text_prior"]["descriptions_per_au"] == 3 and info["data"]["train_frames"] == 10
    built = dataclasses.replace(  # as built: hiva has no geometry or intensity head nor hiva_open's text options
        cfg.model,
        output_stride=8,
        geometry=False,
        geometry_unexplained=False,
        text_film=False,
        text_bias=False,
        intensity=False,
    )
    assert run.read_train_config() == dataclasses.replace(cfg, model=built)
    loaded = load_run(run.path, device="cpu")
    assert loaded.aus == [1, 2] and loaded.prior == prior and loaded.config == info
    parent = RunFolder(tmp_path)
    assert not parent.is_run() and [r.path for r in parent.fold_runs()] == []
    (tmp_path / "fold2").mkdir()
    run.config_file.rename(tmp_path / "fold2" / CONFIG)
    assert [r.path.name for r in parent.fold_runs()] == ["fold2"] and parent.fold(2).is_run()


def test_a_run_saved_before_output_stride_keeps_its_coarse_maps(tmp_path):
    """A config.json without model.output_stride (every run trained before it existed) rebuilds the stride-32
    model it was trained as, for eval, predict and --resume; a new run records the stride-16 default it got."""
    from augtext.textprior import TextPrior
    from hiva_core.config import DataSection, ModelSection, TrainConfig
    from hiva_core.models import create_model

    prior = TextPrior(
        aus=[1, 2], embeddings=np.ones((2, 3, 8), np.float32), mask=np.ones((2, 3), bool), model="m", fingerprint="f"
    )
    cfg = TrainConfig(data=DataSection(image_size=64), model=ModelSection(backbone="mobilenetv2", dim=32, heads=4))
    images = torch.randn(1, 3, 64, 64)
    grids = {}
    for age in ("new", "old"):
        torch.manual_seed(0)
        net = create_model(cfg.model.name, num_aus=2, text_dim=8, **cfg.model.overrides())
        run = RunFolder(tmp_path / age)
        run.write_config(cfg, net, prior.aus, prior)
        run.write_prior(prior)
        run.write_model(net)
        if age == "old":
            info = json.loads(run.config_file.read_text())
            assert (
                info["model_config"].pop("output_stride") == 16 and info["config"]["model"].pop("output_stride") is None
            )
            run.config_file.write_text(json.dumps(info))
        loaded = load_run(run.path, device="cpu")
        grids[age] = (loaded.model.backbone.stride, tuple(loaded.predict(images)["maps"].shape[-2:]))
        assert run.read_train_config().model.output_stride == grids[age][0]
    assert grids == {"new": (16, (4, 4)), "old": (32, (2, 2))}


def _spoil_weights(run, value: float, everywhere: bool = True) -> str:
    """Write non-finite values into model.safetensors (a valid file); returns the spoiled tensor's name."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(run / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    for key, tensor in state.items():
        if tensor.is_floating_point() and (everywhere or key == name):
            tensor.view(-1)[0 if not everywhere else slice(None)] = value
    save_file(state, str(run / "model.safetensors"))
    return name


@pytest.mark.parametrize("value, everywhere", [(float("nan"), True), (float("inf"), False)])
def test_non_finite_weights_are_refused_at_load(run_copy, tiny_faces, tmp_path, capsys, value, everywhere):
    """All-NaN weights (or a single inf) are a valid safetensors file but no model: eval and predict exit 2 naming
    the file and a tensor, instead of scoring every frame 'absent'."""
    name = _spoil_weights(run_copy, value, everywhere)
    with pytest.raises(UserError, match=r"model\.safetensors holds non-finite weights.*" + name.split(".")[0]):
        load_run(run_copy, device="cpu")
    image = next(tiny_faces.parent.glob("img/*.png"))
    for argv in (
        ["eval", "--run", str(run_copy), "--data", str(tiny_faces)],
        ["predict", str(image), "--run", str(run_copy), "--no-detect"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "model.safetensors" in err and "non-finite" in err, err


def test_run_folder_attempt_removes_only_what_a_failed_first_attempt_made(tmp_path, capsys):
    """Ctrl-C (or any failure) before the first last.pt: the files, folders and parents this attempt made go again;
    afterwards the folder stays. save_checkpoint never writes non-finite weights over the last good state."""
    run = RunFolder(tmp_path / "a" / "b" / "run")
    with pytest.raises(KeyboardInterrupt), run.attempt():
        run.append_log({"epoch": 1})
        run.tensorboard_dir.mkdir()
        raise KeyboardInterrupt
    assert not (tmp_path / "a").exists()
    with pytest.raises(RuntimeError), run.attempt(writer=False):  # another rank's copy: rank 0 owns the files
        run.append_log({"epoch": 1})
        raise RuntimeError("boom")
    assert run.log_file.is_file()
    model = torch.nn.Linear(2, 1)
    with pytest.raises(UserError, match=r"cannot go on; last\.pt keeps epoch 1"), run.attempt():
        run.save_checkpoint(1, None, model, {"epoch": 1, "step": 1})
        raise UserError("cannot go on")
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt), run.attempt():  # Ctrl-C after a last.pt: one line says how to go on
        raise KeyboardInterrupt
    assert capsys.readouterr().err == (
        f"{run.last_file} keeps epoch 1: --resume continues from it, or delete {run.path} to start again\n"
    )
    with pytest.raises(KeyboardInterrupt), run.attempt(writer=False):  # only rank 0 says it
        raise KeyboardInterrupt
    assert capsys.readouterr().err == ""
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(UserError, match="the model at the end of epoch 2 holds non-finite weights"):
        run.save_checkpoint(2, None, model, {"epoch": 2, "step": 2})
    assert torch.load(run.last_file, weights_only=True)["epoch"] == 1
