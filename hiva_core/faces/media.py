"""Reading images and video frames, writing crops: the I/O that `predict` and `prepare` share.

Videos are decoded with PyAV (`pip install av`; its wheels bundle FFmpeg, so no system FFmpeg is needed).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence

from augtext.errors import UserError

# .jfif and .jpe: JPEGs as some browsers and Windows save them
_BASE_IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
)
# Other photo formats, taken where this Pillow opens them (with the codec each needs, `PIL.features`): AVIF, HEIF
# (.heic/.heif: only with the pillow-heif plugin installed), JPEG 2000, QOI, TGA, PBM/PNM, APNG, MPO. Pillow's other
# formats (icons, PSD, EPS, its MPEG probe) are not photos.
_PHOTO_FORMATS = {
    "AVIF": "avif",
    "HEIF": None,
    "JPEG2000": "jpg_2000",
    "QOI": None,
    "TGA": None,
    "PPM": None,
    "PNG": None,
    "MPO": None,
}
# Formats that can hold an animation (GIF, APNG, animated WebP): such a file with more than one frame is read as a
# video (`is_animated`); only these are opened to check, not every JPEG.
_ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP"})
_ANIMATED_SUFFIXES = frozenset({".gif", ".png", ".apng", ".webp"})


def _image_suffixes() -> frozenset[str]:
    """IMAGE_SUFFIXES: the base set, plus the suffixes of the photo formats this Pillow (and plugin) can open."""
    from PIL import features

    with contextlib.suppress(ImportError):  # .heic / .heif, as phones save photos: only through this plugin
        from pillow_heif import register_heif_opener

        register_heif_opener()
    found = set(_BASE_IMAGE_SUFFIXES)
    for suffix, fmt in Image.registered_extensions().items():
        if fmt in _PHOTO_FORMATS and fmt in Image.OPEN:
            feature = _PHOTO_FORMATS[fmt]
            if feature is None or features.check(feature):
                found.add(suffix)
    return frozenset(found)


IMAGE_SUFFIXES = _image_suffixes()
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
VIDEO_HINT = "pip install av"


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_animated(path: str | os.PathLike) -> bool:
    """Whether an image file is an animation of more than one frame (an animated GIF, APNG or WebP), which `predict`
    reads as a video (`iter_video`). False for a still image and for a file that cannot be opened (its reader
    reports it)."""
    if Path(path).suffix.lower() not in _ANIMATED_SUFFIXES:
        return False
    try:
        with Image.open(path) as im:
            return im.format in _ANIMATED_FORMATS and bool(getattr(im, "is_animated", False))
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is read
        return False


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
    """Frames in the first video stream as the container declares it, or in an animated image (None when it does
    not say, or unreadable)."""
    if not is_video(path):
        try:
            with Image.open(path) as im:
                return int(getattr(im, "n_frames", 1))
        except Exception:  # noqa: BLE001 - unreadable: iter_video reports the real error
            return None
    av = _av()
    try:
        with av.open(str(path)) as container:
            n = int(container.streams.video[0].frames)
            return n or None
    except Exception:  # noqa: BLE001 - any decoder failure means "unknown"; iter_video reports the real error
        return None


# FFmpeg decodes a file cut off mid-stream (its header, with the frame count, at the front) up to the cut and stops
# without an error; more frames than this share (and one) missing from the declared count says the file ends early.
MISSING_FRAMES = 0.01


class TruncatedVideo(ValueError):
    """A video whose decoding ended well before the frame count its header declares (iter_video)."""


def iter_video(path: str | os.PathLike) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """(frame index from 0, presentation time in seconds, RGB uint8 frame) for every frame of the first video stream,
    or of an animated image (`is_animated`: GIF, APNG, WebP, read with Pillow).

    Frames come out as displayed: the rotation a phone records for a video filmed upright but stored sideways (the
    display matrix, or an older file's `rotate` tag; `video_rotation`) is applied, as EXIF orientation is to photos.
    Decoder errors propagate (as av.FFmpegError / OSError / ValueError), and so does a TruncatedVideo after the last
    frame of a file that ends early; the caller decides how to report them.
    """
    if not is_video(path):
        yield from _iter_animation(path)
        return
    av = _av()
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else None
        declared, decoded = int(stream.frames or 0), 0
        for index, frame in enumerate(container.decode(stream)):
            time = float(frame.time) if frame.time is not None else (index / rate if rate else None)
            image = frame.to_ndarray(format="rgb24")
            turns = round(video_rotation(frame, stream) / 90) % 4
            decoded = index + 1
            yield index, time, np.ascontiguousarray(np.rot90(image, turns)) if turns else image
    if decoded < declared * (1 - MISSING_FRAMES) - 1:
        raise TruncatedVideo(
            f"the video ended after {decoded} of the {declared} frames its header declares (damaged or truncated file)"
        )


def video_rotation(frame, stream) -> float:
    """Degrees counter-clockwise by which a decoded frame must be turned to be shown upright (0, 90, 180, -90;
    `iter_video` turns by the nearest quarter turn).

    Phones store a portrait video's pixels sideways and record the turn: a display matrix (FFmpeg's DISPLAYMATRIX
    side data, which recent PyAV reads as `frame.rotation`), or a `rotate` tag in older files (clockwise degrees)."""
    rotation = getattr(frame, "rotation", None)  # recent PyAV
    if rotation is not None:
        return float(rotation)
    for data in getattr(frame, "side_data", ()):
        if "DISPLAYMATRIX" in str(getattr(data, "type", "")):
            matrix = np.frombuffer(bytes(data), dtype=np.int32, count=9).astype(np.float64)
            if matrix[0] or matrix[1]:  # av_display_rotation_get: the matrix's rotation, counter-clockwise
                return -math.degrees(math.atan2(matrix[1], matrix[0]))
    with contextlib.suppress(TypeError, ValueError):
        return -float(stream.metadata.get("rotate", 0))
    return 0.0


def _iter_animation(path: str | os.PathLike) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """An animated image's frames, as `iter_video` gives a video's: times from each frame's duration (None when
    the file gives none)."""
    with Image.open(path) as im:
        elapsed = 0.0
        for index, frame in enumerate(ImageSequence.Iterator(im)):
            duration = frame.info.get("duration")
            yield index, elapsed / 1000.0 if duration is not None else None, np.asarray(to_rgb(frame))
            elapsed += float(duration or 0)


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Save an RGB uint8 image (format from the suffix) through a temp file + rename, so a killed run never leaves a
    half-written file that a resumed run would take as done."""
    from augtext.io import atomic_write

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": quality} if fmt == "JPEG" else {}
    with atomic_write(path, fsync=False) as fh:
        Image.fromarray(image).save(fh, format=fmt, **options)
