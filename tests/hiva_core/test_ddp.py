"""DDP as users launch it: `torchrun --nproc_per_node 2 -m hiva_core.cli train ...`, on CPU with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import torch

from tests.hiva_core.conftest import REPO, train_argv


def _torchrun(argv: list[str]) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m hiva_core.cli ARGV` (gloo on CPU), which must succeed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd = [*run, "-m", "hiva_core.cli"]
    proc = subprocess.run([*cmd, *argv], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_torchrun_two_processes(tmp_path, text_cache, tiny_faces):
    out = tmp_path / "ddp"
    argv = train_argv(
        text_cache,
        tiny_faces,
        out,
        "--fold",
        "1",
        "--batch-size",
        "8",
        "--set",
        "train.max_steps_per_epoch=2",
        "--set",
        "data.val_fraction=0.1",  # a validation slice: thresholds from rows gathered over both ranks
        "--set",
        "optim.ema=0.9",  # the weights' average, kept on every rank, is what is evaluated
        epochs=2,
    )
    proc = _torchrun(argv)
    for name in ("config.json", "model.safetensors", "last.pt", "text_prior.safetensors", "metrics.json", "log.csv"):
        assert (out / name).is_file(), name
    info = json.loads((out / "config.json").read_text())
    assert info["world_size"] == 2
    log = pd.read_csv(out / "log.csv")
    assert list(log["epoch"]) == [1, 2] and list(log["step"]) == [2, 4]  # 2 optimizer steps per epoch
    # Evaluation gathered both ranks' shards: every test frame counted once.
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["last"]["n"] == 32
    assert json.loads((out / "thresholds.json").read_text())["frames"] == 8  # 1 of 8 training subjects
    assert proc.stdout.count("| **Avg** |") == 1  # only rank 0 prints
    assert "ema" in torch.load(out / "last.pt", weights_only=True)
    # Every parameter of the default model reaches the loss: DDP is not asked to look for unused ones (PyTorch would
    # warn, once per rank, that the search finds none and slows every step).
    assert "find_unused_parameters" not in proc.stderr


def test_torchrun_with_a_branch_the_loss_leaves_out(tmp_path, text_cache, tiny_faces):
    """The linear head leaves the text-to-vision cross-attention out of the loss: found before the first step, DDP
    is told, and training runs (without it DDP stops at the second step, asking for find_unused_parameters)."""
    out = tmp_path / "ddp_linear"
    argv = train_argv(
        text_cache, tiny_faces, out, "--fold", "1", "--batch-size", "8", "--set", "train.max_steps_per_epoch=2",
        "--set", "model.head=linear", epochs=1,
    )  # fmt: skip
    _torchrun(argv)
    assert list(pd.read_csv(out / "log.csv")["step"]) == [2]


def test_unused_parameters_leaves_no_trace(text_cache, tiny_faces):
    """The probe names the parameters a step's loss does not reach and changes nothing: the random stream, the
    BatchNorm statistics and the gradients are as before."""
    from augtext.prior import load_text_prior
    from hiva_core.checkpoint import prior_tensors
    from hiva_core.data import build_dataset
    from hiva_core.models import create_model
    from hiva_core.task import AUTask
    from hiva_core.train_state import unused_parameters

    ds = build_dataset(str(tiny_faces), split="train", fold=1, image_size=32, augment="strong")
    text = prior_tensors(load_text_prior(text_cache, list(ds.aus)), torch.device("cpu"))
    for head, unused in (("cosine", False), ("linear", True)):
        model = create_model(
            "hiva", num_aus=len(ds.aus), text_dim=text[0].shape[-1], backbone="tiny", dim=32, head=head
        )
        task = AUTask(model, aus=list(ds.aus), region_weight=0.1)
        buffers = {name: b.clone() for name, b in task.named_buffers()}
        stream = torch.get_rng_state()
        names = unused_parameters(task, ds, text, torch.device("cpu"))
        assert bool(names) is unused
        if unused:
            assert all(".text_to_vision." in name for name in names), names
        assert torch.equal(torch.get_rng_state(), stream)
        assert all(torch.equal(b, buffers[name]) for name, b in task.named_buffers())
        assert all(p.grad is None for p in task.parameters())
