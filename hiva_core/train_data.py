"""What a run trains and is scored on: the train, test and validation splits (each aligned first with `data.align`),
the label checks made before any step, the text prior, and the loaders (`fit`'s setting up)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, DistributedSampler

from augtext.errors import UserError
from hiva_core.config import TrainConfig
from hiva_core.distributed import DistInfo, ShardSampler, main_first
from hiva_core.run_folder import RunFolder

if TYPE_CHECKING:
    from augtext.textprior import TextPrior
    from hiva_core.data import AUDataset
    from hiva_core.data.splits import DataLayout


def discover_folds(spec: str, lists: str | None) -> list[int]:
    """The folds `--folds all` trains: 1..3 for BP4D/DISFA lists, the `fold` column's values for a manifest."""
    from hiva_core.data.lists import LIST_FORMATS
    from hiva_core.data.manifest import manifest_folds

    head, sep, _ = spec.partition(":")
    if sep and head.lower() in LIST_FORMATS and len(head) > 1:
        if not LIST_FORMATS[head.lower()].folds:
            raise UserError(f"{head} has one official train/test split, no folds; drop --folds all")
        return [1, 2, 3]
    return manifest_folds(spec)


@dataclass
class Splits:
    """The rows a run uses: train, test (model selection, as the field does), and val (per-AU thresholds; None
    without a validation slice), with `val_how`, how the validation rows were chosen, and `traces`, how many absent
    labels beside a visible intensity the train and val rows leave unknown (`data.traces=unknown`)."""

    train: AUDataset
    test: AUDataset
    val: AUDataset | None
    val_how: str
    traces: int = 0
    held_out: str = ""  # with folds and no --fold: which fold is the test split, and how to choose another ("": none)


def build_datasets(cfg: TrainConfig, info: DistInfo, device: torch.device | None = None) -> Splits:
    """The train, test and validation splits (hiva_core.data.splits), each aligned first with `data.align`. Images are
    checked up front (that each exists and opens as an image): a bad file should fail now, not hours into an epoch."""
    from hiva_core.data import build_dataset, check_images
    from hiva_core.data.splits import check_split_subjects, data_layout

    data = cfg.data
    if data.spec is None:
        raise UserError("hiva_core train needs --data (a manifest, a SynthAU folder, or bp4d:|disfa:|gft:ROOT)")
    common = {"fold": data.fold, "lists": data.lists, "image_size": data.image_size}
    train_ds = build_dataset(data.spec, split="train", augment=data.augment, aus=data.aus, **common)
    found = {
        "train": train_ds,
        "test": build_dataset(data.spec, split="test", augment=False, aus=train_ds.aus, **common),
    }
    check_split_subjects(data.spec, data.lists, data.fold)  # list files: no test subject among the trained ones
    layout = data_layout(data.spec) if data.fold is None else None
    if layout is not None and layout.has_val:  # the data's own split=val rows
        found["val"] = build_dataset(data.spec, split="val", augment=False, aus=train_ds.aus, **common)
    if data.align:
        from hiva_core.data.aligned import align_dataset

        with main_first(info):  # rank 0 detects and caches; the others then read its crops
            found = {name: align_dataset(ds, data.align_cache, device=device, split=name) for name, ds in found.items()}
    for name, ds in found.items():
        if len(ds) == 0:
            raise UserError(f"{data.spec}: the {name} split is empty")
        if cfg.model.reference:  # each face beside its neutral frame (the validation slice inherits it)
            ds.pair_references()
    # Labels before images (cheap before slow)
    train_ds, val_ds, how, traces = split_checked(cfg, found["train"], found.get("val"))
    for ds in found.values():  # headers too: a bad test image would otherwise fail only after a whole epoch
        check_images(ds, progress=info.is_main and sys.stderr.isatty(), headers=True)
    if val_ds is not None:  # validation rows are evaluated, not augmented
        val_ds.transform = found["test"].transform
    return Splits(train_ds, found["test"], val_ds, how, traces, default_fold(data.spec, data.lists, layout))


def default_fold(spec: str, lists: str | None, layout: DataLayout | None) -> str:
    """What to say when data with folds is trained without --fold (`layout`: data_layout of the spec then, else
    None): fold 1 is held out as the test split (as the readers default; a manifest's `split` column, when it has
    one, chooses the rows instead). "" when a fold was given or the data has none."""
    from hiva_core.data.splits import list_format

    if layout is None or not layout.folds or (list_format(spec) is None and layout.splits):
        return ""
    folds = ", ".join(map(str, discover_folds(spec, lists)))
    return (
        f"no --fold given: fold 1 is held out as the test split (the data's folds: {folds}); "
        "choose another with --fold K, or train every fold with --folds all"
    )


