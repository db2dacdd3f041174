"""The run folder: load_run without the text cache, and clear errors for missing or corrupt files."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
import torch

from augtext.errors import UserError
from hiva_core import checkpoint
from hiva_core.checkpoint import load_run
from hiva_core.cli import main
from hiva_core.device import autocast, pick_device
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


@pytest.mark.parametrize("name, damage, needle", [
    ("config.json", "delete", "config.json not found"),
    ("config.json", "garble", "config.json is not valid JSON"),
    ("model.safetensors", "delete", "model.safetensors not found"),
    ("model.safetensors", "garble", "model.safetensors is not a readable safetensors file"),
    ("text_prior.safetensors", "delete", "text_prior.safetensors not found"),
    ("text_prior.safetensors", "garble", "text_prior.safetensors is not a readable safetensors file"),
])
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
    state = checkpoint.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123), np.random.seed(5), random.seed(7)
    checkpoint.set_rng_state(state)
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
