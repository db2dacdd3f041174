"""`hiva_core train`: fit a HiVA model on labelled faces with the text prior; read `fit` top to bottom.

One process, or N under `torchrun --nproc_per_node N` (DDP). Each epoch trains, evaluates on the test split and
writes the run folder (see hiva_core.checkpoint.RunFolder); `--resume` continues from last.pt and ends with the same
weights as an uninterrupted run, because every epoch re-seeds its RNGs from (seed, epoch, rank) and last.pt holds the
optimizer and scheduler state.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from augtext.errors import UserError
from hiva_core import checkpoint as ckpt
from hiva_core.checkpoint import RunFolder
from hiva_core.config import VAL_SELECT, TrainConfig
from hiva_core.device import autocast, autocast_dtype, pick_device
from hiva_core.distributed import DistInfo, ShardSampler, cleanup, env_world, init_distributed, main_first
from hiva_core.evaluate import evaluate_model, val_thresholds
from hiva_core.metrics import aggregate_folds
from hiva_core.progress import ProgressBar

if TYPE_CHECKING:
    from augtext.textprior import TextPrior
    from hiva_core.data import AUDataset


# ------------------------------------------------------------------------------------------------ building blocks
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank: re-seeding per epoch is what makes --resume exact."""
    return seed + 10_007 * epoch + 1_000_003 * rank


def param_groups(module: nn.Module, weight_decay: float, lr: float, backbone_lr_scale: float = 1.0) -> list[dict]:
    """AdamW groups: decay matrices and conv kernels; not norms, biases or other 1-D parameters (as nanoGPT).

    With ``backbone_lr_scale`` ≠ 1 the backbone's parameters (``model.backbone.``) get two groups of their own at
    ``lr * backbone_lr_scale``; at 1 there are two groups in all, as in runs saved before the option (their optimizer
    state loads). The first group is never the backbone's: its lr is the one logged.
    """
    split = backbone_lr_scale != 1.0
    groups = {(part, decay): [] for part in ("head", "backbone") for decay in (True, False)}
    for name, p in module.named_parameters():
        if p.requires_grad:
            part = "backbone" if split and ".backbone." in f".{name}" else "head"
            groups[(part, p.ndim >= 2)].append(p)
    scales = {"head": 1.0, "backbone": backbone_lr_scale}
    return [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr": lr * scales[part]}
        for (part, decay), params in groups.items()
        if params or part == "head"
    ]


def ema_decay(decay: float, step: int) -> float:
    """The moving average's decay after optimizer step `step` (1, 2, ...): `decay`, less early on ((1 + t) / (10 + t),
    as TensorFlow's and timm's EMA) so that the average does not hold on to the random start."""
    return min(decay, (1 + step) / (10 + step))


