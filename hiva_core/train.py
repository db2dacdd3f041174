"""`hiva_core train`: fit a HiVA model on labelled faces with the text prior; read `fit` top to bottom.

One process, or N under `torchrun --nproc_per_node N` (DDP). Each epoch trains, evaluates on the test split and
writes the run folder (see hiva_core.run_folder.RunFolder); `--resume` continues from last.pt and ends with the same
weights as an uninterrupted run, because every epoch re-seeds its RNGs from (seed, epoch, rank) and last.pt holds the
optimizer and scheduler state.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from augtext.errors import UserError
from hiva_core.checkpoint import prior_tensors
from hiva_core.config import VAL_SELECT, TrainConfig
from hiva_core.data.aligned import framing_record, unaligned_note
from hiva_core.device import autocast, autocast_dtype, pick_device
from hiva_core.distributed import DistInfo, cleanup, env_world, init_distributed
from hiva_core.evaluate import evaluate_model, fold_summary, val_thresholds
from hiva_core.metrics import MIN_THRESHOLD_FRAMES, class_counts, too_few_to_choose
from hiva_core.progress import ProgressBar
from hiva_core.run_folder import CONFIG, RunFolder
from hiva_core.train_data import Loaders, build_datasets, build_loaders, check_fold_labels, discover_folds, read_prior
from hiva_core.train_state import TrainState, build_state, step_inputs, use_channels_last


# ------------------------------------------------------------------------------------------------------ building blocks
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank: re-seeding per epoch is what makes --resume exact."""
    return seed + 10_007 * epoch + 1_000_003 * rank


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
        """After the run folder was saved (rank 0): log.csv's row, TensorBoard's scalars and the log line (the test
        split's F1 at 0.5, the validation rows' F1 at their thresholds and AUC, and the kept epoch's selection score;
        an epoch that was not evaluated says so).
        log.csv: test_f1/test_auc the test split's, val_rows_f1/val_rows_auc the validation rows' (run_folder's
        LOG_COLUMNS); its val_f1/val_auc columns, and TensorBoard's val/avg_f1, repeat the test split's, as they
        always have."""
        test_f1 = metrics["avg"]["f1"] if metrics else float("nan")
        test_auc = metrics["avg"]["auc"] if metrics else float("nan")
        val_f1 = thresholds["val_f1"]["avg"] if thresholds else float("nan")
        val_auc = thresholds["val_auc"]["avg"] if thresholds else float("nan")
        self.run.append_log(
            {
                "epoch": state.epoch,
                "step": state.step,
                **{k: f"{v:.6f}" for k, v in losses.items()},
                "lr": f"{state.lr:.3e}",
                "test_f1": f"{test_f1:.6f}",
                "test_auc": f"{test_auc:.6f}",
                "val_rows_f1": f"{val_f1:.6f}" if thresholds else "",
                "val_rows_auc": f"{val_auc:.6f}" if thresholds else "",
                "val_f1": f"{test_f1:.6f}",
                "val_auc": f"{test_auc:.6f}",
                "time_s": f"{time.time() - started:.2f}",
            }
        )
        if metrics is not None:
            self.scalars(state.step, {"test/avg_f1": test_f1, "test/avg_auc": test_auc, "val/avg_f1": test_f1})
        if thresholds:
            self.scalars(state.step, {"val_rows/avg_f1": val_f1, "val_rows/avg_auc": val_auc})
        scores = f"test avg F1 {100 * test_f1:.1f}  " if metrics else "not evaluated (train.eval_every)  "
        if thresholds:
            scores += f"val F1 {100 * val_f1:.1f} AUC {100 * val_auc:.1f}  "
        kept = f"kept epoch {self.run.best_epoch} ({100 * self.run.best_f1:.1f})  " if self.run.best_epoch else ""
        log(
            self.info,
            f"epoch {state.epoch}/{self.epochs}  loss {losses['loss']:.4f}  {scores}{kept}{time.time() - started:.1f}s",
        )


# ------------------------------------------------------------------------------------------------------------ one epoch
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
        inputs = step_inputs(batch, device, channels_last)
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


