"""`hiva_core neutral`: each frame's neutral frame, what a run with `model.reference` reads it beside, for data that
has none of its own: BP4D / DISFA / GFT list files (a `*_neutral*` list written beside the path list, line for line,
which the list loader reads from then on) or a manifest (a copy with a `neutral` column).

A frame's neutral frame is the resting frame of its clip: the frames of the same subject and sequence (BP4D's
`F007/T1/`, DISFA's subject; a manifest's `subject` and `sequence` columns, else the image's folder). The resting
frame is chosen
- by the labels (default): the frame with the fewest AUs present (an unknown label counts as present), the middle
  one of a tie in list order. Right for the frames a model trains on; on the frames it is tested on, the labels
  would choose the reference from the answers: choose those by a run.
- by a run (`run`): the frame it reads as least expressive (the lowest mean AU probability), reading each face alone:
  a run without `model.reference`, or one trained with `model.reference_dropout` (`LoadedRun.reads_alone`), as
  `predict --neutral auto` picks a video's resting frame. The run reads the faces as it was trained: a run trained
  with `data.align` on raw images detects and aligns them first (`align`: ask for it or not). A frame without a face
  found cannot be chosen; a clip without any gets its middle frame (and a warning).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augtext.errors import UserError
from augtext.io import atomic_write, check_output_file
from hiva_core.data.dataset import AUDataset
from hiva_core.faces.media import is_image
from hiva_core.faces.stream import FaceStream, StageTimer, frame_total, largest_faces, largest_per_frame
from hiva_core.progress import progress_bar

CLIPS = ("sequence", "subject")


def clips(dataset: AUDataset, by: str = "sequence") -> list[list[int]]:
    """The rows of each clip, in list order: the same subject and sequence (`by` "sequence"), or every frame of a
    subject ("subject": a resting frame from another of their sequences)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(len(dataset)):
        meta = dataset.meta(i)
        groups.setdefault((meta["subject"], meta["sequence"] if by == "sequence" else ""), []).append(i)
    return list(groups.values())


def label_scores(dataset: AUDataset) -> np.ndarray:
    """How expressive each row's labels say it is: AUs present, an unknown one counted as present."""
    return np.nan_to_num(dataset.labels, nan=1.0).sum(1)


def run_scores(loaded, dataset: AUDataset, batch_size: int, progress: bool | None = None) -> np.ndarray:
    """How expressive `loaded` reads each row's face, alone: its mean AU probability."""
    from hiva_core.adapt import counted
    from hiva_core.evaluate import run_loader

    scores = []
    with progress_bar("resting frames", len(dataset), progress) as advance:
        for images in counted((batch["image"] for batch in run_loader(loaded, dataset, batch_size)), advance):
            scores.append(loaded.predict(images)["probs"].float().mean(1).numpy())
    return np.concatenate(scores)


def aligned_scores(loaded, dataset: AUDataset, batch_size: int, progress: bool | None = None) -> tuple[np.ndarray, int]:
    """`run_scores` of `dataset`'s faces detected and aligned first (data.align, the run's crop cache): per row, inf
    where no face was found; and how many such rows."""
    from hiva_core.evaluate import aligned_for

    alone = dataset.subset(range(len(dataset)))
    alone.references = None  # the rows' old neutral frames are replaced, not read
    aligned = aligned_for(loaded, alone)
    row = {dataset.origin(i): i for i in range(len(dataset))}  # a manifest or list lists each image once
    scores = np.full(len(dataset), np.inf)
    scores[[row[aligned.origin(k)] for k in range(len(aligned))]] = run_scores(loaded, aligned, batch_size, progress)
    return scores, int(np.isinf(scores).sum())


