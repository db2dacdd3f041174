"""Reading images and video frames, writing crops: the I/O that `predict` and `prepare` share.

Videos are decoded with PyAV (`pip install av`; its wheels bundle FFmpeg, so no system FFmpeg is needed).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from augtext.errors import UserError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
VIDEO_HINT = "pip install av"


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), EXIF orientation applied. Raises OSError/ValueError when unreadable."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"))


def _av():
    try:
        import av
    except ImportError:
        raise UserError(f"reading videos needs PyAV: {VIDEO_HINT}") from None
    return av


def video_frame_count(path: str | os.PathLike) -> int | None:
    """Frames in the first video stream as the container declares it (None when it does not say, or unreadable)."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            n = int(container.streams.video[0].frames)
            return n or None
    except Exception:  # noqa: BLE001 - any decoder failure means "unknown"; iter_video reports the real error
        return None


def iter_video(path: str | os.PathLike) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """(frame index from 0, presentation time in seconds, RGB uint8 frame) for every frame of the first video stream.

    Decoder errors propagate (as av.FFmpegError / OSError / ValueError); the caller decides how to report them.
    """
    av = _av()
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else None
        for index, frame in enumerate(container.decode(stream)):
            time = float(frame.time) if frame.time is not None else (index / rate if rate else None)
            yield index, time, frame.to_ndarray(format="rgb24")


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Save an RGB uint8 image (format from the suffix) through a temp file + rename, so a killed run never leaves a
    half-written file that a resumed run would take as done."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
            options = {"quality": quality} if fmt == "JPEG" else {}
            Image.fromarray(image).save(fh, format=fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
