"""Evaluation: per-AU metrics (F1 pooled at the run's per-AU thresholds and at 0.5, AUC, the all-positive floor) of a
model on labelled data.

`collect_probs` is the one loop over a labelled loader; `evaluate_model` (the trainer's per-epoch evaluation, an
in-memory model, DDP-aware) and `evaluate_run` (a run folder, `hiva_core eval`) both use it. "predict" is kept for
unlabelled faces in, AU probabilities out (`LoadedRun.predict`, `hiva_core predict`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from augtext.errors import UserError
from augtext.facs import au_label
from hiva_core.device import autocast, autocast_dtype
from hiva_core.distributed import DistInfo, ShardSampler, gather_rows, sync_buffers
from hiva_core.metrics import (
    MIN_THRESHOLD_FRAMES,
    aggregate_folds,
    au_metrics,
    choose_thresholds,
    class_counts,
    threshold_gains,
    too_few_to_choose,
)
from hiva_core.regions import PeakRecorder, evaluate_localisation, pool_localisation

if TYPE_CHECKING:
    from hiva_core.checkpoint import LoadedRun


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
def model_probs(
    model: torch.nn.Module,
    loader: DataLoader,
    text: tuple,
    device: torch.device,
    num_aus: int,
    info: DistInfo,
    precision: str = "fp32",
    channels: int | None = None,
) -> dict[str, np.ndarray] | None:
    """`collect_probs` of an in-memory model (rank 0; other ranks return None). The trainer passes the plain model,
    never the DDP wrapper: ranks may hold different numbers of batches, and evaluation needs no gradient sync.
    `channels`: the images' first channels only (3: a face without its neutral frame)."""
    sync_buffers(model)  # BatchNorm statistics differ per rank after DDP steps: everyone evaluates rank 0's
    model.eval()
    dtype = autocast_dtype(device, precision)

    def probs_of(images: torch.Tensor) -> torch.Tensor:
        with autocast(device, dtype):
            return torch.sigmoid(model(images[:, :channels], *text)["logits"].float())

    sampler = loader.sampler
    indices = np.asarray(sampler.indices) if isinstance(sampler, ShardSampler) else None
    return collect_probs(probs_of, loader, device, num_aus, info, indices)


def evaluate_model(
    model: torch.nn.Module,
    loader: DataLoader,
    text: tuple,
    device: torch.device,
    aus: list[int],
    info: DistInfo,
    precision: str = "fp32",
) -> dict | None:
    """Per-AU metrics (at 0.5) of an in-memory model on a loader (rank 0; other ranks return None)."""
    out = model_probs(model, loader, text, device, len(aus), info, precision)
    return au_metrics(out["probs"], out["labels"], out["mask"], aus) if out is not None else None


def val_thresholds(
    model: torch.nn.Module,
    loader: DataLoader | None,
    text: tuple,
    device: torch.device,
    aus: list[int],
    info: DistInfo,
    how: str,
) -> dict | None:
    """Per-AU thresholds that maximise F1 on the validation rows, as thresholds.json records them (rank 0; None on
    other ranks and without validation rows); a model that also reads faces alone (`model.reference_dropout`) gets
    an `alone` record too, chosen on the same rows read without their neutral frames."""
    if loader is None:
        return None
    val = model_probs(model, loader, text, device, len(aus), info)
    subjects = loader.dataset.subjects()
    record = None if val is None else threshold_record(val, aus, how, subjects)
    if getattr(model, "no_reference", None) is not None:  # model.reference_dropout: faces read alone too
        alone = model_probs(model, loader, text, device, len(aus), info, channels=3)
        if record is not None:
            record["alone"] = threshold_record(alone, aus, f"{how}, each face read without its neutral frame", subjects)
    return record


