"""Named model variants (timm-style): ``create_model(name, num_aus, text_dim, **overrides)``, ``list_models()``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

from augtext.errors import UserError
from hiva_core.models.hiva import HiVA, LinearAU, ModelConfig, check_width
from hiva_core.models.hiva_open import HiVAOpen

# name -> (model class, config defaults that differ from ModelConfig's)
_MODELS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "hiva": (HiVA, {}),
    "hiva_no_text": (HiVA, {"use_text": False}),
    "hiva_no_graph": (HiVA, {"use_graph": False}),
    "hiva_no_ddca": (HiVA, {"use_ddca": False}),
    "hiva_no_cdca": (HiVA, {"use_cdca": False}),
    # ME-GraphAU stage 1: AFG nodes + dynamic graph, cosine similarity to a learned centre per AU, no text.
    "megraph_s1": (HiVA, {"use_text": False, "use_ddca": False, "use_cdca": False}),
    # Backbone + global pool + linear heads; no AU nodes, no text.
    "linear": (
        LinearAU,
        {"use_text": False, "use_graph": False, "use_ddca": False, "use_cdca": False, "head": "linear"},
    ),
    # No per-AU parameter: AU features from each AU's text; scores AUs it never saw, given their descriptions.
    "hiva_open": (HiVAOpen, {}),
}
_CHOICES = {"head": ("cosine", "linear"), "text_pool": ("mean", "attention")}


def is_open_vocabulary(name: str) -> bool:
    """Whether registered model `name` has no per-AU parameter (False for an unknown name)."""
    return name in _MODELS and bool(getattr(_MODELS[name][0], "open_vocabulary", False))


def reads_intensity(name: str) -> bool:
    """Whether registered model `name` can learn AU intensities (`model.intensity`): one visual node per trained AU
    (hiva and its ablations). Not linear (no AU nodes) nor hiva_open (no per-AU parameter)."""
    return name in _MODELS and _MODELS[name][0] is HiVA


def list_models() -> list[str]:
    """The registered model names."""
    return list(_MODELS)


def create_model(name: str, num_aus: int, text_dim: int, **overrides: Any) -> nn.Module:
    """Build model ``name`` for ``num_aus`` AUs and a ``text_dim``-dimensional text prior.

    ``overrides`` are ModelConfig fields (backbone, pretrained, backbone_weights, dim, heads, graph_topk,
    text_samples, text_pool, head, use_text, use_graph, use_ddca, use_cdca); ``dim`` None (the default) follows the
    backbone's feature width (``default_dim``). Unknown names are a UserError that lists the valid ones.
    ``create_model(**dataclasses.asdict(model.config))`` rebuilds the same architecture.
    """
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; valid models: {', '.join(_MODELS)}")
    cls, defaults = _MODELS[name]
    valid = [f.name for f in fields(ModelConfig) if f.name not in ("name", "num_aus", "text_dim")]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UserError(f"unknown model option(s) {', '.join(unknown)} for {name!r}; valid options: {', '.join(valid)}")
    if overrides.get("backbone_weights") is not None:
        overrides["backbone_weights"] = str(overrides["backbone_weights"])  # the config stays JSON-able
    config = ModelConfig(name=name, num_aus=num_aus, text_dim=text_dim, **{**defaults, **overrides})
    for key, choices in _CHOICES.items():
        if getattr(config, key) not in choices:
            raise UserError(f"model option {key}={getattr(config, key)!r} is not one of {', '.join(choices)}")
    if cls is LinearAU and any(getattr(config, k) for k in ("use_text", "use_graph", "use_ddca", "use_cdca")):
        raise UserError("model 'linear' has no text, graph, DDCA or CDCA block to switch on; use 'hiva' instead")
    if cls is HiVAOpen and (not config.use_text or config.head != "cosine"):
        raise UserError(
            "model 'hiva_open' makes its AU features from the text prior and compares them with a "
            "cosine head: it needs use_text=true and head=cosine"
        )
    if config.intensity and cls is not HiVA:
        raise UserError(
            f"model {name!r} cannot learn AU intensities (model.intensity): it needs one visual node per trained AU "
            f"and per-AU parameters; use {', '.join(n for n in _MODELS if reads_intensity(n))}"
        )
    check_width(config)  # an explicit dim now; a default one (None) once the backbone's width is known
    return cls(config)
