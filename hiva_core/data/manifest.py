"""CSV / Parquet manifests for the user's own faces (and SynthAU): `path, AU1, AU2, ...` one row per image.

Paths are relative to the manifest's folder (absolute paths are kept). Label cells are 0, 1, or unknown: an empty
cell, 9, or one of the words in UNKNOWN_WORDS in any case (NaN, NA, N/A, None, null; a Parquet null too). Any other
value (pandas' other missing-value words such as #N/A or <NA>, -1, ?) is an error naming the line.
Optional columns: `fold` (int; test = fold k, train = the others), `split` (train/test, and val: rows on which
`train` chooses per-AU thresholds), `subject` (or SynthAU's
`identity`), `sequence`, `frame`; `landmarks` and `neutral_landmarks` together (JSON lists of the 68 landmarks' 136
coordinates in pixels, of the face and of the same person's neutral face in the same frame; SynthAU writes both; an
empty cell is unknown): the expression's geometry (hiva_core.geometry), which an open-vocabulary model learns to
read; `AU<k>_int` beside `AU<k>` (the AU's intensity in [0, 1]; SynthAU writes them; an empty cell, or an unknown
label, is unknown): what `model.intensity` learns; `neutral` (the path of a neutral frame of the same person, near
the face's pose, relative like `path`; `synth --neutral` writes it): what a model with `model.reference` reads each
face beside. AU columns are read in any case (au12 is AU12); another column whose name starts with AU and holds a
digit (AUl2, AU_12, AU12_c) is an error, as a mistyped AU would otherwise be left out of training unnoticed. Other
columns (yaw, AU_notes, ...) are ignored. A manifest without any AU column is an error, except with
`load_manifest_dataset(labels=False)` (`hiva_core adapt --data`, which reads no label).
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from augtext.errors import UserError
from augtext.facs import au_label, parse_au_label
from hiva_core.data.dataset import AUDataset, select_aus

MANIFEST_NAMES = ("manifest.parquet", "manifest.csv")
# The rows so far of a set still being written (`hiva_core synth` writes manifest.csv only once every image is done):
# a folder holding it alone is an unfinished set, not data.
MANIFEST_PARTIAL = "manifest.partial.csv"
# A label column `AU<code>` and its intensity `AU<code>_int`, in any case (au12, Au12_int). `AU<code>_prob` and
# `AU<code>_label` beside `AU<code>` are what `predict` and `eval --per-face` write, ignored. Any other column whose
# name starts with "AU" and holds a digit (AUl2, AU_12, AU12_c) is an error: a mistyped AU would otherwise drop out
# of training unnoticed. Names without a digit (AUs, AU_notes) are no AU code, mistyped or not: ignored.
AU_COLUMN = re.compile(r"^AU(\d+)(_int|_prob|_label)?$", re.IGNORECASE)
AU_FORM = "AU<number> (0/1 labels) or AU<number>_int (intensity in [0, 1]), e.g. AU12 or AU12_int, in any case"
_TEXT_COLUMNS = ("path", "subject", "identity", "sequence", "frame", "split", "neutral")
UNKNOWN_WORDS = ("nan", "na", "n/a", "none", "null")  # compared lower-case, stripped; with "" and 9, unknown
LABELS_HINT = "labels must be 0 (absent), 1 (present), or unknown: empty, 9, NaN, NA, N/A, None or null"


def find_manifest(spec: str | os.PathLike) -> Path:
    """A `.csv` / `.parquet` file, or a folder holding manifest.parquet (preferred) or manifest.csv."""
    path = Path(spec)
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return path / name
        if (path / MANIFEST_PARTIAL).is_file():
            raise UserError(
                f"{path} holds an unfinished set (stopped before its last image: its rows so far are in "
                f"{path / MANIFEST_PARTIAL}); run the command that made it again to finish it (`hiva_core synth --out "
                f"{path} ...` resumes), or give that file as --data to use the rows so far"
            )
        raise UserError(
            f"no {' or '.join(MANIFEST_NAMES)} in folder {path} (the images of BP4D/DISFA/GFT list files are named "
            f"with their dataset: --data bp4d:{path} --lists DIR)"
        )
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"manifest must be a .csv or .parquet file (or a folder holding one), got {path}")
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    return path


def read_label_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """A labelled-image manifest (.csv / .parquet: path, AU1, AU2, ...) as a DataFrame. Not augtext's cache
    manifest.json, which `augtext.prior.read_manifest` reads."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            # No missing-value guessing: a cell is what the file says, and _labels decides which spellings are
            # unknown. skipinitialspace: "path, AU1" and ", 1" are the columns and values they look like.
            df = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False, skipinitialspace=True)
            _check_header(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"cannot read manifest {path}: {exc}") from None
    df.columns = [c.strip() if isinstance(c, str) else c for c in df.columns]
    if df.empty:  # a header alone: every later message (no rows of fold 1, its folds: []) would say less
        raise UserError(f"manifest {path} has no rows, only its header; add a row per image")
    return df


