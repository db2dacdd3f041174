"""`hiva_core predict`: faces in, AUs out.

Inputs are image files, folders of images (and videos; not recursive) or video files. Every image / video frame is
searched for faces (MTCNN, `hiva_core.faces.detect`), each face is aligned to the 256-px template
(`hiva_core.faces.align`, the same crop `hiva_core prepare` makes for training), transformed as at evaluation (resize +
centre crop, ImageNet normalisation) and run through the model in batches.

One row per face: source, kind (image/video), frame index and time (video; 0 and empty for images), face index
(left to right), status, box, detector score, the share of the face inside the image (`face_in_image`), the eye
distance in the image in pixels (`eye_px`: how many pixels the face has), per AU the
probability (`AU12_prob`) and the 0/1 label at the AU's threshold (`AU12`): the run's per-AU thresholds
(thresholds.json, chosen on validation rows at training; 0.5 for an AU without one), or one `threshold` for every
AU. A frame without a face gives one row with status `no_face`; a file that cannot be read gives one row with status
`unreadable` and the reason in `error`. Neither is fatal: the summary counts them, and the command fails (exit status
2) only when not a single input could be read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import torch
from PIL import Image

from augtext.errors import UserError
from augtext.facs import au_label
from augtext.io import check_output_dir, check_output_file
from hiva_core.faces.stream import (
    FaceStream,
    Sources,
    StageTimer,
    check_every,
    check_min_face,
    collect_inputs,
    frame_total,
)
from hiva_core.heatmaps import HeatmapFolder
from hiva_core.neutral import AUTO_NEUTRAL, neutral_tensor, resting_frames
from hiva_core.progress import progress_bar

OUT_SUFFIXES = (".csv", ".parquet", ".json")


@dataclass
class PredictResult:
    """What run_predict returns: the rows (also written to --out), a summary, seconds spent per stage (StageTimer)
    and the run's AUs."""

    rows: pd.DataFrame
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    aus: list[int] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)  # per AU of `aus`: what the 0/1 columns used


