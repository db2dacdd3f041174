"""AU heatmaps: the DDCA text→vision attention of each AU drawn over the face crop the model saw.

One PNG per face: a grid of tiles, one per AU (in the run's AU order), each the crop blended with that AU's map
(upsampled bilinearly to the crop, scaled to [0, 1] per AU, jet-like colour map) under a title strip with the AU
label, probability, FACS name and, given the thresholds, the call `predict` writes for it ("present", in green, or
"absent", at the threshold shown beside it).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from augtext.facs import FACS, au_label

GRID_COLUMNS = 4
TITLE_HEIGHT = 30
TILE_SIZE = 224
FONT_SIZE = 11  # pixels: two caption lines fit the title strip, and a 224-px tile holds about 40 characters
PRESENT_COLOUR = (0, 130, 0)
ABSENT_COLOUR = (110, 110, 110)
# Jet-like colour map anchors (value, RGB): dark blue -> blue -> cyan -> yellow -> red -> dark red.
_CMAP = np.array(
    [
        [0.00, 0, 0, 131],
        [0.125, 0, 60, 220],
        [0.375, 5, 255, 255],
        [0.625, 255, 255, 0],
        [0.875, 250, 0, 0],
        [1.00, 128, 0, 0],
    ],
    dtype=np.float64,
)


def grid_shape(num_aus: int, columns: int = GRID_COLUMNS) -> tuple[int, int]:
    """(rows, columns) of the tile grid for `num_aus` AUs."""
    cols = max(1, min(columns, num_aus))
    return math.ceil(num_aus / cols), cols


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> RGB uint8 (H, W, 3) with the jet-like colour map."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    rgb = [np.interp(v, _CMAP[:, 0], _CMAP[:, c]) for c in (1, 2, 3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def upsample_maps(maps: torch.Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(A, h, w) attention maps -> (A, H, W) float in [0, 1]: bilinear upsampling, then min-max per AU."""
    m = torch.as_tensor(np.asarray(maps, dtype=np.float32) if isinstance(maps, np.ndarray) else maps).float()
    up = F.interpolate(m[None], size=size, mode="bilinear", align_corners=False)[0]
    lo = up.flatten(1).min(1).values[:, None, None]
    hi = up.flatten(1).max(1).values[:, None, None]
    return ((up - lo) / (hi - lo).clamp_min(1e-12)).numpy()


