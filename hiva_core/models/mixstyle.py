"""MixStyle (Zhou et al., ICLR 2021): feature statistics mixed across the images of a batch, in training only.

A CNN's early feature maps carry an image's *style* — colour, contrast, texture, lighting — in their per-channel
mean and standard deviation. MixStyle normalises each image's map by its own statistics and rescales it with a mix
of its own and another image's (λ ~ Beta(α, α)), with probability p per batch. The content stays; the model learns
from the same faces under styles that no single image had. It is a domain-generalisation regulariser for a model
trained on one look (rendered faces) and used on another (photos, another face model). It has no weights and does
nothing in eval mode, so a run trained with it saves, loads, exports and predicts exactly like one without.

Where: after the backbone's stages at strides 4 and 8 (ResNet's layer1 and layer2, MobileNetV2's blocks 3 and 6),
the shallow layers where style lives; the deep features that say which AU is there are left alone.
"""

from __future__ import annotations

import torch
from torch import nn

from augtext.errors import UserError

STYLE_STRIDES = (4, 8)


class MixStyle(nn.Module):
    """Mixes per-channel feature statistics between the images of a batch with probability ``p`` (training only)."""

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6):
        super().__init__()
        self.p = p
        self.alpha = alpha
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] < 2 or torch.rand(()) >= self.p:
            return x
        b = x.shape[0]
        mu = x.mean(dim=(2, 3), keepdim=True).detach()
        sigma = (x.var(dim=(2, 3), keepdim=True) + self.eps).sqrt().detach()
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((b, 1, 1, 1)).to(x.device, x.dtype)
        perm = torch.randperm(b, device=x.device)
        mu_mix = lam * mu + (1 - lam) * mu[perm]
        sigma_mix = lam * sigma + (1 - lam) * sigma[perm]
        return (x - mu) / sigma * sigma_mix + mu_mix

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}"


def style_layers(body: nn.Module, timm_features: bool) -> list[nn.Module]:
    """The modules whose outputs are the last feature maps at strides 4 and 8 (the final output excluded).

    timm models name their stages in ``feature_info`` (with the reduction of each); the local backbones are one
    ``nn.Sequential`` of blocks, whose strides are read off a forward pass of a small blank image.
    """
    if timm_features:
        info = getattr(body, "feature_info", None)
        stages = [(int(i["reduction"]), body.get_submodule(i["module"])) for i in (info or [])[:-1]]
    else:
        seq = next((m for m in body.modules() if isinstance(m, nn.Sequential) and len(m) >= 3), None)
        stages = _sequential_strides(seq) if seq is not None else []
    last: dict[int, nn.Module] = {}
    for stride, module in stages:
        if stride in STYLE_STRIDES:
            last[stride] = module
    return [last[s] for s in STYLE_STRIDES if s in last]


def _sequential_strides(seq: nn.Sequential, size: int = 64) -> list[tuple[int, nn.Module]]:
    """(stride, block) for every block of ``seq`` but the last, from a forward pass of a blank ``size`` image."""
    x = torch.zeros(1, 3, size, size)
    out = []
    was_training = seq.training
    seq.eval()
    with torch.no_grad():
        for block in seq:
            x = block(x)
            out.append((size // x.shape[-1], block))
    seq.train(was_training)
    return out[:-1]


def add_mixstyle(backbone: nn.Module, p: float, alpha: float = 0.1) -> MixStyle:
    """Insert one MixStyle (a child ``backbone.mixstyle``, so ``train()``/``eval()`` reach it) after the stages at
    strides 4 and 8 of ``backbone.body``, through forward hooks (no parameter or state-dict key changes)."""
    layers = style_layers(backbone.body, backbone.timm_features)
    if not layers:
        raise UserError(
            f"model option mixstyle needs a CNN backbone with stages at strides 4 and 8; {backbone.name!r} has none "
            f"(use --set model.mixstyle=0)"
        )
    mix = MixStyle(p, alpha)
    backbone.mixstyle = mix
    for layer in layers:
        layer.register_forward_hook(lambda _module, _inputs, output: mix(output))
    return mix
