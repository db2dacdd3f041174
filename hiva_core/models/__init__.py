"""The HiVA model family: ``create_model(name, num_aus, text_dim, **overrides)`` and ``list_models()``."""

from __future__ import annotations

from hiva_core.models.backbone import build_backbone, default_mobilenet_weights
from hiva_core.models.hiva import HiVA, LinearAU, ModelConfig, default_dim
from hiva_core.models.hiva_open import HiVAOpen, open_vocabulary
from hiva_core.models.registry import create_model, list_models

__all__ = [
    "HiVA",
    "HiVAOpen",
    "LinearAU",
    "ModelConfig",
    "build_backbone",
    "create_model",
    "default_dim",
    "default_mobilenet_weights",
    "list_models",
    "open_vocabulary",
]
