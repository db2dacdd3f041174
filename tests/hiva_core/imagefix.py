"""Tiny real image files, list files and manifests for tests (shared by the data, trainer and predictor tests)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def write_image(path: str | os.PathLike, size: int | tuple[int, int] = 48, seed: int = 0) -> Path:
    """A small RGB image (a colour gradient plus noise, different per seed); format from the suffix (.jpg, .png...)."""
    path = Path(path)
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 255, size=3)
    image = np.stack([(base[c] + (x if c % 2 else y) * 255.0 / max(width, height)) % 256 for c in range(3)], axis=-1)
    image = np.clip(image + rng.normal(0, 12, size=image.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image, "RGB").save(path)
    return path


def write_images(root: str | os.PathLike, rel_paths: Iterable[str], size: int | tuple[int, int] = 48) -> list[Path]:
    """One image per relative path under `root` (seeded by position, so the images differ)."""
    return [write_image(Path(root) / rel, size=size, seed=i) for i, rel in enumerate(rel_paths)]


def write_list_pair(
    path_file: str | os.PathLike,
    label_file: str | os.PathLike,
    paths: Sequence[str],
    labels: Sequence[Sequence[object] | str] | np.ndarray,
    *,
    trailing_newline: bool = True,
) -> tuple[Path, Path]:
    """A ME-GraphAU list pair: one path a line, one row of space-separated labels a line (a row may be a ready
    string, e.g. a line of a real label file, or values such as [0, 1, 9])."""
    end = "\n" if trailing_newline else ""
    path_file, label_file = Path(path_file), Path(label_file)
    path_file.parent.mkdir(parents=True, exist_ok=True)
    label_file.parent.mkdir(parents=True, exist_ok=True)
    path_file.write_text("\n".join(paths) + end)
    rows = [row if isinstance(row, str) else " ".join(_cell(v) for v in row) for row in labels]
    label_file.write_text("\n".join(rows) + end)
    return path_file, label_file


def _cell(value: object) -> str:
    return str(int(value)) if isinstance(value, (int, float, np.integer, np.floating)) else str(value)


def sub_lists(
    path_file: str | os.PathLike, label_file: str | os.PathLike, rows: Sequence[int]
) -> tuple[list[str], list[str]]:
    """The chosen line numbers (0-based) of a real list pair: (paths, label lines), for a small copy in tmp_path."""
    paths = Path(path_file).read_text().splitlines()
    labels = Path(label_file).read_text().splitlines()
    return [paths[i] for i in rows], [labels[i] for i in rows]


def write_manifest(path: str | os.PathLike, rows: Sequence[Mapping[str, object]]) -> Path:
    """A manifest (.csv or .parquet by suffix) from a list of row dicts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(list(rows))
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def write_protocol_sample(
    protocols: str | os.PathLike,
    out: str | os.PathLike,
    name: str = "bp4d",
    n: int = 20,
    folds: Sequence[int] = (1,),
    size: int | tuple[int, int] = 48,
) -> tuple[Path, Path]:
    """A few real rows of the BP4D/DISFA fold lists (the first and last n/2 of each split) with placeholder images.

    Writes `out/lists/<BP4D|DISFA>/..._{train,test}_..._fold{k}.txt` and `out/images/...`; returns (image_root,
    lists_dir), ready for `build_dataset(f"{name}:{image_root}", split=..., fold=k, lists=lists_dir)`.
    """
    from hiva_core.data.lists import LIST_FORMATS

    fmt = LIST_FORMATS[name]
    src, out = Path(protocols) / fmt.folder, Path(out)
    lists, root = out / "lists", out / "images"
    for fold in folds:
        for split in ("train", "test"):
            path_name, label_name = fmt.file_names(split, fold)
            total = len((src / label_name).read_text().splitlines())
            rows = [*range(n // 2), *range(total - (n - n // 2), total)]
            paths, labels = sub_lists(src / path_name, src / label_name, rows)
            write_list_pair(lists / fmt.folder / path_name, lists / fmt.folder / label_name, paths, labels)
            for rel in paths:
                if not (root / rel).exists():
                    write_image(root / rel, size=size, seed=len(rel) + sum(map(ord, rel)))
    return root, lists