def split_checked(cfg: TrainConfig, train: AUDataset, data_val: AUDataset | None = None):
    """validation_split of the training rows, refused (check_train_labels) where an AU has no known label among the
    rows trained on: its head would train on nothing. With `data.traces=unknown` the traces of the training and
    validation rows are left unknown first (what the model learns and is thresholded on; the test split keeps its
    labels). Returns (train, val | None, how the validation rows were chosen, traces left unknown)."""
    from hiva_core.data.splits import check_train_labels, validation_split

    data = cfg.data
    traces = 0
    if data.traces == "unknown":
        traces = sum(ds.unknown_traces() for ds in (train, data_val) if ds is not None)
    where = "the train split" + (f" of fold {data.fold}" if data.fold is not None else "")
    check_train_labels(train, where)
    train_ds, val_ds, how = validation_split(train, data.val_fraction, cfg.train.seed, data_val)
    if len(train_ds) < len(train):  # the held-out slice may take an AU's only labels
        check_train_labels(train_ds, f"{where}, less its validation slice (data.val_fraction={data.val_fraction:g}),")
    return train_ds, val_ds, how, traces


def check_fold_labels(cfg: TrainConfig, fold_ids: list[int]) -> None:
    """Every fold's training labels, checked as each fold's own run will (split_checked), and for list files that its
    train and test lists share no subject (check_split_subjects), before the first fold trains: with --folds all a
    fold refused after the ones before it trained for hours would waste them. Reads the lists or the manifest only
    (no images, no alignment: align_dataset keeps the rows and labels)."""
    from hiva_core.data import build_dataset
    from hiva_core.data.splits import check_split_subjects

    data = cfg.data
    for k in fold_ids:  # a fold's run holds its validation slice out of its own training rows (build_datasets)
        train = build_dataset(
            data.spec, split="train", fold=k, lists=data.lists, image_size=data.image_size, aus=data.aus
        )
        split_checked(replace(cfg, data=replace(data, fold=k)), train)
        check_split_subjects(data.spec, data.lists, k)


def read_prior(cfg: TrainConfig, run: RunFolder, aus: list[int], resume: bool) -> TextPrior:
    """The text prior: the run's own copy when resuming (the weights were fitted to it), else the cache's."""
    from augtext.prior import load_text_prior

    if resume:
        prior = run.read_prior()
        if prior.aus != aus:
            raise UserError(f"{run.prior_file} holds AUs {prior.aus}, the data gives {aus}; resume with the same data")
    else:
        if cfg.text.cache is None:
            raise UserError("hiva_core train needs --text-cache DIR (an augtext cache with embeddings)")
        prior = load_text_prior(
            cfg.text.cache, aus=aus, model=cfg.text.model, styles=cfg.text.styles, max_per_au=cfg.text.max_per_au
        )
    if cfg.model.text_dim is not None and cfg.model.text_dim != prior.dim:
        raise UserError(
            f"model.text_dim is {cfg.model.text_dim} but the text prior ({prior.model}, in "
            f"{cfg.text.cache or run.prior_file}) holds {prior.dim}-d embeddings; embed the cache "
            "with the matching model or drop model.text_dim"
        )
    return prior


@dataclass
class Loaders:
    """The training loader, whose order is drawn from `generator` (re-seeded every epoch; DistributedSampler's
    set_epoch under DDP), and the evaluation loader, which shards the test split across ranks without padding."""

    train: DataLoader
    test: DataLoader
    generator: torch.Generator
    sampler: DistributedSampler | None
    batches: int  # training batches per epoch: the loader's length, capped by train.max_steps_per_epoch
    val: DataLoader | None = None  # the validation rows, sharded as the test split: per-AU thresholds

    def reseed(self, seed: int, epoch: int) -> None:
        self.generator.manual_seed(seed)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)


def build_loaders(cfg: TrainConfig, splits: Splits, device: torch.device, info: DistInfo) -> Loaders:
    train_ds, batch = splits.train, cfg.train.batch_size
    gen = torch.Generator()
    common = {"num_workers": cfg.data.num_workers, "pin_memory": device.type == "cuda"}
    if info.enabled:
        sampler = DistributedSampler(
            train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.train.seed, drop_last=True
        )
        train = DataLoader(
            train_ds,
            batch_size=batch,
            sampler=sampler,
            generator=gen,
            drop_last=len(train_ds) // info.world_size > batch,
            **common,
        )
    else:
        sampler = None
        train = DataLoader(
            train_ds, batch_size=batch, shuffle=True, generator=gen, drop_last=len(train_ds) > batch, **common
        )

    def sharded(ds: AUDataset) -> DataLoader:
        eval_batch = cfg.train.eval_batch_size or 2 * batch
        return DataLoader(
            ds, batch_size=eval_batch, sampler=ShardSampler(len(ds), info.rank, info.world_size), **common
        )

    cap = cfg.train.max_steps_per_epoch
    batches = len(train) if cap is None else min(len(train), cap)
    val = sharded(splits.val) if splits.val is not None else None
    return Loaders(train, sharded(splits.test), gen, sampler, batches, val)
