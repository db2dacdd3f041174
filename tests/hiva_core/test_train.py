"""End to end through the command line: train, eval, resume, --folds all, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from augtext.errors import UserError
from hiva_core.cli import main
from hiva_core.config import DataSection, OptimSection, TrainConfig, TrainSection, resolve_config, valid_keys
from tests.hiva_core.conftest import train_argv

pytestmark = pytest.mark.usefixtures("one_thread")

RUN_FILES = ("config.json", "model.safetensors", "last.pt", "text_prior.safetensors", "metrics.json", "log.csv")


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------------------------------------------- config
def test_config_precedence(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("train:\n  epochs: 7\n  batch_size: 8\noptim:\n  lr: 0.01\n")
    cfg = resolve_config(yaml_file, {"train.batch_size": 4, "optim.lr": None}, ["train.epochs=9", "optim.lr=1e-3"])
    assert cfg.train.epochs == 9  # --set beats YAML
    assert cfg.train.batch_size == 4  # CLI beats YAML
    assert cfg.optim.lr == pytest.approx(1e-3)  # a CLI None means "not given"; --set parses 1e-3 as a float
    assert cfg.train.seed == TrainConfig().train.seed  # defaults stay
    cfg = resolve_config(None, {}, ["data.aus=1,2,4", "model.use_graph=false", "data.fold=none"])
    assert cfg.data.aus == (1, 2, 4) and cfg.model.use_graph is False and cfg.data.fold is None
    assert resolve_config(None, {}, ["data.aus=disfa"]).data.aus == (1, 2, 4, 6, 9, 12, 25, 26)
    assert resolve_config(None, {}, ["data.aus=[12, 1]"]).data.aus == (12, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.epochs = 3


@pytest.mark.parametrize(
    "bad, needle",
    [
        ("train.epoch=3", "unknown config key 'train.epoch'"),
        ("trian.epochs=3", "unknown config key 'trian.epochs'"),
        ("train.epochs=three", "needs an integer"),
        ("model.use_text=maybe", "needs true or false"),
        ("train.epochs", "section.key=value"),
        ("train.precision=fp8", "bf16, fp16 or fp32"),
        ("train.select=best", "train.select must be one of last, val_auc, val, test"),
        ("data.aus=3", "AU"),
    ],
)
def test_config_errors(bad, needle):
    with pytest.raises(UserError, match=needle) as info:
        resolve_config(None, {}, [bad])
    if "unknown" in needle:
        assert "train.epochs" in str(info.value) and "train.batch_size" in str(info.value)  # lists valid keys


def test_default_loader_workers_are_capped_at_the_cpus(monkeypatch):
    """4 workers on 2 CPUs only contend (and torch warns, twice): the default takes at most one per usable CPU; a
    number the user sets is kept."""
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert TrainConfig().data.num_workers == 2 and resolve_config(None, {}, []).data.num_workers == 2
    assert resolve_config(None, {}, ["data.num_workers=4"]).data.num_workers == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert TrainConfig().data.num_workers == 4


def test_valid_keys_cover_sections():
    keys = valid_keys()
    assert {"text.cache", "data.spec", "model.backbone", "optim.lr", "train.epochs"} <= set(keys)


def test_model_section_follows_model_config():
    """Every ModelConfig option is a model.* key (a new option needs no second list), None until set."""
    from hiva_core.config import ModelSection
    from hiva_core.models import ModelConfig

    options = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("name", "num_aus", "text_dim")]
    assert [k.partition(".")[2] for k in valid_keys() if k.startswith("model.")] == ["name", *options, "text_dim"]
    assert ModelSection().overrides() == {}
    cfg = resolve_config(None, {"model.use_graph": "false", "model.text_pool": "attention", "model.text_dim": 384})
    assert cfg.model.overrides() == {"use_graph": False, "text_pool": "attention"} and cfg.model.text_dim == 384


@pytest.mark.parametrize(
    "build, needle",
    [
        (lambda: TrainSection(epochs=0), "train.epochs must be >= 1"),
        (lambda: TrainSection(eval_batch_size=-2), "train.eval_batch_size must be >= 1"),
        (lambda: TrainSection(log_every=0), "train.log_every must be >= 1"),
        (lambda: TrainSection(max_steps_per_epoch=0), "train.max_steps_per_epoch must be >= 1"),
        (lambda: TrainSection(stop_after=0), "train.stop_after must be >= 1"),
        (lambda: OptimSection(warmup_ratio=1.0), "optim.warmup_ratio must be in"),
        (lambda: OptimSection(backbone_lr_scale=-0.1), "optim.backbone_lr_scale must be in"),
        (lambda: OptimSection(backbone_lr_scale=2.0), "optim.backbone_lr_scale must be in"),
        (lambda: OptimSection(ema=1.0), "optim.ema must be in"),
        (lambda: OptimSection(ema=-0.5), "optim.ema must be in"),
        (lambda: DataSection(num_workers=-1), "data.num_workers must be >= 0"),
        (lambda: DataSection(aus=(1, 3)), "AU"),
        (lambda: DataSection(augment="heavy"), "data.augment must be strong, basic or none"),
    ],
)
def test_sections_check_their_own_values(build, needle):
    with pytest.raises(UserError, match=needle):
        build()


def test_augment_default_and_old_runs(trained_run, tmp_path):
    """New runs train with the strong augmentation; a config.json written before data.augment existed keeps basic."""
    from hiva_core.config import TrainConfig, from_dict, to_dict
    from hiva_core.run_folder import RunFolder

    assert TrainConfig().data.augment == "strong"
    assert from_dict(to_dict(TrainConfig())).data.augment == "strong"
    assert resolve_config(overrides=["data.augment=none"]).data.augment == "none"
    run, _ = trained_run
    assert RunFolder(run).read_train_config().data.augment == "basic"  # as trained (train_argv asks for basic)
    info = json.loads((run / "config.json").read_text())
    info["config"]["data"]["augment"] = "strong"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "config.json").write_text(json.dumps(info))
    assert RunFolder(tmp_path / "new").read_train_config().data.augment == "strong"
    del info["config"]["data"]["augment"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(info))
    assert RunFolder(tmp_path / "old").read_train_config().data.augment == "basic"


def test_param_groups_give_the_backbone_its_own_lr():
    """At scale 1 two groups (as runs saved before the option, so their optimizer state loads); below 1 the backbone's
    parameters, and only they, sit in groups at lr * scale; the first group is the head's (its lr is logged)."""
    from hiva_core.models import create_model
    from hiva_core.train_state import param_groups

    model = create_model("hiva", num_aus=3, text_dim=8, backbone="tiny", dim=16, heads=2)
    backbone = {id(p) for p in model.backbone.parameters()}
    everything = {id(p) for p in model.parameters()}
    plain = param_groups(model, 0.05, 1e-3)
    assert len(plain) == 2 and all(g["lr"] == 1e-3 for g in plain)
    assert {id(p) for g in plain for p in g["params"]} == everything
    groups = param_groups(model, 0.05, 1e-3, backbone_lr_scale=0.1)
    assert len(groups) == 4 and groups[0]["lr"] == 1e-3 and groups[0]["weight_decay"] == 0.05
    for g in groups:
        ids = {id(p) for p in g["params"]}
        assert ids <= backbone if g["lr"] == pytest.approx(1e-4) else not ids & backbone
    assert {id(p) for g in groups if g["lr"] == pytest.approx(1e-4) for p in g["params"]} == backbone
    assert sorted(id(p) for g in groups for p in g["params"]) == sorted(everything)  # each parameter once


