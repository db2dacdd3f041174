"""Per-AU classification heads: CLIP-style scaled cosine against a text feature, or a per-AU linear layer."""

from __future__ import annotations

import math

import torch
from torch import nn


class CosineHead(nn.Module):
    """``logit_i = s · cos(visual_i, text_i) + b_i`` with one learned scale ``s`` (log-parametrised, as CLIP's
    temperature, capped at 100) and a bias per AU. ``text`` is ``(A, d)`` or per sample ``(B, A, d)``.

    ``num_aus=None``: one bias shared by every AU (``b_i = b``), so the head scores any number of AUs (hiva_open).
    """

    def __init__(self, num_aus: int | None, init_scale: float = 10.0):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.bias = nn.Parameter(torch.zeros(num_aus) if num_aus is not None else torch.zeros(()))

    def forward(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        cos = nn.functional.cosine_similarity(visual, text.expand_as(visual), dim=-1)
        return self.logit_scale.exp().clamp(max=100.0) * cos + self.bias


class LinearHead(nn.Module):
    """One linear classifier per AU on its visual feature: ``logit_i = w_i · visual_i + b_i`` (text unused)."""

    def __init__(self, num_aus: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_aus, dim) * dim**-0.5)
        self.bias = nn.Parameter(torch.zeros(num_aus))

    def forward(self, visual: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        return torch.einsum("bad,ad->ba", visual, self.weight) + self.bias
