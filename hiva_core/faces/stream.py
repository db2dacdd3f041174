"""Inputs in, faces out: image files, folders and videos decoded into frames, each frame searched for faces (MTCNN,
`hiva_core.faces.detect`) and each face aligned to the training template (`hiva_core.faces.align`), in input order.
`predict`, `eval --align` / `data.align` and `adapt --align` all read faces through `FaceStream`, so they find and
frame faces alike.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from augtext.errors import UserError
from hiva_core.faces.align import DEFAULT_SIZE, EYE_DISTANCE, align, eye_distance_px, face_in_image
from hiva_core.faces.media import (
    TruncatedVideo,
    is_animated,
    is_image,
    is_video,
    iter_video,
    read_image,
    video_frame_count,
)

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # https://..., ftp:/...; not C:/ (one letter)
_URL_SLASHES = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")  # what a Path leaves of "https://"


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


# --------------------------------------------------------------------------------------------------------------- inputs
class Sources(list):
    """`collect_inputs`' list of (path, "image" | "video"), and `skipped`: the files and subfolders of the folders
    given that are not read (other suffixes, hidden files, subfolders: folders are not searched recursively)."""

    def __init__(self, items: Iterable[tuple[Path, str]] = (), skipped: Iterable[Path] = ()):
        super().__init__(items)
        self.skipped: list[Path] = list(skipped)


def collect_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> Sources:
    """(path, "image" | "video") for every input: files as given, folders expanded to their images and videos (sorted,
    not recursive, hidden files skipped; what is skipped is in `Sources.skipped`). One path alone is one input. An
    animated image (GIF, APNG, WebP of more than one frame) is a video. A path that does not exist, or a folder with
    nothing to read, is a UserError; a file that exists but is not an image is reported later, when it fails to
    decode. Anything but paths (an image in memory) is a TypeError."""
    if isinstance(inputs, (str, os.PathLike)) or not isinstance(inputs, Iterable) or hasattr(inputs, "shape"):
        inputs = [inputs]  # one path; an image in memory (PIL, an array) is refused below, by what it is
    if not inputs:
        raise UserError("predict needs at least one image, folder or video")
    sources = Sources()
    for raw in inputs:
        if not isinstance(raw, (str, os.PathLike)):
            raise TypeError(
                f"the inputs are paths of images, videos or folders (str or Path), got {_kind(raw)}: save it to a "
                "file first, or give aligned face crops in memory to LoadedRun.predict (hiva_core.load(RUN).predict)"
            )
        path, text = Path(raw), os.fspath(raw)
        if _URL.match(text):
            shown = text if isinstance(raw, str) else _URL_SLASHES.sub(r"\1://", text, count=1)  # Path folded "//"
            raise UserError(f"input {shown}: a URL; predict reads local files only: download it, then give its path")
        if path.is_dir():
            found, skipped = _scan(path)
            if not found:
                raise UserError(
                    f"folder {path} holds no images or videos (looked for .jpg, .png, .mp4, .avi, ...; not in "
                    f"subfolders){_skipped_text(skipped)}"
                )
            sources.extend((p, _kind_of(p)) for p in found)
            sources.skipped.extend(skipped)
        elif path.is_file():
            sources.append((path, _kind_of(path)))
        elif path.exists():
            raise UserError(f"input {path} is neither a file nor a folder (a device, a pipe?); give images or videos")
        else:
            raise UserError(f"input not found: {path}")
    return sources


def _scan(folder: Path) -> tuple[list[Path], list[Path]]:
    """A folder's images and videos, and the rest of what it holds (skipped), both sorted."""
    found, skipped = [], []
    for p in sorted(folder.iterdir()):
        readable = p.is_file() and not p.name.startswith(".") and (is_image(p) or is_video(p))
        (found if readable else skipped).append(p)
    return found, skipped


def _skipped_text(skipped: Sequence[Path]) -> str:
    """'; it holds 2 other file(s) or folder(s): notes.txt, sub/' (up to five names), or ''."""
    if not skipped:
        return ""
    names = [p.name + ("/" if p.is_dir() else "") for p in skipped[:5]]
    more = ", ..." if len(skipped) > 5 else ""
    return f"; it holds {len(skipped)} other file(s) or folder(s): {', '.join(names)}{more}"


def _kind_of(path: Path) -> str:
    return "video" if is_video(path) or is_animated(path) else "image"


def _kind(value: Any) -> str:
    """What a value is, for an error message: its type (a PIL Image, an ndarray of shape (H, W, 3))."""
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def check_min_face(min_face: float) -> None:
    """--min-face must be a positive number of pixels: the detector finds nothing at 0, below or NaN, and every frame
    would come out as no_face."""
    if not 0 < min_face < math.inf:
        raise UserError(f"--min-face must be a positive number of pixels (e.g. 20), got {min_face}")


