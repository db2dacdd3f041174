"""BP4D / DISFA / GFT list files, the format ME-GraphAU and MDHR users already have on disk.

One relative image path a line in `*_path*` files and one row of space-separated labels (0 absent, 1 present,
9 unknown) a line in the matching `*_label*` file, under an image root given separately.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from augtext.errors import UserError
from augtext.facs import DATASET_AUS, au_label
from hiva_core.data.dataset import AUDataset, select_aus

_ALLOWED_HINT = "labels must be 0 (absent), 1 (present) or 9 (unknown; where your files write -1 for unknown, write 9)"
_LIST_SPEC = re.compile(r"^([A-Za-z0-9]+):(.*)$")


def split_list_spec(spec: str | os.PathLike) -> tuple[str, str] | None:
    """`bp4d:IMAGE_ROOT` -> ("bp4d", "IMAGE_ROOT") (any name: the caller checks it against LIST_FORMATS); None for a
    path, including a Windows drive letter (C:\\...)."""
    match = _LIST_SPEC.match(os.fspath(spec))
    if match is None or len(match.group(1)) < 2:
        return None
    return match.group(1).lower(), match.group(2)


def list_spec_name(spec: str | os.PathLike) -> tuple[str, str] | None:
    """`split_list_spec`, with a name that is not a list format (`bp4:ROOT`, `ck:ROOT`) a UserError naming the ones
    there are (not a manifest of that name: one reading for every command)."""
    parts = split_list_spec(spec)
    if parts is not None and parts[0] not in LIST_FORMATS:
        text = os.fspath(spec)
        raise UserError(
            f"unknown dataset {text.partition(':')[0]!r} in {text!r}; use {', '.join(LIST_FORMATS)}:IMAGE_ROOT "
            "or a manifest .csv/.parquet"
        )
    return parts


@dataclass(frozen=True)
class ListFormat:
    name: str  # "bp4d"
    folder: str  # "BP4D": the sub-folder when `lists` is the parent of all datasets
    paths: str  # file name pattern, {split} and {fold}
    labels: str
    folds: bool
    folder_depth: int  # folders before the file name: BP4D subject/sequence, DISFA subject
    weights: str  # per-AU training loss weights (ME-GraphAU's file; written by `prepare`, not read here)
    neutral: str  # optional: each frame's neutral frame, line for line with `paths` (written by `hiva_core neutral`)

    @property
    def aus(self) -> list[int]:
        return list(DATASET_AUS[self.name])

    def file_names(self, split: str, fold: int | None) -> tuple[str, str]:
        return self.paths.format(split=split, fold=fold), self.labels.format(split=split, fold=fold)

    def neutral_name(self, split: str, fold: int | None) -> str:
        return self.neutral.format(split=split, fold=fold)

    def weights_name(self, fold: int | None) -> str:
        return self.weights.format(fold=fold)


LIST_FORMATS: dict[str, ListFormat] = {
    "bp4d": ListFormat(
        "bp4d",
        "BP4D",
        "BP4D_{split}_img_path_fold{fold}.txt",
        "BP4D_{split}_label_fold{fold}.txt",
        folds=True,
        folder_depth=2,
        weights="BP4D_train_weight_fold{fold}.txt",
        neutral="BP4D_{split}_neutral_fold{fold}.txt",
    ),
    "disfa": ListFormat(
        "disfa",
        "DISFA",
        "DISFA_{split}_path_fold{fold}.txt",
        "DISFA_{split}_label_fold{fold}.txt",
        folds=True,
        folder_depth=1,
        weights="DISFA_train_weight_fold{fold}.txt",
        neutral="DISFA_{split}_neutral_fold{fold}.txt",
    ),
    "gft": ListFormat(
        "gft",
        "GFT",
        "GFT_{split}_img_path.txt",
        "GFT_{split}_label.txt",
        folds=False,
        folder_depth=1,
        weights="GFT_train_weight.txt",
        neutral="GFT_{split}_neutral.txt",
    ),
}


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"list file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read list file {path}: {exc}") from None
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first path or label;
        # Windows (CRLF) and old Mac (CR) line ends are line ends
        return data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a UTF-8 text file ({exc})") from None


def _lines(text: str) -> list[str]:
    """Lines of a list file; the last line may lack its newline, blank lines at the very end are dropped."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_path_list(path: str | os.PathLike) -> list[str]:
    """One image path a line (relative to the image root, or absolute); spaces at a line's end are not part of the
    path. A blank line inside is a UserError."""
    path = Path(path)
    lines = [line.rstrip() for line in _lines(_read_text(path))]
    if "" in lines:
        raise UserError(f"{path}: line {lines.index('') + 1} is empty; every line must name one image")
    return lines