def _check_header(path: Path) -> None:
    """A column named twice is an error: pandas would rename the second (AU1.1), and its labels be ignored."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = [name.strip() for name in next(csv.reader(fh), [])]
    twice = sorted({name for name in header if header.count(name) > 1 and name})
    if twice:
        raise UserError(f"{path}: line 1 names column(s) {', '.join(twice)} more than once; keep one of each")


def _cell(column: pd.Series, row: int) -> object:
    """A cell as a plain Python value (2, not np.int64(2)), for messages."""
    value = column.iloc[row]
    return value.item() if isinstance(value, np.generic) else value


def _row_name(path: Path, row: int) -> str:
    """CSV: the line in the file (line 1 is the header); Parquet: the 1-based row."""
    return f"{path}: {_row_label(path, row)}"


def _row_label(path: Path, row: int) -> str:
    return f"line {row + 2}" if path.suffix.lower() == ".csv" else f"row {row + 1}"


def au_columns(df: pd.DataFrame, path: Path, intensity: bool = False, required: bool = True) -> dict[int, str]:
    """The label columns `AU<code>` (any case: au12 is AU12) -> {code: column}, sorted by code; with `intensity`, the
    `AU<code>_int` columns instead ({} without any). A column that starts with "AU" in any case, holds a digit and is
    neither (nor
    `_prob`/`_label` beside its label column), an unknown code (AU3) or one AU named twice (AU12, au12) is a UserError
    naming the column; so is a manifest without any label column, unless not `required` ({})."""
    found: dict[int, str] = {}
    beside: dict[str, str] = {}  # AU12_prob -> its code's digits: fine only beside an AU12 column
    for column in map(str, df.columns):
        if column[:2].upper() != "AU" or not any(c.isdigit() for c in column):
            continue  # not an AU column, nor one mistyped (AUs, AU_notes: no code in it)
        match = AU_COLUMN.match(column)
        if match is None:
            raise UserError(f"{path}: column {column!r} is not an AU column; {_AU_COLUMN_FIX}")
        suffix = (match.group(2) or "").lower()
        if suffix in ("_prob", "_label"):
            beside[column] = match.group(1)
        if suffix != ("_int" if intensity else ""):
            continue
        try:
            code = parse_au_label(match.group(1))
        except UserError as exc:
            raise UserError(f"{path}: column {column}: {exc}") from None
        if code in found:
            raise UserError(f"{path}: columns {found[code]} and {column} are both {au_label(code)}{suffix}")
        found[code] = column
    if intensity:
        return dict(sorted(found.items()))
    if not found and not required:
        return {}
    if not found:
        have = ", ".join(map(str, df.columns))
        raise UserError(f"{path} has no AU label columns (AU1, AU2, ...); its columns: {have}")
    alone = [c for c, digits in beside.items() if int(digits) not in found]
    if alone:
        raise UserError(
            f"{path}: column {alone[0]!r} has no label column AU{beside[alone[0]]} beside it; {_AU_COLUMN_FIX}"
        )
    return dict(sorted(found.items()))


_AU_COLUMN_FIX = (
    f"columns that start with AU are read as labels: name them {AU_FORM}, and rename any other so that it does not "
    "start with AU"
)


def _read_cells(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(unknown, values) of a label or intensity column: unknown where a cell is empty, null or an unknown word
    (UNKNOWN_WORDS; isna: a Parquet null, a float NaN), else the number it holds (NaN for a non-number). 9, unknown
    too, is left to the caller."""
    text = raw.astype(str).str.strip().str.lower()
    unknown = raw.isna() | text.eq("") | text.isin(UNKNOWN_WORDS)
    values = pd.to_numeric((raw.astype(float) if raw.dtype == bool else text).where(~unknown), errors="coerce")
    return unknown, values


