"""The text prior contract (augtext -> hiva_core): `TextPrior`, and its safetensors file in a run folder.

A prior is dense arrays, one row per AU and up to K descriptions each. `augtext.prior.load_text_prior` builds one from
an embedded cache (Parquet); `save_text_prior` / `read_text_prior` keep it inside a checkpoint so that prediction
needs no cache. This module needs only numpy and safetensors: `hiva_core` reads a trained run without pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augtext.errors import UserError, short_error
from augtext.io import atomic_path


@dataclass(frozen=True, eq=False)
class TextPrior:
    """Description embeddings per AU, dense and zero-padded.

    `embeddings[i, k]` is the k-th description of AU `aus[i]` where `mask[i, k]`; padding rows are zeros.
    `fingerprint` identifies the descriptions the embeddings were made from.
    """

    aus: list[int]
    embeddings: np.ndarray
    mask: np.ndarray
    model: str
    fingerprint: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "aus", [int(a) for a in self.aus])
        object.__setattr__(self, "embeddings", np.ascontiguousarray(self.embeddings, dtype=np.float32))
        object.__setattr__(self, "mask", np.ascontiguousarray(self.mask, dtype=bool))
        a = len(self.aus)
        if self.embeddings.ndim != 3 or self.embeddings.shape[0] != a or self.mask.shape != self.embeddings.shape[:2]:
            raise ValueError(
                f"TextPrior: embeddings {self.embeddings.shape} and mask {self.mask.shape} "
                f"do not fit {a} AUs as (A, K, D) and (A, K)"
            )

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[2])

    @property
    def num_aus(self) -> int:
        return len(self.aus)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextPrior):
            return NotImplemented
        return (
            self.aus == other.aus
            and self.model == other.model
            and self.fingerprint == other.fingerprint
            and np.array_equal(self.mask, other.mask)
            and np.array_equal(self.embeddings, other.embeddings)
        )

    __hash__ = None  # type: ignore[assignment]


def save_text_prior(prior: TextPrior, path: str | Path) -> None:
    """Write a prior as safetensors (`embeddings`, `mask`, `aus`; metadata `model`, `fingerprint`), atomically."""
    from safetensors.numpy import save_file

    tensors = {"embeddings": prior.embeddings, "mask": prior.mask, "aus": np.asarray(prior.aus, dtype=np.int64)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"model": prior.model, "fingerprint": prior.fingerprint})


def read_text_prior(path: str | Path) -> TextPrior:
    """Read a prior written by `save_text_prior` (UserError naming the file when missing or corrupt)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"text prior {path} not found")
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({short_error(exc)})") from exc
    missing = [n for n in ("embeddings", "mask", "aus") if n not in tensors]
    missing += [k for k in ("model", "fingerprint") if k not in meta]
    if missing:
        raise UserError(f"{path} is not a text prior: it lacks {', '.join(missing)}")
    try:
        return TextPrior(
            aus=tensors["aus"].tolist(),
            embeddings=tensors["embeddings"],
            mask=tensors["mask"],
            model=meta["model"],
            fingerprint=meta["fingerprint"],
        )
    except ValueError as exc:
        raise UserError(f"{path} is not a valid text prior: {exc}") from exc


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A seeded permutation of range(n) that moves every element (n >= 2): the AU shuffle of the control prior."""
    if n < 2:
        raise UserError(f"a shuffled prior needs at least 2 AUs, got {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    while (order == np.arange(n)).any():  # about e^-1 of permutations are derangements
        order = rng.permutation(n)
    return order


def shuffled_prior(prior: TextPrior, seed: int = 0) -> TextPrior:
    """The control prior that keeps the architecture and destroys the meaning: every AU gets the descriptions of
    another AU (rows permuted across AUs by `derangement`, no AU keeping its own). Each AU's set stays a coherent
    set of descriptions, so what changes is only whether the text is about that AU."""
    order = derangement(prior.num_aus, seed)
    return TextPrior(
        aus=prior.aus,
        embeddings=prior.embeddings[order],
        mask=prior.mask[order],
        model=prior.model,
        fingerprint=f"{prior.fingerprint}+shuffled:{seed}",
    )
