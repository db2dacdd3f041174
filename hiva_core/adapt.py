"""Adapting a trained run to a new domain without labels (`hiva_core adapt`): BatchNorm statistics re-estimated on
that domain's faces (AdaBN, Li et al. 2016).

A CNN trained on SynthAU normalises every layer with the means and variances of rendered faces; a camera, a face model
or a light that shifts those statistics shifts every probability after them. Re-estimating them on unlabelled faces
of the new domain (the weights untouched) is the classic unsupervised remedy. `adapt_batchnorm` does it in place on a
model; `run_adapt` writes a new run folder whose model holds the adapted statistics, so that `eval`, `predict` and
`export` use it like any run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import torch
from torch import nn

from augtext.errors import UserError
from hiva_core.progress import progress_bar

MIN_FACES = 16  # fewer faces than this give statistics noisier than the trained ones
MIN_FACE_PX = 20.0  # --min-face when not given: predict's smallest face searched for


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers that keep running statistics, in module order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def adapt_batchnorm(
    model: nn.Module, batches: Iterable[torch.Tensor], text: tuple, device: torch.device | None = None
) -> int:
    """Replace every BatchNorm layer's running mean and variance by their average over `batches` (image tensors
    (B,3,H,W), ImageNet-normalised): each layer normalises each batch with the batch's own statistics, as in training,
    and keeps the mean of them, each batch weighted by its size (the running mean is the mean over every image).
    Weights and everything else stay; the model ends in eval mode. Returns the number of images seen. A model without
    BatchNorm (LayerNorm transformers) is an error."""
    layers = batchnorm_layers(model)
    if not layers:
        raise UserError("the model has no BatchNorm layers (a LayerNorm backbone): there are no statistics to adapt")
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
    seen = 0
    try:
        model.eval()
        for m in layers:
            m.train()
        for images in batches:
            for m in layers:  # weight each batch by its size: the running values become the mean over all images
                m.momentum = len(images) / (seen + len(images))
            model(images.to(device) if device is not None else images, *text)
            seen += len(images)
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return seen


def face_batches(faces: Iterable[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Single image tensors grouped into batches of `batch_size` (the last one may be smaller)."""
    faces = iter(faces)
    while chunk := list(islice(faces, batch_size)):
        yield torch.stack(chunk)