# ------------------------------------------------------------------------------------------------------------------ fit
def fit(cfg: TrainConfig, out: str | Path, resume: bool = False, fold_of: str | Path | None = None) -> dict:
    """Train one model into the run folder `out`; with `resume`, continue it from its last.pt. `fold_of`: the
    `--folds all` folder `out` is a fold of (what the messages tell to resume).

    Returns `{"best_f1", "best_epoch", "selected_on", "metrics", "last", "out", "finished", "thresholds"}`: the kept
    epoch's selection score (train.select: the validation avg AUC or F1, or the test avg F1; -1.0 before any
    evaluation), that epoch (0 before), what chose it in words, its per-AU test metrics at 0.5 and the last evaluated
    epoch's (None before any evaluation and on ranks other than 0), the run folder, whether the run reached
    `train.epochs` (False when `train.stop_after` ended it early), and whether it stores per-AU thresholds other
    than 0.5 (what `eval` and `predict` use).
    """
    run = RunFolder(out, fold_of=fold_of)
    run.check_new(resume)  # before anything else: a good run is never touched by a failed start
    info, device = init_distributed(pick_device(cfg.train.device))
    seed_everything(cfg.train.seed)

    splits = build_datasets(cfg, info, device)
    if resume:  # other data is refused before anything is said of it
        check_same_frames(run, cfg, len(splits.train))
    aus = list(splits.train.aus)
    prior = read_prior(cfg, run, aus, resume)
    text = prior_tensors(prior, device)  # moved to the device once, reused by every step
    loaders = build_loaders(cfg, splits, device, info)
    state = build_state(cfg, splits.train, text, loaders.batches, device, info)
    if splits.held_out:
        log(info, splits.held_out)
    on_val = cfg.train.select in VAL_SELECT
    if splits.val is not None:
        kept = " (the last epoch is kept)" if cfg.train.select == "last" else ""
        log(info, f"per-AU thresholds{' and the kept epoch' if on_val else ''}: chosen on {splits.val_how}{kept}")
        few = too_few_to_choose(class_counts(splits.val.labels, None, aus))
        if few:  # as threshold_record will find on every epoch (the rows and labels do not change)
            counts = ", ".join(f"{name} ({pos} positive, {neg} negative)" for name, (pos, neg) in few.items())
            log(
                info,
                f"per-AU thresholds stay 0.5 for {counts}: choosing one needs {MIN_THRESHOLD_FRAMES} positive and "
                f"{MIN_THRESHOLD_FRAMES} negative validation frames (more validation rows: data.val_fraction)",
            )
    elif cfg.data.val_fraction > 0:  # asked for and not possible (0: the user asked for none)
        chooses = " and the test split chooses the kept epoch" if on_val else ""
        log(info, f"per-AU thresholds stay 0.5{chooses}: {splits.val_how}")
    if cfg.data.traces == "unknown":
        log(
            info,
            f"data.traces=unknown: {splits.traces} absent labels beside a visible intensity left unknown in training"
            if splits.traces
            else "data.traces=unknown changes nothing: no training row has an absent AU with an intensity above 0 "
            "(AU<k>_int columns, as `hiva_core synth` writes them)",
        )
    if resume:  # every piece of state that the next epoch depends on
        state.load_state_dict(run.resume())
        kept = f"kept epoch {run.best_epoch}, selection score {100 * run.best_f1:.1f}"
        if state.epoch >= cfg.train.epochs:  # a finished fold of `--folds all --resume`: reported as it is
            log(info, f"{run.path} already finished all {cfg.train.epochs} epochs ({kept}): nothing to train")
        else:
            log(info, f"resuming {run.path} at epoch {state.epoch + 1} of {cfg.train.epochs} ({kept})")
    # A failure before the first last.pt removes what this attempt wrote (no half-made run is left behind); one
    # after it keeps the folder, resumable, and says which epoch last.pt holds.
    framing = framing_record(splits.train, state.device) if info.is_main else None
    if note := unaligned_note(framing, cfg.data.align):  # predict will read photos framed otherwise
        log(info, f"note: {note}")
    with run.attempt(writer=info.is_main):
        if info.is_main:  # the run's identity, written before the first step
            if not resume:
                run.write_prior(prior)
            if not resume or not run.train_faces_file.is_file():  # what eval counts as faces the run has seen
                run.write_train_faces([splits.train.origin(i) for i in range(len(splits.train))])
            run.write_config(
                cfg,
                state.model,
                aus,
                prior,
                train_frames=len(splits.train),
                test_frames=len(splits.test),
                world_size=info.world_size,
                framing=framing,
            )

        stop = (
            cfg.train.epochs
            if cfg.train.stop_after is None
            else min(cfg.train.epochs, state.epoch + cfg.train.stop_after)
        )
        # What each epoch's line scores. The line itself keeps its words (bench/bench_selection.py parses them).
        on_rows = (
            ", val F1 at the per-AU thresholds chosen on the validation rows, val AUC" if splits.val is not None else ""
        )
        if stop > state.epoch:
            log(info, f"each epoch: test avg F1 at 0.5{on_rows}")
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
        "thresholds": info.is_main and any(t != 0.5 for t in run.read_thresholds().values()),
    }