def threshold_record(out: dict, aus: list[int], how: str, groups: Sequence | None = None) -> dict:
    """Per-AU thresholds that maximise F1 on the rows of `out` (collect_probs' probs, labels, mask), as a thresholds
    file records them: the thresholds, `how` the rows were chosen, their number, the F1 there at the thresholds and
    at 0.5, and the AUC there (train.select=val_auc chooses the kept epoch by its average). An AU keeps 0.5 when it
    has fewer than MIN_THRESHOLD_FRAMES positive or negative rows, or when choosing does not pay on rows it was not
    chosen on (metrics.threshold_gains, halves of the rows' `groups`, their subjects): `kept_05` names it with why
    ({} when none), `gain` holds every AU's out-of-sample F1 gain."""
    probs, labels, mask = out["probs"], out["labels"], out["mask"]
    chosen = choose_thresholds(probs, labels, mask, aus, min_each=MIN_THRESHOLD_FRAMES)
    gains = threshold_gains(probs, labels, mask, aus, groups, min_each=MIN_THRESHOLD_FRAMES)
    counts = class_counts(labels, mask, aus)
    few = too_few_to_choose(counts)
    kept = {
        name: f"{pos} positive and {neg} negative frames; choosing needs {MIN_THRESHOLD_FRAMES} of each"
        for name, (pos, neg) in few.items()
    }
    for name, gain in gains.items():
        if name in few or gain > 0:
            continue
        chosen[name] = 0.5
        pos, neg = counts[name]
        kept[name] = (
            f"{pos} positive and {neg} negative frames, too few to check a threshold chosen on half of them against "
            f"the other half (each half needs {MIN_THRESHOLD_FRAMES} of each)"
            if math.isnan(gain)
            else f"a threshold chosen on half of these frames scored {100 * gain:+.1f} F1 against 0.5 on the other "
            "half: choosing does not pay here"
        )
    at = au_metrics(probs, labels, mask, aus, threshold=list(chosen.values()))
    return {
        "thresholds": chosen,
        "validation": how,
        "frames": int(len(probs)),
        "kept_05": kept,
        "gain": gains,  # NaN (null in the file) where it could not be checked
        "val_f1": {name: row["f1"] for name, row in at["per_au"].items()} | {"avg": at["avg"]["f1"]},
        "val_f1_at_05": {name: row.get("f1_at_05", row["f1"]) for name, row in at["per_au"].items()}
        | {"avg": at["avg"].get("f1_at_05", at["avg"]["f1"])},
        "val_auc": {name: row["auc"] for name, row in at["per_au"].items()} | {"avg": at["avg"]["auc"]},
    }