def check_listed_once(files: Sequence[str], path: str | os.PathLike) -> None:
    """An image named on two lines of a path list is a UserError naming the list file and both line numbers (as a
    manifest that lists an image twice): it would be counted twice in training and in the metrics."""
    if len(set(files)) == len(files):  # the common case, in one pass
        return
    first: dict[str, int] = {}
    again = []
    for i, name in enumerate(files):
        if name in first:
            again.append((i, first[name]))
        else:
            first[name] = i
    i, j = again[0]
    more = f" ({len(again) - 1} more repeated line(s) after it)" if len(again) > 1 else ""
    raise UserError(
        f"{path}: line {i + 1} names {files[i]!r} again (first on line {j + 1}){more}; list each image once "
        "(and its label row once, in the label file)"
    )


def _subjects(files: Sequence[str], folder_depth: int) -> dict[str, int]:
    """{subject: frames} of a path list (frame_meta's subject; "" for paths without one)."""
    frames: dict[str, int] = {}
    for folder in (name.replace("\\", "/").rpartition("/")[0] for name in files):
        frames[folder] = frames.get(folder, 0) + 1
    out: dict[str, int] = {}
    for folder, n in frames.items():
        subject = frame_meta(f"{folder}/x", folder_depth)[0] if folder else ""
        out[subject] = out.get(subject, 0) + n
    return out


def check_subject_exclusive(name: str, lists: str | os.PathLike, fold: int | None, *, need_train: bool = True) -> None:
    """The train and test lists of one fold (GFT: its one split) share no subject, and no image: the BP4D/DISFA
    folds and GFT's split are subject-exclusive, so a test subject that is also trained on leaks into the test F1. A
    UserError naming the subjects (or images, for paths without a subject folder) and both list files.
    `need_train=False` (eval): data without a train list of that fold is not checked."""
    fmt = LIST_FORMATS[name]
    test_file, _ = find_list_files(fmt, lists, "test", fold)
    try:
        train_file, _ = find_list_files(fmt, lists, "train", fold)
    except UserError:
        if need_train:
            raise
        return
    train, test = read_path_list(train_file), read_path_list(test_file)
    check_listed_once(train, train_file)
    check_listed_once(test, test_file)
    in_train, in_test = _subjects(train, fmt.folder_depth), _subjects(test, fmt.folder_depth)
    shared = sorted(s for s in in_test if s and s in in_train)
    if len(in_train) == 1 and in_train.keys() == in_test.keys():  # one folder holds every image: no subject folders
        shared = []  # ("images/F001_T1_1.jpg"): only the images themselves can be compared
    which = f"fold {1 if fold is None else fold}" if fmt.folds else "the split"
    if shared:
        shown = ", ".join(f"{s} ({in_test[s]} test / {in_train[s]} training frames)" for s in shared[:10])
        more = f" and {len(shared) - 10} more" if len(shared) > 10 else ""
        raise UserError(
            f"{len(shared)} subject(s) of {test_file} are also in {train_file}: {shown}{more}; {fmt.folder}'s "
            f"protocol is subject-exclusive, and {which}'s test F1 would score faces of people it trained on: "
            "remove them from one of the two lists (the shipped ME-GraphAU/MDHR lists share none)"
        )
    both = set(train).intersection(test)
    if both:
        line = next(i for i, p in enumerate(test) if p in both)
        raise UserError(
            f"{len(both)} image(s) of {test_file} are also in {train_file} (the first on line {line + 1}: "
            f"{test[line]!r}); {which}'s test F1 would score images it trained on: list each image in one split"
        )


