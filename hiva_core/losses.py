"""Losses for AU detection: ME-GraphAU's weighted asymmetric loss and a vision-text alignment loss.

Labels may be unknown (BP4D's code 9, NaN in ``AUDataset.labels``): ``mask`` is False there and those entries
contribute nothing, neither to the loss value nor to any gradient.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def au_weights(
    labels: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Per-AU loss weights from training label rates, as ME-GraphAU: ``w_a ∝ 1 / rate_a``, scaled to mean 1.

    ``rate_a`` = positives / known labels of AU a (NaN labels, and False in ``mask``, are unknown). An AU with no
    positive (or no known label) gets the rate of a single positive among its known labels (``1 / max(n_known, 1)``)
    instead of an infinite weight that would drown every other AU. The one owner of these weights: the trainer's loss
    (float32) and the weight files of ``hiva_core prepare`` (float64).
    """
    labels = torch.as_tensor(labels, dtype=dtype)
    mask = torch.isfinite(labels) if mask is None else torch.as_tensor(mask, dtype=torch.bool) & torch.isfinite(labels)
    known = mask.sum(0).to(dtype)
    positives = torch.where(mask, labels, torch.zeros_like(labels)).gt(0.5).sum(0).to(dtype)
    rate = torch.maximum(positives, torch.ones_like(positives)) / known.clamp(min=1)
    weights = 1.0 / rate
    return weights / weights.sum() * weights.numel()


class WeightedAsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al. 2021) with per-AU weights, on logits, masked.

    ``loss = -w_a [ y (1-p)^γ+ log p + (1-y) p_m^γ- log(1-p_m) ]`` with ``p_m = max(p - clip, 0)``; the focusing
    factors are computed without gradient, as in ME-GraphAU. The defaults (γ- = 1, γ+ = 0, clip = 0) are exactly
    ME-GraphAU's ``WeightedAsymmetricLoss``. The result is the mean over known entries.
    """

    def __init__(
        self,
        weights: torch.Tensor | None = None,
        gamma_neg: float = 1.0,
        gamma_pos: float = 0.0,
        clip: float = 0.0,
        eps: float = 1e-8,
    ):
        super().__init__()
        self.register_buffer("weights", None if weights is None else torch.as_tensor(weights, dtype=torch.float32))
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        logits = logits.float()
        mask = torch.isfinite(labels) if mask is None else mask.bool() & torch.isfinite(labels)
        y = torch.where(mask, labels, torch.zeros_like(labels)).float()  # NaN labels must not reach the graph
        p = torch.sigmoid(logits)
        log_pos = nn.functional.logsigmoid(logits)
        if self.clip > 0:
            p_neg = (p - self.clip).clamp(min=0)
            log_neg = torch.log((1 - p_neg).clamp(min=self.eps))
        else:
            p_neg = p
            log_neg = nn.functional.logsigmoid(-logits)
        with torch.no_grad():
            focus_pos = (1 - p) ** self.gamma_pos
            focus_neg = p_neg**self.gamma_neg
        loss = y * focus_pos * log_pos + (1 - y) * focus_neg * log_neg
        if self.weights is not None:
            loss = loss * self.weights
        loss = torch.where(mask, loss, torch.zeros_like(loss))
        return -loss.sum() / mask.sum().clamp(min=1)


def alignment_loss(
    visual: torch.Tensor,
    text: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 0.07,
) -> torch.Tensor:
    """InfoNCE across AUs: each *present* AU's visual node must match its own text prototype better than any
    other AU's. ``visual (B, A, d)``, ``text (A, d)``, ``labels``/``mask (B, A)``.

    For sample b and AU i with label 1, the logits are ``cos(visual_bi, text_j) / T`` over all AUs j and the target
    is i. Why positives only: an absent AU's node carries no evidence of that AU's appearance, and pulling it
    towards the AU's description would fight the classifier (whose logit grows with that same cosine). Why across
    AUs rather than across the batch: text prototypes are shared by all images, so the batch offers no negatives
    for them; the other AUs' descriptions do. Returns 0 (connected to the graph) when no AU is present.
    """
    mask = torch.isfinite(labels) if mask is None else mask.bool() & torch.isfinite(labels)
    present = mask & (torch.where(mask, labels, torch.zeros_like(labels)) > 0.5)
    v = nn.functional.normalize(visual.float(), dim=-1)
    t = nn.functional.normalize(text.float(), dim=-1)
    logits = torch.einsum("bid,jd->bij", v, t) / temperature  # (B, A, A)
    target = torch.arange(text.shape[0], device=visual.device).expand(visual.shape[0], -1)
    nll = nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
    nll = torch.where(present.flatten(), nll, torch.zeros_like(nll))
    return nll.sum() / present.sum().clamp(min=1)


def region_loss(maps: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """How far each AU map looks outside the AU's region: mean over images and AUs of −log(mass inside).

    maps (B, A, h, w) are attention weights (each map sums to 1); prior (A, h, w) is the share of each cell inside
    the AU's region (hiva_core.regions.region_prior). AUs whose prior is all ones (no region known) add nothing."""
    constrained = (prior < 1).flatten(1).any(1)
    if not bool(constrained.any()):
        return maps.new_zeros(())
    inside = (maps.float().flatten(2) * prior.flatten(1)[None]).sum(-1)  # (B, A)
    return -inside[:, constrained].clamp_min(1e-6).log().mean()


def intensity_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of AU intensity logits (B, A) against intensities in [0, 1] (B, A), over the known cells
    (``mask``); 0 when none is known."""
    known = mask.float()
    each = nn.functional.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return (each * known).sum() / known.sum().clamp_min(1.0)


def geometry_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Smooth L1 between the predicted expression geometry (B, G), in units of ``scale`` (G,), and the measured one
    (B, G) in its own units, over the known values (``mask``); 0 when none is known."""
    if not bool(mask.any()):
        return pred.new_zeros(())
    error = nn.functional.smooth_l1_loss(pred.float(), target.float() / scale, reduction="none")
    return error[mask].mean()
