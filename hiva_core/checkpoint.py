"""A trained run, loaded for inference: the model rebuilt from config.json, its weights from model.safetensors, the
text prior from text_prior.safetensors and the per-AU thresholds from thresholds.json (no text cache needed).
The run folder's layout is `hiva_core.run_folder`'s; `load_run` reads it through `RunFolder`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from augtext.errors import UserError
from augtext.textprior import TextPrior
from hiva_core.run_folder import CONFIG, RunFolder
from hiva_core.serialize import check_finite
from hiva_core.thresholds import DEFAULT_THRESHOLD, read_thresholds, threshold_number


def build_model(name: str, num_aus: int, text_dim: int, options: dict[str, Any]) -> nn.Module:
    """create_model with the run's options; weights come from the run, so no hub download or backbone file."""
    from hiva_core.models import create_model
    from hiva_core.models.hiva import LEGACY_MODEL_OPTIONS

    options = {k: v for k, v in {**LEGACY_MODEL_OPTIONS, **options}.items() if k not in ("name", "num_aus", "text_dim")}
    options.update(pretrained=False, backbone_weights=None)
    return create_model(name, num_aus=num_aus, text_dim=text_dim, **options)


def load_weights(model: nn.Module, path: Path) -> None:
    """Load model.safetensors into `model`; UserError naming the file when missing, corrupt or not matching."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"{path} not found: the run has no trained model yet (training ends each epoch with it)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        parts = [
            f"{len(v)} {what} (e.g. {v[0]})"
            for what, v in (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes))
            if v
        ]
        raise UserError(
            f"{path} does not match the model in {path.parent / CONFIG}: tensors {'; '.join(parts)}; "
            "was it written by another hiva_core version or edited by hand?"
        )
    check_finite(state, path)
    model.load_state_dict(state, strict=True)


# ImageNet normalisation maps [0, 1] to [-2.12, 2.64]; beyond this a tensor holds pixel values (0-255), not crops
# normalised as build_transforms does (a margin for resizing filters that overshoot)
MAX_NORMALISED = 10.0
PREDICT_BATCH = 64  # crops read and scored at a time by LoadedRun.predict


def prior_tensors(prior: TextPrior, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior's (A,K,D) embeddings and (A,K) mask as tensors on `device` (moved once, reused every step)."""
    return (torch.from_numpy(prior.embeddings).to(device), torch.from_numpy(prior.mask).to(device))


