"""Training configuration: frozen dataclasses filled from defaults <- YAML (--config) <- CLI options <- --set.

Every key has a dotted name `section.key` (`train.epochs`, `optim.lr`, `model.backbone`, ...). An unknown section or
key, in a YAML file or in `--set`, is a UserError that names it and lists the valid keys; values are type-checked
and coerced (`--set optim.lr=1e-3` parses "1e-3" as YAML, then checks that it is a float).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union

import yaml

from augtext.errors import UserError, short_error
from hiva_core.models.hiva import ModelConfig


def _require(*checks: tuple[bool, str]) -> None:
    """Value checks that types alone do not catch (every section checks its own in __post_init__)."""
    for ok, message in checks:
        if not ok:
            raise UserError(message)


@dataclass(frozen=True)
class TextSection:
    """Where the text prior comes from (augtext's cache) and which of its descriptions to use."""

    cache: str | None = None  # augtext cache directory (--text-cache)
    model: str | None = None  # embedding table (model name or slug); None = the only/first one
    styles: tuple[str, ...] | None = None  # description styles to keep; None = all
    max_per_au: int | None = None  # cap K, the descriptions per AU; None = all


DEFAULT_WORKERS = 4


def default_workers() -> int:
    """data.num_workers when not given: DEFAULT_WORKERS, at most the CPUs this process may use."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(DEFAULT_WORKERS, cpus)


@dataclass(frozen=True)
class DataSection:
    spec: str | None = None  # --data: manifest, SynthAU folder, or bp4d:|disfa:|gft:ROOT
    lists: str | None = None  # --lists: folder of list files
    fold: int | None = None  # held-out fold (None: the data's default)
    image_size: int = 224
    # DataLoader worker processes (0 = load in the training process); default 4, at most one per CPU this process may
    # use (4 workers on 2 CPUs only contend, and torch warns about it)
    num_workers: int = field(default_factory=default_workers)
    aus: tuple[int, ...] | None = None  # train on these AUs (an AU spec: 1,2,4 / 1-7 / bp4d); None = the data's
    align: bool = False  # raw images: detect and align each face as predict does (hiva_core.data.aligned), cached
    align_cache: str | None = None  # crop cache of data.align; None = hiva_aligned/ beside the manifest / image root
    # Per-AU thresholds are chosen on the data's split=val rows, else on this share of the training subjects, held out
    # of training (hiva_core.data.splits); 0 = train on every subject and keep 0.5.
    val_fraction: float = 0.1
    augment: str = "strong"  # training augmentation: strong | basic | none (hiva_core.data.transforms)
    # An absent label beside a visible intensity (AU<k>_int > 0: a SynthAU trace below the occurrence cut) in the
    # training and validation rows: "absent" as labelled, or "unknown" (label and intensity left out of the losses).
    traces: str = "absent"

    def __post_init__(self) -> None:
        _require(
            (self.image_size >= 8, "data.image_size must be >= 8"),
            (self.num_workers >= 0, "data.num_workers must be >= 0"),
            (0 <= self.val_fraction < 1, "data.val_fraction must be in [0, 1)"),
            (self.augment in ("strong", "basic", "none"), "data.augment must be strong, basic or none"),
            (self.traces in ("absent", "unknown"), "data.traces must be absent or unknown"),
        )
        if self.aus is not None:
            from augtext.facs import parse_au_spec

            parse_au_spec(",".join(str(a) for a in self.aus))  # a code FACS lacks is a UserError listing valid ones


def _model_overrides(self) -> dict[str, Any]:
    """create_model keyword overrides: the keys set to something other than None (name/text_dim excluded)."""
    out = {}
    for f in fields(self):
        value = getattr(self, f.name)
        if f.name not in ("name", "text_dim") and value is not None:
            out[f.name] = value
    return out


def _model_section() -> type:
    """ModelSection, made from ModelConfig so that a new model option is a config key without a second list:
    `name` (a registered model), every ModelConfig option as an optional override (None = the model's own default),
    then `text_dim`: the text-embedding dim the model expects (None = the prior's; set it to catch a cache built with
    another embedding model, a mismatch is a UserError naming both dims)."""
    hints = typing.get_type_hints(ModelConfig)
    options = [
        (f.name, hints[f.name] | None, field(default=None))
        for f in fields(ModelConfig)
        if f.name not in ("name", "num_aus", "text_dim")
    ]
    return dataclasses.make_dataclass(
        "ModelSection",
        [("name", str, field(default="hiva")), *options, ("text_dim", int | None, field(default=None))],
        frozen=True,
        namespace={
            "overrides": _model_overrides,
            "__doc__": "`name` picks a registered model; every other non-None "
            "key is passed to create_model as an override (see ModelConfig).",
        },
    )


ModelSection = _model_section()
ModelSection.__module__ = __name__  # for pickle and repr; make_dataclass takes module= only from Python 3.12


@dataclass(frozen=True)
class OptimSection:
    lr: float = 1e-4
    weight_decay: float = 0.05  # AdamW; not applied to norms, biases and other 1-D parameters
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_ratio: float = 0.05  # linear warmup over this fraction of the optimizer steps, then cosine decay
    min_lr_ratio: float = 0.01  # the cosine ends at lr * min_lr_ratio
    grad_clip: float = 1.0  # max gradient norm; 0 = no clipping
    accum_steps: int = 1  # gradient accumulation: optimizer step every N batches
    # The backbone's learning rate is lr * this (its own AdamW groups); 0 keeps its weights as loaded (BatchNorm
    # statistics still follow the data). Below 1 it stays nearer its ImageNet features (LP-FT's point, Kumar 2022).
    backbone_lr_scale: float = 1.0
    # Decay of an exponential moving average of the weights, taken after every optimizer step (0 = off). When on,
    # the average is what is evaluated and saved (model.safetensors); last.pt keeps both. 0.998 averages over about
    # the last 500 steps; early steps use less (hiva_core.train_state.ema_decay).
    ema: float = 0.0

    def __post_init__(self) -> None:
        _require(
            (self.accum_steps >= 1, "optim.accum_steps must be >= 1"),
            (0 <= self.ema < 1, "optim.ema must be in [0, 1) (0 = off)"),
            (0 < self.lr < math.inf, "optim.lr must be a finite number > 0"),
            (0 <= self.backbone_lr_scale <= 1, "optim.backbone_lr_scale must be in [0, 1]"),
            (0 <= self.warmup_ratio < 1, "optim.warmup_ratio must be in [0, 1)"),
        )


# train.select: the validation score that chooses the kept epoch (its key in a threshold record) and its words;
# "last" (the last evaluated epoch: no selection) and "test" (the test split's F1 at 0.5, as the field reports) are
# the other choices. "last" is the default: under the cosine schedule, which ends near zero, the last epoch was as
# good or better on average than any validation choice, and a validation slice of a few hundred frames can peak
# early by chance and keep a much weaker epoch (bench/results/selection.json). val_auc reads the ranking,
# threshold-free; val reads F1 at thresholds chosen on the same rows, which on a small slice is optimistic and noisy
# and favours early epochs. thresholds.val_score reads them.
VAL_SELECT = {
    "val_auc": ("val_auc", "validation avg AUC"),
    "val": ("val_f1", "validation avg F1 at its per-AU thresholds"),
}
SELECT = ("last", *VAL_SELECT, "test")


@dataclass(frozen=True)
class TrainSection:
    epochs: int = 20
    batch_size: int = 32  # per process: under torchrun the global batch is batch_size x world size
    eval_batch_size: int | None = None  # None = 2 x batch_size
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "bf16"  # bf16 | fp16 | fp32; autocast only on CUDA (CPU trains in fp32)
    channels_last: bool = True  # NHWC memory layout (faster on CUDA and on CPU: see train_state.use_channels_last)
    align_weight: float = 0.1  # lambda of the vision-text alignment loss
    region_weight: float = 0.1  # lambda of the loss that keeps each AU map inside its face region (task.AUTask)
    # lambda of the expression-geometry loss (a model with model.geometry on; 1, 3 and 10 measured)
    geometry_weight: float = 3.0
    # lambda of the AU-intensity loss (a model with model.intensity on, data with AU<k>_int columns)
    intensity_weight: float = 1.0
    max_steps_per_epoch: int | None = None  # cap the batches per epoch (smoke runs)
    stop_after: int | None = None  # end this invocation after N epochs (resumable; e.g. a time-limited job)
    eval_every: int = 1  # evaluate on the test split every N epochs (and always after the last)
    # which epoch's model to keep: last (the last evaluated epoch) | val_auc (validation avg AUC) | val (validation F1
    # at its thresholds) | test (the test split's F1, as the field reports)
    select: str = "last"
    log_every: int = 10  # TensorBoard step logging period
    tensorboard: bool = True  # when the tensorboard package is installed
    progress: bool = True  # rich progress bars
    # DDP: whether some parameters are left out of the loss (an ablation's branch); None: found out before the first
    # step from one training batch (hiva_core.train_state.unused_parameters)
    find_unused_parameters: bool | None = None

    def __post_init__(self) -> None:
        _require(
            (self.epochs >= 1, "train.epochs must be >= 1"),
            (self.batch_size >= 1, "train.batch_size must be >= 1"),
            (self.precision in ("bf16", "fp16", "fp32"), "train.precision must be bf16, fp16 or fp32"),
            (self.eval_every >= 1, "train.eval_every must be >= 1"),
            (self.select in SELECT, f"train.select must be one of {', '.join(SELECT)}"),
            (self.log_every >= 1, "train.log_every must be >= 1"),
            *(
                (value is None or value >= 1, f"train.{name} must be >= 1 (or unset)")
                for name, value in (
                    ("eval_batch_size", self.eval_batch_size),
                    ("max_steps_per_epoch", self.max_steps_per_epoch),
                    ("stop_after", self.stop_after),
                )
            ),
        )


@dataclass(frozen=True)
class TrainConfig:
    text: TextSection = field(default_factory=TextSection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)


_SECTION_TYPES = {
    "text": TextSection,
    "data": DataSection,
    "model": ModelSection,
    "optim": OptimSection,
    "train": TrainSection,
}


def valid_keys() -> list[str]:
    """Every dotted key the config accepts."""
    return [f"{name}.{f.name}" for name, cls in _SECTION_TYPES.items() for f in fields(cls)]


def _unknown(key: str, where: str) -> UserError:
    """Name the key, suggest the closest valid one, list the valid keys (of its section when that exists)."""
    section = key.partition(".")[0]
    keys = valid_keys()
    same = [k for k in keys if k.startswith(section + ".")] if section in _SECTION_TYPES else keys
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UserError(f"unknown config key '{key}'{where}{hint}; valid keys: {', '.join(same)}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert `value` to the annotated type `tp` (int, float, bool, str, Optional[...], tuple[X, ...])."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~")):
            return None
        return _coerce(value, args[0], key)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(v, item, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.strip().lower() in ("true", "yes", "on", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise UserError(f"config key '{key}' needs true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise UserError(f"config key '{key}' needs an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise UserError(f"config key '{key}' needs an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise UserError(f"config key '{key}' needs a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key '{key}' needs a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"config key '{key}' needs a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp} for {key}")  # a bug in this module, not bad input


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def apply_updates(cfg: TrainConfig, updates: Mapping[str, Any], where: str = "") -> TrainConfig:
    """Return a copy of cfg with `{"section.key": value}` applied (None values are applied too)."""
    sections = {name: getattr(cfg, name) for name in _SECTION_TYPES}
    for dotted, value in updates.items():
        section, _, key = dotted.partition(".")
        cls = _SECTION_TYPES.get(section)
        if cls is None or key not in {f.name for f in fields(cls)}:
            raise _unknown(dotted, where)
        if dotted == "data.aus" and isinstance(value, str) and value.strip().lower() not in ("none", "null", "~"):
            from augtext.facs import parse_au_spec

            value = parse_au_spec(value)  # "1,2,4", "1-7", "bp4d": the same AU specs as augtext
        coerced = _coerce(value, _hints(cls)[key], dotted)
        sections[section] = replace(sections[section], **{key: coerced})
    return TrainConfig(**sections)


def flatten(tree: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """`{"train": {"epochs": 3}}` -> `{"train.epochs": 3}`; a section that is not a mapping is an error."""
    flat = {}
    for section, body in tree.items():
        if section not in _SECTION_TYPES:
            raise _unknown(str(section), where)
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise UserError(f"config section '{section}'{where} must be a mapping of keys, got {body!r}")
        for key, value in body.items():
            flat[f"{section}.{key}"] = value
    return flat


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as flat dotted keys (unknown keys are reported by apply_updates)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:  # one line: YAML's own message spans several
        raise UserError(
            f"config file {path} is not valid YAML ({short_error(exc)}); fix it or leave --config out"
        ) from None
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise UserError(f"config file {path} must hold a mapping of sections (text, data, model, optim, train)")
    return flatten(tree, where=f" in {path}")


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """`--set section.key=value` strings -> {dotted: value}; values are parsed as YAML scalars/lists."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set expects section.key=value, got {item!r}")
        key, _, raw = item.partition("=")
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        out[key] = value
    return out


def resolve_config(
    yaml_path: str | Path | None = None,
    cli: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    base: TrainConfig | None = None,
) -> TrainConfig:
    """defaults (or `base`) <- YAML <- CLI options (dotted keys; None = not given) <- `--set` overrides."""
    cfg = base or TrainConfig()
    if yaml_path is not None:
        cfg = apply_updates(cfg, read_yaml(yaml_path), where=f" in {yaml_path}")
    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in (cli or {}).items() if v is not None}
    cfg = apply_updates(cfg, given)
    return apply_updates(cfg, parse_set(overrides), where=" in --set")


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """JSON-ready nested dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(tree: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a config from `to_dict` output (e.g. a run's config.json); unknown keys are errors."""
    return apply_updates(TrainConfig(), flatten(tree, where=" in config.json"), where=" in config.json")
