"""Image transforms as the AU field uses them: resize to 256/224 of the crop, random crop + flip + mild colour jitter
for training, centre crop for evaluation, ImageNet normalisation."""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision.transforms import v2

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def resize_size(image_size: int) -> int:
    """Shorter side before cropping: 256 for a 224 crop, the same ratio for other sizes."""
    return round(image_size * 256 / 224)


def build_transforms(image_size: int = 224, augment: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """PIL RGB image -> float tensor (3, image_size, image_size), ImageNet-normalised.

    augment=True: resize, random crop, horizontal flip (AU labels are bilateral, so a flip keeps them), colour jitter.
    augment=False: resize and centre crop, deterministic.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if augment:
        geometry = [
            v2.Resize(resize_size(image_size), antialias=True),
            v2.RandomCrop(image_size),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    else:
        geometry = [v2.Resize(resize_size(image_size), antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose(
        [*geometry, v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation: (3,H,W) or (B,3,H,W) -> RGB in [0, 1] (for heatmap overlays)."""
    shape = (3, 1, 1) if images.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(shape)
    return (images * std + mean).clamp(0.0, 1.0)
