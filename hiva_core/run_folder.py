"""The run folder: what `hiva_core train` writes and how `eval` / `predict` / `export` read it back.

runs/NAME/
  config.json              resolved TrainConfig + model name/config + AUs + image size + text-prior fingerprint
  model.safetensors        the best model's weights (by average F1 on the test split)
  last.pt                  model + optimizer + scheduler + epoch + RNG + best score, for --resume
  text_prior.safetensors   the text prior the model was trained with (prediction needs no text cache)
  metrics.json             the best epoch's per-AU metrics (and the last epoch's)
  thresholds.json          per-AU thresholds chosen on validation rows for the best model (eval/predict default;
                           a run without it uses 0.5)
  train_faces.npy          a 64-bit key of every training image file (face_keys): `eval` counts the faces it scores
                           that the run was trained on, whatever manifest or list names them
  log.csv                  one row per epoch: step, losses, lr, the test split's F1 at 0.5 and AUC, the validation
                           rows' F1 at their per-AU thresholds and AUC, time (LOG_COLUMNS)
  tb/                      TensorBoard events (when the tensorboard package is installed)
`--folds all` writes runs/NAME/fold{k}/ (each a run folder as above) and runs/NAME/summary.json.
Every file is written atomically (temp file + rename), so a crash leaves the previous version or nothing.
`RunFolder` owns these names and the config.json schema; everything else (trainer, eval, predict, export, tests)
goes through it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from augtext.errors import UserError
from augtext.io import atomic_path, atomic_paths, atomic_write, check_output_dir, remove_stale_temps
from augtext.textprior import TextPrior, read_text_prior, save_text_prior
from hiva_core.config import TrainConfig
from hiva_core.serialize import (
    check_finite,
    model_config_dict,
    read_json,
    rng_state,
    save_model,
    set_rng_state,
    write_json,
)
from hiva_core.thresholds import read_thresholds, read_val_auc, selected_on, val_score, write_thresholds

CONFIG = "config.json"
MODEL = "model.safetensors"
LAST = "last.pt"
PRIOR = "text_prior.safetensors"
METRICS = "metrics.json"
LOG = "log.csv"
SUMMARY = "summary.json"
THRESHOLDS = "thresholds.json"
TRAIN_FACES = "train_faces.npy"
TENSORBOARD = "tb"
RUN_FORMAT = "hiva_core.run/1"

# Config keys added after runs were already being saved, with the value that reproduces such a run on --resume
# (a new default must not change an old run): validation slices (before them every subject was trained on), the
# augmentation recipe (before data.augment: basic; new runs: strong), the region loss (before it, none) and model
# selection (before train.select, the test split's F1 chose the epoch).
LEGACY_TRAIN_CONFIG: dict[tuple[str, str], Any] = {
    ("data", "val_fraction"): 0.0,
    ("data", "augment"): "basic",
    ("train", "region_weight"): 0.0,
    ("train", "select"): "test",
}
# log.csv, one row per epoch. test_f1/test_auc: the test split's average F1 at 0.5 and AUC; val_rows_f1/val_rows_auc:
# the validation rows' average F1 at the per-AU thresholds chosen on them, and AUC (empty without validation rows, and
# in rows written before these columns). val_f1/val_auc repeat test_f1/test_auc: the names log.csv had for them
# before the others existed, kept for the scripts that read them.
LOG_COLUMNS = [
    "epoch",
    "step",
    "loss",
    "asl",
    "align",
    "region",
    "geometry",
    "intensity",
    "lr",
    "test_f1",
    "test_auc",
    "val_rows_f1",
    "val_rows_auc",
    "val_f1",
    "val_auc",
    "time_s",
]
LEGACY_LOG_COLUMNS = {"test_f1": "val_f1", "test_auc": "val_auc"}  # a new column, read from an old log's name
CONFIG_KEYS = ("model_name", "model_config", "aus", "image_size", "config")  # what load_run needs from config.json


def absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with its paths absolute, as config.json stores them: text.cache, data.spec (a manifest or SynthAU folder,
    or the image root of `bp4d:ROOT`), data.lists, data.align_cache and model.backbone_weights. A path typed relative
    to one working directory (`--lists lists_sub`) would not be found by a `--resume` or `eval` from another."""
    from dataclasses import replace

    from hiva_core.data.lists import split_list_spec

    def absolute(value: Any) -> Any:
        return value if value is None else os.path.abspath(os.fspath(value))

    spec = cfg.data.spec
    if spec is not None:
        parts = split_list_spec(spec)
        if parts is None:
            spec = absolute(spec)
        elif parts[1]:  # `bp4d:ROOT`: the name as typed, the root absolute
            spec = f"{os.fspath(spec).partition(':')[0]}:{absolute(parts[1])}"
    return replace(
        cfg,
        text=replace(cfg.text, cache=absolute(cfg.text.cache)),
        data=replace(cfg.data, spec=spec, lists=absolute(cfg.data.lists), align_cache=absolute(cfg.data.align_cache)),
        model=replace(cfg.model, backbone_weights=absolute(cfg.model.backbone_weights)),
    )