def evaluate_run(
    run: str | Path | LoadedRun,
    data: str,
    lists: str | Path | None = None,
    fold: int | None = None,
    batch_size: int = 64,
    device: str | None = None,
    aus: str | Sequence[int] | None = None,
    text_cache: str | Path | None = None,
    threshold: float | str | Path | None = None,
    align: bool | None = None,
    save_thresholds: str | Path | None = None,
    flip: bool = False,
    per_face: str | Path | None = None,
) -> dict:
    """Metrics of one run (its folder, or a run `hiva_core.load` gave) on the test split of `data`
    (`hiva_core.data.splits.eval_selection`: `fold`, else the run's own fold when the data has folds, else the data's
    test split, else every row; `rows` says which). F1, AUC and the other scores are fractions (0.291), which the
    printed tables show as percentages (29.1).

    `aus` (a spec or codes): score these AUs instead of the run's own; AUs it was not trained on need an
    open-vocabulary run and their descriptions in `text_cache` (`hiva_core.vocabulary.select_aus`).
    `threshold`: one for every AU instead of the run's stored per-AU thresholds, or a thresholds file whose
    per-AU thresholds replace them (F1 at 0.5 is reported beside any other threshold). `align`: detect and align the
    faces first (`data.align`; default: as the run was trained). `save_thresholds`: also choose per AU the threshold
    that maximises F1 on these rows (a labelled sample of the domain the run will predict on) and write them there,
    as a thresholds file that `--threshold FILE` reads (the run's own thresholds.json when it names that). `flip`:
    each face's probabilities averaged with its mirror image's (`LoadedRun.flip`). `per_face`: also write every
    scored face's probabilities, calls and labels there (`face_table`; .csv, .parquet or .json)."""
    import warnings

    from hiva_core.checkpoint import LoadedRun, load_run
    from hiva_core.run_folder import TRAIN_FACES, RunFolder
    from hiva_core.vocabulary import select_aus

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    given = run if isinstance(run, LoadedRun) else None
    run = Path(given.run_dir if given is not None else run)
    folder = RunFolder(run)
    if not folder.is_run() and folder.fold_runs():
        raise UserError(
            f"{run} holds one run per fold ({', '.join(r.path.name for r in folder.fold_runs())}); "
            f"evaluate them with --folds all, or give --run {run}/foldK"
        )
    loaded = given if given is not None else load_run(run, device=device)
    loaded = dataclasses.replace(select_aus(loaded, aus, text_cache), flip=flip or loaded.flip)
    loaded.au_thresholds(threshold)  # a bad --threshold fails before any work
    check_fold_exists(data, lists, fold)
    trained_on = check_trained_rows(loaded, data, fold, choosing=save_thresholds is not None)
    dataset, rows = run_dataset(loaded, data, fold, lists, align)
    thresholds, threshold_text = loaded.au_thresholds(threshold, alone=loaded.reference and not dataset.paired)
    loader = run_loader(loaded, dataset, batch_size)
    peaks = PeakRecorder(loaded.predict, loaded.image_size)  # probabilities for collect_probs, map peaks kept
    out = collect_probs(peaks, loader, loaded.device, len(loaded.aus))
    metrics = au_metrics(out["probs"], out["labels"], out["mask"], loaded.aus, threshold=thresholds)
    localisation = evaluate_localisation(peaks, dataset, out["labels"], out["mask"], loaded.aus)
    if localisation is not None:  # the model draws maps and the data has landmarks
        metrics["localisation"] = localisation
    metrics["run"] = str(run)
    metrics["data"] = str(data)
    metrics["fold"] = rows.fold
    seen = folder.count_trained_faces([dataset.origin(i) for i in range(len(dataset))])
    if trained_on:
        rows_text = "; rows the run trained on: a training score, not a test F1"
    elif seen:  # another manifest of the same images, a copy of the training one, data without folds
        rows_text = f"; {seen} of these {len(dataset)} faces are training faces of the run: a training score there"
        warnings.warn(
            f"{seen} of the {len(dataset)} faces scored are among {run}'s training faces ({TRAIN_FACES}): their F1 "
            "is a training score, not a test one",
            UserWarning,
            stacklevel=2,
        )
    else:
        rows_text = ""
    metrics["rows"] = rows.text + rows_text
    metrics["trained_rows"] = trained_on or bool(seen)
    metrics["trained_faces"] = seen
    metrics["no_face"] = rows.no_face
    metrics["thresholds"] = threshold_text
    metrics["flip"] = loaded.flip
    if loaded.unseen:  # AUs the run was not trained on: what scored each
        metrics["unseen_aus"] = {au_label(a): how for a, how in loaded.unseen.items()}
    if save_thresholds is not None:
        from hiva_core.thresholds import write_thresholds

        how = f"hiva_core eval of {run} on {data} ({rows.text})"
        record = threshold_record(out, loaded.aus, how, dataset.subjects())
        write_thresholds(save_thresholds, record)
        metrics["saved_thresholds"] = {"path": str(save_thresholds), **record}
    if per_face is not None:
        from hiva_core.predict import write_rows

        write_rows(face_table(dataset, out, loaded.aus, thresholds), Path(per_face))
        metrics["per_face"] = str(per_face)
    return metrics


def data_folds(data: str, lists) -> list[int]:
    """The folds `--folds all` would train on `data` (train_data.discover_folds); [] for data without folds."""
    from hiva_core.train_data import discover_folds

    try:
        return discover_folds(str(data), None if lists is None else str(lists))
    except UserError:
        return []


def check_fold_exists(data: str, lists, fold: int | None) -> None:
    """`eval --fold K` of data whose folds are known (list files: 1-3; a manifest's fold column) and hold no K: a
    UserError naming its folds (data without folds is said so where its rows are chosen)."""
    folds = data_folds(data, lists) if fold is not None else []
    if folds and fold not in folds:
        raise UserError(f"--fold {fold}: {data} has no fold {fold}; its folds: {', '.join(map(str, folds))}")