def resting_rows(groups: Sequence[Sequence[int]], scores: np.ndarray, total: int) -> np.ndarray:
    """Per row, the row of its clip's resting frame: the lowest score, the middle one of a tie."""
    chosen = np.empty(total, dtype=np.int64)
    for rows in groups:
        rows = np.asarray(rows)
        tied = rows[scores[rows] == scores[rows].min()]
        chosen[rows] = tied[len(tied) // 2]
    return chosen


def run_neutral(
    data: str,
    *,
    lists: str | os.PathLike | None = None,
    split: str = "train",
    fold: int | None = None,
    run: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    clip: str = "sequence",
    batch_size: int = 64,
    device: str | None = None,
    progress: bool | None = None,
    align: bool | None = None,
) -> dict[str, Any]:
    """Choose every frame's neutral frame and write them (module docstring); returns a summary. `align` (with
    `run`): detect and align the faces first (default: as the run was trained, its `data.align`)."""
    from hiva_core.data import build_dataset, check_images
    from hiva_core.data.lists import LIST_FORMATS, find_list_files, list_spec_name

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if clip not in CLIPS:
        raise UserError(f"--clip must be one of {', '.join(CLIPS)}, got {clip!r}")
    parts = list_spec_name(data)
    if parts is not None and out is not None:
        raise UserError(
            f"--out: {LIST_FORMATS[parts[0]].folder} list files' neutral frames are written beside the path list, "
            "where loading the list files reads them; drop --out"
        )
    if align is not None and run is None:
        raise UserError("--align/--no-align: only with --run (the labels choose without reading the images)")
    loaded = None
    if run is not None:
        from hiva_core.checkpoint import load_run

        loaded = load_run(run, device=device)
        if not loaded.reads_alone:
            raise UserError(
                f"--run {run}: it reads each face beside a neutral frame (model.reference) and cannot read one alone, "
                "which the resting frame is chosen by; use a run without model.reference or one trained with "
                "model.reference_dropout"
            )
    image_size = loaded.image_size if loaded is not None else 32
    if parts is not None:
        fmt = LIST_FORMATS[parts[0]]
        dataset = build_dataset(data, split=split, fold=fold, lists=lists, image_size=image_size, neutral=False)
        path_file, _ = find_list_files(fmt, lists, split, fold)
        target = path_file.with_name(fmt.neutral_name(split, fold or 1))
        what = str(path_file)
    else:
        from hiva_core.data.manifest import find_manifest

        source = find_manifest(data)
        if out is None:
            raise UserError(f"--out: name the manifest to write ({source} with a `neutral` column added)")
        target = Path(out)
        if target.suffix.lower() not in (".csv", ".parquet"):
            raise UserError(f"--out {target}: write the manifest as .csv or .parquet")
        dataset = build_dataset(data, split="all", image_size=image_size)
        what = str(source)
    reads = [] if parts is not None else [(source, "the manifest read")]  # a list file's neutral file is rewritten
    check_output_file(target, "--out", "manifest_neutral.csv", reads)
    groups = clips(dataset, clip)
    faceless = 0
    if loaded is not None:
        how = f"read alone by {loaded.run_dir}"
        from hiva_core.evaluate import aligns

        if aligns(loaded, align):
            scores, faceless = aligned_scores(loaded, dataset, batch_size, progress)
            how += " (faces detected and aligned)"
        else:
            check_images(dataset, progress=False)
            scores = run_scores(loaded, dataset, batch_size, progress)
    else:
        scores, how = label_scores(dataset), "by the labels (fewest AUs present)"
    chosen = resting_rows(groups, scores, len(dataset))
    names = [dataset.files[j] for j in chosen]
    if parts is not None:
        with atomic_write(target, "w") as fh:
            fh.write("".join(f"{name}\n" for name in names))
    else:
        _write_manifest(Path(what), target, names)
    rest = sorted(set(chosen.tolist()))
    return {
        "data": what,
        "out": str(target),
        "frames": len(dataset),
        "clips": len(groups),
        "clip": clip,
        "chosen": how,
        "resting_with_aus": int((scores[rest] > 0).sum()) if loaded is None else None,
        "faceless_frames": faceless,
        "faceless_clips": sum(bool(np.isinf(scores[rows]).all()) for rows in groups),
    }


def _write_manifest(source: Path, target: Path, names: list[str]) -> None:
    """`source` with its `neutral` column set to `names` (paths as its `path` column writes them), as `target`; in
    another folder, relative paths are rewritten relative to it, so that they still name the same files."""
    from hiva_core.data.manifest import read_label_manifest
    from hiva_core.predict import write_rows

    table = read_label_manifest(source)
    table["neutral"] = names
    old, new = source.parent.resolve(), target.parent.resolve()
    if old != new:
        for column in ("path", "neutral"):
            table[column] = [
                p if os.path.isabs(p) else os.path.relpath(old / p, new) for p in table[column].astype(str)
            ]
    write_rows(table, target)


def print_summary(summary: dict[str, Any]) -> None:
    line = (
        f"neutral: {summary['frames']} frames in {summary['clips']} clips (one a {summary['clip']}) of "
        f"{summary['data']}, each clip's resting frame chosen {summary['chosen']} -> {summary['out']}"
    )
    if summary["resting_with_aus"]:
        line += (
            f"\n  {summary['resting_with_aus']} clip(s) have no frame without an AU present: each is read beside its "
            "least expressive frame"
        )
    if summary.get("faceless_frames"):
        line += f"\n  {summary['faceless_frames']} frame(s) without a face found: never chosen"
    if summary.get("faceless_clips"):
        line += f"\n  warning: {summary['faceless_clips']} clip(s) without any face found: each given its middle frame"
    print(line, file=sys.stderr)


# ---------------------------------------------------------------------------------------------------- predict --neutral
AUTO_NEUTRAL = "auto"  # predict --neutral auto: each clip's own resting frame


def clip_of(path: Path, kind: str, frames: bool) -> str | None:
    """The clip a source belongs to for `--neutral auto`: a video is one; with `frames` the images of a folder are
    one (its path); a photo otherwise none."""
    if kind == "video":
        return str(path)
    return str(path.parent) if frames else None


def resting_frames(
    loaded,
    sources: Sequence[tuple[Path, str]],
    transform,
    stream: Callable[..., FaceStream],
    batch_size: int,
    progress,
    frames: bool = False,
    every: int = 1,
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """`predict --neutral auto`: the resting frame of each clip — a video, or with `frames` the images of one folder —
    for a run that reads faces alone too (`LoadedRun.reads_alone`, model.reference_dropout). A first pass reads the
    largest face of every frame alone; the frame whose face the run finds least expressive (the lowest mean AU
    probability) is the clip's resting frame. Returns, per source of a clip, its resting face as the model reads it
    (3, H, W), and per clip where it is (a video's frame and time, a folder's image; the mean probability). A clip
    with fewer than two frames with a face, and photos (no other frame of the person), are read alone. `every`: the
    `stream` reads every N-th frame of a video (predict --every), for the progress bar's total."""
    if not loaded.reference:
        raise UserError(
            f"--neutral auto: the run {loaded.run_dir} reads one face at a time (trained without model.reference); "
            "drop --neutral"
        )
    if not loaded.reads_alone:
        raise UserError(
            f"--neutral auto: the run {loaded.run_dir} cannot read a face without its neutral frame, which the "
            "resting frame is chosen by; train with --set model.reference_dropout=0.3, or give --neutral IMAGE"
        )
    clip = {str(path): clip_of(path, kind, frames) for path, kind in sources}
    clipped = [(path, kind) for path, kind in sources if clip[str(path)] is not None]
    best: dict[str, tuple[float, torch.Tensor, dict[str, Any]]] = {}
    seen: dict[str, int] = {}  # frames with a face per clip
    pending: list[tuple[dict[str, Any], torch.Tensor]] = []

    def score() -> None:
        if not pending:
            return
        probs = loaded.predict(torch.stack([t for _, t in pending]))["probs"].float().mean(1).tolist()
        for (row, tensor), p in zip(pending, probs, strict=True):
            key = clip[row["source"]]
            seen[key] = seen.get(key, 0) + 1
            if key not in best or p < best[key][0]:
                best[key] = (p, tensor, row)
        pending.clear()

    with progress_bar("resting frames", frame_total(clipped, every), progress) as advance:
        for row, crop in largest_per_frame(stream(clipped, on_frames=advance, device=loaded.device)):
            pending.append((row, transform(crop)))
            if len(pending) >= batch_size:
                score()
        score()
    chosen = {key: found for key, found in best.items() if seen[key] > 1}
    where = {}
    for key, (p, _, row) in chosen.items():  # a video's frame, or a folder's image
        at = (
            {"frame": int(row["frame"]), "time_s": float(row["time_s"])}
            if row["source"] == key
            else {"image": row["source"]}
        )
        where[key] = {**at, "mean_prob": round(p, 4)}
    rest = {source: chosen[key][1] for source, key in clip.items() if key in chosen}
    return rest, where


def neutral_tensor(
    loaded, neutral: str | os.PathLike | None, transform, timer: StageTimer, *, detect: bool, min_face: float
) -> torch.Tensor | None:
    """The `--neutral` image's face as the model reads it (3, H, W), for a run trained with `model.reference`; None
    without --neutral where the run reads faces alone (`LoadedRun.reads_alone`). A run that cannot and no
    --neutral, --neutral for a run without `reference`, or no face found: UserError."""
    reads = loaded.reference
    if neutral is None:
        if not loaded.reads_alone:
            raise UserError(
                f"the run {loaded.run_dir} reads each face beside a neutral frame of the same person "
                "(model.reference): give --neutral IMAGE, a photo of the person at rest, near the faces' pose "
                "(a run trained with model.reference_dropout also reads faces alone)"
            )
        return None
    if not reads:
        raise UserError(
            f"--neutral {neutral}: the run {loaded.run_dir} reads one face at a time (trained without "
            "model.reference); drop --neutral"
        )
    path = Path(neutral)
    if not path.is_file() or not is_image(path):
        raise UserError(f"--neutral {path}: not an image file (.jpg, .png, ...)")
    stream = FaceStream([(path, "image")], timer, detect=detect, batch_size=1, min_face=min_face, device=loaded.device)
    crops = largest_faces(stream, lambda row: UserError(f"--neutral {path}: cannot read the image ({row['error']})"))
    if not crops:
        raise UserError(f"--neutral {path}: no face found (at --min-face {min_face:g} px)")
    return transform(crops[str(path)])