def _refuse_cells(bad: pd.Series, raw: pd.Series, column: str, path: Path, hint: str) -> None:
    """A UserError naming the first `bad` cell of `column` (its line and value) and `hint`."""
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{_row_name(path, row)}: {column} = {_cell(raw, row)!r} is not allowed; {hint}")


def _labels(df: pd.DataFrame, columns: dict[int, str], path: Path) -> np.ndarray:
    labels = np.empty((len(df), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns.values()):
        raw = df[column]
        unknown, values = _read_cells(raw)
        _refuse_cells(~unknown & ~values.isin([0, 1, 9]), raw, column, path, LABELS_HINT)
        labels[:, j] = values.where(values != 9).to_numpy(dtype=np.float32, na_value=np.nan)
    return labels


def fold_column(df: pd.DataFrame, path: Path) -> np.ndarray:
    """The `fold` column as int64; a missing column, an empty or a non-integer cell is a UserError."""
    if "fold" not in df.columns:
        raise UserError(f"{path} has no fold column, so no fold can be chosen; leave the fold out")
    folds = pd.to_numeric(df["fold"], errors="coerce")
    bad = folds.isna() | (folds != folds.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{_row_name(path, row)}: fold = {_cell(df['fold'], row)!r} is not an integer")
    return folds.to_numpy(dtype=np.int64)


def manifest_folds(spec: str | os.PathLike) -> list[int]:
    """The folds a manifest (file or folder) defines, sorted: what `--folds all` iterates over."""
    path = find_manifest(spec)
    return sorted(set(fold_column(read_label_manifest(path), path).tolist()))


def _select_rows(df: pd.DataFrame, path: Path, split: str, fold: int | None) -> np.ndarray:
    """Boolean row mask for the split, by the fold rules of docs/INTERFACES.md (`all`: every row; `val`: the rows
    whose split is val, valid or validation)."""
    from hiva_core.data.splits import split_name

    if split == "all":
        return np.ones(len(df), dtype=bool)
    if fold is None and "split" in df.columns:
        values = df["split"].map(split_name)
        keep = (values == split).to_numpy()
        if not keep.any():
            raise UserError(f"{path} has no rows with split={split}; its split values: {sorted(set(values))}")
        return keep
    if split == "val":
        raise UserError(f"{path} has no validation rows (a split column with val rows, used without a fold)")
    if fold is not None or "fold" in df.columns:
        folds = fold_column(df, path)
        fold = 1 if fold is None else fold
        if fold not in set(folds.tolist()):
            raise UserError(f"{path} has no rows with fold={fold}; its folds: {sorted(set(folds.tolist()))}")
        return folds == fold if split == "test" else folds != fold
    warnings.warn(
        f"{path} has no fold or split column: all {len(df)} rows serve as both train and test data",
        UserWarning,
        stacklevel=4,  # the caller of build_dataset
    )
    return np.ones(len(df), dtype=bool)


GEOMETRY_COLUMNS = ("landmarks", "neutral_landmarks")


def _points(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A column of JSON lists of 136 numbers → (N, 68, 2) float64, NaN for an empty cell; UserError naming the line."""
    from hiva_core.regions import empty_cell, parse_landmarks

    out = np.full((len(df), 68, 2), np.nan)
    for row, cell in enumerate(df[column].tolist()):
        if empty_cell(cell):
            continue
        try:
            values = parse_landmarks(cell)
        except (ValueError, TypeError):
            values = None
        if values is None or not np.isfinite(values).all():
            raise UserError(
                f"{_row_name(path, row)}: {column} must be a JSON list of 136 numbers (x, y of the 68 landmarks), "
                f"got {str(cell).strip()[:40]!r}"
            )
        out[row] = values
    return out


def _geometry(df: pd.DataFrame, path: Path) -> np.ndarray | None:
    """The expression's geometry of every row (N, len(GEOMETRY)), NaN where unknown; None without both columns."""
    if not all(c in df.columns for c in GEOMETRY_COLUMNS):
        return None
    from hiva_core.geometry import expression_geometry

    face, neutral = (_points(df, c, path) for c in GEOMETRY_COLUMNS)
    with np.errstate(invalid="ignore"):
        return expression_geometry(face, neutral).astype(np.float32)


INTENSITY_HINT = (
    "intensities are in [0, 1] (FACS A-E as 0.2-1.0: a 0-5 scale divided by 5), or unknown: empty, 9, NaN, NA, N/A, "
    "None or null"
)


def _intensity(df: pd.DataFrame, columns: dict[int, str], labels: np.ndarray, path: Path) -> np.ndarray | None:
    """AU intensities (N, A) in [0, 1] from `AU<k>_int` columns (SynthAU), NaN where unknown (no column, an unknown
    cell as for labels, an unknown label); None without any such column beside a label column. A cell outside [0, 1]
    or not a number is a UserError naming it (a 0-5 scale was clipped to 0/1 before, 9 read as full intensity)."""
    names = au_columns(df, path, intensity=True)
    if not any(code in names for code in columns):
        return None
    out = np.full(labels.shape, np.nan, dtype=np.float32)
    for j, code in enumerate(columns):
        if code in names:
            raw = df[names[code]]
            unknown, values = _read_cells(raw)
            nine = values.eq(9)  # unknown, as for labels (BP4D's intensity files use 9)
            # a non-number is NaN, never between
            _refuse_cells(~unknown & ~nine & ~values.between(0, 1), raw, names[code], path, INTENSITY_HINT)
            out[:, j] = values.where(~nine).to_numpy(dtype=np.float32, na_value=np.nan)
    out[np.isnan(labels)] = np.nan
    return out


def _manifest_meta(files, subjects, sequences, frames, index: int) -> tuple[str, str, str]:
    path = files[index]
    subject = subjects[index] if subjects is not None else os.path.basename(os.path.dirname(path))
    sequence = sequences[index] if sequences is not None else ""
    frame = frames[index] if frames is not None else os.path.splitext(os.path.basename(path))[0]
    return subject, sequence, frame


def _text(df: pd.DataFrame, *names: str) -> list[str] | None:
    for name in names:
        if name in df.columns:
            return df[name].fillna("").astype(str).tolist()
    return None


def load_manifest_dataset(
    spec: str | os.PathLike,
    *,
    split: str,
    fold: int | None = None,
    aus: Sequence[int] | None = None,
    transform=None,
    labels: bool = True,
) -> AUDataset:
    """A manifest file or folder -> AUDataset of the rows of one split; `labels=False`: a manifest without any AU
    column is read as its paths, a dataset of no AUs (for reading faces without their labels: `adapt --data`)."""
    path = find_manifest(spec)
    df = read_label_manifest(path)
    if "path" not in df.columns:
        sep = next((c for c in ";\t|" if any(c in str(name) for name in df.columns)), None)
        hint = f"; its header looks separated by {sep!r}: write the manifest comma-separated" if sep else ""
        raise UserError(f"{path} has no 'path' column; its columns: {', '.join(map(str, df.columns))}{hint}")
    columns = au_columns(df, path, required=labels)
    labels = _labels(df, columns, path)
    empty = df["path"].isna() | df["path"].astype(str).str.strip().eq("")
    if empty.any():
        raise UserError(f"{_row_name(path, int(np.flatnonzero(empty.to_numpy())[0]))}: empty path")
    names = df["path"].astype(str).str.strip()
    again = names.duplicated()
    if again.any():  # counted twice in training and metrics, or in two folds (test frames trained on)
        row = int(np.flatnonzero(again.to_numpy())[0])
        first = int(np.flatnonzero((names == names.iloc[row]).to_numpy())[0])
        raise UserError(
            f"{_row_name(path, row)}: path {names.iloc[row]!r} is listed again (first on {_row_label(path, first)}); "
            "list each image once"
        )
    keep = _select_rows(df, path, split, fold)
    df, labels = df[keep], labels[keep]
    geometry = _geometry(df, path)
    intensity = _intensity(df, columns, labels, path)
    labels, aus = select_aus(labels, list(columns), aus, str(path))
    if intensity is not None:  # the chosen AUs' columns, in their order
        intensity = intensity[:, [list(columns).index(a) for a in aus]]
    files = df["path"].astype(str).tolist()
    meta = partial(_manifest_meta, files, _text(df, "subject", "identity"), _text(df, "sequence"), _text(df, "frame"))
    return AUDataset(
        files,
        labels,
        aus,
        root=path.parent,
        transform=transform,
        meta=meta,
        source=str(path),
        geometry=geometry,
        intensity=intensity,
        references=None if "neutral" not in df.columns else [r.strip() for r in _text(df, "neutral")],
    )
