"""AU heatmaps: the DDCA text→vision attention of each AU drawn over the face crop the model saw.

One PNG per face: a grid of tiles, one per AU (in the run's AU order), each the crop blended with that AU's map
(upsampled bilinearly to the crop, scaled to [0, 1] per AU, jet-like colour map) under a title strip with the AU
label, probability and FACS name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from augtext.facs import FACS, au_label

GRID_COLUMNS = 4
TITLE_HEIGHT = 30
TILE_SIZE = 224
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
) -> Image.Image:
    """The grid image for one face: `crop` (H, W, 3) uint8 as the model saw it, `maps` (A, h, w), `probs` (A,).

    Tiles are `tile_size` pixels square (the crop is resized for display; None keeps the crop's size)."""
    if tile_size and crop.shape[:2] != (tile_size, tile_size):
        crop = np.asarray(Image.fromarray(crop).resize((tile_size, tile_size), Image.Resampling.BICUBIC))
    height, width = crop.shape[:2]
    values = upsample_maps(maps, (height, width))
    if len(values) != len(aus) or len(probs) != len(aus):
        raise ValueError(f"heatmap_grid: {len(values)} maps and {len(probs)} probabilities for {len(aus)} AUs")
    rows, cols = grid_shape(len(aus), columns)
    tile_h = height + TITLE_HEIGHT
    grid = Image.new("RGB", (cols * width, rows * tile_h), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for i, (au, p) in enumerate(zip(aus, probs, strict=True)):
        x, y = (i % cols) * width, (i // cols) * tile_h
        grid.paste(Image.fromarray(overlay(crop, values[i], alpha)), (x, y + TITLE_HEIGHT))
        name = FACS[au].name if au in FACS else ""
        draw.text((x + 3, y + 2), f"{au_label(au)}  p={float(p):.2f}", fill="black", font=font)
        draw.text((x + 3, y + 15), _fit(draw, name, font, width - 6), fill=(70, 70, 70), font=font)
    return grid


def save_heatmap_grid(
    path: str | os.PathLike, crop: np.ndarray, maps, aus: Sequence[int], probs: Sequence[float], **kwargs
) -> None:
    """Write `heatmap_grid(...)` as a PNG (temp file + rename: never a half-written image)."""
    from augtext.io import atomic_write

    with atomic_write(path, "wb", fsync=False) as fh:
        heatmap_grid(crop, maps, aus, probs, **kwargs).save(fh, format="PNG")


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """`text`, shortened with an ellipsis until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "..."
