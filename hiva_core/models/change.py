"""What changed from the neutral frame in the backbone's early maps (``model.fine_change``).

A model with ``model.reference`` reads each token with its change from the neutral's token, at the token grid's
stride (16 px). The deep layers that make those tokens pool over large windows: a brow raised by half a pixel, a lip
pressed a little thinner, leave a faint trace there. The early maps, at strides 4 and 8, are edge and texture
detectors in place; their difference between the face and the neutral frame marks where an edge moved, and by how
much. ``FineChange`` takes those maps from the same backbone pass (forward hooks on the stages at strides 4 and 8,
as MixStyle finds them), subtracts the neutral's from the face's, and brings each difference to the token grid with
stride-2 convolutions: ``width`` more channels per token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from augtext.errors import UserError
from hiva_core.models.mixstyle import early_stages

LEVEL_WIDTH = 64  # channels each early level contributes per token


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FineChange(nn.Module):
    """The change of ``backbone``'s maps at strides 4 and 8 between a face and its neutral frame, as ``width``
    channels per token (``encode``). Forward hooks on those stages keep their maps while ``encode`` runs."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        stages = early_stages(backbone.body, backbone.timm_features)
        if not stages:
            raise UserError(
                f"model option fine_change needs a CNN backbone with stages at strides 4 and 8; {backbone.name!r} "
                f"has none (use --set model.fine_change=false)"
            )
        self.nhwc = backbone.layout == "NHWC"  # timm's Swin and the like lay their stages out channels-last
        self._maps: list[torch.Tensor] | None = None  # a list only while `encode` runs the backbone
        self.levels = nn.ModuleList()
        for stride, channels, layer in stages:
            steps = max(0, round(math.log2(max(backbone.stride, stride) / stride)))
            convs = [_conv(channels if i == 0 else LEVEL_WIDTH, LEVEL_WIDTH, 2) for i in range(steps)]
            self.levels.append(nn.Sequential(*convs) if convs else _conv(channels, LEVEL_WIDTH, 1))
            layer.register_forward_hook(self._keep)
        self.width = LEVEL_WIDTH * len(self.levels)

    def _keep(self, _module: nn.Module, _inputs, output: torch.Tensor) -> None:
        if self._maps is not None:
            self._maps.append(output.permute(0, 3, 1, 2) if self.nhwc else output)

    def encode(
        self, backbone: nn.Module, faces: torch.Tensor, rest: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor]:
        """``backbone``'s tokens of ``faces`` and then ``rest`` (one pass, ``(2B, L, C)``), their grid, and the change
        tokens ``(B, L, width)`` of the early maps of that pass."""
        self._maps = []
        try:
            tokens, grid = backbone(torch.cat([faces, rest], 0))
            maps = self._maps
        finally:
            self._maps = None
        if len(maps) != len(self.levels):
            raise RuntimeError(f"FineChange: {len(maps)} early maps captured, expected {len(self.levels)}")
        batch, out = faces.shape[0], []
        for level, m in zip(self.levels, maps, strict=True):
            x = level(m[:batch] - m[batch:])
            if tuple(x.shape[-2:]) != tuple(grid):
                x = F.adaptive_avg_pool2d(x, grid)
            out.append(x)
        return tokens, grid, torch.cat(out, 1).flatten(2).transpose(1, 2)