def test_backbone_lr_scale_zero_keeps_the_backbone_weights(tmp_path, text_cache, tiny_faces):
    """optim.backbone_lr_scale=0 trains the rest of the model and leaves the backbone's weights where they started:
    one epoch or two (same seed, same start), the backbone's kernels are the same, the rest is not; at scale 1 both
    move."""
    weights = {}
    for scale in ("0", "1"):
        for epochs in (1, 2):
            out = tmp_path / f"s{scale}e{epochs}"
            argv = train_argv(text_cache, tiny_faces, out, "--set", f"optim.backbone_lr_scale={scale}", epochs=epochs)
            assert main(argv) == 0
            weights[scale, epochs] = load_file(out / "model.safetensors")
    first = weights["0", 1]
    kernels = [k for k, v in first.items() if k.startswith("backbone.") and v.ndim == 4]
    rest = [k for k, v in first.items() if not k.startswith("backbone.") and v.is_floating_point()]
    assert kernels and rest

    def moved(scale: str, keys: list[str]) -> bool:
        return not all(torch.equal(weights[scale, 1][k], weights[scale, 2][k]) for k in keys)

    assert not moved("0", kernels) and moved("0", rest)
    assert moved("1", kernels) and moved("1", rest)
    cfg = json.loads((tmp_path / "s0e1" / "config.json").read_text())["config"]
    assert cfg["optim"]["backbone_lr_scale"] == 0.0


