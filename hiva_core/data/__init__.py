"""Labelled face data: BP4D/DISFA/GFT list files, CSV/Parquet manifests and SynthAU folders -> AUDataset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from augtext.errors import UserError, unwrap_worker_error
from hiva_core.data.dataset import AUDataset, check_images
from hiva_core.data.lists import list_spec_name, load_list_dataset
from hiva_core.data.manifest import load_manifest_dataset
from hiva_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms, denormalize

__all__ = [
    "AUDataset",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_dataset",
    "build_transforms",
    "check_images",
    "denormalize",
    "unwrap_worker_error",
]

SPLITS = ("train", "val", "test", "all")


def build_dataset(
    spec: str | os.PathLike,
    *,
    split: str,
    fold: int | None = None,
    lists: str | os.PathLike | None = None,
    image_size: int = 224,
    augment: bool | str = False,
    aus: Sequence[int] | None = None,
    neutral: bool = True,
    labels: bool = True,
) -> AUDataset:
    """The dataset named by a `--data` spec, for one split.

    spec: `bp4d:IMAGE_ROOT` / `disfa:IMAGE_ROOT` / `gft:IMAGE_ROOT` (with `lists`: the folder of list files, or its
    parent holding BP4D/ DISFA/ GFT/; default fold 1, GFT has no folds), a `.csv`/`.parquet` manifest, or a folder
    holding manifest.parquet / manifest.csv (SynthAU). aus: pick and order the label columns (default: the data's).
    split: train / test, `val` (a manifest's split=val rows) or `all` (every row of a manifest, whatever its folds).
    Images are not opened here; `check_images` checks they exist, a bad one fails when its item is read.
    `neutral=False`: list files without their neutral list (`hiva_core neutral` writing it anew). `labels=False`: a
    manifest needs no AU column (faces read without labels, `adapt --data`).
    """
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    transform = build_transforms(image_size, augment)
    text = os.fspath(spec)
    parts = list_spec_name(text)
    if parts is not None:
        name, root = parts
        if split not in ("train", "test"):
            raise UserError(f"{name} list files hold train and test splits only, not {split!r}")
        if not root:
            raise UserError(f"{text!r} names no image root; use {name}:IMAGE_ROOT")
        if not os.path.isdir(root):
            raise UserError(f"image root not found: {root}")
        if lists is None:
            raise UserError(f"{name} data needs the list files: give --lists DIR (the folder holding them)")
        return load_list_dataset(
            name, root, lists, split=split, fold=fold, aus=aus, transform=transform, neutral=neutral
        )
    if lists is not None and os.path.isdir(text):  # list files given beside a folder without its dataset's prefix
        guess = _list_dataset_in(lists)
        raise UserError(
            f"--data {text} with --lists: list-file data is named with its dataset, "
            f"{guess or 'bp4d'}:{text}"
            + ("" if guess else " (or disfa:, gft:)")
            + "; a manifest (a .csv/.parquet, or a folder holding one) takes no --lists"
        )
    return load_manifest_dataset(text, split=split, fold=fold, aus=aus, transform=transform, labels=labels)


def _list_dataset_in(lists: str | os.PathLike) -> str | None:
    """The dataset whose list files a folder holds (BP4D_*.txt or a BP4D/ folder: bp4d), when one only."""
    from hiva_core.data.lists import LIST_FORMATS

    folder = Path(lists)
    if not folder.is_dir():
        return None
    names = {p.name.upper() for p in folder.iterdir()}
    found = [name for name, fmt in LIST_FORMATS.items() if any(n.startswith(f"{fmt.folder.upper()}") for n in names)]
    return found[0] if len(found) == 1 else None