def cosine_with_warmup(total_steps: int, warmup_ratio: float, min_lr_ratio: float):
    """lr multiplier per optimizer step: linear warmup, then cosine down to min_lr_ratio."""
    warmup = int(round(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def discover_folds(spec: str, lists: str | None) -> list[int]:
    """The folds `--folds all` trains: 1..3 for BP4D/DISFA lists, the `fold` column's values for a manifest."""
    from hiva_core.data.lists import LIST_FORMATS
    from hiva_core.data.manifest import manifest_folds

    head, sep, _ = spec.partition(":")
    if sep and head.lower() in LIST_FORMATS and len(head) > 1:
        if not LIST_FORMATS[head.lower()].folds:
            raise UserError(f"{head} has one official train/test split, no folds; drop --folds all")
        return [1, 2, 3]
    return manifest_folds(spec)


def tensorboard_writer(log_dir: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(log_dir))


def log(info: DistInfo, message: str) -> None:
    if info.is_main:
        print(message, file=sys.stderr, flush=True)


def use_channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether training lays images and conv weights out as channels_last (``train.channels_last``, CUDA and CPU).

    CUDA: faster convolutions with bf16 on tensor cores. CPU: measured faster here too, for linear heads and full HiVA
    alike; `bench/bench_model.py` measures it (`--no-channels-last` for the NCHW side).
    """
    return cfg.train.channels_last and device.type in ("cuda", "cpu")


# -------------------------------------------------------------------------------------------- what training holds
@dataclass
class TrainState:
    """Everything a training step changes and --resume restores: the task (model + loss), the optimizer, the lr
    schedule, the fp16 loss scaler and the counters. `step_module` is what a step calls: the task or its DDP wrapper.
    """

    task: nn.Module  # hiva_core.task.AUTask
    step_module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    epoch: int = 0  # the epoch in progress; between epochs, the last one finished
    step: int = 0  # optimizer steps so far
    ema: nn.Module | None = None  # the weights' moving average (optim.ema), a copy of the model that never trains

    @property
    def model(self) -> nn.Module:
        """The plain model (never the DDP wrapper), or its moving average when optim.ema is on: what is evaluated and
        saved as model.safetensors."""
        return self.task.model if self.ema is None else self.ema

    def update_ema(self, decay: float) -> None:
        """Move the average towards the weights just stepped (parameters and float buffers such as BatchNorm's
        running statistics; integer buffers are copied)."""
        if self.ema is None:
            return
        with torch.no_grad():
            pairs = list(zip(self.ema.state_dict().values(), self.task.model.state_dict().values(), strict=True))
            floats = [(a, b) for a, b in pairs if a.is_floating_point()]
            torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], 1.0 - ema_decay(decay, self.step))
            for a, b in pairs:
                if not a.is_floating_point():
                    a.copy_(b)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task.load_state_dict(state["task"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        if self.ema is not None:  # a run saved without the average (optim.ema added on --resume) starts it now
            self.ema.load_state_dict(state.get("ema", self.task.model.state_dict()))


@dataclass
class Loaders:
    """The training loader, whose order is drawn from `generator` (re-seeded every epoch; DistributedSampler's
    set_epoch under DDP), and the evaluation loader, which shards the test split across ranks without padding."""

    train: DataLoader
    test: DataLoader
    generator: torch.Generator
    sampler: DistributedSampler | None
    batches: int  # training batches per epoch: the loader's length, capped by train.max_steps_per_epoch
    val: DataLoader | None = None  # the validation rows, sharded as the test split: per-AU thresholds

    def reseed(self, seed: int, epoch: int) -> None:
        self.generator.manual_seed(seed)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)


class Monitor:
    """What a run reports as it goes, from rank 0 only: progress bars, TensorBoard scalars, a log line per epoch on
    stderr and the epoch's row of log.csv."""

    def __init__(self, cfg: TrainConfig, run: RunFolder, info: DistInfo):
        self.info, self.run, self.epochs = info, run, cfg.train.epochs
        self.tb = tensorboard_writer(run.tensorboard_dir, cfg.train.tensorboard and info.is_main)
        self.progress = ProgressBar(cfg.train.progress and info.is_main, info=True)

    def __enter__(self) -> Monitor:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)
        if self.tb is not None:
            self.tb.close()

    def scalars(self, step: int, values: dict[str, float | torch.Tensor]) -> None:
        if self.tb is not None:
            for name, value in values.items():
                self.tb.add_scalar(name, float(value), step)

    def end_epoch(
        self,
        state: TrainState,
        losses: dict[str, float],
        metrics: dict | None,
        started: float,
        thresholds: dict | None = None,
    ) -> None:
        """After the run folder was saved (rank 0): log.csv's row, TensorBoard's val/avg_f1 and the log line (the
        test split's F1 at 0.5, the validation rows' F1 at their thresholds and AUC, and the kept epoch's selection
        score; an epoch that was not evaluated says so).
        log.csv's val_f1/val_auc columns hold the test split's, as they always have."""
        val_f1 = metrics["avg"]["f1"] if metrics else float("nan")
        val_auc = metrics["avg"]["auc"] if metrics else float("nan")
        self.run.append_log(
            {
                "epoch": state.epoch,
                "step": state.step,
                **{k: f"{v:.6f}" for k, v in losses.items()},
                "lr": f"{state.lr:.3e}",
                "val_f1": f"{val_f1:.6f}",
                "val_auc": f"{val_auc:.6f}",
                "time_s": f"{time.time() - started:.2f}",
            }
        )
        if metrics is not None:
            self.scalars(state.step, {"val/avg_f1": val_f1})
        scores = f"test avg F1 {100 * val_f1:.1f}  " if metrics else "not evaluated (train.eval_every)  "
        if thresholds:
            scores += f"val F1 {100 * thresholds['val_f1']['avg']:.1f} AUC {100 * thresholds['val_auc']['avg']:.1f}  "
        kept = f"kept epoch {self.run.best_epoch} ({100 * self.run.best_f1:.1f})  " if self.run.best_epoch else ""
        log(
            self.info,
            f"epoch {state.epoch}/{self.epochs}  loss {losses['loss']:.4f}  {scores}{kept}{time.time() - started:.1f}s",
        )


# ------------------------------------------------------------------------------------------------- setting up (fit)
@dataclass
class Splits:
    """The rows a run uses: train, test (model selection, as the field does), and val (per-AU thresholds; None
    without a validation slice), with `val_how`, how the validation rows were chosen."""

    train: AUDataset
    test: AUDataset
    val: AUDataset | None
    val_how: str


def build_datasets(cfg: TrainConfig, info: DistInfo, device: torch.device | None = None) -> Splits:
    """The train, test and validation splits (hiva_core.data.splits), each aligned first with `data.align`. Images are
    checked up front: a missing file should fail now, not hours into an epoch."""
    from hiva_core.data import build_dataset, check_images
    from hiva_core.data.splits import data_layout

    data = cfg.data
    if data.spec is None:
        raise UserError("hiva_core train needs --data (a manifest, a SynthAU folder, or bp4d:|disfa:|gft:ROOT)")
    common = {"fold": data.fold, "lists": data.lists, "image_size": data.image_size}
    train_ds = build_dataset(data.spec, split="train", augment=data.augment, aus=data.aus, **common)
    found = {
        "train": train_ds,
        "test": build_dataset(data.spec, split="test", augment=False, aus=train_ds.aus, **common),
    }
    if data.fold is None and data_layout(data.spec).has_val:  # the data's own split=val rows
        found["val"] = build_dataset(data.spec, split="val", augment=False, aus=train_ds.aus, **common)
    if data.align:
        from hiva_core.data.aligned import align_dataset

        with main_first(info):  # rank 0 detects and caches; the others then read its crops
            found = {name: align_dataset(ds, data.align_cache, device=device, split=name) for name, ds in found.items()}
    for name, ds in found.items():
        if len(ds) == 0:
            raise UserError(f"{data.spec}: the {name} split is empty")
        if cfg.model.reference:  # each face beside its neutral frame (the validation slice inherits it)
            ds.pair_references()
    # Labels before images (cheap before slow)
    train_ds, val_ds, how = split_checked(cfg, found["train"], found.get("val"))
    for ds in found.values():
        check_images(ds, progress=info.is_main and sys.stderr.isatty())
    if val_ds is not None:  # validation rows are evaluated, not augmented
        val_ds.transform = found["test"].transform
    return Splits(train_ds, found["test"], val_ds, how)


def split_checked(cfg: TrainConfig, train: AUDataset, data_val: AUDataset | None = None):
    """validation_split of the training rows, refused (check_train_labels) where an AU has no known label among the
    rows trained on: its head would train on nothing."""
    from hiva_core.data.splits import check_train_labels, validation_split

    data = cfg.data
    where = "the train split" + (f" of fold {data.fold}" if data.fold is not None else "")
    check_train_labels(train, where)
    train_ds, val_ds, how = validation_split(train, data.val_fraction, cfg.train.seed, data_val)
    if len(train_ds) < len(train):  # the held-out slice may take an AU's only labels
        check_train_labels(train_ds, f"{where}, less its validation slice (data.val_fraction={data.val_fraction:g}),")
    return train_ds, val_ds, how


def check_fold_labels(cfg: TrainConfig, fold_ids: list[int]) -> None:
    """Every fold's training labels, checked as each fold's own run will (split_checked), before the first fold
    trains: with --folds all a fold refused after the ones before it trained for hours would waste them. Reads the
    lists or the manifest only (no images, no alignment: align_dataset keeps the rows and labels)."""
    from hiva_core.data import build_dataset

    data = cfg.data
    for k in fold_ids:  # a fold's run holds its validation slice out of its own training rows (build_datasets)
        train = build_dataset(
            data.spec, split="train", fold=k, lists=data.lists, image_size=data.image_size, aus=data.aus
        )
        split_checked(replace(cfg, data=replace(data, fold=k)), train)


def read_prior(cfg: TrainConfig, run: RunFolder, aus: list[int], resume: bool) -> TextPrior:
    """The text prior: the run's own copy when resuming (the weights were fitted to it), else the cache's."""
    from augtext.prior import load_text_prior

    if resume:
        prior = run.read_prior()
        if prior.aus != aus:
            raise UserError(f"{run.prior_file} holds AUs {prior.aus}, the data gives {aus}; resume with the same data")
    else:
        if cfg.text.cache is None:
            raise UserError("hiva_core train needs --text-cache DIR (an augtext cache with embeddings)")
        prior = load_text_prior(
            cfg.text.cache, aus=aus, model=cfg.text.model, styles=cfg.text.styles, max_per_au=cfg.text.max_per_au
        )
    if cfg.model.text_dim is not None and cfg.model.text_dim != prior.dim:
        raise UserError(
            f"model.text_dim is {cfg.model.text_dim} but the text prior ({prior.model}, in "
            f"{cfg.text.cache or run.prior_file}) holds {prior.dim}-d embeddings; embed the cache "
            "with the matching model or drop model.text_dim"
        )
    return prior


def build_loaders(cfg: TrainConfig, splits: Splits, device: torch.device, info: DistInfo) -> Loaders:
    train_ds, batch = splits.train, cfg.train.batch_size
    gen = torch.Generator()
    common = {"num_workers": cfg.data.num_workers, "pin_memory": device.type == "cuda"}
    if info.enabled:
        sampler = DistributedSampler(
            train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.train.seed, drop_last=True
        )
        train = DataLoader(
            train_ds,
            batch_size=batch,
            sampler=sampler,
            generator=gen,
            drop_last=len(train_ds) // info.world_size > batch,
            **common,
        )
    else:
        sampler = None
        train = DataLoader(
            train_ds, batch_size=batch, shuffle=True, generator=gen, drop_last=len(train_ds) > batch, **common
        )

    def sharded(ds: AUDataset) -> DataLoader:
        eval_batch = cfg.train.eval_batch_size or 2 * batch
        return DataLoader(
            ds, batch_size=eval_batch, sampler=ShardSampler(len(ds), info.rank, info.world_size), **common
        )

    cap = cfg.train.max_steps_per_epoch
    batches = len(train) if cap is None else min(len(train), cap)
    val = sharded(splits.val) if splits.val is not None else None
    return Loaders(train, sharded(splits.test), gen, sampler, batches, val)


def geometry_option(cfg: TrainConfig, train_ds: AUDataset) -> dict[str, bool]:
    """model.geometry as built: left to the default (None), on for an open-vocabulary model when the training rows
    carry the expression's geometry (neutral landmarks: SynthAU) and train.geometry_weight > 0, off otherwise; asked
    for without it, a UserError."""
    from hiva_core.models.registry import is_open_vocabulary

    has = train_ds.geometry is not None and bool(np.isfinite(train_ds.geometry).all(1).any())
    if cfg.model.geometry is None:
        return {"geometry": has and is_open_vocabulary(cfg.model.name) and cfg.train.geometry_weight > 0}
    if cfg.model.geometry and not has:
        raise UserError(
            f"model.geometry=true needs the expression's geometry in the training data ({train_ds.source}): "
            "manifest columns landmarks and neutral_landmarks, as `hiva_core synth` writes them"
        )
    return {}


def intensity_option(cfg: TrainConfig, train_ds: AUDataset) -> dict[str, bool]:
    """model.intensity as built: left to the default (None), on for hiva and its ablations when the training rows
    carry AU intensities (AU<k>_int columns: SynthAU) and train.intensity_weight > 0, off otherwise; asked for
    without them, a UserError."""
    from hiva_core.models.registry import reads_intensity

    has = train_ds.intensity is not None and bool(np.isfinite(train_ds.intensity).any())
    if cfg.model.intensity is None:
        return {"intensity": has and reads_intensity(cfg.model.name) and cfg.train.intensity_weight > 0}
    if cfg.model.intensity and not has:
        raise UserError(
            f"model.intensity=true needs AU intensities in the training data ({train_ds.source}): manifest columns "
            "AU<k>_int in [0, 1] beside AU<k>, as `hiva_core synth` writes them"
        )
    return {}


def build_state(
    cfg: TrainConfig, train_ds: AUDataset, text_dim: int, batches: int, device: torch.device, info: DistInfo
) -> TrainState:
    """Model, task (model + loss), optimizer, lr schedule and loss scaler, before the first step.

    AU weights come from the training labels' positive rates (ME-GraphAU). AdamW without decay on norms/biases;
    linear warmup, then cosine over all optimizer steps. Loss scaling only for fp16 (bf16 needs none)."""
    from hiva_core.losses import au_weights
    from hiva_core.models import create_model
    from hiva_core.task import AUTask

    model = create_model(
        cfg.model.name,
        num_aus=len(train_ds.aus),
        text_dim=text_dim,
        **cfg.model.overrides(),
        **geometry_option(cfg, train_ds),
        **intensity_option(cfg, train_ds),
    )
    head = getattr(model, "geometry_head", None)
    if head is not None:  # its units (and what the AUs explain), from the training rows
        head.fit(train_ds.geometry, train_ds.labels)
    model.to(device)
    if use_channels_last(cfg, device):
        model.to(memory_format=torch.channels_last)
    task = AUTask(
        model,
        au_weights(train_ds.labels).to(device),
        align_weight=cfg.train.align_weight,
        region_weight=cfg.train.region_weight,
        aus=train_ds.aus,
        geometry_weight=cfg.train.geometry_weight,
        intensity_weight=cfg.train.intensity_weight,
    ).to(device)
    step_module: nn.Module = task
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        step_module = DDP(
            task,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.train.find_unused_parameters,
        )
    optimizer = torch.optim.AdamW(
        param_groups(task, cfg.optim.weight_decay, cfg.optim.lr, cfg.optim.backbone_lr_scale),
        lr=cfg.optim.lr,
        betas=(cfg.optim.beta1, cfg.optim.beta2),
    )
    steps_per_epoch = math.ceil(batches / cfg.optim.accum_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        cosine_with_warmup(cfg.train.epochs * steps_per_epoch, cfg.optim.warmup_ratio, cfg.optim.min_lr_ratio),
    )
    fp16 = device.type == "cuda" and cfg.train.precision == "fp16"
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    ema = copy.deepcopy(model).requires_grad_(False).eval() if cfg.optim.ema > 0 else None
    return TrainState(task, step_module, optimizer, scheduler, scaler, device, ema=ema)


# ---------------------------------------------------------------------------------------------- one epoch of each
def train_one_epoch(
    state: TrainState, loaders: Loaders, text: tuple, cfg: TrainConfig, monitor: Monitor
) -> dict[str, float]:
    """One pass over the training data (`loaders.batches` batches); advances `state.step`, returns the mean losses."""
    task, optimizer, scaler, device = state.step_module, state.optimizer, state.scaler, state.device
    task.train()
    accum, n_batches = cfg.optim.accum_steps, loaders.batches
    dtype = autocast_dtype(device, cfg.train.precision)
    channels_last = use_channels_last(cfg, device)
    sums = {"loss": 0.0, "asl": 0.0, "align": 0.0, "region": 0.0, "geometry": 0.0, "intensity": 0.0}
    bar = monitor.progress.task(f"epoch {state.epoch}/{cfg.train.epochs}", n_batches)
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loaders.train):
        if i >= n_batches:
            break
        images = batch["image"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        inputs = {
            "image": images,
            "labels": batch["labels"].to(device, non_blocking=True),
            "mask": batch["mask"].to(device, non_blocking=True),
        }
        for target in ("geometry", "intensity"):  # the optional targets some data carry, with their masks
            if target in batch:
                for key in (target, f"{target}_mask"):
                    inputs[key] = batch[key].to(device, non_blocking=True)
        # Gradient accumulation: step every `accum` batches (and at the end); under DDP only that last
        # micro-batch all-reduces gradients (no_sync on the others).
        stepping = (i + 1) % accum == 0 or i + 1 == n_batches
        sync = contextlib.nullcontext() if stepping or not hasattr(task, "no_sync") else task.no_sync()
        with sync:
            with autocast(device, dtype):
                out = task(inputs, *text)
            loss = out["loss"].detach()
            if not bool(torch.isfinite(loss)):  # before it reaches the weights
                raise UserError(
                    f"training stopped: the loss is {float(loss):g} at epoch {state.epoch}, step "
                    f"{state.step + 1} (batch {i + 1} of {n_batches}); lower --lr (now {cfg.optim.lr:g}) "
                    "or check the data"
                )
            scaler.scale(out["loss"] / accum).backward()
        if stepping:
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
                torch.nn.utils.clip_grad_norm_(task.parameters(), cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            state.scheduler.step()
            state.step += 1
            state.update_ema(cfg.optim.ema)
        for k in sums:
            sums[k] += float(out[k].detach())
        monitor.progress.update(bar, info=f"loss {sums['loss'] / (i + 1):.4f}")
        if stepping and state.step % cfg.train.log_every == 0:
            monitor.scalars(state.step, {"train/loss": out["loss"].detach(), "train/lr": state.lr})
    monitor.progress.done(bar)
    return {k: v / max(1, n_batches) for k, v in sums.items()}


# ------------------------------------------------------------------------------------------------------------ fit
def fit(cfg: TrainConfig, out: str | Path, resume: bool = False) -> dict:
    """Train one model into the run folder `out`; with `resume`, continue it from its last.pt.

    Returns `{"best_f1", "best_epoch", "selected_on", "metrics", "last", "out", "finished"}`: the kept epoch's
    selection score (train.select: the validation avg AUC or F1, or the test avg F1; -1.0 before any evaluation),
    that epoch (0 before), what chose it in words, its per-AU test metrics and the last evaluated epoch's (None
    before any evaluation and on ranks other than 0), the run folder, and whether the run reached `train.epochs`
    (False when `train.stop_after` ended it early).
    """
    run = RunFolder(out)
    run.check_new(resume)  # before anything else: a good run is never touched by a failed start
    info, device = init_distributed(pick_device(cfg.train.device))
    seed_everything(cfg.train.seed)

    splits = build_datasets(cfg, info, device)
    aus = list(splits.train.aus)
    prior = read_prior(cfg, run, aus, resume)
    text = ckpt.prior_tensors(prior, device)  # moved to the device once, reused by every step
    loaders = build_loaders(cfg, splits, device, info)
    state = build_state(cfg, splits.train, prior.dim, loaders.batches, device, info)
    on_val = cfg.train.select in VAL_SELECT
    if splits.val is not None:
        kept = " (the last epoch is kept)" if cfg.train.select == "last" else ""
        log(info, f"per-AU thresholds{' and the kept epoch' if on_val else ''}: chosen on {splits.val_how}{kept}")
    elif cfg.data.val_fraction > 0:  # asked for and not possible (0: the user asked for none)
        chooses = " and the test split chooses the kept epoch" if on_val else ""
        log(info, f"per-AU thresholds stay 0.5{chooses}: {splits.val_how}")
    if resume:  # every piece of state that the next epoch depends on
        state.load_state_dict(run.resume())
        log(
            info,
            f"resuming {run.path} at epoch {state.epoch + 1} "
            f"(kept epoch {run.best_epoch}, selection score {100 * run.best_f1:.1f})",
        )
    # A failure before the first last.pt removes what this attempt wrote (no half-made run is left behind); one
    # after it keeps the folder, resumable, and says which epoch last.pt holds.
    with run.attempt(writer=info.is_main):
        if info.is_main:  # the run's identity, written before the first step
            if not resume:
                run.write_prior(prior)
            run.write_config(
                cfg,
                state.model,
                aus,
                prior,
                train_frames=len(splits.train),
                test_frames=len(splits.test),
                world_size=info.world_size,
            )

        stop = (
            cfg.train.epochs
            if cfg.train.stop_after is None
            else min(cfg.train.epochs, state.epoch + cfg.train.stop_after)
        )
        with Monitor(cfg, run, info) as monitor:
            for epoch in range(state.epoch + 1, stop + 1):
                started, state.epoch = time.time(), epoch
                seed = epoch_seed(cfg.train.seed, epoch, info.rank)
                seed_everything(seed)
                loaders.reseed(seed, epoch)
                losses = train_one_epoch(state, loaders, text, cfg, monitor)
                metrics = thresholds = None
                if epoch % cfg.train.eval_every == 0 or epoch == cfg.train.epochs:
                    # fp32, like load_run's predict: `hiva_core eval` then reproduces these numbers exactly.
                    metrics = evaluate_model(state.model, loaders.test, text, device, aus, info)
                    thresholds = val_thresholds(state.model, loaders.val, text, device, aus, info, splits.val_how)
                # Only rank 0 writes; the others wait at the next collective (the next step's all-reduce).
                if info.is_main:
                    run.save_checkpoint(epoch, metrics, state.model, state.state_dict(), thresholds, cfg.train.select)
                    monitor.end_epoch(state, losses, metrics, started, thresholds)

    return {
        "best_f1": run.best_f1,
        "best_epoch": run.best_epoch,
        "selected_on": run.selected_on,
        "metrics": run.best_metrics,
        "last": run.last_metrics,
        "out": str(run.path),
        "finished": stop == cfg.train.epochs,
    }


# ----------------------------------------------------------------------------------------------------- the command
def resume_config(out: str | Path, all_folds: bool = False) -> TrainConfig:
    """The config a run was trained with: the base of `--resume`, so that repeating the original command (or adding
    --epochs) continues it. With `all_folds`, the first fold's."""
    run = RunFolder(out)
    saved = next(iter(run.fold_runs()), None) if all_folds else run
    if saved is None or not saved.config_file.is_file():
        raise UserError(f"--resume: no {ckpt.CONFIG} under {run.path}; nothing to resume (train without --resume)")
    return saved.read_train_config()


def run_train(cfg: TrainConfig, out: str | Path, resume: bool = False, all_folds: bool = False) -> dict:
    """`hiva_core train`: `fit` one run into `out`, or with `all_folds` every fold into out/fold{k}/.

    One run returns fit's result. All folds return `{"folds": {"fold1": fit's result, ...}, "summary": ...}`; the
    summary (aggregate_folds, also written to summary.json) is None unless every fold has metrics (on rank 0).
    """
    if not all_folds:
        try:
            result = fit(cfg, out, resume=resume)
            cleanup(synced=True)
            return result
        finally:
            cleanup()

    run = RunFolder(out)
    if cfg.data.spec is None:
        raise UserError("hiva_core train needs --data (a manifest with a fold column, or bp4d:|disfa:ROOT)")
    fold_ids = discover_folds(cfg.data.spec, cfg.data.lists)
    # Check every fold folder first, so that a refusal happens before any fold trains.
    if not resume:
        for k in fold_ids:
            run.fold(k).check_new(resume=False)
    check_fold_labels(cfg, fold_ids)
    results = {}
    try:
        for k in fold_ids:
            fold_run = run.fold(k)
            fold_resume = resume and fold_run.can_resume()
            results[f"fold{k}"] = fit(replace(cfg, data=replace(cfg.data, fold=k)), fold_run.path, resume=fold_resume)
        cleanup(synced=True)
    finally:
        cleanup()
    summary = None
    if all(r["metrics"] is not None for r in results.values()) and env_world().is_main:
        summary = aggregate_folds({name: r["metrics"] for name, r in results.items()})
        run.write_summary(summary)
    return {"folds": results, "summary": summary}
