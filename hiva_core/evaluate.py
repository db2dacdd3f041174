"""Evaluation: per-AU metrics (F1 pooled at 0.5, AUC, the all-positive floor) of a model on labelled data.

`collect_probs` is the one loop over a labelled loader; `evaluate_model` (the trainer's per-epoch evaluation, an
in-memory model, DDP-aware) and `evaluate_run` (a run folder, `hiva_core eval`) both use it. "predict" is kept for
unlabelled faces in, AU probabilities out (`LoadedRun.predict`, `hiva_core predict`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from augtext.errors import UserError
from hiva_core.device import autocast, autocast_dtype
from hiva_core.distributed import DistInfo, ShardSampler, gather_rows, sync_buffers
from hiva_core.metrics import aggregate_folds, au_metrics
from hiva_core.regions import PeakRecorder, evaluate_localisation


def collect_probs(
    probs_of: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    device: torch.device,
    num_aus: int,
    info: DistInfo | None = None,
    indices: np.ndarray | None = None,
) -> dict[str, np.ndarray] | None:
    """Run `probs_of(images) -> probs (B,A)` over a loader; returns `{"probs", "labels", "mask"}` (N,A) arrays.

    Under DDP each rank sees its shard (`indices`: the shard's dataset positions, in loader order); the rows are
    gathered to rank 0 in dataset order and the other ranks get None.
    """
    info = info or DistInfo()
    probs, labels, masks = [], [], []
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True)
        probs.append(probs_of(images).float().cpu().numpy())
        labels.append(batch["labels"].numpy().astype(np.float32))
        masks.append(batch["mask"].numpy().astype(bool))
    empty = np.zeros((0, num_aus), dtype=np.float32)
    arrays = {
        "probs": np.concatenate(probs) if probs else empty,
        "labels": np.concatenate(labels) if labels else empty,
        "mask": np.concatenate(masks) if masks else empty.astype(bool),
    }
    if indices is None:
        indices = np.arange(len(arrays["probs"]))
    return gather_rows(arrays, np.asarray(indices), info)


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    loader: DataLoader,
    text: tuple,
    device: torch.device,
    aus: list[int],
    info: DistInfo,
    precision: str = "fp32",
) -> dict | None:
    """Per-AU metrics of an in-memory model on a loader (rank 0; other ranks return None). The trainer passes the
    plain model, never the DDP wrapper: ranks may hold different numbers of batches, and evaluation needs no gradient
    sync."""
    sync_buffers(model)  # BatchNorm statistics differ per rank after DDP steps: everyone evaluates rank 0's
    model.eval()
    dtype = autocast_dtype(device, precision)

    def probs_of(images: torch.Tensor) -> torch.Tensor:
        with autocast(device, dtype):
            return torch.sigmoid(model(images, *text)["logits"].float())

    sampler = loader.sampler
    indices = np.asarray(sampler.indices) if isinstance(sampler, ShardSampler) else None
    out = collect_probs(probs_of, loader, device, len(aus), info, indices)
    return au_metrics(out["probs"], out["labels"], out["mask"], aus) if out is not None else None


def evaluate_run(
    run: str | Path,
    data: str,
    lists: str | Path | None = None,
    fold: int | None = None,
    batch_size: int = 64,
    device: str | None = None,
    aus: str | Sequence[int] | None = None,
    text_cache: str | Path | None = None,
) -> dict:
    """Metrics of one run folder on the test split of `data` (the run's own fold unless `fold` is given).

    `aus` (a spec or codes): score these AUs instead of the run's own; AUs it was not trained on need an
    open-vocabulary run and their descriptions in `text_cache` (`hiva_core.vocabulary.select_aus`)."""
    from hiva_core.checkpoint import RunFolder, load_run
    from hiva_core.data import build_dataset, check_images
    from hiva_core.vocabulary import select_aus

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    run = Path(run)
    folder = RunFolder(run)
    if not folder.is_run() and folder.fold_runs():
        raise UserError(
            f"{run} holds one run per fold ({', '.join(r.path.name for r in folder.fold_runs())}); "
            f"evaluate them with --folds all, or give --run {run}/foldK"
        )
    loaded = select_aus(load_run(run, device=device), aus, text_cache)
    data_cfg = loaded.config["config"].get("data", {})
    fold = fold if fold is not None else data_cfg.get("fold")
    lists = lists if lists is not None else data_cfg.get("lists")
    dataset = build_dataset(
        data, split="test", fold=fold, lists=lists, image_size=loaded.image_size, augment=False, aus=loaded.aus
    )
    if list(dataset.aus) != loaded.aus:
        raise UserError(f"{data} gives AUs {dataset.aus} but the run {run} predicts {loaded.aus}")
    if len(dataset) == 0:
        raise UserError(f"{data} has no test frames for fold {fold}")
    check_images(dataset)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=int(data_cfg.get("num_workers") or 0),
        pin_memory=loaded.device.type == "cuda",
    )
    peaks = PeakRecorder(loaded.predict, loaded.image_size)  # probabilities for collect_probs, map peaks kept
    out = collect_probs(peaks, loader, loaded.device, len(loaded.aus))
    metrics = au_metrics(out["probs"], out["labels"], out["mask"], loaded.aus)
    localisation = evaluate_localisation(peaks, dataset, out["labels"], out["mask"], loaded.aus)
    if localisation is not None:  # the model draws maps and the data has landmarks
        metrics["localisation"] = localisation
    metrics["run"] = str(run)
    metrics["fold"] = fold
    return metrics


def run_eval(
    run: Path,
    data: str,
    lists: Path | None = None,
    fold: int | None = None,
    all_folds: bool = False,
    json_out: Path | None = None,
    batch_size: int = 64,
    aus: str | Sequence[int] | None = None,
    text_cache: Path | None = None,
) -> dict:
    """Evaluate a run (or, with all_folds, every runs/NAME/fold*/ on its own fold); write `json_out` if given.
    `aus`, `text_cache`: as evaluate_run.

    Returns evaluate_run's metrics, or aggregate_folds' summary with all_folds."""
    from augtext.io import check_output_file
    from hiva_core.checkpoint import RunFolder, write_json

    run = Path(run)
    if json_out is not None:
        check_output_file(json_out, "--json")  # before the work, not after it
    if all_folds:
        runs = RunFolder(run).fold_runs()
        if not runs:
            raise UserError(f"no fold runs (fold*/config.json) under {run}; was it trained with --folds all?")
        per_fold = {
            r.path.name: evaluate_run(r.path, data, lists, None, batch_size, aus=aus, text_cache=text_cache)
            for r in runs
        }
        result = aggregate_folds(per_fold)
    else:
        result = evaluate_run(run, data, lists, fold, batch_size, aus=aus, text_cache=text_cache)
    if json_out is not None:
        write_json(json_out, result)
    return result
