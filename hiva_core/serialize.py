"""Run files at the lowest level: JSON and safetensors weights written atomically, JSON read back with errors a user
can act on, weights checked finite, the model's own config for config.json, and every RNG's state for an exact resume.
`hiva_core.run_folder.RunFolder` decides which file holds what; this module only turns values into files and back.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from augtext.errors import UserError
from augtext.io import atomic_path, atomic_write


def write_json(path: str | Path, obj: Any) -> None:
    """JSON, atomically, strict (NaN -> null)."""
    from hiva_core.metrics import to_jsonable

    with atomic_write(path, "w") as fh:
        json.dump(to_jsonable(obj), fh, indent=2, allow_nan=False)
        fh.write("\n")


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


def state_dict_for_file(module: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict safetensors can store: CPU, contiguous, no shared storage."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_model(module: nn.Module, path: str | Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(state_dict_for_file(module), str(tmp), metadata={"format": "pt"})


def check_finite(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """UserError naming `source` and the first bad tensor when any floating-point value is NaN or infinite: such
    weights load without complaint and then score every face the same (a diverged run, a damaged file)."""
    bad = [(name, t) for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        name, tensor = bad[0]
        count = int((~torch.isfinite(tensor)).sum())
        raise UserError(
            f"{source} holds non-finite weights (NaN/inf) in {len(bad)} of {len(tensors)} tensors "
            f"(e.g. {name}: {count} of {tensor.numel()} values); training diverged or the file is "
            "damaged: train again (a lower --lr) or use another run"
        )


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's own config (ModelConfig) as a dict, for config.json."""
    config = getattr(model, "config", None)
    return asdict(config) if config is not None else {}


def rng_state() -> dict[str, Any]:
    """Every RNG a training step draws from, in types that torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gauss": float(np_state[4]),
        },
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
