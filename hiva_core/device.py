"""Device choice and mixed precision: bf16 autocast on CUDA, plain fp32 on CPU."""

from __future__ import annotations

import contextlib

import torch

from augtext.errors import UserError

_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": None,
    "float32": None,
}


def pick_device(pref: str | None = None) -> torch.device:
    """`None`/"auto" -> cuda if available, else mps, else cpu; "cpu", "cuda", "cuda:1", "mps" as asked.

    Asking for an accelerator that is not there is a UserError (not a silent fall back to CPU).
    """
    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(pref)
    except RuntimeError:
        raise UserError(f"unknown device '{pref}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"device '{pref}' asked for, but CUDA is not available here; use --device cpu or auto "
                "(train: --set train.device=cpu)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device '{pref}' asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("device 'mps' asked for, but MPS is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"unsupported device '{pref}'; use auto, cpu, cuda, cuda:N or mps")
    return device


def autocast_dtype(device: torch.device, precision: str | None = "bf16") -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`: None (fp32) off CUDA or for "fp32"."""
    if device.type != "cuda":
        return None
    key = (precision or "fp32").lower()
    if key not in _DTYPES:
        raise UserError(f"unknown precision '{precision}'; use bf16, fp16 or fp32")
    return _DTYPES[key]


def autocast(
    device: torch.device, dtype: torch.dtype | str | None = torch.bfloat16
) -> contextlib.AbstractContextManager:
    """Mixed-precision context: torch.autocast on CUDA with `dtype` (bf16 by default); a no-op on CPU/MPS or when
    dtype is None / "fp32" (CPU autocast to bf16 is slower than fp32 on most CPUs and changes results)."""
    if isinstance(dtype, str):
        dtype = autocast_dtype(device, dtype)
    if device.type != "cuda" or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)
