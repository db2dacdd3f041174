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

# .jfif and .jpe: JPEGs as some browsers and Windows save them
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
VIDEO_HINT = "pip install av"


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB. Pillow's own `convert("RGB")` clips 16-bit greyscale (modes I;16*, and I as
    16-bit PNGs and TIFFs open) at 255, turning most of a photo white; here 0-65535 is scaled to 0-255. Float images
    (F) in 0-1 are scaled by 255, other float images clipped to 0-255. Greyscale, palette and alpha modes are
    converted by Pillow (alpha dropped)."""
    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64) / 257.0
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            values = values * 255.0
    else:
        return image if image.mode == "RGB" else image.convert("RGB")
    grey = np.clip(np.nan_to_num(np.round(values)), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """The one image reader (predict, prepare, the datasets): an image file as an 8-bit RGB Pillow image, EXIF
    orientation applied, any bit depth or colour mode scaled by `to_rgb`. Raises OSError/ValueError when
    unreadable."""
    with Image.open(path) as im:
        return to_rgb(ImageOps.exif_transpose(im))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3) (`open_rgb`). Raises OSError/ValueError when unreadable."""
    return np.asarray(open_rgb(path))


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
