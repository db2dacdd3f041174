"""The run folder: what `hiva_core train` writes and how `eval` / `predict` / `export` read it back.

runs/NAME/
  config.json              resolved TrainConfig + model name/config + AUs + image size + text-prior fingerprint
  model.safetensors        the best model's weights (by average F1 on the test split)
  last.pt                  model + optimizer + scheduler + epoch + RNG + best score, for --resume
  text_prior.safetensors   the text prior the model was trained with (prediction needs no text cache)
  metrics.json             the best epoch's per-AU metrics (and the last epoch's)
  log.csv                  one row per epoch: step, losses, lr, val F1, time
Every file is written atomically (temp file + rename), so a crash leaves the previous version or nothing.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from augtext.errors import UserError
from augtext.io import atomic_path, atomic_write
from augtext.textprior import TextPrior, read_text_prior, save_text_prior

CONFIG = "config.json"
MODEL = "model.safetensors"
LAST = "last.pt"
PRIOR = "text_prior.safetensors"
METRICS = "metrics.json"
LOG = "log.csv"
RUN_FORMAT = "hiva_core.run/1"


# ---------------------------------------------------------------------------------------------------------- writing
def write_json(path: str | Path, obj: Any) -> None:
    """JSON, atomically, strict (NaN -> null)."""
    from hiva_core.metrics import to_jsonable

    with atomic_write(path, "w") as fh:
        json.dump(to_jsonable(obj), fh, indent=2, allow_nan=False)
        fh.write("\n")


def state_dict_for_file(module: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict safetensors can store: CPU, contiguous, no shared storage."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_model(module: nn.Module, path: str | Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(state_dict_for_file(module), str(tmp), metadata={"format": "pt"})


def save_prior(prior: TextPrior, path: str | Path) -> None:
    save_text_prior(prior, path)  # atomic itself


def rng_state() -> dict[str, Any]:
    """Every RNG a training step draws from, in types that torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gauss": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_last(path: str | Path, **state: Any) -> None:
    """last.pt: whatever the trainer needs to continue (model/optimizer/scheduler state dicts, epoch, ...)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_last(path: str | Path) -> dict[str, Any]:
    """Read last.pt with weights_only=True (no arbitrary pickles); UserError naming the file when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: nothing to resume; train without --resume to start this run")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated/corrupt file
        raise UserError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc}); "
                        "start the run again without --resume in a new folder") from None


LOG_COLUMNS = ["epoch", "step", "loss", "asl", "align", "lr", "val_f1", "val_auc", "time_s"]


def has_model(out: Path) -> bool:
    return (out / MODEL).exists() or (out / LAST).exists()


def check_out(out: Path, resume: bool) -> None:
    """Never write over a trained run unless asked to continue it."""
    if resume:
        if not (out / LAST).is_file():
            raise UserError(f"--resume: {out / LAST} not found; nothing to resume (train without --resume)")
    elif has_model(out):
        raise UserError(f"{out} already holds a trained run ({MODEL}/{LAST}); choose another --out, "
                        "or pass --resume to continue it")


def write_log(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path, "w") as fh:
        fh.write(buffer.getvalue())


def read_log(path: Path, upto_epoch: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [row for row in csv.DictReader(fh) if int(row["epoch"]) <= upto_epoch]


# ---------------------------------------------------------------------------------------------------------- reading
def read_json(path: Path, what: str = "run file") -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path} not found: is {path.parent} a run folder written by `hiva_core train`?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); the {what} is corrupt") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a {what} (expected a JSON object)")
    return data


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """config.json of a run folder, checked for the keys load_run needs."""
    path = Path(run_dir) / CONFIG
    info = read_json(path, "run config")
    missing = [k for k in ("model_name", "model_config", "aus", "image_size", "config") if k not in info]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: not a config written by `hiva_core train`")
    return info


def build_model(name: str, num_aus: int, text_dim: int, options: dict[str, Any]) -> nn.Module:
    """create_model with the run's options; weights come from the run, so no hub download or backbone file."""
    from hiva_core.models import create_model

    options = {k: v for k, v in options.items() if k not in ("name", "num_aus", "text_dim")}
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
        parts = [f"{len(v)} {what} (e.g. {v[0]})" for what, v in
                 (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes)) if v]
        raise UserError(f"{path} does not match the model in {path.parent / CONFIG}: tensors {'; '.join(parts)}; "
                        "was it written by another hiva_core version or edited by hand?")
    model.load_state_dict(state, strict=True)


def prior_tensors(prior: TextPrior, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior's (A,K,D) embeddings and (A,K) mask as tensors on `device` (moved once, reused every step)."""
    return (torch.from_numpy(prior.embeddings).to(device), torch.from_numpy(prior.mask).to(device))


@dataclass
class LoadedRun:
    """A trained model ready for inference: `predict(images)` -> `{"probs": (B,A), "maps": (B,A,h,w) | None}`.

    Outputs are float32 CPU tensors; images are (B,3,H,W) ImageNet-normalised at `image_size`.
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

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor | None]:
        out = self.model(images.to(self.device, torch.float32), self.text_emb, self.text_mask)
        maps = out.get("maps")
        return {
            "probs": torch.sigmoid(out["logits"].float()).cpu(),
            "maps": maps.float().cpu() if maps is not None else None,
        }


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> LoadedRun:
    """Rebuild a trained model from config.json + model.safetensors + text_prior.safetensors (no text cache).

    Missing or corrupt files are UserErrors naming the file. The model is in eval mode on `device` (default: auto).
    """
    from hiva_core.device import pick_device

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} not found")
    info = read_run_config(run_dir)
    prior = read_text_prior(run_dir / PRIOR)
    aus = [int(a) for a in info["aus"]]
    if prior.aus != aus:
        raise UserError(f"{run_dir / PRIOR} holds AUs {prior.aus} but {run_dir / CONFIG} says {aus}")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model = build_model(info["model_name"], len(aus), prior.dim, dict(info["model_config"]))
    load_weights(model, run_dir / MODEL)
    model.to(dev).eval()
    emb, mask = prior_tensors(prior, dev)
    return LoadedRun(model=model, prior=prior, aus=aus, image_size=int(info["image_size"]), config=info, device=dev,
                     run_dir=run_dir, text_emb=emb, text_mask=mask)


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's own config (ModelConfig) as a dict, for config.json."""
    config = getattr(model, "config", None)
    return asdict(config) if config is not None else {}
