"""DDP as users launch it: `torchrun --nproc_per_node 2 -m hiva_core.cli train ...`, on CPU with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import torch

from tests.hiva_core.conftest import REPO, train_argv


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
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "hiva_core.cli",
        *argv,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
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
