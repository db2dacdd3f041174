"""What training holds and a step changes: the model and its task (model + loss), AdamW's parameter groups, the lr
schedule, the fp16 loss scaler, the weights' moving average and the counters (`TrainState`, built by `build_state`)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from augtext.errors import UserError
from hiva_core.config import TrainConfig
from hiva_core.distributed import DistInfo

if TYPE_CHECKING:
    from hiva_core.data import AUDataset


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


def use_channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether training lays images and conv weights out as channels_last (``train.channels_last``, CUDA and CPU).

    CUDA: faster convolutions with bf16 on tensor cores. CPU: measured faster here too, for linear heads and full HiVA
    alike; `bench/bench_model.py` measures it (`--no-channels-last` for the NCHW side).
    """
    return cfg.train.channels_last and device.type in ("cuda", "cpu")


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


def geometry_option(cfg: TrainConfig, train_ds: AUDataset) -> dict[str, bool]:
    """model.geometry as built: left to the default (None), on for an open-vocabulary model when the training rows
    carry the expression's geometry (neutral landmarks: SynthAU) and train.geometry_weight > 0, off otherwise; asked
    for without it, a UserError."""
    from hiva_core.models.registry import is_open_vocabulary

    return _head_option(
        "geometry",
        cfg.model.geometry,
        has=train_ds.geometry is not None and bool(np.isfinite(train_ds.geometry).all(1).any()),
        default=is_open_vocabulary(cfg.model.name) and cfg.train.geometry_weight > 0,
        missing=f"model.geometry=true needs the expression's geometry in the training data ({train_ds.source}): "
        "manifest columns landmarks and neutral_landmarks, as `hiva_core synth` writes them",
    )


def intensity_option(cfg: TrainConfig, train_ds: AUDataset) -> dict[str, bool]:
    """model.intensity as built: left to the default (None), on for hiva and its ablations when the training rows
    carry AU intensities (AU<k>_int columns: SynthAU) and train.intensity_weight > 0, off otherwise; asked for
    without them, a UserError."""
    from hiva_core.models.registry import reads_intensity

    return _head_option(
        "intensity",
        cfg.model.intensity,
        has=train_ds.intensity is not None and bool(np.isfinite(train_ds.intensity).any()),
        default=reads_intensity(cfg.model.name) and cfg.train.intensity_weight > 0,
        missing=f"model.intensity=true needs AU intensities in the training data ({train_ds.source}): manifest "
        "columns AU<k>_int in [0, 1] beside AU<k>, as `hiva_core synth` writes them",
    )


def _head_option(key: str, asked: bool | None, *, has: bool, default: bool, missing: str) -> dict[str, bool]:
    """An optional head that needs targets in the training rows: left to the default (None), on where the rows `has`
    them and the model and loss weight call for it (`default`); asked for without them, UserError(`missing`)."""
    if asked is None:
        return {key: has and default}
    if asked and not has:
        raise UserError(missing)
    return {}


def step_inputs(batch: dict, device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    """What a training step hands the task: a loader's batch on `device` (images channels_last when asked), with the
    optional targets some data carry (geometry, intensity) and their masks."""
    images = batch["image"].to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    inputs = {
        "image": images,
        "labels": batch["labels"].to(device, non_blocking=True),
        "mask": batch["mask"].to(device, non_blocking=True),
    }
    for target in ("geometry", "intensity"):
        if target in batch:
            for key in (target, f"{target}_mask"):
                inputs[key] = batch[key].to(device, non_blocking=True)
    return inputs


def unused_parameters(task: nn.Module, train_ds: AUDataset, text: tuple, device: torch.device) -> list[str]:
    """The trainable parameters a training step's loss does not reach (DDP must be told of any: an ablation's unused
    branch), found from the first two training samples. Leaves no trace: the random streams and the BatchNorm
    statistics are as before, and no gradient is stored."""
    from torch.utils.data import default_collate

    params = [(name, p) for name, p in task.named_parameters() if p.requires_grad]
    buffers = {name: b.clone() for name, b in task.named_buffers()}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        batch = default_collate([train_ds[i] for i in range(min(2, len(train_ds)))])
        was_training = task.training
        task.train()
        loss = task(step_inputs(batch, device, channels_last=False), *text)["loss"]
        grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
        task.train(was_training)
    with torch.no_grad():
        for name, b in task.named_buffers():
            b.copy_(buffers[name])
    return [name for (name, _), g in zip(params, grads, strict=True) if g is None]


def build_state(
    cfg: TrainConfig,
    train_ds: AUDataset,
    text: tuple[torch.Tensor, torch.Tensor],
    batches: int,
    device: torch.device,
    info: DistInfo,
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
        text_dim=text[0].shape[-1],
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

        find_unused = cfg.train.find_unused_parameters
        if find_unused is None:  # the extra pass over the graph every step only where it is needed
            find_unused = bool(unused_parameters(task, train_ds, text, device))
        step_module = DDP(
            task, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=find_unused
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