def run_adapt(
    run: str | os.PathLike,
    out: str | os.PathLike,
    inputs: Sequence[str | os.PathLike] = (),
    *,
    data: str | None = None,
    fold: int | None = None,
    lists: str | os.PathLike | None = None,
    align: bool | None = None,
    detect: bool = True,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    min_face: float | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Write `out`: the run folder `run` with its BatchNorm statistics re-estimated on faces of a new domain, either
    `inputs` (images, folders, videos; faces detected and aligned as `hiva_core predict` does, or taken as aligned
    crops with `detect=False`; `min_face` in pixels, default MIN_FACE_PX) or the rows of `data` that `hiva_core eval`
    would score (`fold`, `lists`, `align` as there; labels unused, none needed). An option that does not apply to the
    way the faces are given is a UserError (check_options). Every face counts once; at least MIN_FACES are needed.
    `out` holds the run's config.json (with an `adapted` record: from which run, on what, how many faces, paths
    absolute), text prior and thresholds, and the adapted model.safetensors; it is written in a temporary folder and
    renamed, so a failure leaves nothing. Returns the `adapted` record."""
    from augtext.io import check_output_dir
    from hiva_core.checkpoint import load_run
    from hiva_core.data.transforms import build_transforms
    from hiva_core.run_folder import RunFolder
    from hiva_core.serialize import write_json

    if batch_size < 2:
        raise UserError(f"--batch-size must be at least 2 (BatchNorm statistics need a batch), got {batch_size}")
    check_options(inputs, data, fold=fold, lists=lists, align=align, detect=detect, min_face=min_face)
    min_face = MIN_FACE_PX if min_face is None else min_face
    if inputs and detect:
        from hiva_core.faces.stream import check_min_face

        check_min_face(min_face)
    source, target = RunFolder(run), RunFolder(out)
    if not source.is_run():
        raise UserError(f"{source.path} is not a run folder (no {source.config_file.name})")
    check_output_dir(target.path, "--out")
    if target.path.exists() and any(target.path.iterdir()):
        raise UserError(f"--out {target.path} is not empty; the adapted run needs a new folder")
    loaded = load_run(source.path, device=device)
    text = (loaded.text_emb, loaded.text_mask)
    if data is not None:
        from hiva_core.evaluate import run_dataset, run_loader

        dataset, rows = run_dataset(loaded, data, fold, lists, align, labels=False)  # a manifest of paths will do
        what, total = f"{absolute_spec(data)} ({rows.text})", len(dataset)
        with progress_bar("adapt", total, progress) as advance:
            batches = counted((batch["image"] for batch in run_loader(loaded, dataset, batch_size)), advance)
            seen = adapt_batchnorm(loaded.model, batches, text, loaded.device)
    else:
        if not loaded.reads_alone:
            raise UserError(
                f"the run {source.path} reads each face beside its neutral frame (model.reference): adapt it with "
                "--data SPEC, a manifest whose `neutral` column names each face's neutral frame"
            )
        from hiva_core.faces.stream import FaceStream, StageTimer, collect_inputs, frame_total

        sources = collect_inputs(inputs)
        transform = build_transforms(loaded.image_size, augment=False)
        named = ", ".join(os.path.abspath(p) for p in inputs[:3])
        what = named + (f" and {len(inputs) - 3} more input(s)" if len(inputs) > 3 else "")
        with progress_bar("adapt", frame_total(sources), progress) as advance:
            stream = FaceStream(
                sources, StageTimer(), detect=detect, min_face=min_face, device=loaded.device, on_frames=advance
            )
            faces = (transform(face.crop) for face in stream if face.crop is not None)
            seen = adapt_batchnorm(loaded.model, face_batches(faces, batch_size), text, loaded.device)
    if seen < MIN_FACES:
        raise UserError(
            f"found {seen} face(s) in {what}; adapting needs at least {MIN_FACES} (the statistics of fewer are noisier "
            "than the trained ones); nothing written"
        )
    record = {
        "from": os.path.abspath(source.path),
        "on": what,
        "faces": seen,
        "batchnorm_layers": len(batchnorm_layers(loaded.model)),
        "detect": detect if data is None else None,
    }
    config = dict(loaded.config)
    config["adapted"] = [*config.get("adapted", []), record]  # an adapted run adapted again keeps both records
    temp = target.path.parent / f".{target.path.name}.adapting-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        staged = RunFolder(temp)
        temp.mkdir(parents=True)
        write_json(staged.config_file, config)
        shutil.copyfile(source.prior_file, staged.prior_file)
        for name in ("thresholds_file", "train_faces_file"):  # its thresholds; the faces its weights were trained on
            if getattr(source, name).is_file():
                shutil.copyfile(getattr(source, name), getattr(staged, name))
        staged.write_model(loaded.model)
        if target.path.exists():
            target.path.rmdir()  # empty, checked above
        os.replace(temp, target.path)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return record


def check_options(
    inputs: Sequence[str | os.PathLike],
    data: str | None,
    *,
    fold: int | None = None,
    lists: str | os.PathLike | None = None,
    align: bool | None = None,
    detect: bool = True,
    min_face: float | None = None,
) -> None:
    """The faces given one way (`inputs` or `data`), and no option that does not apply to that way: `fold`, `lists`
    and `align` choose and prepare the rows of `data` (`lists` those of list files only), `detect=False` and
    `min_face` tell how faces are found in `inputs` (`min_face` only where they are searched for). Such an option is a
    UserError naming it (taken to no effect, it would be ignored without a word)."""
    from hiva_core.data.lists import list_spec_name

    if bool(inputs) == (data is not None):
        raise UserError("give the faces to adapt to: images, folders or videos, or --data SPEC (one of the two)")
    if inputs:
        for name, value, what in (
            ("--fold", fold, "it chooses the data's rows"),
            ("--lists", lists, "it names the list files of bp4d:|disfa:|gft: data"),
            ("--align" if align else "--no-align", align, "it says whether the data's rows are aligned first"),
        ):
            if value is not None:
                raise UserError(
                    f"{name} applies to --data only ({what}); faces given as images, folders or videos are found and "
                    "aligned as predict does (or taken as aligned crops with --no-detect): drop it"
                )
        if not detect and min_face is not None:
            raise UserError(
                "--min-face sets the smallest face searched for, and with --no-detect none is searched (the inputs "
                "are aligned crops): drop one of the two"
            )
        return
    if not detect:
        raise UserError(
            "--no-detect applies to faces given as images, folders or videos; the rows of --data are read as eval "
            "reads them (--align/--no-align to detect and align them first): drop it"
        )
    if min_face is not None:
        raise UserError(
            "--min-face applies to faces searched for in images, folders or videos; the rows of --data are aligned "
            "(--align) as eval aligns them: drop it"
        )
    if lists is not None and list_spec_name(data) is None:
        raise UserError(
            f"--lists applies to --data bp4d:|disfa:|gft:ROOT (list files) only; {data} is a manifest (or SynthAU "
            "folder), which names its rows itself: drop --lists"
        )


def absolute_spec(data: str) -> str:
    """A --data spec with its path absolute, as config.json stores a run's data.spec (run_folder.absolute_paths)."""
    from hiva_core.config import DataSection, TrainConfig
    from hiva_core.run_folder import absolute_paths

    return absolute_paths(TrainConfig(data=DataSection(spec=data))).data.spec


def counted(batches: Iterable[torch.Tensor], advance) -> Iterator[torch.Tensor]:
    """The batches, telling `advance` how many images each held."""
    for images in batches:
        yield images
        advance(len(images))
