"""`hiva_core predict`: faces in, AUs out.

Inputs are image files, folders of images (and videos; not recursive) or video files. Every image / video frame is
searched for faces (MTCNN, `hiva_core.faces.detect`), each face is aligned to the 256-px template
(`hiva_core.faces.align`, the same crop `hiva_core prepare` makes for training), transformed as at evaluation (resize +
centre crop, ImageNet normalisation) and run through the model in batches.

One row per face: source, kind (image/video), frame index and time (video; 0 and empty for images), face index
(left to right), status, box, detector score, per AU the probability (`AU12_prob`) and the 0/1 label at the AU's
threshold (`AU12`): the run's per-AU thresholds (thresholds.json, chosen on validation rows at training; 0.5 for an AU
without one), or one `threshold` for every AU. A frame without a face gives one row with status `no_face`; a file
that cannot be read gives one row with status `unreadable` and the reason in `error`. Neither is fatal: the summary
counts them, and the command fails (exit status 2) only when not a single input could be read.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import torch
from PIL import Image

from augtext.errors import UserError
from augtext.facs import au_label
from augtext.io import check_output_dir, check_output_file
from hiva_core.faces.align import DEFAULT_SIZE, align
from hiva_core.faces.media import is_image, is_video, iter_video, read_image, video_frame_count
from hiva_core.progress import progress_bar

OUT_SUFFIXES = (".csv", ".parquet", ".json")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # https://..., ftp:/...; not C:/ (one letter)
STAGES = ("read", "detect", "align", "model", "heatmaps", "write")


@dataclass
class Frame:
    """One decoded image or video frame (or the reason it could not be decoded)."""

    source: Path
    kind: str  # "image" | "video"
    index: int
    time: float | None
    image: np.ndarray | None = None
    error: str | None = None


@dataclass
class PredictResult:
    """What run_predict returns: the rows (also written to --out), a summary, seconds spent per stage (StageTimer)
    and the run's AUs."""

    rows: pd.DataFrame
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    aus: list[int] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)  # per AU of `aus`: what the 0/1 columns used


# ------------------------------------------------------------------------------------------------------------ inputs
def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """(path, "image" | "video") for every input: files as given, folders expanded to their images and videos (sorted,
    not recursive, hidden files skipped). A path that does not exist, or a folder with nothing to read, is a
    UserError; a file that exists but is not an image is reported later, when it fails to decode."""
    if not inputs:
        raise UserError("predict needs at least one image, folder or video")
    sources: list[tuple[Path, str]] = []
    for raw in inputs:
        path = Path(raw)
        if _URL.match(os.fspath(raw)):  # Path has already folded "https://" into "https:/"
            raise UserError(f"input {raw}: a URL; predict reads local files only: download it, then give its path")
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and (is_image(p) or is_video(p))
            )
            if not found:
                raise UserError(f"folder {path} holds no images or videos (looked for .jpg, .png, .mp4, .avi, ...)")
            sources.extend((p, "video" if is_video(p) else "image") for p in found)
        elif path.is_file():
            sources.append((path, "video" if is_video(path) else "image"))
        elif path.exists():
            raise UserError(f"input {path} is neither a file nor a folder (a device, a pipe?); give images or videos")
        else:
            raise UserError(f"input not found: {path}")
    return sources


def check_min_face(min_face: float) -> None:
    """--min-face must be a positive number of pixels: the detector finds nothing at 0, below or NaN, and every frame
    would come out as no_face."""
    if not 0 < min_face < math.inf:
        raise UserError(f"--min-face must be a positive number of pixels (e.g. 20), got {min_face}")


def frame_total(sources: Sequence[tuple[Path, str]]) -> int:
    """How many frames `sources` hold (a video whose length is unknown counts 0): a progress bar's total."""
    return sum(1 if kind == "image" else (video_frame_count(p) or 0) for p, kind in sources)


def iter_frames(sources: Iterable[tuple[Path, str]]) -> Iterator[Frame]:
    """Decode every source into frames; a failure becomes a Frame with `error` (and ends that video)."""
    for path, kind in sources:
        if kind == "image":
            try:
                yield Frame(path, kind, 0, None, image=read_image(path))
            except Exception as exc:  # noqa: BLE001 - PIL raises many types for a bad file; all mean "unreadable"
                yield Frame(path, kind, 0, None, error=_reason(exc))
            continue
        index = -1
        try:
            for index, t, image in iter_video(path):
                yield Frame(path, kind, index, t, image=image)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - same for the decoder
            yield Frame(path, kind, index + 1, None, error=_reason(exc))
        else:
            if index < 0:
                yield Frame(path, kind, 0, None, error="no decodable video frame")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------------------------------------------- the engine