def check_trained_rows(loaded, data: str, fold: int | None, choosing: bool = False) -> bool:
    """`eval --fold K` of the data the run was trained on, K not the fold it held out (splits.trained_fold): its rows
    were trained on. Scoring them is refused (a UserError naming the run's fold and the run to use instead): their F1
    would pass for a test score. `choosing` (--save-thresholds: the rows choose thresholds) only warns: thresholds
    chosen on faces the run has seen fit its overconfident probabilities there; True then (the table's header says
    its F1 is a training score), False for rows the run did not train on."""
    import warnings

    from hiva_core.data.splits import trained_fold

    data_cfg = loaded.config["config"].get("data", {})
    held = trained_fold(data, fold, data_cfg.get("spec"), data_cfg.get("fold"))
    if held is None:
        return False
    run = Path(loaded.run_dir)
    default = "" if data_cfg.get("fold") is not None else ", the default: it was trained without --fold"
    what = (
        f"{run} was trained with fold {held} held out ({run / 'config.json'}: data.fold {held}{default}); fold "
        f"{fold}'s test rows are among its training rows"
    )
    if choosing:
        warnings.warn(
            f"{what}: thresholds chosen on them fit faces the run has seen; choose them on rows it was not trained on "
            f"(fold {held}'s, or another sample of the domain)",
            UserWarning,
            stacklevel=2,
        )
        return True
    other = f"--run {run.parent / f'fold{fold}'}" if run.name == f"fold{held}" else f"a run trained with --fold {fold}"
    raise UserError(
        f"{what}, so their F1 would be a training score: evaluate it on fold {held} (leave --fold out), or evaluate "
        f"the run that held out fold {fold} ({other})"
    )


def face_table(dataset, out: dict, aus: Sequence[int], thresholds: Sequence[float]) -> pd.DataFrame:
    """One row per scored face, in the dataset's order: `path` (the image as the manifest or list file names it,
    character for character, so that it joins to the user's own table of the same images; for aligned data the
    original, not its crop), `subject`, `sequence`, `frame`, `file` (the file that was read: `path` joined to the
    manifest's folder or the image root), and per AU `AU<n>_prob`, `AU<n>` (the call at the threshold used: 1 at or
    above it, as `hiva_core predict` writes it) and `AU<n>_label` (1, 0, or empty where the label is unknown).
    `out`: collect_probs' arrays for these rows."""
    from augtext.facs import au_label

    metas = [dataset.meta(i) for i in range(len(dataset))]
    table = pd.DataFrame(
        {
            "path": [named_path(dataset, i) for i in range(len(dataset))],
            **{key: [m[key] for m in metas] for key in ("subject", "sequence", "frame")},
            "file": [dataset.origin(i) for i in range(len(dataset))],
        }
    )
    calls = out["probs"] >= np.asarray(thresholds, dtype=np.float64)
    for j, code in enumerate(aus):
        label = au_label(code)
        table[f"{label}_prob"] = out["probs"][:, j].astype(np.float64)
        table[label] = pd.array(calls[:, j].astype(np.int8), dtype="Int8")
        known = out["mask"][:, j]
        table[f"{label}_label"] = pd.array(np.where(known, out["labels"][:, j], np.nan)).astype("Int8")
    return table


def named_path(dataset, index: int) -> str:
    """Row `index`'s image as its source (a manifest's `path` column, a list file's line) names it: not joined to the
    manifest's folder, so `../imgs/a.jpg` stays `../imgs/a.jpg`; for a row whose image was replaced by its aligned
    crop, the photo's (`AUDataset.origin`, the source's own spelling, which is joined to the same root)."""
    origin = dataset.origin(index)
    if origin == dataset.path(index):  # the row's own file
        return str(dataset.files[index])
    prefix = os.path.join(dataset.root, "") if dataset.root else ""
    return origin[len(prefix) :] if prefix and origin.startswith(prefix) else origin