def test_update_ema_averages_weights_and_float_buffers():
    """After each optimizer step the average moves towards the weights by 1 - decay (less decay early on); BatchNorm's
    running statistics are averaged too, its step counter copied; the trained model is not touched."""
    from hiva_core.train_state import TrainState, ema_decay

    assert ema_decay(0.998, 1) == pytest.approx(2 / 11) and ema_decay(0.998, 10**6) == 0.998
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    task = torch.nn.Module()
    task.model = model
    state = TrainState(task, task, None, None, None, torch.device("cpu"), ema=None)
    state.update_ema(0.9)  # off: nothing to do
    state.ema = copy.deepcopy(model).requires_grad_(False)
    start = {k: v.clone() for k, v in state.ema.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()(torch.randn(8, 3))  # moves BatchNorm's running statistics and its counter
    now = {k: v.clone() for k, v in model.state_dict().items()}
    state.step = 1000  # past the ramp: decay 0.9
    state.update_ema(0.9)
    after = state.ema.state_dict()
    for key, value in start.items():
        if value.is_floating_point():
            assert torch.allclose(after[key], 0.9 * value + 0.1 * now[key]), key
        else:
            assert torch.equal(after[key], now[key]), key
    assert all(torch.equal(v, now[k]) for k, v in model.state_dict().items())


def test_ema_is_what_is_evaluated_and_saved(tmp_path, text_cache, tiny_faces):
    """With optim.ema on, model.safetensors holds the average (last.pt's "ema"), not the weights that trained."""
    out = tmp_path / "ema"
    assert main(train_argv(text_cache, tiny_faces, out, "--set", "optim.ema=0.8", epochs=1)) == 0
    saved, last = load_file(out / "model.safetensors"), torch.load(out / "last.pt", weights_only=True)
    trained = {k.removeprefix("model."): v for k, v in last["task"].items() if k.startswith("model.")}
    assert saved.keys() <= last["ema"].keys()
    assert all(torch.equal(v, last["ema"][k]) for k, v in saved.items())
    assert not all(torch.equal(v, trained[k]) for k, v in saved.items() if v.is_floating_point())
    assert json.loads((out / "config.json").read_text())["config"]["optim"]["ema"] == 0.8
    # A run trained without the average can take it up on --resume: it starts from the weights of then.
    plain = tmp_path / "plain"
    assert main(train_argv(text_cache, tiny_faces, plain, "--set", "train.stop_after=1", epochs=2)) == 0
    assert "ema" not in torch.load(plain / "last.pt", weights_only=True)
    assert main(train_argv(text_cache, tiny_faces, plain, "--resume", "--set", "optim.ema=0.8", epochs=2)) == 0
    assert "ema" in torch.load(plain / "last.pt", weights_only=True)


# -------------------------------------------------------------------------------------------- train and eval
def test_train_writes_a_good_run(trained_run):
    run, _ = trained_run
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    info = json.loads((run / "config.json").read_text())
    assert info["aus"] == [1, 2, 4] and info["image_size"] == 32 and info["model_name"] == "hiva"
    assert info["text_prior"]["dim"] == 384 and len(info["text_prior"]["fingerprint"]) == 64
    assert info["config"]["model"]["backbone"] == "tiny" and info["config"]["data"]["fold"] == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best"]["avg"]["f1"] >= 0.9, metrics["best"]["avg"]
    log = pd.read_csv(run / "log.csv")
    assert list(log["epoch"]) == list(range(1, 7))
    assert {"step", "loss", "asl", "align", "lr", "val_f1", "time_s"} <= set(log.columns)
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    assert not list(run.glob(".*.tmp"))  # atomic writes leave no temp files


def test_eval_prints_table_and_json(trained_run, tiny_faces, tmp_path, capsys):
    run, _ = trained_run
    out_json = tmp_path / "eval.json"
    assert main(["eval", "--run", str(run), "--data", str(tiny_faces), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "| AU | F1 | AUC | Pos. rate | Floor F1 |" in printed and "| AU4 |" in printed and "**Avg**" in printed
    result = json.loads(out_json.read_text())
    best = json.loads((run / "metrics.json").read_text())["best"]
    # The reloaded model scores the held-out fold exactly as the trainer did when it saved it.
    assert result["per_au"] == best["per_au"]
    assert result["avg"]["f1"] >= 0.9 and result["fold"] == 1


def test_eval_without_data_scores_the_runs_own_test_split(trained_run, tiny_faces, tmp_path, capsys):
    """`eval --run R` (the command train's closing line names) reads the data from the run's config.json and scores
    its held-out fold: the same table as with --data."""
    run, _ = trained_run
    given, default = tmp_path / "given.json", tmp_path / "default.json"
    assert main(["eval", "--run", str(run), "--data", str(tiny_faces), "--json", str(given)]) == 0
    assert main(["eval", "--run", str(run), "--json", str(default)]) == 0
    a, b = json.loads(given.read_text()), json.loads(default.read_text())
    assert a["per_au"] == b["per_au"] and b["fold"] == 1 and b["trained_rows"] is False and b["trained_faces"] == 0
    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert "no config.json there" in capsys.readouterr().err


def test_eval_counts_the_runs_training_faces_whatever_names_them(trained_run, tiny_faces, tmp_path, capsys):
    """A copy of the training manifest, with its fold 2 (training rows of a run that held out fold 1) or without
    folds (evaluated whole): eval knows the faces by their files (train_faces.npy), says how many were trained on and
    flags the score as a training one; the held-out fold has none."""
    run, _ = trained_run
    df = pd.read_csv(tiny_faces).assign(path=lambda d: [str(tiny_faces.parent / p) for p in d["path"]])
    copy, whole = tmp_path / "copy.csv", tmp_path / "whole.csv"
    df.to_csv(copy, index=False)
    df.drop(columns="fold").to_csv(whole, index=False)
    for data, fold, expect in [
        (copy, ["--fold", "2"], (df["fold"] == 2).sum()),
        (whole, [], 96 - (df["fold"] == 1).sum()),
    ]:
        out = tmp_path / "out.json"
        assert main(["eval", "--run", str(run), "--data", str(data), *fold, "--json", str(out)]) == 0
        result, captured = json.loads(out.read_text()), capsys.readouterr()
        assert result["trained_faces"] == expect and result["trained_rows"] is True
        assert f"{expect} of these {result['n']} faces are training faces of the run" in captured.out
        assert "training faces" in captured.err and "training score" in captured.err
    assert main(["eval", "--run", str(run), "--data", str(copy), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["trained_faces"] == 0


def test_load_run_matches_trained_model(trained_run, tiny_faces):
    from hiva_core.checkpoint import load_run
    from hiva_core.data import build_dataset

    run, best_model = trained_run
    loaded = load_run(run, device="cpu")
    assert loaded.aus == [1, 2, 4] and loaded.image_size == 32 and not loaded.model.training
    ds = build_dataset(tiny_faces, split="test", fold=1, image_size=32, aus=loaded.aus)
    images = torch.stack([ds[i]["image"] for i in range(8)])
    out = loaded.predict(images)
    with torch.no_grad():
        ref = best_model(images, loaded.text_emb, loaded.text_mask)
    assert out["probs"].shape == (8, 3)
    saved, trained = loaded.model.state_dict(), best_model.state_dict()
    assert saved.keys() == trained.keys() and all(torch.equal(saved[k], trained[k]) for k in saved)
    # The same weights, but the trainer lays conv weights out channels_last and load_run does not: on some CPUs
    # (oneDNN on AMD EPYC) the two layouts round differently, by about 5e-7
    torch.testing.assert_close(out["probs"], torch.sigmoid(ref["logits"]), rtol=0, atol=1e-5)
    assert out["maps"] is not None and out["maps"].shape[:2] == (8, 3)


@pytest.mark.parametrize(
    "extra", [(), ("--set", "optim.ema=0.9"), ("--set", "model.mixstyle=0.5")], ids=["plain", "ema", "mixstyle"]
)
def test_resume_equals_uninterrupted(tmp_path, text_cache, tiny_faces, extra, capsys):
    full, parts = tmp_path / "full", tmp_path / "parts"
    assert main(train_argv(text_cache, tiny_faces, full, *extra, epochs=3)) == 0
    # Data with folds and no --fold: the run says which fold it holds out, and how to choose another.
    held_out = "no --fold given: fold 1 is held out as the test split (the data's folds: 1, 2, 3); choose another"
    assert held_out in capsys.readouterr().err
    assert main(train_argv(text_cache, tiny_faces, parts, *extra, "--set", "train.stop_after=2", epochs=3)) == 0
    assert len(pd.read_csv(parts / "log.csv")) == 2
    stopped = capsys.readouterr()  # no table, and a line a script can read: not a finished run
    assert "**Avg**" not in stopped.out
    assert f"{parts}: stopped before epoch 3 (train.stop_after); `hiva_core train --resume` continues" in stopped.err
    assert main(train_argv(text_cache, tiny_faces, parts, "--resume", epochs=3)) == 0
    assert len(pd.read_csv(parts / "log.csv")) == 3
    a, b = torch.load(full / "last.pt", weights_only=True), torch.load(parts / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"]
    ema = "optim.ema=0.9" in extra
    assert ("ema" in a) == ema
    for part in ("task", "ema") if ema else ("task",):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    best_a, best_b = load_file(full / "model.safetensors"), load_file(parts / "model.safetensors")
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)
    # A finished run resumed again has nothing to train: refused (exit 2), saying how to go on, the folder untouched.
    before = digest(parts)
    capsys.readouterr()
    assert main(train_argv(text_cache, tiny_faces, parts, "--resume", epochs=3)) == 2
    assert capsys.readouterr().err == (
        f"error: {parts} already finished all 3 epochs; pass --epochs N (more than 3) with --resume to train further\n"
    )
    assert digest(parts) == before
    if not extra:  # more epochs continue it
        assert main(train_argv(text_cache, tiny_faces, parts, "--resume", epochs=4)) == 0
        assert (
            len(pd.read_csv(parts / "log.csv")) == 4
            and json.loads((parts / "metrics.json").read_text())["last_epoch"] == 4
        )


def test_folds_all_stopped_early_writes_no_summary(tmp_path, text_cache, tiny_faces, capsys):
    """train.stop_after ends each fold early: no summary.json and no mean (a mean of unfinished folds is no result),
    a line saying so and how to go on; --folds all --resume finishes every fold and writes it."""
    out = tmp_path / "cv"
    stop = ("--folds", "all", "--set", "train.stop_after=1")
    assert main(train_argv(text_cache, tiny_faces, out, *stop, epochs=2)) == 0
    captured = capsys.readouterr()
    assert not (out / "summary.json").exists() and "F1 mean" not in captured.out
    assert "stopped before epoch 2 (train.stop_after); `hiva_core train --folds all --resume" in captured.err
    assert "(no summary.json until every fold finishes)" in captured.err
    resume = ("--folds", "all", "--resume", "--set", "train.stop_after=null")
    assert main(train_argv(text_cache, tiny_faces, out, *resume, epochs=2)) == 0
    assert (out / "summary.json").is_file() and "F1 mean" in capsys.readouterr().out


def test_folds_all(tmp_path, text_cache, tiny_faces, capsys):
    out = tmp_path / "cv"
    assert (
        main(train_argv(text_cache, tiny_faces, out, "--folds", "all", "--set", "train.progress=true", epochs=2)) == 0
    )
    for k in (1, 2, 3):
        assert (out / f"fold{k}" / "model.safetensors").is_file()
        assert json.loads((out / f"fold{k}" / "config.json").read_text())["config"]["data"]["fold"] == k
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["folds"]) == ["fold1", "fold2", "fold3"]
    mean = sum(summary["folds"][f]["avg"]["f1"] for f in summary["folds"]) / 3
    assert summary["mean"]["avg"]["f1"] == pytest.approx(mean)
    assert "F1 fold1 | F1 fold2 | F1 fold3 | F1 mean" in capsys.readouterr().out
    out_json = tmp_path / "cv.json"
    assert main(["eval", "--run", str(out), "--data", str(tiny_faces), "--folds", "all", "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["mean"]["avg"]["f1"] == pytest.approx(summary["mean"]["avg"]["f1"])
    # Training again into the same folder is refused before any fold is touched; so is resuming it, every fold done.
    before = digest(out / "fold2")
    assert main(train_argv(text_cache, tiny_faces, out, "--folds", "all", epochs=2)) == 2
    assert main(train_argv(text_cache, tiny_faces, out, "--folds", "all", "--resume", epochs=2)) == 2
    assert f"every fold of {out} already finished all 2 epochs; pass --epochs N" in capsys.readouterr().err
    assert digest(out / "fold2") == before


# ------------------------------------------------------------------------------------------------- bad input
def _copy_manifest(tiny_faces: Path, tmp_path: Path, edit) -> Path:
    frame = pd.read_csv(tiny_faces)
    frame["path"] = [str(tiny_faces.parent / p) for p in frame["path"]]
    path = tmp_path / "manifest.csv"
    edit(frame).to_csv(path, index=False)
    return path


def _corrupt_cache(text_cache: Path, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(text_cache, cache)
    table = next((cache / "embeddings").glob("*.parquet"))
    table.write_bytes(b"not a parquet file")
    return cache


@pytest.mark.parametrize(
    "case",
    [
        "missing_au",
        "dim_mismatch",
        "corrupt_table",
        "missing_image",
        "broken_image",
        "yaml_key",
        "set_key",
        "existing_run",
        "resume_nothing",
    ],
)
def test_bad_input_exits_2(case, tmp_path, text_cache, tiny_faces, trained_run, capsys):
    good, _ = trained_run
    out = tmp_path / "new_run"
    cache, data, extra = text_cache, tiny_faces, []
    if case == "missing_au":  # the data labels AU12, the cache describes AU1, 2, 4, 6
        data = _copy_manifest(tiny_faces, tmp_path, lambda f: f.rename(columns={"AU4": "AU12"}))
        needle = "AU12"
    elif case == "dim_mismatch":
        extra, needle = ["--set", "model.text_dim=512"], "384"
    elif case == "corrupt_table":
        cache, needle = _corrupt_cache(text_cache, tmp_path), "parquet"
    elif case == "missing_image":
        data = _copy_manifest(
            tiny_faces,
            tmp_path,
            lambda f: pd.concat([f, f.iloc[:1].assign(path=str(tmp_path / "gone.png"))], ignore_index=True),
        )
        needle = "gone.png"
    elif case == "broken_image":  # found by the up-front check, unreadable in the first epoch
        (tmp_path / "broken.png").write_bytes(b"not a PNG")
        data = _copy_manifest(
            tiny_faces,
            tmp_path,
            lambda f: f.assign(path=[str(tmp_path / "broken.png") if i == 0 else p for i, p in enumerate(f["path"])]),
        )
        needle = "broken.png"
    elif case == "yaml_key":
        (tmp_path / "c.yaml").write_text("train:\n  epochz: 3\n")
        extra, needle = ["--config", str(tmp_path / "c.yaml")], "epochz"
    elif case == "set_key":
        extra, needle = ["--set", "optim.learning_rate=0.1"], "optim.learning_rate"
    elif case == "existing_run":
        out, needle = good, "--resume"
    else:
        extra, needle = ["--resume"], "nothing to resume"
    before = digest(good)
    assert main(train_argv(cache, data, out, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
    assert digest(good) == before  # the good run is untouched
    if out != good:
        assert not out.exists() or not any(out.iterdir())  # and nothing was written for the failed one


# ----------------------------------------------------------------------------- bad options and failures (issue 11)
@pytest.mark.parametrize(
    "case",
    [
        "eval_batch_0",
        "eval_json_dir",
        "eval_json_under_file",
        "train_batch_0",
        "train_out_file",
        "predict_batch_0",
        "predict_out_dir",
        "predict_heatmaps_file",
    ],
)
def test_bad_options_and_output_paths_exit_2(case, tmp_path, tiny_faces, trained_run, text_cache, capsys):
    """One `error:` line and exit 2 (not a traceback), before any work: batch sizes below 1, an output file that is
    a folder or lies under a file, an output folder that is a file."""
    run, _ = trained_run
    folder = tmp_path / "taken.json"
    folder.mkdir()
    plain = tmp_path / "plain.txt"
    plain.write_text("a file")
    image = next(tiny_faces.parent.glob("img/*.png"))
    eval_args = ["eval", "--run", str(run), "--data", str(tiny_faces)]
    predict_args = ["predict", str(image), "--run", str(run), "--no-detect"]
    argv, needle = {
        "eval_batch_0": ([*eval_args, "--batch-size", "0"], "--batch-size"),
        "eval_json_dir": ([*eval_args, "--json", str(folder)], str(folder)),
        "eval_json_under_file": ([*eval_args, "--json", str(plain / "m.json")], str(plain)),
        "train_batch_0": (train_argv(text_cache, tiny_faces, tmp_path / "r", "--batch-size", "0"), "batch_size"),
        "train_out_file": (train_argv(text_cache, tiny_faces, plain), str(plain)),
        "predict_batch_0": ([*predict_args, "--batch-size", "0"], "--batch-size"),
        "predict_out_dir": ([*predict_args, "--out", str(tmp_path / "rows.csv")], "rows.csv"),
        "predict_heatmaps_file": ([*predict_args, "--heatmaps", str(plain)], str(plain)),
    }[case]
    (tmp_path / "rows.csv").mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1, err
    assert plain.read_text() == "a file" and not any(folder.iterdir())


def _spoil_loss_at(monkeypatch, call: int) -> None:
    """Make the `call`-th training step's loss NaN (a diverged run, without waiting for one)."""
    from hiva_core.task import AUTask

    real, calls = AUTask.forward, []

    def forward(self, batch, *args):
        out = real(self, batch, *args)
        calls.append(1)
        if len(calls) == call:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(AUTask, "forward", forward)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_epoch(
    tmp_path, text_cache, tiny_faces, capsys, monkeypatch
):
    """4 steps an epoch: a NaN loss in the 6th stops training at epoch 2, step 6 (exit 2); last.pt and
    model.safetensors keep epoch 1, finite, and the message says how to go on."""
    out = tmp_path / "run"
    _spoil_loss_at(monkeypatch, 6)
    assert main(train_argv(text_cache, tiny_faces, out, epochs=3)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after epoch 1's log line
    assert err.startswith("error: ") and "loss is nan at epoch 2, step 6" in err and "last.pt keeps epoch 1" in err
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["epoch"] == 1 and last["step"] == 4
    assert all(torch.isfinite(v).all() for v in last["task"].values() if v.is_floating_point())
    assert len(pd.read_csv(out / "log.csv")) == 1
    assert all(torch.isfinite(v).all() for v in load_file(out / "model.safetensors").values())
    # The folder is an unfinished run: train says so, and how to continue or start again.
    monkeypatch.undo()
    assert main(train_argv(text_cache, tiny_faces, out, epochs=3)) == 2
    err = capsys.readouterr().err
    assert "unfinished run (epoch 1 of 3" in err and "--resume" in err and "delete" in err, err
    assert main(train_argv(text_cache, tiny_faces, out, "--resume", epochs=3)) == 0
    assert len(pd.read_csv(out / "log.csv")) == 3


def _ctrl_c_at_step(monkeypatch, step: int) -> None:
    """Ctrl-C (KeyboardInterrupt) at the `step`-th training forward pass of the task, counted from 1."""
    from hiva_core.task import AUTask

    real, calls = AUTask.forward, []

    def forward(self, batch, *args):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(self, batch, *args)

    monkeypatch.setattr(AUTask, "forward", forward)


def test_ctrl_c_after_an_epoch_says_the_run_is_resumable(tmp_path, text_cache, tiny_faces, capsys, monkeypatch):
    """Ctrl-C in epoch 2 (4 steps an epoch): exit 130, and the line before `interrupted` says what last.pt keeps and
    how to go on; --resume then finishes the run."""
    _ctrl_c_at_step(monkeypatch, 6)
    out = tmp_path / "run"
    assert main(train_argv(text_cache, tiny_faces, out, epochs=3)) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2:] == [
        f"{out / 'last.pt'} keeps epoch 1: --resume continues from it, or delete {out} to start again",
        "interrupted",
    ]
    monkeypatch.undo()
    assert main(train_argv(text_cache, tiny_faces, out, "--resume", epochs=3)) == 0
    assert len(pd.read_csv(out / "log.csv")) == 3


def test_a_run_killed_before_its_first_last_pt_says_so(tmp_path, text_cache, tiny_faces, capsys):
    """kill -9 between epoch 1's model.safetensors and its last.pt (no Ctrl-C cleanup): train and --resume both say
    nothing can continue it (not "continue it with --resume" and "nothing to resume" in turn), eval says it cannot be
    resumed, and the killed save's temp file is removed."""
    out = tmp_path / "run"
    assert main(train_argv(text_cache, tiny_faces, out, "--set", "train.stop_after=1", epochs=3)) == 0
    (out / "last.pt").rename(out / ".last.pt.k2j3x9q1.tmp")  # as the kill left it
    (out / "log.csv").unlink()
    capsys.readouterr()
    for resume in ([], ["--resume"]):
        assert main(train_argv(text_cache, tiny_faces, out, *resume, epochs=3)) == 2
        err = capsys.readouterr().err
        assert "holds the start of a training that stopped before its first epoch was saved" in err, err
        assert "delete the folder, or choose another --out" in err
        assert not list(out.glob(".last.pt.*.tmp"))
    assert main(["eval", "--run", str(out)]) == 0
    assert "1 of its 3 epochs trained (stopped before last.pt was saved)" in capsys.readouterr().err


def test_resume_refuses_options_that_would_train_the_rest_otherwise(tmp_path, text_cache, tiny_faces, capsys):
    """--resume continues a run as config.json says it was trained: another learning rate, batch size, backbone or
    --set key is refused naming the option and the run's value (exit 2, config.json and last.pt untouched; before,
    --lr was recorded and not used, --backbone crashed loading last.pt), as is other data (another number of training
    frames) and --folds all on one run. --epochs, a moved --data, optim.ema and how it runs may change."""
    out = tmp_path / "run"
    assert main(train_argv(text_cache, tiny_faces, out, "--set", "train.stop_after=1", epochs=3)) == 0
    config, last = (out / "config.json").read_bytes(), (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["eval", "--run", str(out)]) == 0  # an unfinished run is scored, and says so
    assert f"{out} is unfinished: 1 of its 3 epochs trained" in capsys.readouterr().err
    assert main(train_argv(text_cache, tiny_faces, out, "--resume", epochs=1)) == 2  # not "already finished"
    assert f"{out} has trained 1 of its 3 epochs, and --epochs 1 asks for no more" in capsys.readouterr().err
    for extra, words in [
        (["--lr", "0.5"], ["--lr 0.5", "optim.lr 0.003"]),
        (["--batch-size", "4", "--backbone", "mobilenetv2"], ["--batch-size 4", "--backbone mobilenetv2", "them out"]),
        (["--set", "data.augment=strong"], ["data.augment=strong", "data.augment basic"]),
    ]:
        assert main(train_argv(text_cache, tiny_faces, out, "--resume", *extra, epochs=3)) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: --resume continues") and all(w in err for w in words), err
    assert main(train_argv(text_cache, tiny_faces, out, "--resume", "--folds", "all", epochs=3)) == 2
    assert "is one run" in capsys.readouterr().err
    fewer = tmp_path / "fewer.csv"
    pd.read_csv(tiny_faces).assign(path=lambda d: [str(tiny_faces.parent / p) for p in d["path"]]).iloc[::2].to_csv(
        fewer, index=False
    )
    assert main(train_argv(text_cache, fewer, out, "--resume", epochs=3)) == 2
    err = capsys.readouterr().err
    assert "training frames" in err and "was trained on" in err, err
    assert (out / "config.json").read_bytes() == config and (out / "last.pt").read_bytes() == last
    ok = ["--resume", "--set", "train.stop_after=null", "--set", "optim.ema=0.5", "--set", "train.log_every=5"]
    assert main(train_argv(text_cache, tiny_faces, out, *ok, epochs=4)) == 0
    assert len(pd.read_csv(out / "log.csv")) == 4


def test_the_projects_warnings_are_one_line(tmp_path, text_cache, tiny_faces, capsys):
    """A warning of the project's own (a manifest without a fold or split column) is one `warning: ...` line, once,
    not Python's `file:line: UserWarning` and the source line under it."""
    frame = pd.read_csv(tiny_faces).head(24).drop(columns="fold")
    frame["path"] = [str(tiny_faces.parent / p) for p in frame["path"]]
    data = tmp_path / "nofolds.csv"
    frame.to_csv(data, index=False)
    assert main(train_argv(text_cache, data, tmp_path / "run", "--set", "train.max_steps_per_epoch=1", epochs=1)) == 0
    err = capsys.readouterr().err
    line = f"warning: {data} has no fold or split column: all 24 rows serve as both train and test data"
    assert err.splitlines().count(line) == 1 and "Warning" not in err and "warnings.warn" not in err, err


def test_a_run_that_fails_in_its_first_epoch_leaves_nothing(tmp_path, text_cache, tiny_faces, capsys, monkeypatch):
    """Nothing to resume, so nothing that looks like a run: the folder this run created is gone again, and a folder
    that was there keeps only what was there before."""
    _spoil_loss_at(monkeypatch, 2)
    assert main(train_argv(text_cache, tiny_faces, tmp_path / "new" / "run")) == 2
    assert "loss is nan at epoch 1, step 2" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    monkeypatch.undo()
    _spoil_loss_at(monkeypatch, 1)
    assert main(train_argv(text_cache, tiny_faces, kept)) == 2
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------------------ --folds all: interrupted, resumed
def test_ctrl_c_in_a_folds_first_epoch_says_what_the_earlier_folds_keep(
    tmp_path, text_cache, tiny_faces, capsys, monkeypatch
):
    """Ctrl-C in fold 2's first epoch (no last.pt of its own yet): the line before `interrupted` says fold 1 is kept
    and `--folds all --resume` continues from fold 2 (it said only `interrupted`)."""
    _ctrl_c_at_step(monkeypatch, 10)
    out = tmp_path / "cv"
    assert main(train_argv(text_cache, tiny_faces, out, "--folds", "all", epochs=2)) == 130
    assert capsys.readouterr().err.strip().splitlines()[-2:] == [
        f"{out}: fold1 kept; `hiva_core train --folds all --resume --out {out}` continues from fold 2",
        "interrupted",
    ]
    assert not (out / "fold2").exists() and (out / "fold1" / "model.safetensors").is_file()


def test_ctrl_c_in_folds_all_says_folds_all_resume(tmp_path, text_cache, tiny_faces, capsys, monkeypatch):
    """Ctrl-C in fold 2's second epoch (4 steps an epoch, 2 epochs a fold): the line before `interrupted` says
    `--folds all --resume` (a plain --resume of the parent finds no config.json, and says to add --folds all); each
    fold's lines are under a line naming it; the resume reports the finished fold 1 without training it (not
    "resuming at epoch 3" of 2) and finishes folds 2 and 3."""
    _ctrl_c_at_step(monkeypatch, 14)
    out = tmp_path / "cv"
    assert main(train_argv(text_cache, tiny_faces, out, "--folds", "all", epochs=2)) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2:] == [
        f"{out / 'fold2' / 'last.pt'} keeps epoch 1: --folds all --resume (with --out {out}) continues from it, or "
        f"delete {out / 'fold2'} to train this fold from the start",
        "interrupted",
    ]
    assert f"fold 1 (1 of 3): {out / 'fold1'}" in err and f"fold 2 (2 of 3): {out / 'fold2'}" in err
    monkeypatch.undo()
    assert main(["train", "--out", str(out), "--resume"]) == 2
    assert capsys.readouterr().err == (
        f"error: --resume: {out} holds one run per fold (fold1, fold2), no config.json of its own: add --folds all to "
        f"resume every fold (or give --out {out / 'fold1'} for one)\n"
    )
    assert main(["train", "--out", str(out), "--resume", "--folds", "all"]) == 0
    err = capsys.readouterr().err
    assert f"{out / 'fold1'} already finished all 2 epochs (kept epoch 2, " in err and "nothing to train" in err
    assert f"resuming {out / 'fold1'}" not in err
    assert f"resuming {out / 'fold2'} at epoch 2 of 2 (kept epoch 1, " in err
    assert all(len(pd.read_csv(out / f"fold{k}" / "log.csv")) == 2 for k in (1, 2, 3))


def test_final_line_says_the_test_f1_once(trained_run, tmp_path, text_cache, tiny_faces, capsys):
    """Without validation rows the kept epoch's score is the test F1 at 0.5: the line says it once."""
    out = tmp_path / "run"
    assert main(train_argv(text_cache, tiny_faces, out, "--fold", "1", epochs=1)) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"{out}: epoch 1 kept"))
    f1 = json.loads((out / "metrics.json").read_text())["best"]["avg"]["f1"]
    assert line == f"{out}: epoch 1 kept (the last epoch; test avg F1 at 0.5 {100 * f1:.1f}; the table below, at 0.5)"


def test_log_csv_names_the_test_and_validation_scores(tmp_path, text_cache, tiny_faces, capsys):
    """log.csv: test_f1/test_auc the test split's (as the legacy val_f1/val_auc still are), val_rows_f1/val_rows_auc
    the validation rows' F1 at their thresholds and AUC (what the epoch line prints as `val F1 … AUC …`); a log
    written before these columns is read back on --resume, its test scores under the new names."""
    out = tmp_path / "run"
    argv = train_argv(text_cache, tiny_faces, out, "--fold", "1", "--set", "data.val_fraction=0.25", epochs=2)
    assert main([*argv, "--set", "train.stop_after=1"]) == 0
    log = pd.read_csv(out / "log.csv")
    assert list(log.columns[9:]) == [
        "test_f1",
        "test_auc",
        "val_rows_f1",
        "val_rows_auc",
        "val_f1",
        "val_auc",
        "time_s",
    ]
    test = json.loads((out / "metrics.json").read_text())["last"]["avg"]
    record = json.loads((out / "thresholds.json").read_text())
    assert log["test_f1"][0] == pytest.approx(test["f1"], abs=1e-6) and log["val_f1"][0] == log["test_f1"][0]
    assert log["test_auc"][0] == pytest.approx(test["auc"], abs=1e-6) and log["val_auc"][0] == log["test_auc"][0]
    assert log["val_rows_f1"][0] == pytest.approx(record["val_f1"]["avg"], abs=1e-6)
    assert log["val_rows_auc"][0] == pytest.approx(record["val_auc"]["avg"], abs=1e-6)
    line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("epoch 1/2"))
    assert f"val F1 {100 * record['val_f1']['avg']:.1f} AUC {100 * record['val_auc']['avg']:.1f}" in line
    # The log of an older version: no test_*/val_rows_* columns, its val_f1/val_auc the test split's.
    old = log[[c for c in log.columns if not c.startswith(("test_", "val_rows_"))]]
    old.to_csv(out / "log.csv", index=False)
    assert main([*argv, "--resume"]) == 0
    again = pd.read_csv(out / "log.csv")
    assert list(again["epoch"]) == [1, 2] and again["test_f1"][0] == pytest.approx(log["test_f1"][0])
    assert pd.isna(again["val_rows_f1"][0]) and not pd.isna(again["val_rows_f1"][1])


def test_config_stores_absolute_paths_and_a_missing_one_names_config_json(
    tmp_path, text_cache, tiny_faces, capsys, monkeypatch
):
    """Paths typed relative (`--data faces/manifest.csv`) are stored absolute, so `--resume` works from another
    folder; a run whose config.json holds a relative path that is not found from here names that file and the
    option to give."""
    shutil.copytree(tiny_faces.parent, tmp_path / "faces")
    monkeypatch.chdir(tmp_path)
    argv = train_argv(text_cache, Path("faces/manifest.csv"), Path("run"), "--fold", "1", epochs=2)
    assert main([*argv, "--set", "train.stop_after=1", "--set", "data.align_cache=crops"]) == 0
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["config"]["data"]["spec"] == str(tmp_path / "faces" / "manifest.csv")
    assert info["config"]["data"]["align_cache"] == str(tmp_path / "crops")
    assert info["data"]["spec"] == str(tmp_path / "faces" / "manifest.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    shutil.copytree(tmp_path / "run", tmp_path / "old")
    assert main(["train", "--out", str(tmp_path / "run"), "--resume"]) == 0
    info["config"]["data"]["spec"] = "faces/manifest.csv"  # as runs saved before kept it
    (tmp_path / "old" / "config.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "old"), "--resume"]) == 2
    assert capsys.readouterr().err == (
        f"error: data.spec 'faces/manifest.csv' not found (from {tmp_path / 'old' / 'config.json'}, as the run was "
        "trained; a relative path is relative to the folder the run was started in): give --data SPEC to say where "
        "it is now\n"
    )
    assert main(["train", "--out", str(tmp_path / "old"), "--resume", "--data", str(tmp_path / "faces")]) == 0


def test_eval_json_that_is_a_folder_suggests_a_file_in_it(trained_run, tiny_faces, tmp_path, capsys):
    run, _ = trained_run
    assert main(["eval", "--run", str(run), "--data", str(tiny_faces), "--json", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: --json {tmp_path} is a folder; give a file name (e.g. {tmp_path / 'eval.json'})\n"
    )


def test_offline_pretrained_failure_names_the_option_users_type(tmp_path, text_cache, tiny_faces, capsys, monkeypatch):
    """The library's message says backbone_weights=PATH (its keyword); `hiva_core train` says --backbone-weights."""
    from hiva_core.models import backbone

    monkeypatch.setattr(backbone, "default_mobilenet_weights", lambda: None)
    argv = train_argv(text_cache, tiny_faces, tmp_path / "run", "--backbone", "mobilenetv2", "--pretrained", epochs=1)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "or pass --backbone-weights FILE" in err and "backbone_weights=" not in err, err