class StageTimer:
    """Seconds spent per stage (STAGES), summed over a run: `with timer.stage("detect"): ...`."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def totals(self) -> dict[str, float]:
        """Every stage's seconds, and `total`: the whole run so far."""
        return {**self.seconds, "total": time.perf_counter() - self.started}


@dataclass
class Face:
    """One result row: a face with its aligned crop, or a frame without a face / an unreadable file (crop None)."""

    row: dict[str, Any]
    crop: Image.Image | None = None


class FaceStream:
    """Inputs in, faces out, in input order: frames are decoded and searched for faces (MTCNN) `batch_size` at a time,
    and each face is aligned to the training template. With `detect=False` every frame is taken as an aligned face.
    `on_frames(n)` hears how many frames each batch held (a progress bar)."""

    def __init__(
        self,
        sources: Iterable[tuple[Path, str]],
        timer: StageTimer,
        *,
        detect: bool = True,
        batch_size: int = 16,
        min_face: float = 20.0,
        device: torch.device | None = None,
        on_frames: Callable[[int], None] = lambda n: None,
    ):
        self.sources, self.timer, self.detect = sources, timer, detect
        self.batch_size, self.min_face, self.device, self.on_frames = batch_size, min_face, device, on_frames

    def __iter__(self) -> Iterator[Face]:
        frames = iter_frames(self.sources)
        while True:
            with self.timer.stage("read"):
                chunk = list(islice(frames, self.batch_size))
            if not chunk:
                return
            found = self._detect([f for f in chunk if f.image is not None])
            for frame in chunk:
                yield from self._faces(frame, found.get(id(frame)))
            self.on_frames(len(chunk))

    def _detect(self, frames: list[Frame]) -> dict[int, list]:
        """Faces per readable frame (by id), one detector call for the whole batch."""
        if not (self.detect and frames):
            return {}
        from hiva_core.faces.detect import detect_faces_batch

        with self.timer.stage("detect"):
            found = detect_faces_batch([f.image for f in frames], min_size=self.min_face, device=self.device)
        return {id(f): faces for f, faces in zip(frames, found, strict=True)}

    def _faces(self, frame: Frame, faces: list | None) -> Iterator[Face]:
        base = _base_row(frame)
        if frame.image is None:
            yield Face({**base, "face": None, "status": "unreadable", "error": frame.error})
        elif not self.detect:
            h, w = frame.image.shape[:2]
            yield Face(
                {**base, "face": 0, "status": "ok", "x1": 0.0, "y1": 0.0, "x2": float(w), "y2": float(h)},
                Image.fromarray(frame.image),
            )
        elif not faces:
            yield Face({**base, "face": None, "status": "no_face"})
        else:
            for k, face in enumerate(faces):
                with self.timer.stage("align"):
                    crop, _ = align(frame.image, face.landmarks, size=DEFAULT_SIZE)
                x1, y1, x2, y2 = face.box
                yield Face(
                    {**base, "face": k, "status": "ok", "score": face.score, "x1": x1, "y1": y1, "x2": x2, "y2": y2},
                    Image.fromarray(crop),
                )