def run_dataset(loaded, data: str, fold: int | None, lists, align: bool | None, labels: bool = True) -> tuple:
    """The rows of `data` that `hiva_core eval` scores for a loaded run, as a dataset at the run's image size (no
    augmentation), aligned when asked or as the run was trained (`data.align`), images checked; and the Selection
    that says which rows (`hiva_core.data.splits.eval_selection`); `hiva_core adapt --data` takes the same rows with
    `labels=False`: whatever AUs the data labels (adapting reads no label)."""
    from hiva_core.data import build_dataset, check_images
    from hiva_core.data.dataset import MissingAUs
    from hiva_core.data.splits import check_split_subjects, eval_selection, list_format, same_data

    data_cfg = loaded.config["config"].get("data", {})
    rows = eval_selection(data, fold, data_cfg.get("fold"))
    if lists is None and data_cfg.get("lists") is not None and list_format(data) is not None:
        lists = data_cfg["lists"]
        if not os.path.isdir(lists):
            raise UserError(
                f"list folder not found: {lists} (data.lists of {Path(loaded.run_dir) / 'config.json'}, as the run "
                "was trained; a relative path is relative to the folder it was trained in): give --lists DIR"
            )
    if labels and same_data(data, data_cfg.get("spec")):  # the test F1 of a run trained on these lists
        check_split_subjects(data, lists, rows.fold, need_train=False)
    try:
        dataset = build_dataset(
            data,
            split=rows.split,
            fold=rows.fold,
            lists=lists,
            image_size=loaded.image_size,
            augment=False,
            aus=loaded.aus if labels else None,
            labels=labels,
        )
    except MissingAUs as exc:  # the run's AUs the data lacks: say how to score the ones it has
        hint = (
            f"score those it labels with --aus {','.join(map(str, exc.common))}"
            if exc.common
            else "it labels none of them"
        )
        raise UserError(f"{exc} (the run predicts {', '.join(f'AU{a}' for a in loaded.aus)}): {hint}") from None
    if labels and list(dataset.aus) != loaded.aus:
        raise UserError(f"{data} gives AUs {dataset.aus} but the run {loaded.run_dir} predicts {loaded.aus}")
    if len(dataset) == 0:
        raise UserError(f"{data} has no frames in the rows chosen ({rows.text})")
    reframed = align is None and not aligns(loaded, None) and unframed(loaded, dataset)
    if reframed:  # the header says it, beside the scores
        rows = dataclasses.replace(rows, text=f"{rows.text}; faces detected and aligned first: framed unlike the run's")
    if aligns(loaded, align) or reframed:
        before = len(dataset)
        dataset = aligned_for(loaded, dataset)
        if len(dataset) < before:  # said in the header and the JSON, not only in a warning
            dropped = before - len(dataset)
            text = f"{rows.text}; {dropped} of its {before} frames left out: no face found"
            rows = dataclasses.replace(rows, text=text, no_face=dropped)
    if loaded.reference and not (loaded.reads_alone and dataset.references is None):
        dataset.pair_references()  # each face beside its neutral frame (data without them: read alone, if it can)
    check_images(dataset)
    return dataset, rows


def aligns(loaded, align: bool | None) -> bool:
    """Whether a run's data is detected and aligned first (`eval`, `adapt --data`, `neutral --run`): `align`
    (--align/--no-align) when given, else as the run was trained (`data.align`)."""
    return bool(loaded.config["config"].get("data", {}).get("align", False)) if align is None else align


def unframed(loaded, dataset) -> bool:
    """Whether `eval` (or `adapt --data`), not told --align/--no-align, aligns data a run was not trained to align:
    the run's training faces were framed as the template (config.json's data.framing: SynthAU, `prepare` crops) and
    these are not (raw renders, photos), so aligning frames them as the run saw its faces. It says so in one line.
    Beside a run without the record, faces not framed as the template get a warning and are scored as they are; a
    run trained on unaligned faces (raw frames) reads any faces as they are (`train` said so), as do faces the sample
    finds none in."""
    from hiva_core.data.aligned import Framing, measure_framing

    recorded = (loaded.config.get("data") or {}).get("framing")
    ours = Framing(**recorded) if recorded else None
    if ours is not None and not ours.framed:
        return False
    theirs = measure_framing([dataset.path(i) for i in range(len(dataset))], device=loaded.device)
    if theirs is None or theirs.framed:  # no face found, or no detector installed: nothing to align with
        return False
    if ours is not None:
        print(
            f"{dataset.source}: {theirs.describe()}, not framed as the run's training faces: each face is detected "
            "and aligned first, as predict does (--no-align scores the images as they are)",
            file=sys.stderr,
        )
        return True
    print(
        f"warning: {dataset.source}: {theirs.describe()}, not framed as hiva_core's template; scored as they are "
        "(the run has no record of its training faces' framing): --align detects and aligns them, what a run "
        "trained on aligned faces (SynthAU, prepare) expects",
        file=sys.stderr,
    )
    return False


