"""Which AUs a trained run scores: `--aus` on `hiva_core eval` and `hiva_core predict`.

Every run scores a subset of the AUs it was trained on (its outputs, column by column). An open-vocabulary model
(`hiva_open`: no per-AU parameter) also scores AUs it never saw, from their descriptions alone: the run's own prior
covers its training AUs, and the other AUs' descriptions come from a text cache embedded with the same model. The
model then runs over the training AUs plus the new ones, so that the graph and CDCA see the AU context they were
trained with, and the requested columns are kept.

A new AU's score: when the run predicts the expression's geometry (`model.geometry`, on for hiva_open trained on
SynthAU), it is read from that geometry along the measures the AU's descriptions name, and which way
(augtext.grounding: "the lips part" → lip opening up); the cosine head's score stays for an AU whose descriptions
name none. Without a geometry head every new AU is the cosine head's.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from augtext.errors import UserError
from augtext.facs import au_label, parse_au_spec
from augtext.reference import generate_command
from augtext.textprior import TextPrior
from hiva_core.checkpoint import LoadedRun, prior_tensors
from hiva_core.models import open_vocabulary


def _labels(aus: Sequence[int]) -> str:
    return ", ".join(au_label(a) for a in aus)


class AUColumns(nn.Module):
    """A model whose per-AU outputs (logits, maps, visual, text) are cut to `columns`, in that order."""

    def __init__(self, model: nn.Module, columns: Sequence[int]):
        super().__init__()
        self.model = model
        self.register_buffer("columns", torch.as_tensor(list(columns), dtype=torch.long), persistent=False)

    def forward(
        self, images: torch.Tensor, text_emb: torch.Tensor | None = None, text_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        out = self.model(images, text_emb, text_mask)
        cut = {k: out.get(k)[:, self.columns] for k in ("logits", "maps", "visual") if out.get(k) is not None}
        if out.get("text") is not None:
            cut["text"] = out["text"][self.columns]
        return {**out, **cut}


# A new AU's logit from its geometry score s (the measures its descriptions name, in training-set spreads, weighted to
# sum 1): SLOPE · (s − OFFSET), i.e. probability 0.5 where the face moved one spread of the measures that way.
GEOMETRY_SLOPE = 2.0
GEOMETRY_OFFSET = 1.0


class GroundedScores(nn.Module):
    """A model whose logits for the AUs marked in `use` are read from its predicted expression geometry (B, G) along
    `queries` (A, G) (augtext.grounding.ground of each AU's descriptions) instead of its head. Where the model also
    predicts the part of the geometry its trained AUs do not explain, the geometry read is the mean of the two: a new
    AU is a movement of the face, and more so one that the known AUs do not account for."""

    def __init__(self, model: nn.Module, queries: np.ndarray, use: Sequence[bool]):
        super().__init__()
        self.model = model
        self.register_buffer("queries", torch.as_tensor(queries, dtype=torch.float32), persistent=False)
        self.register_buffer("use", torch.as_tensor(list(use), dtype=torch.bool), persistent=False)

    def forward(
        self, images: torch.Tensor, text_emb: torch.Tensor | None = None, text_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        out = self.model(images, text_emb, text_mask)
        geometry = out["geometry"].float()
        if out.get("unexplained") is not None:
            geometry = (geometry + out["unexplained"].float()) / 2
        score = geometry @ self.queries.T  # (B, A)
        grounded = GEOMETRY_SLOPE * (score - GEOMETRY_OFFSET)
        return {**out, "logits": torch.where(self.use, grounded, out["logits"].float())}


def grounded_queries(
    loaded: LoadedRun, new: Sequence[int], text_cache: str | Path
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """({AU: what its descriptions say its face does, as weights over the geometry measures}, {AU: what scores it, in
    words}) for the AUs of `new` (descriptions from `text_cache`, chosen with the run's text options); an AU whose
    descriptions name no measure has no weights (the cosine head scores it). Each is said on stderr."""
    from augtext.grounding import describe, ground
    from augtext.prior import load_descriptions

    text_cfg = loaded.config.get("config", {}).get("text", {}) or {}
    texts = load_descriptions(text_cache, new, text_cfg.get("styles"), text_cfg.get("max_per_au"))
    queries, how = {}, {}
    for au in new:
        weights = ground(texts[au])
        if np.abs(weights).sum() > 0:
            queries[au] = weights
            how[au] = f"the face's geometry: {describe(weights)}"
            note = f"scored from {how[au]}"
        else:
            how[au] = "the cosine head (its descriptions name no change of the face's geometry)"
            note = (
                "its descriptions name no change of the face's geometry (none that a fifth of them agree on): "
                "scored by the cosine head"
            )
        print(f"{au_label(au)}: {note} (its {len(texts[au])} descriptions)", file=sys.stderr)
    return queries, how


def stack_priors(first: TextPrior, second: TextPrior) -> TextPrior:
    """`first`'s AUs then `second`'s, zero-padded to the larger K (same embedding model and dim)."""
    k = max(first.mask.shape[1], second.mask.shape[1])

    def pad(p: TextPrior) -> tuple[np.ndarray, np.ndarray]:
        extra = k - p.mask.shape[1]
        return (np.pad(p.embeddings, ((0, 0), (0, extra), (0, 0))), np.pad(p.mask, ((0, 0), (0, extra))))

    (e1, m1), (e2, m2) = pad(first), pad(second)
    return TextPrior(
        aus=[*first.aus, *second.aus],
        embeddings=np.concatenate([e1, e2]),
        mask=np.concatenate([m1, m2]),
        model=first.model,
        fingerprint=f"{first.fingerprint}+{second.fingerprint}",
    )


def extra_prior(loaded: LoadedRun, aus: Sequence[int], text_cache: str | Path) -> TextPrior:
    """The descriptions of `aus` (AUs the run was not trained on) from `text_cache`, embedded with the run's model
    and taken with the run's own text options (styles, descriptions per AU)."""
    from augtext.prior import load_text_prior

    run_prior = loaded.prior
    text_cfg = loaded.config.get("config", {}).get("text", {}) or {}
    intro = (
        f"{_labels(aus)} {'is' if len(aus) == 1 else 'are'} not among the AUs run {loaded.run_dir} was trained "
        f"on ({_labels(loaded.aus)}), so {'its' if len(aus) == 1 else 'their'} descriptions come from "
        f"--text-cache {text_cache}"
    )
    try:
        extra = load_text_prior(
            text_cache,
            aus=aus,
            model=run_prior.model,
            styles=text_cfg.get("styles"),
            max_per_au=text_cfg.get("max_per_au"),
        )
    except UserError as exc:
        raise UserError(f"{intro}: {exc}") from None
    if extra.model != run_prior.model or extra.dim != run_prior.dim:
        raise UserError(
            f"{intro}, but they are embedded with {extra.model!r} ({extra.dim}-d) and the run's prior "
            f"with {run_prior.model!r} ({run_prior.dim}-d); run `augtext embed --cache {text_cache} "
            f"--model {run_prior.model}`"
        )
    return extra


def select_aus(loaded: LoadedRun, aus: str | Sequence[int] | None, text_cache: str | Path | None = None) -> LoadedRun:
    """`loaded` scoring `aus` (an AU spec such as "9,25,26", or codes; sorted) instead of its training AUs.

    The result's `prior` is the one the model runs with: the training AUs' rows, then the new AUs' rows.

    AUs within the training set work for every model. Others need an open-vocabulary model (`hiva_open`) and their
    descriptions in `text_cache` (same embedding model, checked by name and dimension). A per-AU model asked for an
    AU it was not trained on, an AU without descriptions, or a `text_cache` without `aus` is a UserError.
    """
    if aus is None:
        if text_cache is not None:
            raise UserError(
                "--text-cache is read only for --aus (the descriptions of AUs the run was not trained "
                "on); add --aus SPEC, or drop --text-cache: the run holds its own prior"
            )
        return loaded
    codes = parse_au_spec(aus if isinstance(aus, str) else ",".join(str(int(a)) for a in aus))
    new = [a for a in codes if a not in loaded.aus]
    prior = loaded.prior
    if new:
        name = loaded.config.get("model_name", "?")
        if not open_vocabulary(loaded.model):
            raise UserError(
                f"model {name!r} of run {loaded.run_dir} has per-AU parameters and scores only the AUs "
                f"it was trained on ({_labels(loaded.aus)}); {_labels(new)} "
                f"{'is' if len(new) == 1 else 'are'} not among them. Score AUs from their descriptions "
                "with an open-vocabulary run (hiva_core train --model hiva_open)"
            )
        if text_cache is None:
            raise UserError(
                f"{_labels(new)} {'is' if len(new) == 1 else 'are'} not among the AUs run "
                f"{loaded.run_dir} was trained on ({_labels(loaded.aus)}); pass --text-cache DIR holding "
                f"{'its' if len(new) == 1 else 'their'} descriptions ({generate_command('DIR', new)}, then "
                "`augtext embed --cache DIR`)"
            )
        prior = stack_priors(prior, extra_prior(loaded, new, text_cache))
    model = loaded.model
    unseen = {a: "the cosine head (the run has no geometry head)" for a in new}
    if new and getattr(model, "geometry_head", None) is not None:
        from augtext.grounding import GEOMETRY

        queries, unseen = grounded_queries(loaded, new, text_cache)
        if queries:
            table = np.stack([queries.get(a, np.zeros(len(GEOMETRY))) for a in prior.aus])
            model = GroundedScores(model, table, [a in queries for a in prior.aus])
    columns = [prior.aus.index(a) for a in codes]
    model = model if columns == list(range(len(prior.aus))) else AUColumns(model, columns)
    emb, mask = prior_tensors(prior, loaded.device)
    return dataclasses.replace(
        loaded,
        model=model.to(loaded.device).eval(),
        prior=prior,
        aus=codes,
        text_emb=emb,
        text_mask=mask,
        unseen=unseen,
    )