def frame_total(sources: Sequence[tuple[Path, str]], every: int = 1) -> int:
    """How many frames `sources` hold, of a video every `every`-th (a video whose length is unknown counts 0): a
    progress bar's total."""
    return sum(1 if kind == "image" else -(-(video_frame_count(p) or 0) // every) for p, kind in sources)


def check_every(every: int) -> None:
    """--every must be a whole number of frames, at least 1 (every frame)."""
    if every < 1:
        raise UserError(f"--every must be at least 1 (1: every frame of a video, 10: every tenth), got {every}")


def iter_frames(sources: Iterable[tuple[Path, str]], every: int = 1) -> Iterator[Frame]:
    """Decode every source into frames, of a video only every `every`-th (frames 0, every, 2 x every, ...: their
    indices kept); a failure becomes a Frame with `error` (and ends that video)."""
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
                if index % every == 0:
                    yield Frame(path, kind, index, t, image=image)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - same for the decoder
            yield Frame(path, kind, index + 1, None, error=_video_reason(exc, index + 1))
        else:
            if index < 0:
                yield Frame(path, kind, 0, None, error="no decodable video frame")


def _video_reason(exc: BaseException, decoded: int) -> str:
    """Why a video stopped: FFmpeg's errors name its internals (`avcodec_receive_frame()`), so say what they mean."""
    if isinstance(exc, TruncatedVideo):  # its message says it all
        return str(exc)
    if type(exc).__module__.split(".")[0] != "av":
        return _reason(exc)
    detail = getattr(exc, "strerror", None) or _reason(exc)
    if decoded:
        return (
            f"the video could not be decoded past frame {decoded - 1} ({decoded} frame(s) read; damaged or truncated "
            f"file; FFmpeg: {detail})"
        )
    return f"the video could not be decoded (damaged or truncated file, or not a video; FFmpeg: {detail})"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------------------------- faces
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
class FaceRow:
    """One result row: a face with its aligned crop, or a frame without a face / an unreadable file (crop None)."""

    row: dict[str, Any]
    crop: Image.Image | None = None


class FaceStream:
    """Inputs in, faces out, in input order: frames are decoded and searched for faces (MTCNN) `batch_size` at a time,
    and each face is aligned to the training template. With `detect=False` every frame is taken as an aligned face.
    `on_frames(n)` hears how many frames each batch held (a progress bar). `every`: of a video, only every N-th
    frame."""

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
        every: int = 1,
    ):
        self.sources, self.timer, self.detect, self.every = sources, timer, detect, every
        self.batch_size, self.min_face, self.device, self.on_frames = batch_size, min_face, device, on_frames

    def __iter__(self) -> Iterator[FaceRow]:
        frames = iter_frames(self.sources, self.every)
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

    def _faces(self, frame: Frame, faces: list | None) -> Iterator[FaceRow]:
        base = _base_row(frame)
        if frame.image is None:
            yield FaceRow({**base, "face": None, "status": "unreadable", "error": frame.error})
        elif not self.detect:
            h, w = frame.image.shape[:2]
            yield FaceRow(
                {
                    **base,
                    "face": 0,
                    "status": "ok",
                    "x1": 0.0,
                    "y1": 0.0,
                    "x2": float(w),
                    "y2": float(h),
                    "face_in_image": 1.0,
                    "eye_px": EYE_DISTANCE * w,  # an aligned crop: its eyes where the template puts them
                },
                Image.fromarray(frame.image),
            )
        elif not faces:
            yield FaceRow({**base, "face": None, "status": "no_face"})
        else:
            for k, face in enumerate(faces):
                with self.timer.stage("align"):
                    crop, matrix = align(frame.image, face.landmarks, size=DEFAULT_SIZE)
                x1, y1, x2, y2 = face.box
                box = {"x1": x1, "y1": y1, "x2": x2, "y2": y2}
                inside = face_in_image(matrix, frame.image.shape)
                eye = eye_distance_px(matrix)
                yield FaceRow(
                    {
                        **base,
                        "face": k,
                        "status": "ok",
                        "score": face.score,
                        **box,
                        "face_in_image": inside,
                        "eye_px": eye,
                    },
                    Image.fromarray(crop),
                )


def _base_row(frame: Frame) -> dict[str, Any]:
    return {
        "source": str(frame.source),
        "kind": frame.kind,
        "frame": frame.index,
        "time_s": frame.time if frame.time is not None else np.nan,
    }


def largest_per_frame(faces: Iterable[FaceRow]) -> Iterator[tuple[dict[str, Any], Image.Image]]:
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


def largest_faces(
    faces: Iterable[FaceRow], unreadable: Callable[[dict[str, Any]], Exception]
) -> dict[str, Image.Image]:
    """The aligned crop of the largest face (box area) of each image that has one, from a FaceStream of images; an
    unreadable one raises `unreadable(row)`. The pick of `data.align` and of `predict --neutral`, as `prepare` picks."""

    def readable() -> Iterator[FaceRow]:
        for face in faces:
            if face.row["status"] == "unreadable":
                raise unreadable(face.row)
            yield face

    return {row["source"]: crop for row, crop in largest_per_frame(readable())}