def read_label_list(path: str | os.PathLike, aus: Sequence[int]) -> np.ndarray:
    """Labels separated by spaces (tabs, commas), one row per frame, one column per AU -> float32 (N, A), NaN where
    9 (unknown).

    Only 0, 1 and 9 are allowed; another value or a wrong number of columns is a UserError naming file and line.
    The common layout (one digit per value, single spaces) is parsed in one vectorised pass.
    """
    path = Path(path)
    text = _read_text(path)
    labels = _parse_fixed_width(text, len(aus))
    return labels if labels is not None else _parse_general(text, aus, path)


def _parse_fixed_width(text: str, columns: int) -> np.ndarray | None:
    """`"0 1 9\\n"` rows as a (N, 2A) byte matrix; None when the text is laid out otherwise (then the slow path)."""
    data = text.encode("ascii", errors="replace")
    if not data.endswith(b"\n"):
        data += b"\n"
    raw = np.frombuffer(data, dtype=np.uint8)
    width = 2 * columns
    if columns < 1 or raw.size % width:
        return None
    rows = raw.reshape(-1, width)
    values = rows[:, 0::2]
    if not ((rows[:, 1:-1:2] == ord(" ")).all() and (rows[:, -1] == ord("\n")).all()):
        return None
    present, absent, unknown = values == ord("1"), values == ord("0"), values == ord("9")
    if not (present | absent | unknown).all():
        return None
    labels = present.astype(np.float32)
    labels[unknown] = np.nan
    return labels


def _parse_general(text: str, aus: Sequence[int], path: Path) -> np.ndarray:
    lines = _lines(text)
    labels = np.empty((len(lines), len(aus)), dtype=np.float32)
    value = {"0": 0.0, "1": 1.0, "9": np.nan}
    for i, line in enumerate(lines):
        tokens = line.replace(",", " ").split()  # spaces, tabs or commas between the labels
        if len(tokens) != len(aus):
            names = " ".join(au_label(a) for a in aus)
            raise UserError(f"{path}: line {i + 1} has {len(tokens)} values, expected {len(aus)} ({names})")
        for j, token in enumerate(tokens):
            if token not in value:
                raise UserError(
                    f"{path}: line {i + 1}: label {token!r} for {au_label(aus[j])} is not allowed; {_ALLOWED_HINT}"
                )
            labels[i, j] = value[token]
    return labels


def find_list_files(fmt: ListFormat, lists: str | os.PathLike, split: str, fold: int | None) -> tuple[Path, Path]:
    """The (paths, labels) files of one split: in `lists` itself or in `lists/<BP4D|DISFA|GFT>/`."""
    lists = Path(lists)
    if lists.is_file():
        raise UserError(
            f"--lists {lists} is a file: give the folder holding the {fmt.folder} list files ({lists.parent})"
        )
    if not lists.is_dir():
        raise UserError(f"list folder not found: {lists} (give the folder holding the {fmt.folder} list files)")
    if fmt.folds:
        fold = 1 if fold is None else fold
        if isinstance(fold, bool) or not isinstance(fold, int) or fold < 1:
            raise UserError(f"fold must be a positive integer (1, 2, 3), got {fold!r}")
    elif fold is not None:
        raise UserError(f"{fmt.folder} has one official train/test split and no folds; leave the fold out")
    path_name, label_name = fmt.file_names(split, fold)
    for folder in (lists, lists / fmt.folder, lists / fmt.name):
        if (folder / path_name).is_file() or (folder / label_name).is_file():
            return folder / path_name, folder / label_name
    hint = ""
    if fmt.folds:
        pattern = fmt.labels.format(split=split, fold="*")
        found = sorted({p.name for folder in (lists, lists / fmt.folder) for p in folder.glob(pattern)})
        hint = f" (label files there: {', '.join(found)})" if found else ""
    raise UserError(f"no {path_name} / {label_name} in {lists} or {lists / fmt.folder}{hint}")


