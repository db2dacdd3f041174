"""A second, learned judge of which AU a description is about: the gate's last check (`SemanticGate`, `lookalike`).

The semantic gate ranks AUs by the cosine of a text to each AU's prototypes. A description of a look-alike sent under
the wrong code ("the outer ends of the brows lift into an arch" as AU1) sits near both AUs, and often passes with its
own AU second. The discriminator is a multinomial logistic regression on the same sentence embeddings (the text with
its AU labels stripped), trained on labelled descriptions: the project's reference set and the labelled answer sets of
bench/data (each correct text under its AU, each look-alike under the AU it really describes, and each text that
describes no facial movement at all under a class of its own, NOT_A_DESCRIPTION). It learns the directions of the
embedding that tell look-alikes apart rather than what is near on the whole.

It overrules the similarity ranking both ways:
- a text the ranking keeps is dropped (`lookalike`) when the discriminator finds another AU at least
  e**LOOKALIKE_MARGIN times as likely as its own (natural log odds);
- a text the ranking drops as `other_au`, or as `far_from_au` at a similarity of RESCUE_MIN_SIMILARITY or more, is
  kept when it finds its own AU at least e**RESCUE_MARGIN times as likely as every other AU and as
  NOT_A_DESCRIPTION: a correct description in a frame the prototypes do not hold ("At 02:05:18 the witness tightens
  only the right mouth corner into a one-sided dimple", AU14) or in a voice they do not ("The lip corners are
  pressed into the cheeks, giving a smug, tight-lipped look", AU14, nearer the smile).
Neither counts the AUs the gate does not count against a text (the ones it names, their look-alikes and the AUs whose
movement it does not state: `quality._not_counted`) nor AUs FACS scores as the same action. The weights ship as
package data for the embedding model they were trained on (`augtext/reference/discriminator-<model>.npz`); with any
other model the check is off. `bench/train_discriminator.py` trains them again and measures them with each
answer set left out of its own training (README "Prior quality").
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augtext.errors import UserError
from augtext.facs import scored_as
from augtext.reference import REFERENCE_DIR

LOOKALIKE_MARGIN = 2.0
"""Natural log odds by which another AU must beat the own AU for a kept text to be dropped (e**2: 7.4 times as likely).
Chosen on the answer sets each left out of training (bench/results/discriminator.json), as are the two below."""
RESCUE_MARGIN = 2.0
"""Natural log odds by which the own AU must beat every other AU and NOT_A_DESCRIPTION for a text the ranking drops
(`other_au`, or `far_from_au` at RESCUE_MIN_SIMILARITY or more) to be kept."""
RESCUE_MIN_SIMILARITY = 0.40
"""The lowest similarity to its own AU at which a `far_from_au` text may be kept by the discriminator (the gate's
floor is 0.60; no correct text of the answer sets is below 0.40)."""
NOT_A_DESCRIPTION = 0
"""The discriminator's class of texts that describe no facial movement (the answer sets' `off_domain` texts)."""
REGULARIZATION = 10.0
"""The inverse L2 strength of the logistic regression (scikit-learn's C)."""
DISCRIMINATOR_KEYS = ("model", "key", "classes", "weights", "bias")


def keeps(margin: float) -> bool:
    """Whether a text the similarity ranking dropped is kept: its own AU ahead of every rival and NOT_A_DESCRIPTION by
    RESCUE_MARGIN (`Discriminator.margins(..., description=True)`; +inf, no class or no rival: not kept)."""
    return RESCUE_MARGIN <= margin < float("inf")


def training_key(model: str, rows: Iterable[tuple[int, str]]) -> str:
    """sha256 of the embedding model's name and the training rows (AU, text), order-free: a set added to the training
    data, or a text changed, changes it."""
    digest = hashlib.sha256(model.encode("utf-8"))
    for au, text in sorted(set(rows)):
        digest.update(f"\n{au}\t{text}".encode())
    return digest.hexdigest()


def discriminator_path(model: str, folder: Path = REFERENCE_DIR) -> Path:
    from augtext.prior import model_slug

    return folder / f"discriminator-{model_slug(model)}.npz"


@dataclass(frozen=True)
class Discriminator:
    model: str  # the embedding model whose vectors it reads
    key: str  # training_key of the rows it was trained on
    classes: np.ndarray  # (K,) AU codes
    weights: np.ndarray  # (K, D)
    bias: np.ndarray  # (K,)

    def log_proba(self, vectors: np.ndarray) -> np.ndarray:
        """(N, K) log probabilities of each class for (N, D) unit vectors."""
        logits = np.asarray(vectors, dtype=np.float64) @ self.weights.T.astype(np.float64) + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def margins(
        self, vectors: np.ndarray, au: int, not_counted: Sequence[set[int]], description: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per text: (log p(au) minus the best rival's log p, that rival's code). Rivals: every AU class but `au`,
        the AUs of `not_counted` (per text) and the AUs FACS scores as `au`'s action; with `description`,
        NOT_A_DESCRIPTION too. +inf and 0 where `au` is no class or no rival is left."""
        codes = [int(c) for c in self.classes]
        n = len(vectors)
        margin, rival = np.full(n, np.inf), np.zeros(n, dtype=np.int64)
        if au not in codes or n == 0:
            return margin, rival
        logp = self.log_proba(vectors)
        own = logp[:, codes.index(au)]
        action = scored_as(au)

        def rival_class(code: int, skip: set[int]) -> bool:
            if code == NOT_A_DESCRIPTION:
                return description
            return code != au and code not in skip and scored_as(code) != action

        for i, skip in enumerate(not_counted):
            cols = [j for j, c in enumerate(codes) if rival_class(c, skip)]
            if cols:
                best = cols[int(np.argmax(logp[i, cols]))]
                margin[i], rival[i] = own[i] - logp[i, best], codes[best]
        return margin, rival

    def save(self, path: Path) -> None:
        from augtext.io import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                model=np.asarray(self.model),
                key=np.asarray(self.key),
                classes=self.classes.astype(np.int64),
                weights=self.weights.astype(np.float32),
                bias=self.bias.astype(np.float32),
            )

    @classmethod
    def load(cls, path: Path) -> Discriminator:
        """UserError naming the file when it cannot be read or lacks a field."""
        try:
            with np.load(path, allow_pickle=False) as data:
                fields = {k: data[k] for k in DISCRIMINATOR_KEYS}
        except (OSError, KeyError, ValueError) as exc:
            raise UserError(f"the gate's discriminator {path} cannot be read ({exc}); reinstall augtext") from None
        weights, bias, classes = fields["weights"], fields["bias"], fields["classes"]
        if weights.ndim != 2 or weights.shape[0] != len(classes) or bias.shape != (len(classes),):
            raise UserError(f"the gate's discriminator {path} is damaged (weights {weights.shape}, bias {bias.shape})")
        return cls(str(fields["model"]), str(fields["key"]), classes, weights, bias)


@functools.cache
def shipped_discriminator(model: str) -> Discriminator | None:
    """The package's discriminator for embedding model `model`, or None where none was trained for it."""
    path = discriminator_path(model)
    return Discriminator.load(path) if path.exists() else None


def train(model: str, vectors: np.ndarray, aus: Sequence[int], key: str, c: float = REGULARIZATION) -> Discriminator:
    """A multinomial logistic regression of `aus` on `vectors` (scikit-learn, lbfgs: deterministic)."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=c, max_iter=5000).fit(np.asarray(vectors, dtype=np.float64), np.asarray(aus))
    return Discriminator(model, key, fit.classes_.astype(np.int64), fit.coef_, fit.intercept_)