def overlay(crop: np.ndarray, values: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Alpha-blend a [0, 1] map (H, W), colour-mapped, over an RGB uint8 crop (H, W, 3)."""
    blended = (1.0 - alpha) * crop.astype(np.float32) + alpha * colorize(values).astype(np.float32)
    return blended.round().clip(0, 255).astype(np.uint8)


def heatmap_grid(
    crop: np.ndarray,
    maps,
    aus: Sequence[int],
    probs: Sequence[float],
    *,
    columns: int = GRID_COLUMNS,
    alpha: float = 0.45,
    tile_size: int | None = TILE_SIZE,
    thresholds: Sequence[float] | None = None,
) -> Image.Image:
    """The grid image for one face: `crop` (H, W, 3) uint8 as the model saw it, `maps` (A, h, w), `probs` (A,).

    Tiles are `tile_size` pixels square (the crop is resized for display; None keeps the crop's size). `thresholds`
    (A,): each AU's caption also gives its call at that threshold, as `predict` writes it (`caption`)."""
    if tile_size and crop.shape[:2] != (tile_size, tile_size):
        crop = np.asarray(Image.fromarray(crop).resize((tile_size, tile_size), Image.Resampling.BICUBIC))
    height, width = crop.shape[:2]
    values = upsample_maps(maps, (height, width))
    limits = [None] * len(aus) if thresholds is None else list(thresholds)
    if len(values) != len(aus) or len(probs) != len(aus) or len(limits) != len(aus):
        raise ValueError(
            f"heatmap_grid: {len(values)} maps, {len(probs)} probabilities and {len(limits)} thresholds for "
            f"{len(aus)} AUs"
        )
    rows, cols = grid_shape(len(aus), columns)
    tile_h = height + TITLE_HEIGHT
    grid = Image.new("RGB", (cols * width, rows * tile_h), "white")
    draw = ImageDraw.Draw(grid)
    font = _font()
    for i, (au, p, limit) in enumerate(zip(aus, probs, limits, strict=True)):
        x, y = (i % cols) * width, (i // cols) * tile_h
        grid.paste(Image.fromarray(overlay(crop, values[i], alpha)), (x, y + TITLE_HEIGHT))
        name = FACS[au].name if au in FACS else ""
        head, call, tail = caption(au, float(p), limit)
        at = x + 3
        for text, colour in ((head, "black"), (call, PRESENT_COLOUR if call == "present" else ABSENT_COLOUR)):
            draw.text((at, y + 2), text, fill=colour, font=font)
            at += draw.textlength(text, font=font)
        draw.text((at, y + 2), _fit(draw, tail, font, x + width - 3 - at), fill=ABSENT_COLOUR, font=font)
        draw.text((x + 3, y + 16), _fit(draw, name, font, width - 6), fill=(70, 70, 70), font=font)
        if call == "present":  # a bar under the caption: the present AUs stand out at a glance
            draw.rectangle((x, y + TITLE_HEIGHT - 2, x + width - 1, y + TITLE_HEIGHT - 1), fill=PRESENT_COLOUR)
    return grid


def caption(au: int, prob: float, threshold: float | None = None) -> tuple[str, str, str]:
    """An AU tile's first caption line in three parts (label and probability, the call, the threshold), e.g.
    ("AU2  p=0.03  ", "present", " (thr 0.01)"): the call is `predict`'s, present at or above the threshold. Both
    numbers get the decimals (2 to 4) that tell them apart, so the text never reads "p=0.01 absent (thr 0.01)".
    Without a threshold: ("AU2  p=0.03", "", "")."""
    if threshold is None:
        return f"{au_label(au)}  p={prob:.2f}", "", ""
    digits = next((d for d in (2, 3) if f"{prob:.{d}f}" != f"{threshold:.{d}f}"), 4)
    call = "present" if prob >= threshold else "absent"
    return f"{au_label(au)}  p={prob:.{digits}f}  ", call, f" (thr {threshold:.{digits}f})"


def _font():
    """Pillow's own font at FONT_SIZE (its bitmap font where Pillow has no FreeType)."""
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, ValueError, OSError):  # Pillow < 10.1 or without FreeType
        return ImageFont.load_default()


def save_heatmap_grid(
    path: str | os.PathLike, crop: np.ndarray, maps, aus: Sequence[int], probs: Sequence[float], **kwargs
) -> None:
    """Write `heatmap_grid(...)` as a PNG (temp file + rename: never a half-written image)."""
    from augtext.io import atomic_write

    with atomic_write(path, "wb", fsync=False) as fh:
        heatmap_grid(crop, maps, aus, probs, **kwargs).save(fh, format="PNG")


INDEX = ".hiva_heatmaps.json"  # in DIR: the PNGs predict wrote there last, the only files a later run removes
_STARTED = time.time()  # about when this process started: staging folders older than it are another process's


class HeatmapFolder:
    """`predict --heatmaps DIR`, written all or nothing, like its --out file, and left holding exactly the PNGs the
    rows name. The PNGs go to a hidden staging folder beside DIR (`.DIR.<pid>.<random>.tmp`, `file(name)`);
    `commit()` moves them in (renames the staging folder to DIR when DIR does not exist yet) with an index of them
    (INDEX), and sets aside what the previous run's index lists and the files the new PNGs replace; `finish()`, once
    the run's --out is written too, drops those; `discard()`, for a run that failed or was interrupted, removes the
    staging folder and whatever `commit()` moved in, puts back what it set aside and removes the folders on DIR's
    path that this run made: a failure leaves DIR as it was. Files in DIR that no index lists (the user's, or PNGs
    of versions before the index) are never removed. Staging folders of runs that were killed are removed when the
    next run into DIR starts (`remove_stale_staging`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        parent = self.path.parent
        self.made = [p for p in (parent, *parent.parents) if not p.exists()]  # deepest first
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(self.path)
        prefix = f".{self.path.name}.{os.getpid()}."
        self.staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
        mask = os.umask(0)
        os.umask(mask)
        self.staging.chmod(0o777 & ~mask)  # what mkdir would give the folder (mkdtemp's are 0700)
        self.set_aside = self.staging / ".replaced"  # DIR's files that commit() replaced or found stale
        self.moved: list[Path] = []
        self.aside: list[str] = []
        self.renamed = False

    def file(self, name: str) -> Path:
        """Where to write the PNG `name` now (in the staging folder)."""
        return self.staging / name

    def final(self, name: str) -> Path:
        """Where the PNG `name` will be once committed (what the rows name)."""
        return self.path / name

    def commit(self) -> None:
        """Move every staged PNG and their index into DIR; set aside the PNGs the previous run's index lists and the
        files of DIR the new ones replace."""
        names = sorted(p.name for p in self.staging.iterdir())
        _write_index(self.staging / INDEX, names)
        if not self.path.exists():
            os.rename(self.staging, self.path)
            self.renamed = True
            return
        self.set_aside.mkdir()
        for name in sorted({*read_index(self.path), *names, INDEX}):
            if os.path.lexists(self.path / name) and not (self.path / name).is_dir():
                os.replace(self.path / name, self.set_aside / name)
                self.aside.append(name)
        for name in (INDEX, *names):  # the index first: a run killed in between leaves no PNG it does not list
            os.replace(self.staging / name, self.path / name)
            self.moved.append(self.path / name)

    def finish(self) -> None:
        """The run succeeded: drop the staging folder with what commit() set aside."""
        if not self.renamed:
            shutil.rmtree(self.staging, ignore_errors=True)

    def discard(self) -> None:
        """Undo this run: the staging folder, what commit() moved in and the folders it made go; what it set aside
        comes back."""
        if self.renamed:
            shutil.rmtree(self.path, ignore_errors=True)
        for moved in self.moved:
            moved.unlink(missing_ok=True)
        for name in self.aside:
            os.replace(self.set_aside / name, self.path / name)
        shutil.rmtree(self.staging, ignore_errors=True)
        for folder in self.made:
            try:
                folder.rmdir()
            except OSError:  # not empty: something else wrote there meanwhile; keep it
                break


def read_index(folder: Path) -> list[str]:
    """The PNG names a heatmap folder's INDEX lists: plain file names ending in .png only (an index edited to name
    other files, or damaged, removes nothing)."""
    try:
        files = json.loads((folder / INDEX).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, TypeError, KeyError):
        return []
    if not isinstance(files, list):
        return []
    return [n for n in files if isinstance(n, str) and n == Path(n).name and n.endswith(".png") and n[0] != "."]


def _write_index(path: Path, names: Sequence[str]) -> None:
    record = {"written_by": "hiva_core predict --heatmaps", "files": list(names)}
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def remove_stale_staging(path: str | os.PathLike) -> list[Path]:
    """Remove the staging folders that runs into heatmap folder `path` left when they were killed (SIGKILL, or a
    SIGTERM nothing caught): `.NAME.<pid>.<random>.tmp` beside it, older than this process, of a process that no
    longer runs (`.NAME.<random>.tmp` of older versions: older than this process). Returns what was removed."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.tmp")
    removed = []
    if not path.parent.is_dir():
        return removed
    for folder in path.parent.iterdir():
        found = pattern.fullmatch(folder.name)
        if not found or folder.is_symlink() or not folder.is_dir():
            continue
        pid = int(found[1]) if found[1] else None
        try:
            if folder.stat().st_mtime >= _STARTED or (pid is not None and _running(pid)):
                continue
        except FileNotFoundError:  # removed meanwhile
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    """Whether process `pid` (another than this one) still runs; where that cannot be told (Windows), True."""
    if pid == os.getpid():
        return False  # this process started after the folder was made: the pid was another's, reused
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """`text`, shortened with an ellipsis until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "..."
