"""Which rows a command uses: what folds and splits a `--data` spec defines, the rows `eval` scores, and the
validation slice on which `train` chooses per-AU thresholds.

- Evaluation (`eval_selection`): a fold the user names is that fold's test rows. Otherwise the run's own fold, when
  the data has folds (list files of BP4D/DISFA, a manifest's `fold` column); else the data's `split=test` rows; else
  (no fold and no split column) every row, and the selection says so.
- Validation (`validation_split`): the data's own validation rows when it has them (a manifest whose `split` column
  marks rows `val`, used when training selects rows by that column, not by fold); otherwise a held-out slice of the
  training split: `fraction` of its subjects (whole subjects, drawn with the run's seed), or, when the data names too
  few subjects for that, the same fraction of its frames.
- Training labels (`check_train_labels`): every AU trained on needs a known label (0 or 1) among the training rows.
- Subjects (`check_split_subjects`): the train and test lists of a fold of BP4D/DISFA (GFT: its split) share no
  subject, as their protocols are subject-exclusive; a manifest's folds and splits are its own protocol, unchecked.
- The run's held-out fold (`trained_fold`): `eval --fold K` of the data a run was trained on scores fold K only
  when K is the fold it held out; any other fold's rows were trained on.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augtext.errors import UserError
from hiva_core.data.dataset import AUDataset

VAL_WORDS = ("val", "valid", "validation")  # values of a manifest's `split` column that mark validation rows


@dataclass(frozen=True)
class DataLayout:
    """What a `--data` spec defines: folds (`folds`), and the split names its rows carry (`splits`: train, test,
    val)."""

    folds: bool
    splits: frozenset[str]

    @property
    def has_val(self) -> bool:
        return "val" in self.splits


def list_format(spec: str | os.PathLike):
    """The ListFormat of a `bp4d:` / `disfa:` / `gft:` spec, or None for a manifest."""
    from hiva_core.data.lists import LIST_FORMATS, list_spec_name

    parts = list_spec_name(spec)
    return LIST_FORMATS.get(parts[0]) if parts else None


def data_files(spec: str | os.PathLike, lists: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """(file, what it is) for the files a `--data` spec is read from: its manifest, or the list files in `lists`
    (what a command's output must not be written over); [] where they are not found (the reading says so)."""
    from hiva_core.data.manifest import find_manifest

    if list_format(spec) is None:
        with contextlib.suppress(UserError):
            return [(find_manifest(spec), "the manifest read")]
        return []
    folder = Path(lists) if lists is not None else None
    return [(f, "a list file read") for f in folder.iterdir() if f.is_file()] if folder and folder.is_dir() else []


def split_name(value: str) -> str:
    """A `split` cell as one of train / val / test (other values are kept, lower-case)."""
    word = str(value).strip().lower()
    return "val" if word in VAL_WORDS else word


def data_layout(spec: str | os.PathLike) -> DataLayout:
    """The folds and splits of a `--data` spec (reads a manifest's columns; list files always have train/test)."""
    from hiva_core.data.manifest import find_manifest, read_label_manifest

    fmt = list_format(spec)
    if fmt is not None:
        return DataLayout(folds=fmt.folds, splits=frozenset({"train", "test"}))
    path = find_manifest(spec)
    df = read_label_manifest(path)
    splits = frozenset(split_name(v) for v in df["split"].dropna()) if "split" in df.columns else frozenset()
    return DataLayout(folds="fold" in df.columns, splits=splits)


@dataclass(frozen=True)
class Selection:
    """The rows `eval` scores: `split` and `fold` for build_dataset, and `text`, what a table header says;
    `no_face`: how many of them were left out because no face was found in them (data aligned on the fly)."""

    split: str
    fold: int | None
    text: str
    no_face: int = 0


def eval_selection(spec: str | os.PathLike, fold: int | None, run_fold: int | None) -> Selection:
    """Rows to evaluate: `fold` (given by the user) as always; else the run's fold if the data has folds; else the
    data's test split; else all rows (data without a fold or split column is evaluated whole)."""
    if fold is not None:
        return Selection("test", fold, f"fold {fold}")
    layout = data_layout(spec)
    if layout.folds:
        chosen = run_fold if run_fold is not None else 1  # build_dataset's default fold
        return Selection("test", chosen, f"fold {chosen}")
    if layout.splits:
        return Selection("test", None, "split test")
    return Selection("all", None, "all rows: no fold or split column")


def check_split_subjects(
    spec: str | os.PathLike, lists: str | os.PathLike | None, fold: int | None, *, need_train: bool = True
) -> None:
    """List files (`bp4d:`, `disfa:`, `gft:`): a subject of the fold's test list that is also in its train list is a
    UserError naming both (hiva_core.data.lists.check_subject_exclusive); `need_train=False`: data without that train
    list is not checked (eval). Manifests are not checked."""
    from hiva_core.data.lists import check_subject_exclusive

    fmt = list_format(spec)
    if fmt is None or lists is None:
        return
    check_subject_exclusive(fmt.name, lists, fold if fmt.folds else None, need_train=need_train)


def same_data(spec: str | os.PathLike, run_spec: str | os.PathLike | None) -> bool:
    """Whether `spec` names the data a run was trained on (`run_spec`, its config.json's data.spec): the same list
    format (`bp4d:` is BP4D's folds wherever its images and lists lie), or the same manifest file (or SynthAU
    folder). False when that cannot be told (a run's relative path that is not found from here)."""
    from hiva_core.data.manifest import find_manifest

    if run_spec is None:
        return False
    try:
        fmt, run_fmt = list_format(spec), list_format(run_spec)
        if fmt is not None or run_fmt is not None:
            return fmt is not None and run_fmt is not None and fmt.name == run_fmt.name
        return find_manifest(spec).resolve() == find_manifest(run_spec).resolve()
    except UserError:
        return False


def trained_fold(
    spec: str | os.PathLike, fold: int | None, run_spec: str | os.PathLike | None, run_fold: int | None
) -> int | None:
    """The fold a run held out, when `eval --fold K` (`fold`) of the data the run was trained on (same_data) names
    another: fold K's test rows are among the run's training rows. None when K is the run's fold, when no fold is
    named, and for other data. A run trained without --fold held out fold 1 (as the readers default), unless it
    chose its rows by a manifest's split column."""
    if fold is None or not same_data(spec, run_spec):
        return None
    layout = data_layout(spec)
    if not layout.folds or (run_fold is None and list_format(spec) is None and layout.splits):
        return None
    held = 1 if run_fold is None else run_fold
    return held if fold != held else None


def validation_split(
    train: AUDataset, fraction: float, seed: int, data_val: AUDataset | None = None
) -> tuple[AUDataset, AUDataset | None, str]:
    """(training rows, validation rows or None, how the validation rows were chosen), as the module docstring says.

    `data_val`: the data's own validation rows, used as they are. `fraction` 0 holds nothing out (None)."""
    if data_val is not None and len(data_val):
        return train, data_val, f"the data's validation rows (split=val, {len(data_val)} frames)"
    if fraction <= 0:
        return train, None, "no validation split (data.val_fraction = 0)"
    n = len(train)
    subjects = train.subjects()
    names = sorted(set(subjects))
    rng = np.random.default_rng(seed)
    k = round(fraction * len(names))
    if 1 <= k < len(names):
        held = {names[i] for i in rng.permutation(len(names))[:k]}
        val_rows = [i for i, s in enumerate(subjects) if s in held]
        how = f"{k} of {len(names)} training subjects held out of training ({len(val_rows)} frames)"
    else:
        m = round(fraction * n)
        if not 1 <= m < n:
            return train, None, f"no validation split: {n} training frames are too few to hold {fraction:g} out"
        val_rows = sorted(rng.permutation(n)[:m].tolist())
        few = math.ceil(0.5 / fraction)
        how = (
            f"{m} of {n} training frames held out of training at random (the data names {len(names)} subject(s), "
            f"fewer than the {few} needed to hold out whole ones)"
        )
    held_rows = set(val_rows)
    keep = [i for i in range(n) if i not in held_rows]
    if not keep:
        raise UserError(f"{train.source}: holding out a validation slice left no training frames")
    return train.subset(keep), train.subset(val_rows, source=f"{train.source} (validation)"), how


def check_train_labels(train: AUDataset, where: str) -> None:
    """Refuse training rows on which an AU has no known label (all unknown: 9, empty, NaN ...), naming the data
    (`train.source`), `where` (which rows, e.g. "the train split of fold 1") and those AUs.

    Its head would never see a label and would learn nothing (the loss masks unknown labels out). An AU whose known
    labels are all 0 is fine: it learns "absent" (losses.au_weights weighs it as one positive). An AU without a known
    label in the *evaluated* split is a different case, shown as "–" (metrics)."""
    from augtext.facs import au_label

    known = np.isfinite(train.labels).any(axis=0)
    if known.all():
        return
    missing = ", ".join(au_label(a) for a, k in zip(train.aus, known, strict=True) if not k)
    if not known.any():
        raise UserError(
            f"{train.source}: {where} has no known label at all (every {missing} label is unknown: 9, empty or NaN); "
            "nothing to train on: label the rows 0 or 1, or train on other data"
        )
    keep = ",".join(str(a) for a, k in zip(train.aus, known, strict=True) if k)
    one = missing.count(",") == 0
    raise UserError(
        f"{train.source}: {where} has no known label for {missing} (all unknown: 9, empty or NaN), so "
        f"{'its head' if one else 'their heads'} would learn nothing; train without {'it' if one else 'them'} "
        f"(--set data.aus={keep}) or label {'it' if one else 'them'} 0 or 1"
    )