def aligned_for(loaded, dataset):
    """`dataset` detected and aligned for a run (`data.align`, in the run's crop cache `data.align_cache`), the rows
    without a face left out."""
    from hiva_core.data.aligned import align_dataset

    cache = loaded.config["config"].get("data", {}).get("align_cache")
    return align_dataset(dataset, cache, device=loaded.device, split="chosen")


def run_loader(loaded, dataset, batch_size: int) -> DataLoader:
    """A loader over `dataset` in order, with the run's loader workers, at most one per CPU this process may use (a
    run trained with 16 workers on a server is evaluated on a laptop; the order and the scores do not depend on it)."""
    workers = int(loaded.config["config"].get("data", {}).get("num_workers") or 0)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=min(workers, cpus),
        pin_memory=loaded.device.type == "cuda",
    )


def run_eval(
    run: Path,
    data: str | None = None,
    lists: Path | None = None,
    fold: int | None = None,
    all_folds: bool = False,
    json_out: Path | None = None,
    batch_size: int = 64,
    aus: str | Sequence[int] | None = None,
    text_cache: Path | None = None,
    threshold: float | str | Path | None = None,
    align: bool | None = None,
    save_thresholds: Path | None = None,
    flip: bool = False,
    per_face: Path | None = None,
) -> dict:
    """Evaluate a run (or, with all_folds, every runs/NAME/fold*/ on its own fold); write `json_out` if given.
    `data` None: the data the run was trained on (`trained_data`). `aus`, `text_cache`, `threshold`, `align`,
    `flip`, `save_thresholds` and `per_face` (one run only): as evaluate_run.

    Returns evaluate_run's metrics, or with all_folds fold_summary's summary under folds_header's fields (what
    the table is of: run, data, rows, frames, thresholds)."""
    from augtext.io import check_output_file
    from hiva_core.data.splits import data_files
    from hiva_core.run_folder import RunFolder
    from hiva_core.serialize import write_json

    run = Path(run)
    if data is None:
        data, lists = trained_data(run, all_folds, lists)
    reads = [*RunFolder(run).own_files(), *data_files(data, lists)]  # no output is written over them
    if json_out is not None:
        check_output_file(json_out, "--json", "eval.json", reads)  # before the work, not after it
    if save_thresholds is not None:
        if all_folds:
            raise UserError("--save-thresholds takes one run: give --run RUN/foldK instead of --folds all")
        own = RunFolder(run).thresholds_file  # the run's own thresholds.json: replaced when asked (see above)
        check_output_file(save_thresholds, "--save-thresholds", "thresholds.json", [r for r in reads if r[0] != own])
    if per_face is not None:
        from hiva_core.predict import OUT_SUFFIXES

        if all_folds:
            raise UserError("--per-face takes one run: give --run RUN/foldK instead of --folds all")
        check_output_file(per_face, "--per-face", "faces.csv", reads)
        if per_face.suffix.lower() not in OUT_SUFFIXES:
            raise UserError(f"--per-face {per_face}: unknown format {per_face.suffix!r}; use {', '.join(OUT_SUFFIXES)}")
    options = {"aus": aus, "text_cache": text_cache, "threshold": threshold, "align": align, "flip": flip}
    if all_folds:
        runs = RunFolder(run).fold_runs()
        if not runs:
            raise UserError(f"no fold runs (fold*/config.json) under {run}; was it trained with --folds all?")
        per_fold = {r.path.name: evaluate_run(r.path, data, lists, None, batch_size, **options) for r in runs}
        result = {**folds_header(run, data, per_fold, flip), **fold_summary(per_fold)}
        missing = missing_folds(data, lists, per_fold)
        result["missing_folds"] = missing
        if missing:  # a mean of fewer folds than the data has is not the protocol's figure: said where it is read
            import warnings

            gone = ", ".join(map(str, missing))
            result["rows"] += f"; not fold {gone} (no run under {run}): a mean of {len(per_fold)} folds, not all"
            warnings.warn(
                f"{run} has no run for fold {gone} of {data}: the mean covers {len(per_fold)} of its folds, not the "
                "3-fold figure (train the missing fold with --folds all --resume, or --fold K --out "
                f"{Path(run) / 'foldK'})",
                UserWarning,
                stacklevel=2,
            )
        if all(m.get("localisation") for m in per_fold.values()):
            result["mean"]["localisation"] = pool_localisation([m["localisation"] for m in per_fold.values()])
    else:
        result = evaluate_run(
            run, data, lists, fold, batch_size, save_thresholds=save_thresholds, per_face=per_face, **options
        )
    if json_out is not None:
        write_json(json_out, result)
    return result


