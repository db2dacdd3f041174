"""Image transforms as the AU field uses them: resize to 256/224 of the crop, random crop + flip + colour changes
for training, centre crop for evaluation, ImageNet normalisation.

Training augmentation (`data.augment`): `strong` (the default for new runs) adds RandAugment (two random ops of
magnitude 9: shear, translate, rotate, posterize, solarize, contrast, equalize, sharpness, ...), grey-scale and random
erasing to `basic` (random crop, flip, mild colour jitter, the field's usual recipe); `none` trains on the evaluation
transform. Strong augmentation widens the look a model is trained on, which is what transfer from synthetic faces to
another face model or to photos needs."""

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


AUGMENTATIONS = ("strong", "basic", "none")


def build_transforms(image_size: int = 224, augment: bool | str = False) -> Callable[[Image.Image], torch.Tensor]:
    """PIL RGB image -> float tensor (3, image_size, image_size), ImageNet-normalised.

    augment: "basic" (or True): resize, random crop, horizontal flip (AU labels are bilateral, so a flip keeps them),
    colour jitter; "strong": basic + RandAugment, grey-scale and random erasing; "none" (or False): resize and centre
    crop, deterministic (evaluation).
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    mode = ("basic" if augment else "none") if isinstance(augment, bool) else augment
    if mode not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if mode == "none":
        return v2.Compose([v2.Resize(resize_size(image_size), antialias=True), v2.CenterCrop(image_size), *tail])
    steps = [v2.Resize(resize_size(image_size), antialias=True), v2.RandomCrop(image_size), v2.RandomHorizontalFlip()]
    if mode == "basic":
        return v2.Compose([*steps, v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2), *tail])
    return v2.Compose(
        [
            *steps,
            v2.RandAugment(num_ops=2, magnitude=9),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.03),
            v2.RandomGrayscale(p=0.1),
            *tail,
            v2.RandomErasing(p=0.25, scale=(0.02, 0.15), value=0.0),
        ]
    )


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation: (3,H,W) or (B,3,H,W) -> RGB in [0, 1] (for heatmap overlays)."""
    shape = (3, 1, 1) if images.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(shape)
    return (images * std + mean).clamp(0.0, 1.0)