def face_keys(files: Sequence[str | os.PathLike]) -> np.ndarray:
    """A 64-bit key per image file: a hash of its real path (links and relative paths resolved), so that the same
    file named by another manifest, a copy of one, a link or a list file has the same key."""
    import hashlib

    keys = [
        int.from_bytes(hashlib.blake2b(os.path.realpath(f).encode(), digest_size=8).digest(), "little") for f in files
    ]
    return np.asarray(keys, dtype=np.uint64)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _file_in_run(name: str) -> property:
    return property(lambda self: self.path / name, doc=f"`{name}` in the run folder")


class RunFolder:
    """One run folder: the names of its files, the config.json schema, and which model it keeps.

    Like timm's CheckpointSaver it decides best and last: `save_checkpoint` writes last.pt after every epoch and
    model.safetensors only when the epoch's selection score (the validation rows' avg AUC or F1 at their per-AU
    thresholds, or the test split's F1 at 0.5; train.select) beats the best so far (a tie keeps the earlier epoch),
    or after every evaluated epoch with train.select=last.
    `best_f1` (the best selection score), `best_epoch`, `best_metrics` (that epoch's test metrics) and
    `last_metrics` are that decision's state; `resume` restores it.
    A `--folds all` run is a parent folder of `fold{k}` runs plus summary.json.
    """

    def __init__(self, path: str | Path, fold_of: str | Path | None = None):
        self.path = Path(path)
        self.fold_of = None if fold_of is None else Path(fold_of)  # the `--folds all` folder of a fold run
        self.best_f1 = -1.0
        self.best_epoch = 0
        self.best_metrics: dict | None = None
        self.selected_on = ""  # what chose best_epoch, in words (selected_on)
        self.last_metrics: dict | None = None
        self.log_rows: list[dict] = []

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- file names
    config_file = _file_in_run(CONFIG)
    model_file = _file_in_run(MODEL)
    last_file = _file_in_run(LAST)
    prior_file = _file_in_run(PRIOR)
    metrics_file = _file_in_run(METRICS)
    log_file = _file_in_run(LOG)
    summary_file = _file_in_run(SUMMARY)
    thresholds_file = _file_in_run(THRESHOLDS)
    tensorboard_dir = _file_in_run(TENSORBOARD)
    train_faces_file = _file_in_run(TRAIN_FACES)

    def fold(self, k: int) -> RunFolder:
        """The run of fold k inside a `--folds all` folder."""
        return RunFolder(self.path / f"fold{k}", fold_of=self.path)

    def fold_runs(self) -> list[RunFolder]:
        """The fold{k}/ runs (folders holding a config.json), in fold order."""
        found = [RunFolder(p) for p in self.path.glob("fold*") if p.is_dir() and (p / CONFIG).is_file()]

        def key(run: RunFolder):
            tail = run.path.name[len("fold") :]
            return (0, int(tail)) if tail.isdigit() else (1, tail)

        return sorted(found, key=key)

    def own_files(self) -> list[tuple[Path, str]]:
        """(file, what it is) for every file of the run this folder holds, and of its fold runs (a `--folds all`
        parent): what a command's output must not be written over (`augtext.io.check_output_file`'s `reads`)."""
        names = (CONFIG, MODEL, LAST, PRIOR, METRICS, LOG, SUMMARY, THRESHOLDS, TRAIN_FACES)
        own = [(self.path / name, f"run {self.path}'s {name}") for name in names]
        return own + [item for fold in self.fold_runs() for item in fold.own_files()]

    def is_run(self) -> bool:
        """Whether the folder holds a run's config.json (a `--folds all` parent does not)."""
        return self.config_file.exists()

    def can_resume(self) -> bool:
        return self.last_file.is_file()

    def check_new(self, resume: bool) -> None:
        """Never write over a trained run unless asked to continue it. Removes the temp files a killed save left."""
        check_output_dir(self.path, "--out")
        for path, _ in self.own_files():
            remove_stale_temps(path)
        if self.model_file.exists() and not self.can_resume() and self.progress() is not None:
            # killed (kill -9, a lost machine) between epoch 1's model and its last.pt: Ctrl-C would have cleaned up
            raise UserError(
                f"{self.path} holds the start of a training that stopped before its first epoch was saved ({MODEL} "
                f"and {METRICS}, no {LAST}): nothing can continue it; delete the folder, or choose another --out"
            )
        if resume:
            if not self.can_resume():
                raise UserError(f"--resume: {self.last_file} not found; nothing to resume (train without --resume)")
        elif self.model_file.exists() or self.last_file.exists():
            done, planned = self.progress() or (None, None)
            if done is not None and done < planned:
                raise UserError(
                    f"{self.path} holds an unfinished run (epoch {done} of {planned}, in {LAST}): "
                    "continue it with --resume, or delete the folder to start again"
                )
            raise UserError(
                f"{self.path} already holds a trained run ({MODEL}/{LAST}); choose another --out, "
                "or pass --resume to continue it (with more --epochs)"
            )

    def saved_epoch(self) -> int | None:
        """The last epoch saved (metrics.json, written with last.pt); None when unknown."""
        try:
            return int(read_json(self.metrics_file, "metrics file")["last_epoch"])
        except (UserError, KeyError, TypeError, ValueError):
            return None

    def progress(self) -> tuple[int, int] | None:
        """(the last epoch saved, the epochs planned: config.json); None when unknown."""
        try:
            planned = int(self.read_config()["config"]["train"]["epochs"])
        except (UserError, KeyError, TypeError, ValueError):
            return None
        done = self.saved_epoch()
        return None if done is None else (done, planned)

    @contextlib.contextmanager
    def attempt(self, writer: bool = True) -> Iterator[None]:
        """One training attempt in this folder; `writer`: this process writes the folder (rank 0).

        A failure (an error, Ctrl-C) before the folder holds a last.pt removes what the attempt created: its files,
        and the folder (and parents) when it made them. Otherwise config.json and the prior without a model would
        look like a run. After a last.pt the folder stays, resumable, and a UserError says which epoch it keeps; so
        does a line on stderr after Ctrl-C (as the trainer's other lines; the command line then says `interrupted`)."""
        made = [p for p in (self.path, *self.path.parents) if not p.exists()]  # deepest first
        before = set(self.path.iterdir()) if self.path.is_dir() else set()
        try:
            yield
        except BaseException as exc:
            if not writer:
                raise
            if not self.can_resume():
                self._remove_new(before, made)
                raise
            if isinstance(exc, UserError):
                raise UserError(f"{exc}; {LAST} {self._kept()}") from exc
            if isinstance(exc, KeyboardInterrupt):
                print(f"{self.last_file} {self._kept()}", file=sys.stderr, flush=True)
            raise

    def _kept(self) -> str:
        if self.fold_of is not None:  # resumed through its parent: `--out runs/X --resume` finds no config.json
            return (
                f"keeps epoch {self.saved_epoch()}: --folds all --resume (with --out {self.fold_of}) continues from "
                f"it, or delete {self.path} to train this fold from the start"
            )
        return f"keeps epoch {self.saved_epoch()}: --resume continues from it, or delete {self.path} to start again"

    def check_unfinished(self, epochs: int) -> None:
        """--resume of a run that already trained `epochs` epochs (train.epochs, raised by --epochs or not) would train
        nothing: a UserError saying how to train further, before anything is read or written."""
        done = self.saved_epoch()
        if done is not None and done >= epochs:
            planned = (self.progress() or (done, done))[1]
            if planned > done:  # unfinished, and --epochs asks for no more than it has
                raise UserError(
                    f"{self.path} has trained {done} of its {planned} epochs, and --epochs {epochs} asks for no more: "
                    f"leave --epochs out to finish it, or pass more than {done}"
                )
            raise UserError(
                f"{self.path} already finished all {done} epochs; pass --epochs N (more than {done}) with --resume "
                "to train further"
            )

    def _remove_new(self, before: set[Path], made: list[Path]) -> None:
        for entry in (set(self.path.iterdir()) - before) if self.path.is_dir() else ():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        for folder in made:
            with contextlib.suppress(OSError):  # only when empty
                folder.rmdir()

    # -- config.json and the text prior: the run's identity
    def write_config(
        self,
        cfg: TrainConfig,
        model: nn.Module,
        aus: Sequence[int],
        prior: TextPrior,
        *,
        train_frames: int | None = None,
        test_frames: int | None = None,
        world_size: int = 1,
        framing: dict[str, float] | None = None,
    ) -> None:
        """config.json: the resolved training config, the model's own config, the AUs, the image size, the text prior's
        identity and the data it was trained on (with `framing`: how its training faces sit in their images,
        `hiva_core.data.aligned.Framing` as a dict, or None where no face was found); every path in it absolute
        (absolute_paths), so that the run resumes and evaluates from any working directory."""
        from hiva_core.config import to_dict

        cfg = absolute_paths(cfg)
        write_json(
            self.config_file,
            {
                "format": RUN_FORMAT,
                "config": to_dict(cfg),
                "model_name": cfg.model.name,
                "model_config": model_config_dict(model),
                "aus": [int(a) for a in aus],
                "image_size": cfg.data.image_size,
                "text_prior": {
                    "fingerprint": prior.fingerprint,
                    "model": prior.model,
                    "dim": prior.dim,
                    "descriptions_per_au": int(prior.mask.shape[1]),
                    "cache": cfg.text.cache,
                },
                "data": {
                    "spec": cfg.data.spec,
                    "fold": cfg.data.fold,
                    "train_frames": train_frames,
                    "test_frames": test_frames,
                    "framing": framing,
                },
                "world_size": world_size,
            },
        )

    def read_config(self) -> dict[str, Any]:
        """config.json, checked for the keys load_run needs."""
        info = read_json(self.config_file, "run config")
        missing = [k for k in CONFIG_KEYS if k not in info]
        if missing:
            raise UserError(f"{self.config_file} lacks {', '.join(missing)}: not a config written by `hiva_core train`")
        aus, size = info["aus"], info["image_size"]
        wrong = [
            key
            for key, ok in (
                ("model_name", isinstance(info["model_name"], str)),
                ("model_config", isinstance(info["model_config"], dict)),
                ("aus", isinstance(aus, list) and bool(aus) and all(_is_int(a) for a in aus)),
                ("image_size", _is_int(size) and size > 0),
                ("config", isinstance(info["config"], dict)),
            )
            if not ok
        ]
        if wrong:
            raise UserError(
                f"{self.config_file}: {', '.join(f'{k} = {info[k]!r}' for k in wrong)} is not what `hiva_core train` "
                "writes (aus: a list of AU codes, image_size: pixels, model_config: an object); the file was edited "
                "or damaged: restore it or train the run again"
            )
        return info

    def read_train_config(self) -> TrainConfig:
        """The training config the run was trained with (the base of a --resume). A width, stride, geometry head or
        open-vocabulary option left to the default is the one the model was built with (model_config's dim and the
        keys of LEGACY_MODEL_OPTIONS, with those values for runs saved before the keys existed), so a later change of
        the default never changes a run; nor do the data defaults that came later (val_fraction, augment)."""
        from dataclasses import replace

        from hiva_core.config import from_dict
        from hiva_core.models.hiva import LEGACY_MODEL_OPTIONS

        info = self.read_config()
        cfg = from_dict(info["config"])
        built = {**LEGACY_MODEL_OPTIONS, **(info.get("model_config") or {})}
        for key in ("dim", *LEGACY_MODEL_OPTIONS):
            if getattr(cfg.model, key) is None and built.get(key) is not None:
                value = int(built[key]) if key in ("dim", "output_stride") else bool(built[key])
                cfg = replace(cfg, model=replace(cfg.model, **{key: value}))
        for (section, key), value in LEGACY_TRAIN_CONFIG.items():
            if key not in (info["config"].get(section) or {}):
                cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{key: value})})
        return cfg

    def check_saved_path(self, key: str, value: str | os.PathLike | None, option: str) -> None:
        """A path config.json gives for `key` (of `data.spec`, the image root of a `bp4d:ROOT` spec) that is not
        there: a UserError saying it came from config.json and which `option` gives it anew. Runs saved before
        config.json held absolute paths hold them as typed, relative to the folder the run was started in."""
        from hiva_core.data.lists import split_list_spec

        if value is None:
            return
        path = os.fspath(value)
        parts = split_list_spec(path) if key == "data.spec" else None
        path = parts[1] if parts is not None else path
        if path and not os.path.exists(path):
            raise UserError(
                f"{key} {path!r} not found (from {self.config_file}, as the run was trained; a relative path is "
                f"relative to the folder the run was started in): give {option} to say where it is now"
            )

    def write_train_faces(self, files: Sequence[str | os.PathLike]) -> None:
        """train_faces.npy: the sorted keys (face_keys) of the training rows' image files."""
        with atomic_path(self.train_faces_file) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.unique(face_keys(files)), allow_pickle=False)

    def count_trained_faces(self, files: Sequence[str | os.PathLike]) -> int | None:
        """How many of `files` the run was trained on (train_faces.npy); None for a run saved without the record."""
        if not self.train_faces_file.is_file():
            return None
        try:
            trained = np.load(self.train_faces_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(
                f"{self.train_faces_file} is damaged ({exc}); delete it to evaluate without the check"
            ) from None
        return int(np.isin(face_keys(files), trained).sum())

    def write_prior(self, prior: TextPrior) -> None:
        save_text_prior(prior, self.prior_file)  # atomic itself

    def read_prior(self) -> TextPrior:
        return read_text_prior(self.prior_file)

    # -- checkpoints: best and last
    def write_model(self, model: nn.Module) -> None:
        """model.safetensors: the weights `eval`, `predict` and `export` use."""
        save_model(model, self.model_file)

    def save_checkpoint(
        self,
        epoch: int,
        metrics: dict | None,
        model: nn.Module,
        state: dict[str, Any],
        thresholds: dict[str, Any] | None = None,
        select: str = "test",
    ) -> None:
        """The end of an epoch (rank 0): model.safetensors when the epoch's selection score beats the best so far
        (with thresholds.json: `thresholds`, that model's per-AU thresholds, when given), then metrics.json and
        last.pt (the trainer's `state`, the best so far and every RNG), all or nothing: a save that fails part-way
        (a full disk) leaves every file at the epoch before, which --resume then redoes. `metrics` (the test
        split's) is None after an epoch that was not evaluated. `select` (train.select) scores an epoch by a
        validation score of `thresholds` (val_score: "val_auc" their avg AUC, "val" their avg F1 at their
        thresholds) when it is defined, else (and with "test") by the test split's average F1 at 0.5. "last" keeps
        every evaluated epoch, so the last one stays; its score (reported, not compared) is the validation AUC, else
        the test F1."""
        check_finite(model.state_dict(), f"the model at the end of epoch {epoch}")  # keep the last good state
        writes: dict[Path, Callable[[Path], None]] = {}
        best = False
        if metrics is not None:  # an epoch that was not evaluated changes neither the choice nor its words
            self.last_metrics, self.selected_on = metrics, selected_on(select, thresholds)
            score = val_score(select, thresholds)
            score = metrics["avg"]["f1"] if score is None else score
            best = select == "last" or score > self.best_f1
            if best:
                self.best_f1, self.best_epoch, self.best_metrics = score, epoch, metrics
                writes[self.model_file] = lambda tmp: save_model(model, tmp)
                if thresholds is not None:
                    writes[self.thresholds_file] = lambda tmp: write_thresholds(tmp, {**thresholds, "epoch": epoch})
        record = {
            "best_epoch": self.best_epoch,
            "selected_on": self.selected_on,
            "best_score": self.best_f1,
            "best": self.best_metrics,
            "last_epoch": epoch,
            "last": metrics,
        }
        writes[self.metrics_file] = lambda tmp: write_json(tmp, record)
        last = {**state, "best_f1": self.best_f1, "best_epoch": self.best_epoch, "rng": rng_state()}
        writes[self.last_file] = lambda tmp: torch.save(last, tmp)  # renamed last: the epoch is saved once it is
        with atomic_paths(*writes) as temps:
            for write, tmp in zip(writes.values(), temps, strict=True):
                write(tmp)
        if best and thresholds is None:  # never leave an older model's thresholds beside this one
            self.thresholds_file.unlink(missing_ok=True)

    def resume(self) -> dict[str, Any]:
        """Read last.pt (weights_only) for --resume: restore every RNG, the best so far and the log rows up to its
        epoch; return the trainer's state (model, optimizer, scheduler, scaler, epoch, step)."""
        path = self.last_file
        if not path.is_file():
            raise UserError(f"{path} not found: nothing to resume; train without --resume to start this run")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a truncated/corrupt file
            raise UserError(
                f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc}); "
                "start the run again without --resume in a new folder"
            ) from None
        set_rng_state(state["rng"])
        self.best_f1, self.best_epoch = float(state["best_f1"]), int(state["best_epoch"])
        self.log_rows = self._read_log(int(state["epoch"]))
        if self.metrics_file.is_file():
            saved = read_json(self.metrics_file, "metrics file")
            self.best_metrics, self.selected_on = saved.get("best"), saved.get("selected_on", "test avg F1 at 0.5")
        return state

    # -- thresholds.json
    def write_thresholds(self, record: dict[str, Any]) -> None:
        """thresholds.json: `record` holds `thresholds` ({"AU1": t, ...}) and how they were chosen (`validation`,
        `frames`, `epoch`, the validation F1 at them and at 0.5)."""
        write_thresholds(self.thresholds_file, record)

    def read_thresholds(self, alone: bool = False) -> dict[int, float]:
        """{AU code: threshold} from thresholds.json (`alone`: those for faces read without their neutral frame);
        {} when the run has none (a run from before them, or one trained without a validation slice: 0.5
        everywhere). A damaged file is a UserError naming it."""
        if not self.thresholds_file.is_file():
            return {}
        return read_thresholds(self.thresholds_file, "delete it to use 0.5", alone)

    def read_val_auc(self) -> dict[int, float]:
        """{AU code: AUC on the validation rows its threshold was chosen on} (thresholds.read_val_auc); {} when the
        run has no thresholds.json."""
        return read_val_auc(self.thresholds_file) if self.thresholds_file.is_file() else {}

    # -- log.csv and summary.json
    def append_log(self, row: dict[str, Any]) -> None:
        """Add one epoch's row (LOG_COLUMNS) and rewrite log.csv atomically."""
        self.log_rows.append(row)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.log_rows)
        with atomic_write(self.log_file, "w") as fh:
            fh.write(buffer.getvalue())

    def _read_log(self, upto_epoch: int) -> list[dict]:
        """log.csv's rows up to an epoch, in LOG_COLUMNS: a log written before test_f1/test_auc has them from its
        val_f1/val_auc (which held the test split's), and no validation rows' scores."""
        if not self.log_file.is_file():
            return []
        with open(self.log_file, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.DictReader(fh) if int(row["epoch"]) <= upto_epoch]
        for row in rows:
            for new, old in LEGACY_LOG_COLUMNS.items():
                if not row.get(new):
                    row[new] = row.get(old, "")
        return rows

    def write_summary(self, summary: dict[str, Any]) -> None:
        """summary.json of a `--folds all` folder: every fold's metrics and their mean."""
        write_json(self.summary_file, summary)
