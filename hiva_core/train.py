"""`hiva_core train`: fit a HiVA model on labelled faces with the text prior; read `fit` top to bottom.

One process, or N under `torchrun --nproc_per_node N` (DDP). Each epoch trains, evaluates on the test split and
writes the run folder (see hiva_core.checkpoint); `--resume` continues from last.pt and ends with the same weights
as an uninterrupted run, because every epoch re-seeds its RNGs from (seed, epoch, rank) and last.pt holds the
optimizer and scheduler state.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from augtext.errors import UserError
from hiva_core import checkpoint as ckpt
from hiva_core.config import TrainConfig, from_dict, resolve_config, to_dict
from hiva_core.device import autocast, autocast_dtype, pick_device
from hiva_core.distributed import DistInfo, ShardSampler, cleanup, env_world, init_distributed, sync_buffers
from hiva_core.evaluate import predict_loader
from hiva_core.metrics import aggregate_folds, au_metrics, format_folds_table, format_table


# ------------------------------------------------------------------------------------------------ building blocks
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank: re-seeding per epoch is what makes --resume exact."""
    return seed + 10_007 * epoch + 1_000_003 * rank


def param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay matrices and conv kernels; not norms, biases or other 1-D parameters (as nanoGPT)."""
    decay, no_decay = [], []
    for _, p in module.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


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


def tensorboard_writer(out: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(out / "tb"))


class Progress:
    """rich progress bars on stderr (rank 0 only), or nothing."""

    def __init__(self, enabled: bool):
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                    console=Console(stderr=True), transient=True)

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def task(self, description: str, total: int) -> Any:
        return self.bar.add_task(description, total=total, info="") if self.bar else None

    def update(self, task: Any, info: str = "") -> None:
        if self.bar:
            self.bar.update(task, advance=1, info=info)

    def done(self, task: Any) -> None:
        if self.bar:
            self.bar.remove_task(task)


def log(info: DistInfo, message: str) -> None:
    if info.is_main:
        print(message, file=sys.stderr, flush=True)


def use_channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether training lays images and conv weights out as channels_last (``train.channels_last``, CUDA and CPU).

    CUDA: faster convolutions with bf16 on tensor cores. CPU, measured here (MobileNetV2 128 px, batch 32, fp32
    training steps, both layouts alternated step by step): per CPU second with 1 thread, 8 rounds, linear heads 61 vs
    38 images/s and full HiVA 31 vs 24, channels_last ahead in all 16 pairs; with 2 threads on the 2 shared cores
    (heavy load, 5 rounds) 4.7 vs 2.9 and 2.0 vs 1.7 images/s (median); DESIGN.md: 84 vs 60 images/s.
    """
    return cfg.train.channels_last and device.type in ("cuda", "cpu")