def frame_meta(rel: str, folder_depth: int) -> tuple[str, str, str]:
    """`F007/T1/643.jpg` (depth 2) -> (F007, T1, 643); `SN003/SN003_0.png` (depth 1) -> (SN003, "", 0)."""
    parts = rel.replace("\\", "/").split("/")
    folders = parts[:-1][-folder_depth:] if folder_depth else []
    subject = folders[0] if folders else ""
    sequence = "/".join(folders[1:])
    frame = os.path.splitext(parts[-1])[0]
    if subject and frame.startswith(subject + "_"):
        frame = frame[len(subject) + 1 :]
    return subject, sequence, frame


def _meta_of_row(files: list[str], folder_depth: int, index: int) -> tuple[str, str, str]:
    return frame_meta(files[index], folder_depth)


def check_image_root(
    name: str, root: str | os.PathLike, files: Sequence[str], path_file: Path, sample: int = 50
) -> None:
    """`hiva_core prepare` writes its crops to OUT/images and its lists to OUT/lists: `--data bp4d:OUT` finds
    (nearly) none of the images. When a spread sample of the listed images is (nearly) all missing under `root` but
    the first is found under `root`/images, a UserError says so and names the spec to give instead (any other
    missing image is check_images' to report)."""
    if not files or os.path.isabs(files[0]):
        return
    picks = [files[i] for i in np.linspace(0, len(files) - 1, num=min(sample, len(files)), dtype=int)]
    missing = sum(not os.path.exists(os.path.join(root, f)) for f in picks)
    images = os.path.join(root, "images")
    if missing >= 0.9 * len(picks) and os.path.exists(os.path.join(images, files[0])):
        raise UserError(
            f"{missing} of {len(picks)} images of {path_file} checked are missing under the image root {root}, "
            f"but {os.path.join(images, files[0])} exists: did you mean {images}? (--data {name}:{images}; "
            "`hiva_core prepare` writes the crops to OUT/images and the lists to OUT/lists)"
        )


def load_list_dataset(
    name: str,
    root: str | os.PathLike,
    lists: str | os.PathLike,
    *,
    split: str,
    fold: int | None = None,
    aus: Sequence[int] | None = None,
    transform=None,
    neutral: bool = True,
) -> AUDataset:
    """`bp4d` / `disfa` / `gft` list files of one split (and fold) -> AUDataset with images under `root`; with
    `neutral`, each frame's neutral frame from the split's neutral list beside the path list, if there is one."""
    fmt = LIST_FORMATS[name]
    path_file, label_file = find_list_files(fmt, lists, split, fold)
    files = read_path_list(path_file)
    check_listed_once(files, path_file)
    labels = read_label_list(label_file, fmt.aus)
    if len(files) != len(labels):
        raise UserError(
            f"{path_file} has {len(files)} image lines but {label_file} has {len(labels)} label lines; "
            "the two files must match line for line"
        )
    if not files:
        raise UserError(f"{path_file} lists no images")
    source = f"{path_file.name} + {label_file.name}"
    check_image_root(name, root, files, path_file)
    labels, aus = select_aus(labels, fmt.aus, aus, source)
    # partial of a module-level function, not a lambda: DataLoader workers may pickle the dataset (spawn)
    meta = partial(_meta_of_row, files, fmt.folder_depth)
    neutral_file = path_file.with_name(fmt.neutral_name(split, 1 if fold is None else fold))  # GFT: no {fold}
    references = read_path_list(neutral_file) if neutral and neutral_file.is_file() else None
    if references is not None and len(references) != len(files):
        raise UserError(
            f"{neutral_file} has {len(references)} lines but {path_file} has {len(files)} image lines; the neutral "
            "frames must match the images line for line (write them again with `hiva_core neutral`)"
        )
    return AUDataset(
        files, labels, aus, root=root, transform=transform, meta=meta, source=source, references=references
    )