class _Batcher:
    """Collects face crops, runs the model `batch_size` at a time and fills the rows' AU columns."""

    def __init__(
        self,
        loaded,
        transform,
        batch_size: int,
        thresholds,
        heatmaps: Path | None,
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
                self._draw(rows, images[:, :3], out["maps"], probs)

    def _draw(self, rows, images: torch.Tensor, maps: torch.Tensor, probs: np.ndarray) -> None:
        from hiva_core.data.transforms import denormalize
        from hiva_core.heatmaps import save_heatmap_grid

        crops = (denormalize(images).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for row, crop, m, p in zip(rows, crops, maps, probs, strict=True):
            path = self.heatmaps / self._name(row)
            save_heatmap_grid(path, crop, m, self.loaded.aus, p)
            row["heatmap"] = str(path)

    def _name(self, row: dict[str, Any]) -> str:
        """`<stem>[_f<frame>]_face<k>.png`; a second source with the same stem gets `<stem>_2`, ..."""
        source = Path(row["source"])
        stem = self.stems.get(source)
        if stem is None:
            stem, n = source.stem, 2
            while stem in self.stems.values():
                stem, n = f"{source.stem}_{n}", n + 1
            self.stems[source] = stem
        frame = f"_f{row['frame']:06d}" if row["kind"] == "video" else ""
        return f"{stem}{frame}_face{row['face']}.png"


def _base_row(frame: Frame) -> dict[str, Any]:
    return {
        "source": str(frame.source),
        "kind": frame.kind,
        "frame": frame.index,
        "time_s": frame.time if frame.time is not None else np.nan,
    }


def run_predict(
    inputs: Sequence[str | os.PathLike],
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
) -> PredictResult:
    """Detect, align and score every face in `inputs` with the model of run folder `run` (or a LoadedRun).

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
    (one person, one recording), not photos read alone. Returns
    the rows, a summary and stage timings; prints nothing but the progress bar
    (`hiva_core.views` shows the rows and the summary; `quiet` is accepted for old callers and has no effect).
    """
    timer = StageTimer()
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    from hiva_core.checkpoint import LoadedRun, load_run, threshold_number

    threshold_number(threshold)  # a number outside [0, 1] fails before any work
    if detect:
        check_min_face(min_face)
    out = Path(out) if out is not None else None
    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise UserError(f"--out {out}: unknown format {out.suffix!r}; use one of {', '.join(OUT_SUFFIXES)}")
    if out is not None:
        check_output_file(out, "--out")
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
    transform = build_transforms(loaded.image_size, augment=False)
    stream = partial(FaceStream, timer=timer, detect=detect, batch_size=batch_size, min_face=min_face)
    resting: dict[str, dict[str, Any]] = {}
    if auto:
        rest, resting = resting_frames(loaded, sources, transform, stream, batch_size, progress, frames)
    else:
        rest = neutral_tensor(loaded, neutral, transform, timer, detect=detect, min_face=min_face)
    heat_dir = _heatmap_dir(loaded, heatmaps)
    if rest is None and alone is not None:  # every face read alone
        (thresholds, threshold_text), alone = alone, None
    batcher = _Batcher(
        loaded, transform, batch_size, thresholds, heat_dir, timer, rest, None if alone is None else alone[0]
    )
    rows: list[dict[str, Any]] = []
    with progress_bar("predict", frame_total(sources), progress) as advance:
        for face in stream(sources, device=loaded.device, on_frames=advance):
            rows.append(face.row)
            if face.crop is not None:
                batcher.add(face.row, face.crop)
        batcher.flush()

    table = _frame(rows, loaded.aus)
    summary = _summary(table, sources, loaded)
    summary["thresholds"] = {"source": threshold_text, **dict(zip(summary["aus"], thresholds, strict=True))}
    if auto:  # every clip's resting frame; faces of no clip read alone, at their own thresholds
        summary["resting_frames"] = resting
        summary["thresholds_alone"] = {"source": alone[1], **dict(zip(summary["aus"], alone[0], strict=True))}
    if summary["frames_read"] == 0:
        failed = "; ".join(f"{e['source']} ({e['error']})" for e in summary["unreadable"][:5])
        raise UserError(f"none of the {len(sources)} input(s) could be read: {failed}")
    if out is not None:
        with timer.stage("write"):
            write_rows(table, out)
    return PredictResult(
        rows=table, summary=summary, timings=timer.totals(), aus=list(loaded.aus), thresholds=thresholds
    )


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
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """`predict --neutral auto`: the resting frame of each clip — a video, or with `frames` the images of one folder —
    for a run that reads faces alone too (`LoadedRun.reads_alone`, model.reference_dropout). A first pass reads the
    largest face of every frame alone; the frame whose face the run finds least expressive (the lowest mean AU
    probability) is the clip's resting frame. Returns, per source of a clip, its resting face as the model reads it
    (3, H, W), and per clip where it is (a video's frame and time, a folder's image; the mean probability). A clip
    with fewer than two frames with a face, and photos (no other frame of the person), are read alone."""
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

    with progress_bar("resting frames", frame_total(clipped), progress) as advance:
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


def largest_per_frame(faces: Iterable[Face]) -> Iterator[tuple[dict[str, Any], Image.Image]]:
    """The row and crop of the largest face (box area) of each frame of a FaceStream (a frame's faces come
    together), frames without one skipped."""
    frame, largest = None, None
    for face in faces:
        key = (face.row["source"], face.row["frame"])
        if key != frame:
            if largest is not None:
                yield largest[1:]
            frame, largest = key, None
        if face.crop is not None:
            row = face.row
            area = (row["x2"] - row["x1"]) * (row["y2"] - row["y1"])
            if largest is None or area > largest[0]:
                largest = (area, row, face.crop)
    if largest is not None:
        yield largest[1:]


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


def largest_faces(faces: Iterable[Face], unreadable: Callable[[dict[str, Any]], Exception]) -> dict[str, Image.Image]:
    """The aligned crop of the largest face (box area) of each image that has one, from a FaceStream of images; an
    unreadable one raises `unreadable(row)`. The pick of `data.align` and of `predict --neutral`, as `prepare` picks."""

    def readable() -> Iterator[Face]:
        for face in faces:
            if face.row["status"] == "unreadable":
                raise unreadable(face.row)
            yield face

    return {row["source"]: crop for row, crop in largest_per_frame(readable())}


def _heatmap_dir(loaded, heatmaps: str | os.PathLike | None) -> Path | None:
    """The heatmap folder, created, after checking that the model has DDCA maps to draw."""
    if heatmaps is None:
        return None
    probe = loaded.predict(torch.zeros(1, loaded.channels, loaded.image_size, loaded.image_size))
    if probe.get("maps") is None:
        raise UserError(
            f"the model of {loaded.run_dir} ({loaded.config.get('model_name', '?')}) has no DDCA "
            "attention maps to draw; drop --heatmaps or use a run of a model with DDCA"
        )
    Path(heatmaps).mkdir(parents=True, exist_ok=True)
    return Path(heatmaps)


# ----------------------------------------------------------------------------------------------------------- output
def _frame(rows: list[dict[str, Any]], aus: Sequence[int]) -> pd.DataFrame:
    """Rows -> DataFrame with a fixed column order and nullable integer columns (empty where not applicable)."""
    labels = [au_label(a) for a in aus]
    columns = [
        "source",
        "kind",
        "frame",
        "time_s",
        "face",
        "status",
        "error",
        "score",
        "x1",
        "y1",
        "x2",
        "y2",
        *[f"{lab}_prob" for lab in labels],
        *labels,
        "heatmap",
    ]
    table = pd.DataFrame(rows, columns=columns)
    table["frame"] = table["frame"].astype("Int64")
    table["face"] = table["face"].astype("Int64")
    for lab in labels:
        table[lab] = table[lab].astype("Int8")
    for col in ("time_s", "score", "x1", "y1", "x2", "y2", *[f"{lab}_prob" for lab in labels]):
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
        with atomic_write(out, "w") as fh:
            fh.write(table.to_json(orient="records", indent=1))
            fh.write("\n")


def write_csv(table: pd.DataFrame, fh: TextIO) -> None:
    """The rows as CSV (`--out FILE.csv`, and the command's output when stdout is not a terminal)."""
    table.to_csv(fh, index=False, lineterminator="\n", float_format="%.6g")


def _summary(table: pd.DataFrame, sources: list[tuple[Path, str]], loaded) -> dict[str, Any]:
    status = table["status"]
    first = table.drop_duplicates(["source", "frame"])
    unreadable = table[status == "unreadable"]
    no_face = table[status == "no_face"]
    return {
        "run": str(loaded.run_dir),
        "aus": [au_label(a) for a in loaded.aus],
        "flip": loaded.flip,
        "images": sum(kind == "image" for _, kind in sources),
        "videos": sum(kind == "video" for _, kind in sources),
        "frames_read": int((first["status"] != "unreadable").sum()),
        "faces": int((status == "ok").sum()),
        "frames_without_face": int(len(no_face)),
        "no_face": [{"source": r.source, "frame": int(r.frame)} for r in no_face.itertuples()],
        "unreadable": [{"source": r.source, "error": r.error} for r in unreadable.itertuples()],
    }