# ---------------------------------------------------------------------------------------------- one epoch of each
def train_one_epoch(
    task: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, scheduler, scaler, text: tuple,
    device: torch.device, cfg: TrainConfig, step: int, progress: Progress, epoch: int, tb=None,
) -> tuple[dict[str, float], int]:
    """One pass over the training data; returns (mean losses, global optimizer step)."""
    task.train()
    accum = cfg.optim.accum_steps
    n_batches = len(loader) if cfg.train.max_steps_per_epoch is None else min(len(loader),
                                                                             cfg.train.max_steps_per_epoch)
    dtype = autocast_dtype(device, cfg.train.precision)
    channels_last = use_channels_last(cfg, device)
    sums = {"loss": 0.0, "asl": 0.0, "align": 0.0}
    bar = progress.task(f"epoch {epoch}/{cfg.train.epochs}", n_batches)
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        images = batch["image"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        inputs = {"image": images, "labels": batch["labels"].to(device, non_blocking=True),
                  "mask": batch["mask"].to(device, non_blocking=True)}
        # Gradient accumulation: step every `accum` batches (and at the end); under DDP only that last
        # micro-batch all-reduces gradients (no_sync on the others).
        stepping = (i + 1) % accum == 0 or i + 1 == n_batches
        sync = contextlib.nullcontext() if stepping or not hasattr(task, "no_sync") else task.no_sync()
        with sync:
            with autocast(device, dtype):
                out = task(inputs, *text)
            scaler.scale(out["loss"] / accum).backward()
        if stepping:
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
                torch.nn.utils.clip_grad_norm_(task.parameters(), cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
        for k in sums:
            sums[k] += float(out[k].detach())
        progress.update(bar, f"loss {sums['loss'] / (i + 1):.4f}")
        if tb is not None and stepping and step % cfg.train.log_every == 0:
            tb.add_scalar("train/loss", float(out["loss"].detach()), step)
            tb.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
    progress.done(bar)
    return {k: v / max(1, n_batches) for k, v in sums.items()}, step


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, text: tuple, device: torch.device, aus: list[int], info: DistInfo,
    precision: str = "fp32",
) -> dict | None:
    """Per-AU metrics on a loader (rank 0; other ranks return None). Uses the plain model, never the DDP wrapper:
    ranks may hold different numbers of batches, and evaluation needs no gradient sync."""
    sync_buffers(model)  # BatchNorm statistics differ per rank after DDP steps: everyone evaluates rank 0's
    model.eval()
    dtype = autocast_dtype(device, precision)

    def predict(images: torch.Tensor) -> torch.Tensor:
        with autocast(device, dtype):
            return torch.sigmoid(model(images, *text)["logits"].float())

    sampler = loader.sampler
    indices = np.asarray(sampler.indices) if isinstance(sampler, ShardSampler) else None
    out = predict_loader(predict, loader, device, len(aus), info, indices)
    return au_metrics(out["probs"], out["labels"], out["mask"], aus) if out is not None else None


# ------------------------------------------------------------------------------------------------------------ fit
def fit(cfg: TrainConfig, out: str | Path, resume: bool = False) -> dict:
    """Train one model into the run folder `out`; returns `{"best_f1", "best_epoch", "metrics", "out"}`."""
    from augtext.prior import load_text_prior, read_text_prior
    from hiva_core.data import build_dataset, check_images
    from hiva_core.losses import au_weights
    from hiva_core.task import AUTask

    out = Path(out)
    ckpt.check_out(out, resume)  # before anything else: a good run is never touched by a failed start
    info, device = init_distributed(pick_device(cfg.train.device))
    seed_everything(cfg.train.seed)

    # Data. Images are checked up front: a missing file should fail now, not hours into an epoch.
    data = cfg.data
    if data.spec is None:
        raise UserError("hiva_core train needs --data (a manifest, a SynthAU folder, or bp4d:|disfa:|gft:ROOT)")
    train_ds = build_dataset(data.spec, split="train", fold=data.fold, lists=data.lists, image_size=data.image_size,
                             augment=True, aus=data.aus)
    test_ds = build_dataset(data.spec, split="test", fold=data.fold, lists=data.lists, image_size=data.image_size,
                            augment=False, aus=train_ds.aus)
    for ds in (train_ds, test_ds):
        if len(ds) == 0:
            raise UserError(f"{data.spec}: the {'train' if ds is train_ds else 'test'} split is empty")
        check_images(ds, progress=info.is_main and sys.stderr.isatty())
    aus = list(train_ds.aus)

    # The text prior: the run's own copy when resuming (the weights were fitted to it), else the cache.
    if resume:
        prior = read_text_prior(out / ckpt.PRIOR)
        if prior.aus != aus:
            raise UserError(f"{out / ckpt.PRIOR} holds AUs {prior.aus}, the data gives {aus}; "
                            "resume with the same data")
    else:
        if cfg.text.cache is None:
            raise UserError("hiva_core train needs --text-cache DIR (an augtext cache with embeddings)")
        prior = load_text_prior(cfg.text.cache, aus=aus, model=cfg.text.model, styles=cfg.text.styles,
                                max_per_au=cfg.text.max_per_au)
    if cfg.model.text_dim is not None and cfg.model.text_dim != prior.dim:
        raise UserError(f"model.text_dim is {cfg.model.text_dim} but the text prior ({prior.model}, in "
                        f"{cfg.text.cache or out / ckpt.PRIOR}) holds {prior.dim}-d embeddings; embed the cache "
                        "with the matching model or drop model.text_dim")
    text = ckpt.prior_tensors(prior, device)  # moved to the device once, reused by every step

    # Model + task (model + loss). AU weights come from the training labels' positive rates (ME-GraphAU).
    from hiva_core.models import create_model

    model = create_model(cfg.model.name, num_aus=len(aus), text_dim=prior.dim, **cfg.model.overrides())
    model.to(device)
    if use_channels_last(cfg, device):
        model.to(memory_format=torch.channels_last)
    weights = au_weights(train_ds.labels).to(device)
    task = AUTask(model, weights, align_weight=cfg.train.align_weight).to(device)
    train_task: nn.Module = task
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_task = DDP(task, device_ids=[device.index] if device.type == "cuda" else None,
                         find_unused_parameters=cfg.train.find_unused_parameters)

    # Loaders. The training order is drawn from a generator re-seeded every epoch (and DistributedSampler's
    # set_epoch under DDP); evaluation shards the test split across ranks without padding.
    batch = cfg.train.batch_size
    gen = torch.Generator()
    workers = data.num_workers
    common = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if info.enabled:
        train_sampler = DistributedSampler(train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                           seed=cfg.train.seed, drop_last=True)
        train_loader = DataLoader(train_ds, batch_size=batch, sampler=train_sampler, generator=gen,
                                  drop_last=len(train_ds) // info.world_size > batch, **common)
    else:
        train_sampler = None
        train_loader = DataLoader(train_ds, batch_size=batch, shuffle=True, generator=gen,
                                  drop_last=len(train_ds) > batch, **common)
    test_loader = DataLoader(test_ds, batch_size=cfg.train.eval_batch_size or 2 * batch,
                             sampler=ShardSampler(len(test_ds), info.rank, info.world_size), **common)

    # Optimizer and schedule: AdamW without decay on norms/biases; warmup then cosine over all optimizer steps.
    optimizer = torch.optim.AdamW(param_groups(task, cfg.optim.weight_decay), lr=cfg.optim.lr,
                                  betas=(cfg.optim.beta1, cfg.optim.beta2))
    batches = len(train_loader) if cfg.train.max_steps_per_epoch is None else min(len(train_loader),
                                                                                  cfg.train.max_steps_per_epoch)
    steps_per_epoch = math.ceil(batches / cfg.optim.accum_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(
        cfg.train.epochs * steps_per_epoch, cfg.optim.warmup_ratio, cfg.optim.min_lr_ratio))
    fp16 = device.type == "cuda" and cfg.train.precision == "fp16"
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)  # loss scaling only for fp16 (bf16 needs none)

    # Resume: every piece of state that the next epoch depends on.
    start_epoch, step, best_f1, best_epoch, rows, best_metrics = 1, 0, -1.0, 0, [], None
    if resume:
        state = ckpt.load_last(out / ckpt.LAST)
        task.load_state_dict(state["task"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and fp16:
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        best_f1, best_epoch = float(state["best_f1"]), int(state["best_epoch"])
        rows = ckpt.read_log(out / ckpt.LOG, start_epoch - 1) if info.is_main else []
        if (out / ckpt.METRICS).is_file():
            best_metrics = ckpt.read_json(out / ckpt.METRICS, "metrics file").get("best")
        log(info, f"resuming {out} at epoch {start_epoch} (best avg F1 {100 * best_f1:.1f} at epoch {best_epoch})")

    # The run's identity, written before the first step so that a crash still leaves a readable folder.
    if info.is_main:
        if not resume:
            ckpt.save_prior(prior, out / ckpt.PRIOR)
        ckpt.write_json(out / ckpt.CONFIG, {
            "format": ckpt.RUN_FORMAT, "config": to_dict(cfg), "model_name": cfg.model.name,
            "model_config": ckpt.model_config_dict(model), "aus": aus, "image_size": data.image_size,
            "text_prior": {"fingerprint": prior.fingerprint, "model": prior.model, "dim": prior.dim,
                           "descriptions_per_au": int(prior.mask.shape[1]), "cache": cfg.text.cache},
            "data": {"spec": data.spec, "fold": data.fold, "train_frames": len(train_ds),
                     "test_frames": len(test_ds)},
            "world_size": info.world_size,
        })
    tb = tensorboard_writer(out, cfg.train.tensorboard and info.is_main)

    last_metrics = None
    stop = cfg.train.epochs if cfg.train.stop_after is None else min(cfg.train.epochs,
                                                                     start_epoch - 1 + cfg.train.stop_after)
    with Progress(cfg.train.progress and info.is_main) as progress:
        for epoch in range(start_epoch, stop + 1):
            t0 = time.time()
            seed = epoch_seed(cfg.train.seed, epoch, info.rank)
            seed_everything(seed)
            gen.manual_seed(seed)
            if train_sampler is not None:
                train_sampler.set_epoch(epoch)
            losses, step = train_one_epoch(train_task, train_loader, optimizer, scheduler, scaler, text, device, cfg,
                                           step, progress, epoch, tb)

            metrics = None
            if epoch % cfg.train.eval_every == 0 or epoch == cfg.train.epochs:
                # fp32, like load_run's predict: `hiva_core eval` then reproduces these numbers exactly.
                metrics = evaluate(model, test_loader, text, device, aus, info)
            # Only rank 0 writes; the others wait at the next collective (the next step's all-reduce).
            if info.is_main:
                if metrics is not None:
                    last_metrics = metrics
                    if metrics["avg"]["f1"] > best_f1:
                        best_f1, best_epoch, best_metrics = metrics["avg"]["f1"], epoch, metrics
                        ckpt.save_model(model, out / ckpt.MODEL)
                ckpt.write_json(out / ckpt.METRICS, {"best_epoch": best_epoch, "best": best_metrics,
                                                     "last_epoch": epoch, "last": metrics})
                ckpt.save_last(out / ckpt.LAST, task=task.state_dict(), optimizer=optimizer.state_dict(),
                               scheduler=scheduler.state_dict(), scaler=scaler.state_dict(), epoch=epoch, step=step,
                               best_f1=best_f1, best_epoch=best_epoch, rng=ckpt.rng_state())
                val_f1 = metrics["avg"]["f1"] if metrics else float("nan")
                val_auc = metrics["avg"]["auc"] if metrics else float("nan")
                rows.append({"epoch": epoch, "step": step, **{k: f"{v:.6f}" for k, v in losses.items()},
                             "lr": f"{optimizer.param_groups[0]['lr']:.3e}", "val_f1": f"{val_f1:.6f}",
                             "val_auc": f"{val_auc:.6f}", "time_s": f"{time.time() - t0:.2f}"})
                ckpt.write_log(out / ckpt.LOG, rows)
                if tb is not None and metrics is not None:
                    tb.add_scalar("val/avg_f1", val_f1, step)
                log(info, f"epoch {epoch}/{cfg.train.epochs}  loss {losses['loss']:.4f}  "
                          f"val avg F1 {100 * val_f1:.1f}  best {100 * best_f1:.1f} (epoch {best_epoch})  "
                          f"{time.time() - t0:.1f}s")
    if tb is not None:
        tb.close()
    if info.is_main and best_metrics is not None and stop == cfg.train.epochs:
        print(f"\n{out}: best avg F1 {100 * best_f1:.1f} at epoch {best_epoch}\n")
        print(format_table(best_metrics))
    return {"best_f1": best_f1, "best_epoch": best_epoch, "metrics": best_metrics, "last": last_metrics,
            "out": str(out), "finished": stop == cfg.train.epochs}


# ----------------------------------------------------------------------------------------------------- the command
def run_train(
    text_cache: Path | None = None, data: str | None = None, out: Path | None = None, lists: Path | None = None,
    model: str | None = None, backbone: str | None = None, pretrained: bool | None = None,
    backbone_weights: Path | None = None, fold: int | None = None, folds: str | None = None,
    epochs: int | None = None, batch_size: int | None = None, lr: float | None = None, image_size: int | None = None,
    config: Path | None = None, resume: bool = False, overrides: list[str] | tuple[str, ...] = (),
) -> dict:
    """`hiva_core train`: resolve the config, then `fit` one fold, or every fold with `folds="all"`."""
    if out is None:
        raise UserError("hiva_core train needs --out runs/NAME")
    out = Path(out)
    if folds is not None and folds != "all":
        raise UserError(f"--folds takes 'all' (got {folds!r}); use --fold K for one fold")
    if folds == "all" and fold is not None:
        raise UserError("give either --fold K or --folds all, not both")
    cli = {"text.cache": text_cache, "data.spec": data, "data.lists": lists, "model.name": model,
           "model.backbone": backbone, "model.pretrained": pretrained, "model.backbone_weights": backbone_weights,
           "data.fold": fold, "train.epochs": epochs, "train.batch_size": batch_size, "optim.lr": lr,
           "data.image_size": image_size}
    # On --resume the saved config is the base: repeating the original command (or adding --epochs) continues it.
    base = None
    if resume:
        saved = out / ckpt.CONFIG if folds != "all" else next(iter(sorted(out.glob("fold*/" + ckpt.CONFIG))), None)
        if saved is None or not saved.is_file():
            raise UserError(f"--resume: no {ckpt.CONFIG} under {out}; nothing to resume (train without --resume)")
        base = from_dict(ckpt.read_json(saved, "run config")["config"])
    cfg = resolve_config(config, cli, overrides, base=base)

    if folds != "all":
        try:
            return fit(cfg, out, resume=resume)
        finally:
            cleanup()

    if cfg.data.spec is None:
        raise UserError("hiva_core train needs --data (a manifest with a fold column, or bp4d:|disfa:ROOT)")
    fold_ids = discover_folds(cfg.data.spec, cfg.data.lists)
    # Check every fold folder first, so that a refusal happens before any fold trains.
    if not resume:
        for k in fold_ids:
            ckpt.check_out(out / f"fold{k}", resume=False)
    results = {}
    try:
        for k in fold_ids:
            fold_out = out / f"fold{k}"
            fold_resume = resume and (fold_out / ckpt.LAST).is_file()
            results[f"fold{k}"] = fit(replace(cfg, data=replace(cfg.data, fold=k)), fold_out, resume=fold_resume)
    finally:
        cleanup()
    if all(r["metrics"] is not None for r in results.values()) and env_world().is_main:
        summary = aggregate_folds({name: r["metrics"] for name, r in results.items()})
        ckpt.write_json(out / "summary.json", summary)
        print(f"\n{out}: {len(fold_ids)} folds, mean avg F1 {100 * summary['mean']['avg']['f1']:.1f}\n")
        print(format_folds_table(summary))
        return summary
    return results