def check_same_frames(run: RunFolder, cfg: TrainConfig, frames: int) -> None:
    """A --resume on data with another number of training frames than the run was trained on (config.json's
    data.train_frames) is a UserError: --data and --lists may say where the data is now, not give other data."""
    trained = (run.read_config().get("data") or {}).get("train_frames")
    if trained is not None and trained != frames:
        raise UserError(
            f"--resume: {cfg.data.spec} gives {frames} training frames, {run.path} was trained on {trained} "
            f"({run.config_file}): resume it on the data it was trained on (--data and --lists only say where that "
            "data is now), or train a new run into another --out"
        )


# ---------------------------------------------------------------------------------------------------------- the command
def saved_run(out: str | Path, all_folds: bool = False) -> RunFolder:
    """The run whose config.json a `--resume` of `out` starts from: `out`, or with `all_folds` its first fold."""
    run = RunFolder(out)
    saved = next(iter(run.fold_runs()), None) if all_folds else run
    if saved is None or not saved.config_file.is_file():
        folds = run.fold_runs()
        if folds and not all_folds:  # a `--folds all` folder resumed without it
            raise UserError(
                f"--resume: {run.path} holds one run per fold ({', '.join(r.path.name for r in folds)}), no "
                f"{CONFIG} of its own: add --folds all to resume every fold (or give --out {folds[0].path} for one)"
            )
        if all_folds and run.config_file.is_file():  # one run resumed with --folds all
            raise UserError(
                f"--resume --folds all: {run.path} is one run (its own {CONFIG}), not a `--folds all` folder of one "
                "run per fold: resume it without --folds all"
            )
        raise UserError(f"--resume: no {CONFIG} under {run.path}; nothing to resume (train without --resume)")
    return saved


def resume_config(out: str | Path, all_folds: bool = False) -> TrainConfig:
    """The config a run was trained with: the base of `--resume`, so that repeating the original command (or adding
    --epochs) continues it. With `all_folds`, the first fold's."""
    return saved_run(out, all_folds).read_train_config()


# What a --resume may change: the length (train.epochs: the cosine schedule is stretched over the new total), where
# the data and files are now (paths that moved; the training frames are counted again, see fit), the average of the
# weights (optim.ema, taken up from then on) and how the run is carried out. Anything else would train the rest of
# the run otherwise than config.json says it was trained (the optimizer's schedule comes from last.pt, so a new
# --lr would be recorded and not used) or fail to load last.pt (another backbone).
RESUME_MAY_CHANGE = frozenset(
    {
        "train.epochs",
        *("data.spec", "data.lists", "data.align_cache", "text.cache", "model.backbone_weights"),
        "optim.ema",
        *("train.device", "train.precision", "train.channels_last", "data.num_workers", "train.eval_batch_size"),
        *("train.stop_after", "train.eval_every", "train.log_every", "train.tensorboard", "train.progress"),
        "train.find_unused_parameters",
    }
)
# The train options that set a config key, for the message (any other key is given with --set).
TRAIN_OPTIONS = {
    "model.name": "--model",
    "model.backbone": "--backbone",
    "model.pretrained": "--pretrained",
    "data.fold": "--fold",
    "train.batch_size": "--batch-size",
    "optim.lr": "--lr",
    "data.image_size": "--image-size",
}