# ----------------------------------------------------------------------------------------------------------- the engine
class _Batcher:
    """Collects face crops, runs the model `batch_size` at a time and fills the rows' AU columns."""

    def __init__(
        self,
        loaded,
        transform,
        batch_size: int,
        thresholds,
        heatmaps: HeatmapFolder | None,
        timer: StageTimer,
        neutral: torch.Tensor | dict[str, torch.Tensor] | None = None,
        alone_thresholds: Sequence[float] | None = None,
    ):
        self.loaded, self.transform, self.batch_size, self.thresholds = loaded, transform, batch_size, thresholds
        self.heatmaps, self.timer, self.neutral = heatmaps, timer, neutral
        self.alone_thresholds = alone_thresholds  # a reference run's faces without a neutral frame (--neutral auto)
        self.pending: list[tuple[dict[str, Any], torch.Tensor]] = []
        self.stems: dict[Path, str] = {}  # heatmap file stem of each source

    def add(self, row: dict[str, Any], crop: Image.Image) -> None:
        """Queue a face; beside its neutral frame (--neutral: one for all, or each video's own resting frame)."""
        rest = self.neutral.get(row["source"]) if isinstance(self.neutral, dict) else self.neutral
        with self.timer.stage("align"):
            tensor = self.transform(crop)
            if rest is not None:  # a model with model.reference: the face, then the person's neutral frame
                tensor = torch.cat([tensor, rest])
            self.pending.append((row, tensor))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Score the queued faces: those beside a neutral frame and those read alone in batches of their own."""
        pending, self.pending = self.pending, []
        for channels in sorted({tensor.shape[0] for _, tensor in pending}):
            self._score([item for item in pending if item[1].shape[0] == channels])

    def _score(self, pending: list[tuple[dict[str, Any], torch.Tensor]]) -> None:
        rows, tensors = zip(*pending, strict=True)
        images = torch.stack(tensors)
        with self.timer.stage("model"):
            out = self.loaded.predict(images)
        probs = out["probs"].float().numpy()
        alone = self.alone_thresholds is not None and images.shape[1] == 3
        limits = self.alone_thresholds if alone else self.thresholds
        for row, p in zip(rows, probs, strict=True):
            for au, value, threshold in zip(self.loaded.aus, p, limits, strict=True):
                row[f"{au_label(au)}_prob"] = float(value)
                row[au_label(au)] = int(value >= threshold)
        if self.heatmaps is not None and out.get("maps") is not None:
            with self.timer.stage("heatmaps"):
                self._draw(rows, images[:, :3], out["maps"], probs, limits)

    def _draw(self, rows, images: torch.Tensor, maps: torch.Tensor, probs: np.ndarray, limits) -> None:
        """One PNG per face, each AU captioned with the call its row gets (the same probability and threshold)."""
        from hiva_core.data.transforms import denormalize
        from hiva_core.heatmaps import save_heatmap_grid

        crops = (denormalize(images).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for row, crop, m, p in zip(rows, crops, maps, probs, strict=True):
            name = self._name(row)
            save_heatmap_grid(self.heatmaps.file(name), crop, m, self.loaded.aus, p, thresholds=limits)
            row["heatmap"] = str(self.heatmaps.final(name))

    def _name(self, row: dict[str, Any]) -> str:
        """`<stem>_<ext>[_f<frame>]_face<k>.png`: gray.jpg's first face is gray_jpg_face0.png, gray.png's
        gray_png_face0.png (sources that differ in their suffix only), frame 12 of astro.mp4's
        astro_mp4_f000012_face0.png; a second source of the same name (in another folder) gets `<stem>_<ext>_2`."""
        source = Path(row["source"])
        stem = self.stems.get(source)
        if stem is None:
            base = f"{source.stem}_{source.suffix[1:]}" if source.suffix else source.name
            stem, n = base, 2
            while stem in self.stems.values():
                stem, n = f"{base}_{n}", n + 1
            self.stems[source] = stem
        frame = f"_f{row['frame']:06d}" if row["kind"] == "video" else ""
        return f"{stem}{frame}_face{row['face']}.png"


def run_predict(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    run,
    out: str | os.PathLike | None = None,
    heatmaps: str | os.PathLike | None = None,
    batch_size: int = 16,
    threshold: float | str | os.PathLike | None = None,
    detect: bool = True,
    *,
    device: str | torch.device | None = None,
    min_face: float = 20.0,
    progress: bool | None = None,
    quiet: bool = True,
    aus: str | Sequence[int] | None = None,
    text_cache: str | os.PathLike | None = None,
    flip: bool = False,
    neutral: str | os.PathLike | None = None,
    frames: bool = False,
    every: int = 1,
) -> PredictResult:
    """Detect, align and score every face in `inputs` (paths of images, videos or folders; one path alone is one
    input; images in memory are a TypeError: aligned crops go to `LoadedRun.predict`) with the model of run folder
    `run` (or a LoadedRun).

    `threshold`: one for every AU instead of the run's per-AU thresholds (0.5 restores the plain rule), or a
    thresholds file (`hiva_core eval --save-thresholds`) whose per-AU thresholds replace the run's.
    `out`: .csv / .parquet / .json (a list of row objects) written atomically. `heatmaps`: a folder for one PNG grid
    of per-AU attention overlays per face. `detect=False`: every input is already an aligned face crop. `min_face`:
    smallest face searched for, in pixels. `aus` (a spec or codes) and `text_cache`: score these AUs instead of the
    run's own (`hiva_core.vocabulary.select_aus`: AUs it was not trained on need an open-vocabulary run and their
    descriptions in `text_cache`). `flip`: each face's probabilities and maps averaged with its mirror image's
    (`LoadedRun.flip`). `neutral`: an image of the same person at rest, near the faces' pose, which a run trained
    with `model.reference` reads every face beside (found and aligned like the inputs; the largest face), or "auto"
    (`resting_frames`: each clip's own). `frames`: with "auto", the images of one folder are the frames of one clip
    (one person, one recording), not photos read alone. `every`: of a video, only every N-th frame (its rows keep
    their frame indices; a long clip read 10x faster at `every=10`). Returns
    the rows, a summary and stage timings; prints nothing but the progress bar
    (`hiva_core.views` shows the rows and the summary; `quiet` is accepted for old callers and has no effect).
    """
    timer = StageTimer()
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    from hiva_core.checkpoint import LoadedRun, load_run
    from hiva_core.thresholds import threshold_number

    threshold_number(threshold)  # a number outside [0, 1] fails before any work
    check_every(every)
    if detect:
        check_min_face(min_face)
    out = Path(out) if out is not None else None
    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise UserError(f"--out {out}: unknown format {out.suffix!r}; use one of {', '.join(OUT_SUFFIXES)}")
    if out is not None:
        from hiva_core.run_folder import RunFolder

        folder = run.run_dir if isinstance(run, LoadedRun) else Path(run)
        check_output_file(out, "--out", "aus.csv", RunFolder(folder).own_files())
    if heatmaps is not None:
        check_output_dir(heatmaps, "--heatmaps")
    sources = collect_inputs(inputs)
    auto = neutral is not None and os.fspath(neutral) == AUTO_NEUTRAL
    if frames and not auto:
        raise UserError(
            "--frames says a folder's images are the frames of one clip, whose resting frame --neutral auto chooses: "
            "give --neutral auto too"
        )

    from hiva_core.data.transforms import build_transforms
    from hiva_core.vocabulary import select_aus

    loaded = select_aus(run if isinstance(run, LoadedRun) else load_run(run, device=device), aus, text_cache)
    loaded = dataclasses.replace(loaded, flip=flip)
    thresholds, threshold_text = loaded.au_thresholds(threshold)
    alone = loaded.au_thresholds(threshold, alone=True) if loaded.reference else None  # faces read alone
    if detect:
        from hiva_core.faces.detect import get_detector

        get_detector(loaded.device)  # a missing detector package fails here, before any work
        from hiva_core.data.aligned import unaligned_note
        from hiva_core.evaluate import aligns

        if note := unaligned_note((loaded.config.get("data") or {}).get("framing"), aligns(loaded, None)):
            print(f"warning: {note}; predict aligns every face to the template: its scores may be off", file=sys.stderr)
    transform = build_transforms(loaded.image_size, augment=False)
    stream = partial(FaceStream, timer=timer, detect=detect, batch_size=batch_size, min_face=min_face, every=every)
    resting: dict[str, dict[str, Any]] = {}
    if auto:
        rest, resting = resting_frames(loaded, sources, transform, stream, batch_size, progress, frames, every)
    else:
        rest = neutral_tensor(loaded, neutral, transform, timer, detect=detect, min_face=min_face)
    if rest is None and alone is not None:  # every face read alone
        (thresholds, threshold_text), alone = alone, None
    heat = _heatmap_folder(loaded, heatmaps)
    try:  # the heatmaps are staged: a failure or Ctrl-C leaves neither PNGs nor a half-filled folder behind
        batcher = _Batcher(
            loaded, transform, batch_size, thresholds, heat, timer, rest, None if alone is None else alone[0]
        )
        rows: list[dict[str, Any]] = []
        with progress_bar("predict", frame_total(sources, every), progress) as advance:
            for face in stream(sources, device=loaded.device, on_frames=advance):
                rows.append(face.row)
                if face.crop is not None:
                    batcher.add(face.row, face.crop)
            batcher.flush()

        table = _frame(rows, loaded.aus)
        summary = _summary(table, sources, loaded)
        summary["thresholds"] = {"source": threshold_text, **dict(zip(summary["aus"], thresholds, strict=True))}
        summary["weak_aus"] = weak_aus(loaded)
        if auto:  # every clip's resting frame; faces of no clip read alone, at their own thresholds
            summary["resting_frames"] = resting
            summary["thresholds_alone"] = {"source": alone[1], **dict(zip(summary["aus"], alone[0], strict=True))}
        if summary["frames_read"] == 0:
            failed = "; ".join(f"{e['source']} ({e['error']})" for e in summary["unreadable"][:5])
            raise UserError(f"none of the {len(sources)} input(s) could be read: {failed}")
        with timer.stage("write"):
            if heat is not None:
                heat.commit()
            if out is not None:
                write_rows(table, out)
    except BaseException:
        if heat is not None:
            heat.discard()
        raise
    if heat is not None:
        heat.finish()
    return PredictResult(
        rows=table, summary=summary, timings=timer.totals(), aus=list(loaded.aus), thresholds=thresholds
    )


def _heatmap_folder(loaded, heatmaps: str | os.PathLike | None) -> HeatmapFolder | None:
    """The heatmap folder, staged (`HeatmapFolder`), after checking that the model has DDCA maps to draw."""
    if heatmaps is None:
        return None
    probe = loaded.predict(torch.zeros(1, loaded.channels, loaded.image_size, loaded.image_size))
    if probe.get("maps") is None:
        raise UserError(
            f"the model of {loaded.run_dir} ({loaded.config.get('model_name', '?')}) has no DDCA "
            "attention maps to draw; drop --heatmaps or use a run of a model with DDCA"
        )
    return HeatmapFolder(heatmaps)


# --------------------------------------------------------------------------------------------------------------- output
_FACE_FLOATS = ("score", "x1", "y1", "x2", "y2", "face_in_image", "eye_px")  # a found face's float columns


def _frame(rows: list[dict[str, Any]], aus: Sequence[int]) -> pd.DataFrame:
    """Rows -> DataFrame with a fixed column order and nullable integer columns (empty where not applicable)."""
    labels = [au_label(a) for a in aus]
    probs = [f"{lab}_prob" for lab in labels]
    head = ["source", "kind", "frame", "time_s", "face", "status", "error"]
    columns = [*head, *_FACE_FLOATS, *probs, *labels, "heatmap"]
    table = pd.DataFrame(rows, columns=columns)
    table["frame"] = table["frame"].astype("Int64")
    table["face"] = table["face"].astype("Int64")
    for lab in labels:
        table[lab] = table[lab].astype("Int8")
    for col in ("time_s", *_FACE_FLOATS, *probs):
        table[col] = table[col].astype("float64")
    for col in ("error", "heatmap"):
        table[col] = table[col].fillna("").astype(str)
    return table


def write_rows(table: pd.DataFrame, out: Path) -> None:
    """CSV / Parquet / JSON (list of objects, null for empty) by suffix, atomically."""
    from augtext.io import atomic_path, atomic_write

    suffix = out.suffix.lower()
    if suffix == ".csv":
        with atomic_write(out, "w") as fh:
            write_csv(table, fh)
    elif suffix == ".parquet":
        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
    else:
        records = json.loads(table.to_json(orient="records"))  # NaN and <NA> as null; then plain "/" (not "\/")
        with atomic_write(out, "w") as fh:
            json.dump(records, fh, indent=1, ensure_ascii=False)
            fh.write("\n")


def write_csv(table: pd.DataFrame, fh: TextIO) -> None:
    """The rows as CSV (`--out FILE.csv`, and the command's output when stdout is not a terminal)."""
    table.to_csv(fh, index=False, lineterminator="\n", float_format="%.6g")


PARTIAL_BELOW = 0.9  # a face with less of itself inside the image (face_in_image) is named as cut off by the frame
SMALL_EYE_PX = 25.0
"""A face whose eyes are less than this many pixels apart in the image (its box about 55 px wide) is named as small.
On real photos shrunk step by step (bench/bench_small_faces.py), two runs' AU probabilities move from the full-size
photo's about 0.01 while the face keeps its pixels, and about 3 times as far (0.027-0.038) at 22 px: the drift follows
the face's pixels more than how far a run enlarges it (a 224-px run enlarges a 22-px face 3.5 times, a 112-px run 1.7
times, and both drift alike)."""
WEAK_AUC = 0.7  # validation AUC below which an AU's labels are little better than chance ("poor" discrimination)


def weak_aus(loaded) -> dict[str, float]:
    """{"AU15": 0.65, ...}: the run's AUs whose validation AUC (thresholds.json, the kept epoch's) is below WEAK_AUC,
    whose 0/1 labels a reader should not take at face value; {} for a run without validation rows."""
    from hiva_core.run_folder import RunFolder

    auc = RunFolder(loaded.run_dir).read_val_auc()
    return {au_label(a): auc[a] for a in loaded.aus if a in auc and auc[a] < WEAK_AUC}


def _summary(table: pd.DataFrame, sources: Sources, loaded) -> dict[str, Any]:
    status = table["status"]
    first = table.drop_duplicates(["source", "frame"])
    unreadable = table[status == "unreadable"]
    no_face = table[status == "no_face"]
    return {
        "run": str(loaded.run_dir),
        "aus": [au_label(a) for a in loaded.aus],
        "unseen_aus": {au_label(a): how for a, how in loaded.unseen.items()},  # not trained on: what scored each
        "flip": loaded.flip,
        "images": sum(kind == "image" for _, kind in sources),
        "videos": sum(kind == "video" for _, kind in sources),
        "frames_read": int((first["status"] != "unreadable").sum()),
        "faces": int((status == "ok").sum()),
        "frames_without_face": int(len(no_face)),
        "no_face": [{"source": r.source, "frame": int(r.frame)} for r in no_face.itertuples()],
        "unreadable": [{"source": r.source, "error": r.error} for r in unreadable.itertuples()],
        "skipped": [str(p) for p in sources.skipped],  # in the folders given: other files, hidden ones, subfolders
        "partial_faces": [
            {
                "source": r.source,
                "kind": r.kind,
                "frame": int(r.frame),
                "face": int(r.face),
                "face_in_image": r.face_in_image,
            }
            for r in table[(status == "ok") & (table["face_in_image"] < PARTIAL_BELOW)].itertuples()
        ],
        "small_below_px": SMALL_EYE_PX,
        "small_faces": [
            {"source": r.source, "kind": r.kind, "frame": int(r.frame), "face": int(r.face), "eye_px": r.eye_px}
            for r in table[(status == "ok") & (table["eye_px"] < SMALL_EYE_PX)].itertuples()
        ],
    }
