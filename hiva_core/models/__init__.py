"""The HiVA model family: ``create_model(name, num_aus, text_dim, **overrides)`` and ``list_models()``."""

from __future__ import annotations

from hiva_core.models.backbone import build_backbone, default_mobilenet_weights
from hiva_core.models.hiva import HiVA, LinearAU, ModelConfig
from hiva_core.models.registry import create_model, list_models

__all__ = ["HiVA", "LinearAU", "ModelConfig", "build_backbone", "create_model", "default_mobilenet_weights",
           "list_models"]