def check_resume_changes(cfg: TrainConfig, base: TrainConfig, saved: RunFolder) -> None:
    """A UserError naming every key that a --resume gives otherwise than the run was trained with (`base`, its
    config.json), other than those in RESUME_MAY_CHANGE."""
    from hiva_core.config import valid_keys

    def value(config: TrainConfig, dotted: str) -> object:
        section, _, key = dotted.partition(".")
        return getattr(getattr(config, section), key)

    changed = [
        (key, value(cfg, key), value(base, key))
        for key in valid_keys()
        if key not in RESUME_MAY_CHANGE and value(cfg, key) != value(base, key)
    ]
    if changed:
        given = ", ".join(
            f"{TRAIN_OPTIONS[key]} {new}" if key in TRAIN_OPTIONS else f"{key}={new}" for key, new, _ in changed
        )
        trained = ", ".join(f"{key} {old}" for key, _, old in changed)
        raise UserError(
            f"--resume continues {saved.path} as it was trained ({trained}, in {saved.config_file}), not with "
            f"{given}: leave {'it' if len(changed) == 1 else 'them'} out to resume, or train a new run into another "
            "--out (on --resume only --epochs, the paths of data and files that moved, optim.ema and how the run "
            "is carried out — device, precision, workers, evaluation and logging — may change)"
        )


# The paths a resumed run reads again, with the option that gives another: (section, key, option).
SAVED_PATHS = (
    ("data", "spec", "--data SPEC"),
    ("data", "lists", "--lists DIR"),
    ("model", "backbone_weights", "--backbone-weights FILE"),
)


def check_saved_paths(cfg: TrainConfig, base: TrainConfig, saved: RunFolder) -> None:
    """A path that `--resume` took from the run's config.json (`base`; not given again on the command line) and that
    is not there: a UserError saying that it came from that config.json and which option gives another
    (RunFolder.check_saved_path)."""
    for section, key, option in SAVED_PATHS:
        value = getattr(getattr(cfg, section), key)
        if value is None or os.fspath(value) != os.fspath(getattr(getattr(base, section), key) or ""):
            continue  # given on the command line
        saved.check_saved_path(f"{section}.{key}", value, option)


def run_train(cfg: TrainConfig, out: str | Path, resume: bool = False, all_folds: bool = False) -> dict:
    """`hiva_core train`: `fit` one run into `out`, or with `all_folds` every fold into out/fold{k}/.

    One run returns fit's result. All folds return `{"folds": {"fold1": fit's result, ...}, "summary": ...}`; the
    summary (fold_summary, also written to summary.json) is None unless every fold has metrics (on rank 0).
    """
    if resume:
        saved = saved_run(out, all_folds)
        base = saved.read_train_config()
        check_resume_changes(cfg, base, saved)
        check_saved_paths(cfg, base, saved)
    if not all_folds:
        if resume:  # a finished run has nothing to resume: say how to train further, and leave it as it is
            RunFolder(out).check_unfinished(cfg.train.epochs)
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
    else:  # every fold finished: nothing to resume (a finished fold among unfinished ones just reports its metrics)
        finished = [k for k in fold_ids if (run.fold(k).saved_epoch() or 0) >= cfg.train.epochs]
        if finished == fold_ids:
            raise UserError(
                f"every fold of {run.path} already finished all {cfg.train.epochs} epochs; pass --epochs N (more than "
                f"{cfg.train.epochs}) with --resume to train further"
            )
    check_fold_labels(cfg, fold_ids)
    results = {}
    try:
        for i, k in enumerate(fold_ids):
            fold_run = run.fold(k)
            fold_resume = resume and fold_run.can_resume()
            if env_world().is_main:  # each fold's lines under a line of its own
                print(f"\nfold {k} ({i + 1} of {len(fold_ids)}): {fold_run.path}", file=sys.stderr, flush=True)
            try:
                results[f"fold{k}"] = fit(
                    replace(cfg, data=replace(cfg.data, fold=k)), fold_run.path, resume=fold_resume, fold_of=run.path
                )
            except KeyboardInterrupt:  # before this fold's first last.pt: say what the folds before it keep
                if env_world().is_main and not fold_run.can_resume() and (kept := [f"fold{j}" for j in fold_ids[:i]]):
                    print(
                        f"{run.path}: {', '.join(kept)} kept; `hiva_core train --folds all --resume --out {run.path}` "
                        f"continues from fold {k}",
                        file=sys.stderr,
                        flush=True,
                    )
                raise
        cleanup(synced=True)
    finally:
        cleanup()
    summary = None  # only for folds that all finished: a mean of unfinished folds is no result (train.stop_after)
    if all(r["metrics"] is not None and r["finished"] for r in results.values()) and env_world().is_main:
        summary = fold_summary({name: r["metrics"] for name, r in results.items()})
        run.write_summary(summary)
    return {"folds": results, "summary": summary}