@dataclass
class LoadedRun:
    """A trained model ready for inference: `predict(images)` -> `{"probs": (B,A), "maps": (B,A,h,w) | None}`.

    Outputs are float32 CPU tensors. `images` are faces already aligned as hiva_core aligns them
    (`hiva_core.faces.align`: the crops `hiva_core predict` and `prepare` make; `predict` does not detect or align):
    a (B,3,S,S) tensor ImageNet-normalised at S = `image_size` ((B,6,S,S), each face then its neutral frame, for a run
    with `reference`), or a list of crops (PIL images or image files) that `predict` transforms so itself.
    """

    model: nn.Module
    prior: TextPrior
    aus: list[int]
    image_size: int
    config: dict[str, Any]
    device: torch.device
    run_dir: Path
    text_emb: torch.Tensor = field(repr=False, default=None)
    text_mask: torch.Tensor = field(repr=False, default=None)
    thresholds: dict[int, float] = field(default_factory=dict)  # thresholds.json; an AU not in it uses 0.5
    # AUs the run was not trained on (`--aus`, hiva_core.vocabulary.select_aus): how each is scored, in words
    unseen: dict[int, str] = field(default_factory=dict)
    # thresholds.json's `alone` ones (model.reference_dropout): for faces read without their neutral frame
    alone_thresholds: dict[int, float] = field(default_factory=dict)
    # Test-time flip: average each face's probabilities with its mirror image's, and its maps with the mirror's
    # maps mirrored back (`eval --flip`, `predict --flip`; 2x the model's time). AU labels are bilateral.
    flip: bool = False

    @property
    def reference(self) -> bool:
        """Whether the model reads each face beside a neutral frame of the same person (`model.reference`): its
        images are then (B, 6, H, W), the face and the neutral frame."""
        return bool(self.config.get("model_config", {}).get("reference", False))

    @property
    def reads_alone(self) -> bool:
        """Whether the model also reads a face without its neutral frame, (B, 3, H, W): every run without
        `reference`, and one trained with `model.reference_dropout` > 0."""
        model = self.config.get("model_config", {})
        return not self.reference or bool(model.get("reference_dropout", 0))

    @property
    def channels(self) -> int:
        """Channels of the model's input images: 3, or 6 with `reference` (the face, then its neutral frame)."""
        return 6 if self.reference else 3

    def au_thresholds(
        self, threshold: float | str | Path | None = None, alone: bool = False
    ) -> tuple[list[float], str]:
        """The threshold of each of `aus` and a few words on where they come from: `threshold` (the --threshold
        option) for every AU when it is a number, the per-AU ones of a thresholds file when it names one (`eval
        --save-thresholds`), else the run's stored ones (0.5 for an AU without one); `alone` (faces read without
        their neutral frame by a run with `model.reference`): its stored ones for that, where it has them."""
        number = threshold_number(threshold)
        if number is not None:
            return [number] * len(self.aus), f"threshold {number:g} (--threshold)"
        none = "threshold 0.5 (the run stores no thresholds)"
        if threshold is None and alone and self.alone_thresholds:
            table, source = self.alone_thresholds, "the run's per-AU thresholds for faces read alone"
        elif threshold is None:
            table, source = self.thresholds, "the run's per-AU thresholds"
            if table:  # thresholds, but none of these AUs': ones it was not trained on (open vocabulary)
                none = "threshold 0.5 (the run has no thresholds for these AUs: it was not trained on them)"
        else:
            fix = (
                "--threshold takes a number in [0, 1] (one threshold for every AU, e.g. 0.5) or a thresholds JSON "
                "file (`hiva_core eval --save-thresholds`, or a run's thresholds.json)"
            )
            if Path(threshold).is_dir():
                raise UserError(f"--threshold {threshold} is a folder; {fix}: {RunFolder(threshold).thresholds_file}?")
            table = read_thresholds(threshold, fix)
            source, none = f"the per-AU thresholds of {threshold}", f"threshold 0.5 ({threshold} has none of these AUs)"
        stored = [a for a in self.aus if a in table]
        text = source if stored else none
        if stored and len(stored) < len(self.aus):
            text += " (0.5 for " + ", ".join(f"AU{a}" for a in self.aus if a not in table) + ")"
        return [table.get(a, DEFAULT_THRESHOLD) for a in self.aus], text

    @property
    def input_channels(self) -> tuple[int, ...]:
        """The channel counts `predict` takes: (3,), (6,) for a run with `reference`, (6, 3) when it also reads faces
        alone (`reads_alone`)."""
        return (6, 3) if self.reference and self.reads_alone else (self.channels,)

    @torch.no_grad()
    def predict(
        self, images: torch.Tensor | Iterable[Image.Image | str | os.PathLike], batch_size: int = PREDICT_BATCH
    ) -> dict[str, torch.Tensor | None]:
        """AU probabilities `{"probs": (B, A), "maps": (B, A, h, w) | None}` (float32, CPU; AUs in `aus` order) of
        aligned face crops (see the class): a float tensor (B, C, S, S), ImageNet-normalised at S = `image_size`
        (`hiva_core.data.transforms.build_transforms(image_size)` of each crop), C in `input_channels`; or aligned
        crops as PIL images or image file paths, in a list or any iterable of them (a pandas column, a generator; one
        alone is a batch of one; none gives B = 0), read as the image files are (`hiva_core.faces.media.to_rgb`:
        16-bit and other modes scaled to 8-bit RGB) and transformed the same way. They are read and scored
        `batch_size` at a time, so memory does not grow with their number.
        Raises TypeError for anything else, a tensor that is not floating point included (uint8 pixels: normalise
        them as build_transforms does); ValueError for a float tensor of another shape than (B, C, S, S), with
        values no normalised crop has (0-255 pixels) or with NaN or infinite values (0-1 pixels never normalised
        cannot be told from a normalised crop: normalise them); UserError for a file that is missing or no image."""
        if batch_size < 1:
            raise ValueError(f"LoadedRun.predict: batch_size {batch_size}; give 1 or more")
        items = self._inputs(images)
        chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)] or [items]
        parts = [self._score(self._batch(chunk)) for chunk in chunks]
        maps = [m for _, m in parts if m is not None]
        return {"probs": torch.cat([p for p, _ in parts]), "maps": torch.cat(maps) if maps else None}

    def _score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(probs, maps) of one batch on the CPU; the mean with the mirror image's under `flip`."""
        images = images.to(self.device, torch.float32)
        out = self.model(images, self.text_emb, self.text_mask)
        probs, maps = torch.sigmoid(out["logits"].float()), out.get("maps")
        maps = maps.float() if maps is not None else None
        if self.flip:
            mirror = self.model(images.flip(-1), self.text_emb, self.text_mask)
            probs = (probs + torch.sigmoid(mirror["logits"].float())) / 2
            if maps is not None:
                maps = (maps + mirror["maps"].float().flip(-1)) / 2
        return probs.cpu(), maps.cpu() if maps is not None else None

    def _expected(self) -> str:
        size, channels = self.image_size, " or ".join(map(str, self.input_channels))
        return (
            f"a float tensor (B, {channels}, {size}, {size}) of aligned, ImageNet-normalised face crops, or aligned "
            "face crops (PIL images or image file paths) in a list or other iterable"
        )

    def _inputs(self, images) -> torch.Tensor | list[Image.Image | str | os.PathLike]:
        """`predict`'s input checked: the tensor, or the crops as a list (see predict)."""
        size, expected = self.image_size, self._expected()
        if isinstance(images, torch.Tensor):
            if not images.is_floating_point():
                raise TypeError(
                    f"LoadedRun.predict: a {images.dtype} tensor; give {expected}: each crop scaled to [0, 1] and "
                    "normalised with the ImageNet mean and std, as hiva_core.data.transforms.build_transforms("
                    f"{size}) makes it (not 0-255 pixel values)"
                )
            if images.ndim != 4 or images.shape[1] not in self.input_channels or images.shape[2:] != (size, size):
                raise ValueError(f"LoadedRun.predict: a tensor of shape {tuple(images.shape)}; give {expected}")
            if images.numel() and not torch.isfinite(images.detach()).all():
                raise ValueError(f"LoadedRun.predict: a tensor holding NaN or infinite values; give {expected}")
            if images.numel() and images.detach().abs().max() > MAX_NORMALISED:
                raise ValueError(
                    f"LoadedRun.predict: a tensor with values up to {float(images.detach().abs().max()):g}, not "
                    f"ImageNet-normalised (within about +-2.7); give {expected}, as hiva_core.data.transforms."
                    f"build_transforms({size}) makes it (0-255 pixel values need scaling to [0, 1], then normalising)"
                )
            return images
        if isinstance(images, (Image.Image, str, os.PathLike)):
            images = [images]
        pixels = getattr(getattr(images, "dtype", None), "kind", "O") not in "OUS"  # an image array, not of paths
        if isinstance(images, (bytes, dict)) or not isinstance(images, Iterable) or pixels:
            raise TypeError(f"LoadedRun.predict takes {expected}; got {_kind(images)}")
        images = list(images)
        wrong = next((x for x in images if not isinstance(x, (Image.Image, str, os.PathLike))), None)
        if wrong is not None:
            raise TypeError(f"LoadedRun.predict takes {expected}; got crops holding {_kind(wrong)}")
        if images and 3 not in self.input_channels:
            raise TypeError(
                f"LoadedRun.predict: the model of {self.run_dir} (model.reference) reads each face beside a neutral "
                f"frame of the same person; give a (B, 6, {self.image_size}, {self.image_size}) tensor, each face's "
                "crop then its neutral frame's, or use `hiva_core predict --neutral`"
            )
        return images

    def _batch(self, images: torch.Tensor | list) -> torch.Tensor:
        """One chunk of checked inputs as a (B, C, S, S) tensor: the crops read and transformed."""
        if isinstance(images, torch.Tensor):
            return images
        if not images:
            return torch.zeros(0, self.input_channels[-1], self.image_size, self.image_size)
        from hiva_core.data.transforms import build_transforms
        from hiva_core.faces.media import open_rgb, to_rgb

        def read(x: Image.Image | str | os.PathLike) -> Image.Image:
            if isinstance(x, Image.Image):
                return to_rgb(x)
            try:
                return open_rgb(x)
            except (OSError, ValueError) as exc:  # missing, a folder, no image (PIL's UnidentifiedImageError)
                what = "not found" if not Path(x).exists() else f"not a readable image ({type(exc).__name__})"
                raise UserError(f"LoadedRun.predict: {x} is {what}; give aligned face crops") from None

        transform = build_transforms(self.image_size, augment=False)
        return torch.stack([transform(read(x)) for x in images])


