"""Half-face occlusion for training (`data.hide_half`): an AU is learnt from where it shows, not from its company.

A model trained on faces where AUs come together (AU7 with AU6 in a smile, AU23 with AU4 in anger) learns to read one
from the other, and on faces where they come apart — posed expressions, another face model — it misses or invents
them (README, SynthAU: "it reads AU7 from AU6 and AU4, not from the lids"). With probability p a training face has its
upper or its lower half hidden (filled with the ImageNet mean, 0 after normalisation); the labels of the AUs that
could show in the hidden half become unknown for that face (no loss), while the AUs of the visible half keep theirs —
so each must be found without the other half's AUs to lean on.

The halves are cut once, on the canonical aligned face (hiva_core.regions.CANONICAL_LANDMARKS: every face the toolkit
trains on is framed by the same template) at SPLIT, between the lower eyelids and AU4's strip down the nose root
(above) and the nostrils (below). An AU whose region (hiva_core.regions) lies wholly above is an upper AU, wholly below
a lower one; an AU whose region crosses the cut (AU6's cheeks, AU9's nose) or that has no region is unknown whichever
half is hidden.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hiva_core.data.transforms import resize_size

SPLIT = 0.52  # of the aligned crop's height: the lowest upper region ends at 0.42 (AU4), the highest lower at 0.61


def au_halves(aus: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower): bool (A,) masks of the AUs whose region lies wholly above / below SPLIT on the canonical face."""
    from hiva_core.regions import AU_REGION, CANONICAL_LANDMARKS, region_polygons

    upper, lower = np.zeros(len(aus), bool), np.zeros(len(aus), bool)
    for j, au in enumerate(aus):
        if au not in AU_REGION:
            continue
        ys = np.concatenate([p[:, 1] for p in region_polygons(CANONICAL_LANDMARKS, AU_REGION[au])])
        upper[j], lower[j] = ys.max() < SPLIT, ys.min() > SPLIT
    return upper, lower


class HalfOcclusion:
    """`(image, mask) -> (image, mask)` for a training item: with probability `p` the upper or the lower half of the
    image (equally often) is filled with 0 and the mask keeps only the AUs of the other half. Images are the
    normalised crops of hiva_core.data.transforms at `image_size` (a random crop of the resized face: the cut falls
    where the centre crop puts SPLIT, within the crop's jitter). Random numbers come from torch, so DataLoader
    workers and resumed runs draw them as they draw the other augmentations."""

    def __init__(self, aus: Sequence[int], p: float, image_size: int):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        upper, lower = au_halves(aus)
        self.p = float(p)
        self.keep_if_upper_hidden = torch.from_numpy(lower)
        self.keep_if_lower_hidden = torch.from_numpy(upper)
        scale = resize_size(image_size) / image_size  # the face is resized by this, then cropped to image_size
        self.cut = round((SPLIT * scale - (scale - 1) / 2) * image_size)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.p == 0.0 or torch.rand(()) >= self.p:
            return image, mask
        image = image.clone()
        if torch.rand(()) < 0.5:
            image[..., : self.cut, :] = 0.0
            return image, mask & self.keep_if_upper_hidden
        image[..., self.cut :, :] = 0.0
        return image, mask & self.keep_if_lower_hidden
