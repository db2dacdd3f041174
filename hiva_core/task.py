"""The training task: a model plus its loss, returning a dict of losses (open_clip/timm style)."""

from __future__ import annotations

import torch
from torch import nn

from hiva_core.losses import WeightedAsymmetricLoss, alignment_loss, geometry_loss, intensity_loss, region_loss


class AUTask(nn.Module):
    """``task(batch, text_emb, text_mask)`` → ``{"loss", "asl", "align", "region", "geometry", "intensity", "logits"}``.

    ``loss = asl + align_weight · align + region_weight · region + geometry_weight · geometry + intensity_weight ·
    intensity``. The intensity term (binary cross-entropy of the model's ``intensity`` logits against each AU's
    intensity in [0, 1], over the known cells) only when the model predicts intensities and the batch carries them
    (``intensity``, ``intensity_mask``: manifests with AU<k>_int columns, such as SynthAU's). The geometry term
    only when the model predicts the expression's geometry and the batch carries it (``geometry``, ``geometry_mask``:
    manifests with neutral landmarks, such as SynthAU's); with the head's unexplained part too, the mean of the two
    smooth-L1 terms (rows with an unknown label leave the second out). The alignment term is computed only when the
    model returns text prototypes (a model with the text branch on) and ``align_weight > 0``; the region term only
    when the model returns AU maps, ``region_weight > 0`` and the AU codes ``aus`` are given (it asks each AU's map
    to look inside the AU's region of the canonical aligned face, hiva_core.regions.region_prior); otherwise 0.
    ``batch`` holds ``image (B,3,H,W)``, ``labels (B,A)`` and ``mask (B,A)`` on the model's device.
    """

    def __init__(
        self,
        model: nn.Module,
        au_weights: torch.Tensor | None = None,
        align_weight: float = 0.1,
        temperature: float = 0.07,
        region_weight: float = 0.0,
        aus: list[int] | None = None,
        geometry_weight: float = 3.0,
        intensity_weight: float = 1.0,
        **asl_options: float,
    ):
        super().__init__()
        self.model = model
        self.asl = WeightedAsymmetricLoss(au_weights, **asl_options)
        self.align_weight = align_weight
        self.temperature = temperature
        self.region_weight = region_weight if aus else 0.0
        self.aus = list(aus or [])
        self.geometry_weight = geometry_weight
        self.intensity_weight = intensity_weight
        self._priors: dict[tuple[int, int, int], torch.Tensor] = {}  # (h, w, image side) -> (A, h, w)

    def region_prior(self, maps: torch.Tensor, image_size: int) -> torch.Tensor:
        key = (*maps.shape[-2:], image_size)
        if key not in self._priors:
            from hiva_core.regions import region_prior

            prior = region_prior(self.aus, maps.shape[-2:], image_size)
            self._priors[key] = torch.as_tensor(prior, dtype=torch.float32, device=maps.device)
        return self._priors[key]

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
        maps = out.get("maps")
        if maps is not None and self.region_weight > 0 and maps.shape[1] == len(self.aus):
            region = region_loss(maps, self.region_prior(maps, batch["image"].shape[-1]))
        else:
            region = asl.new_zeros(())
        head = getattr(self.model, "geometry_head", None)
        if out.get("geometry") is not None and "geometry" in batch and self.geometry_weight > 0:
            geometry = geometry_loss(out["geometry"], batch["geometry"], batch["geometry_mask"], head.scale)
            if out.get("unexplained") is not None:  # the mean of the two terms: the weight keeps its meaning
                known_labels = torch.ones_like(labels, dtype=torch.bool) if mask is None else mask
                target, known = head.unexplained_target(batch["geometry"], batch["geometry_mask"], labels, known_labels)
                unexplained = geometry_loss(out["unexplained"], target, known, torch.ones_like(head.scale))
                geometry = (geometry + unexplained) / 2
        else:
            geometry = asl.new_zeros(())
        intensity = asl.new_zeros(())
        if out.get("intensity") is not None and "intensity" in batch and self.intensity_weight > 0:
            intensity = intensity_loss(out["intensity"], batch["intensity"], batch["intensity_mask"])
        return {
            "loss": asl
            + self.align_weight * align
            + self.region_weight * region
            + self.geometry_weight * geometry
            + self.intensity_weight * intensity,
            "intensity": intensity.detach(),
            "asl": asl.detach(),
            "align": align.detach(),
            "region": region.detach(),
            "geometry": geometry.detach(),
            "logits": out["logits"],
        }