def missing_folds(data: str, lists, per_fold: Mapping[str, Mapping]) -> list[int]:
    """The data's folds (`--folds all` would train) that no fold run scored; [] when the data has no folds."""
    scored = {m["fold"] for m in per_fold.values()}
    return [k for k in data_folds(data, lists) if k not in scored]


def trained_data(run: Path, all_folds: bool, lists: Path | None) -> tuple[str, Path | None]:
    """The data a run was trained on, from its config.json (a `--folds all` folder's: its first fold's): the spec,
    and the list folder unless `lists` gives another. What `eval` scores without --data: the run's own test split."""
    from hiva_core.checkpoint import check_not_fold_parent
    from hiva_core.run_folder import RunFolder

    folder = RunFolder(run)
    if not all_folds:
        check_not_fold_parent(folder, also="evaluate them with --folds all, or ")
    saved = next(iter(folder.fold_runs()), folder) if all_folds else folder
    if not saved.config_file.is_file():
        raise UserError(
            f"--run {run}: no config.json there, so no data to evaluate; give a run trained by `hiva_core "
            "train` (and --data for other faces than its own)"
        )
    cfg = saved.read_train_config()
    if cfg.data.spec is None:
        raise UserError(f"{saved.config_file} names no data; give --data")
    saved.check_saved_path("data.spec", cfg.data.spec, "--data SPEC")  # moved since training: say where from
    if lists is None:
        saved.check_saved_path("data.lists", cfg.data.lists, "--lists DIR")
    return cfg.data.spec, lists if lists is not None else cfg.data.lists


def _mean_defined(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else float("nan")


def fold_summary(per_fold: Mapping[str, Mapping]) -> dict:
    """The mean over folds of `--folds all` (train's summary.json, `eval --folds all`): aggregate_folds' `folds` and
    per-AU means, with `mean.avg` the paper's Avg: each AU's F1 per fold, averaged over the folds where the AU is
    labelled (`mean.per_au`), then over the AUs — the mean of the "F1 mean" column, as ME-GraphAU and MDHR report
    BP4D/DISFA. `mean.avg_of_folds` is the mean of the folds' own averages: the same number unless an AU has no known
    label in some fold (that fold averages fewer AUs), and then not the figure to report."""
    summary = aggregate_folds(per_fold)
    mean = summary["mean"]
    mean["avg_of_folds"] = mean["avg"]
    mean["avg"] = {key: _mean_defined([row[key] for row in mean["per_au"].values()]) for key in mean["avg"]}
    return summary


def folds_header(run: str | Path, data: str, per_fold: Mapping[str, Mapping], flip: bool) -> dict:
    """What an `eval --folds all` table is of, as evaluate_run's metrics say it for one run: `run`, `data`, `rows`
    (the folds, each scored by its own run), `n` (frames in all), `thresholds` (where they come from: said once when
    every fold's are alike, else per fold) and `flip`."""
    texts = {name: m["thresholds"] for name, m in per_fold.items()}
    if len(set(texts.values())) == 1:
        thresholds = f"every fold at {next(iter(texts.values()))}"
    else:
        thresholds = "; ".join(f"{name} at {text}" for name, text in texts.items())
    folds = ", ".join(str(m["fold"]) if m["fold"] is not None else m["rows"] for m in per_fold.values())
    return {
        "run": str(run),
        "data": str(data),
        "rows": f"folds {folds}, each scored by the run that held it out",
        "n": int(sum(m["n"] for m in per_fold.values())),
        "thresholds": thresholds,
        "flip": flip,
    }
