"""The training task: a model plus its loss, returning a dict of losses (open_clip/timm style)."""

from __future__ import annotations

import torch
from torch import nn

from hiva_core.losses import WeightedAsymmetricLoss, alignment_loss


class AUTask(nn.Module):
    """``task(batch, text_emb, text_mask)`` → ``{"loss", "asl", "align", "logits"}``.

    ``loss = asl + align_weight · align``; the alignment term is computed only when the model returns text
    prototypes (a model with the text branch on) and ``align_weight > 0``; otherwise ``align`` is 0.
    ``batch`` holds ``image (B,3,H,W)``, ``labels (B,A)`` and ``mask (B,A)`` on the model's device.
    """

    def __init__(
        self,
        model: nn.Module,
        au_weights: torch.Tensor | None = None,
        align_weight: float = 0.1,
        temperature: float = 0.07,
        **asl_options: float,
    ):
        super().__init__()
        self.model = model
        self.asl = WeightedAsymmetricLoss(au_weights, **asl_options)
        self.align_weight = align_weight
        self.temperature = temperature

    def forward(
        self, batch: dict, text_emb: torch.Tensor | None = None, text_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        out = self.model(batch["image"], text_emb, text_mask)
        labels, mask = batch["labels"], batch.get("mask")
        asl = self.asl(out["logits"], labels, mask)
        if out.get("text") is not None and self.align_weight > 0:
            align = alignment_loss(out["visual"], out["text"], labels, mask, self.temperature)
        else:
            align = asl.new_zeros(())
        return {
            "loss": asl + self.align_weight * align,
            "asl": asl.detach(),
            "align": align.detach(),
            "logits": out["logits"],
        }