def _kind(value: Any) -> str:
    """A value's type, for an error message (with the shape of an array)."""
    shape = getattr(value, "shape", None)
    empty = "an empty " if isinstance(value, Sequence) and not value else ""
    return empty + type(value).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")


def check_not_fold_parent(run: RunFolder, also: str = "") -> None:
    """A UserError for a `--folds all` folder given where one run is meant: it holds one run per fold (fold1/, ...),
    not a model; `also` names another way (eval's --folds all)."""
    if not run.is_run() and run.fold_runs():
        raise UserError(
            f"{run.path} holds one run per fold ({', '.join(r.path.name for r in run.fold_runs())}); "
            f"{also}give --run {run.path}/foldK"
        )


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> LoadedRun:
    """Rebuild a trained model from config.json + model.safetensors + text_prior.safetensors (no text cache).

    Missing or corrupt files are UserErrors naming the file. The model is in eval mode on `device` (default: auto).
    """
    from hiva_core.device import pick_device

    run = RunFolder(run_dir)
    if not run.path.is_dir():
        what = "is a file, not a run folder" if run.path.exists() else "not found"
        raise UserError(f"run folder {run.path} {what}; give the folder written by `hiva_core train --out`")
    check_not_fold_parent(run)
    info = run.read_config()
    done, planned = run.progress() or (None, None)
    if done is not None and done < planned:  # stopped (Ctrl-C, train.stop_after) before its last epoch
        import warnings

        finish = "`hiva_core train --resume` finishes it" if run.can_resume() else "stopped before last.pt was saved"
        warnings.warn(
            f"{run.path} is unfinished: {done} of its {planned} epochs trained ({finish}); its kept epoch so far is "
            "used",
            UserWarning,
            stacklevel=2,
        )
    prior = run.read_prior()
    aus = [int(a) for a in info["aus"]]
    if prior.aus != aus:
        raise UserError(f"{run.prior_file} holds AUs {prior.aus} but {run.config_file} says {aus}")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model = build_model(info["model_name"], len(aus), prior.dim, dict(info["model_config"]))
    load_weights(model, run.model_file)
    model.to(dev).eval()
    emb, mask = prior_tensors(prior, dev)
    return LoadedRun(
        model=model,
        prior=prior,
        aus=aus,
        image_size=int(info["image_size"]),
        config=info,
        device=dev,
        run_dir=run.path,
        text_emb=emb,
        text_mask=mask,
        thresholds=run.read_thresholds(),
        alone_thresholds=run.read_thresholds(alone=True),
    )
