"""The HiVA model: backbone → AU graph → text branch → DDCA → CDCA → head, every block switchable.

Our reading of the abstract (the paper's code is not public): the text prior's per-AU descriptions are encoded to
d-dimensional tokens and pooled to one prototype per AU; DDCA lets each AU's visual node and text prototype look
at each other (and yields the per-AU spatial map); CDCA mixes information across AUs; the head compares each
refined visual node with its refined text feature. ``LinearAU`` is the plain backbone + linear heads baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from augtext.errors import UserError
from hiva_core.models.au_graph import AUGraph
from hiva_core.models.backbone import build_backbone
from hiva_core.models.cross_attention import CDCA, DDCA
from hiva_core.models.heads import CosineHead, LinearHead


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model: ``create_model(**asdict(config))`` gives the same architecture."""

    name: str
    num_aus: int
    text_dim: int
    backbone: str = "resnet50"
    pretrained: bool = False
    backbone_weights: str | None = None
    dim: int = 512
    heads: int = 8
    graph_topk: int = 4
    text_samples: int = 4  # descriptions sampled per AU per training step (eval uses every valid one)
    text_pool: str = "mean"  # "mean" | "attention": how description tokens become one prototype per AU
    head: str = "cosine"  # "cosine" | "linear"
    use_text: bool = True  # False: learned AU query embeddings stand in for the text prototypes
    use_graph: bool = True
    use_ddca: bool = True
    use_cdca: bool = True


class TextBranch(nn.Module):
    """Prior embeddings ``(A, K, D)`` → description tokens ``(A, K, d)`` → one prototype per AU ``(A, d)``.

    Training: each step keeps a random subset of ``samples`` valid descriptions per AU (torch's RNG; the variety
    of descriptions is the augmentation). Eval: every valid description. Padding (mask False) is never used.
    """

    def __init__(self, text_dim: int, dim: int, samples: int, pool: str = "mean"):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(), nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.samples = samples
        self.pool_score = nn.Linear(dim, 1) if pool == "attention" else None

    def sample(self, mask: torch.Tensor) -> torch.Tensor | None:
        """Indices ``(A, samples)`` of this step's random descriptions per AU (valid ones first), or None when
        every valid description is used (eval, or no more than ``samples`` of them)."""
        if not self.training or self.samples >= mask.shape[1]:
            return None
        scores = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
        return scores.topk(self.samples, dim=1).indices

    def select(self, mask: torch.Tensor) -> torch.Tensor:
        """The descriptions used this step: a random valid subset in training, all valid ones in eval."""
        idx = self.sample(mask)
        if idx is None:
            return mask
        return torch.zeros_like(mask).scatter_(1, idx, True) & mask

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Description tokens, their mask and one prototype per AU. In training the tokens are only this step's
        ``samples`` descriptions per AU, ``(A, samples, d)``: the unused ones never go through the MLP."""
        idx = self.sample(mask)
        keep = mask
        if idx is not None:  # the same subset as `select`, gathered: the MLP runs on A·samples rows, not A·K
            keep = mask.gather(1, idx)
            emb = emb.gather(1, idx[..., None].expand(-1, -1, emb.shape[-1]))
        tokens = self.mlp(emb)
        if self.pool_score is None:
            weights = keep.to(tokens.dtype)
            weights = weights / weights.sum(1, keepdim=True).clamp(min=1)
        else:
            scores = self.pool_score(tokens).squeeze(-1).masked_fill(~keep, torch.finfo(tokens.dtype).min)
            weights = scores.softmax(1) * keep
        return tokens, keep, torch.einsum("ak,akd->ad", weights, tokens)


class HiVA(nn.Module):
    """HiVA for ``num_aus`` AUs. ``forward(images, text_emb, text_mask)`` → dict of ``logits (B, A)``,
    ``maps (B, A, h, w)`` or None, ``visual (B, A, d)`` and ``text (A, d)`` (the prior's prototypes) or None."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.backbone = build_backbone(c.backbone, c.pretrained, c.backbone_weights)
        self.proj = nn.Sequential(nn.Linear(self.backbone.num_features, c.dim), nn.LayerNorm(c.dim))
        self.au_graph = AUGraph(c.num_aus, c.dim, c.graph_topk, c.use_graph)
        if c.use_text:
            self.text_branch = TextBranch(c.text_dim, c.dim, c.text_samples, c.text_pool)
        else:
            self.au_queries = nn.Parameter(torch.randn(c.num_aus, c.dim) * 0.02)
        self.ddca = DDCA(c.dim, c.heads) if c.use_ddca else None
        self.cdca = CDCA(c.dim, c.heads) if c.use_cdca else None
        self.head = CosineHead(c.num_aus) if c.head == "cosine" else LinearHead(c.num_aus, c.dim)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone tokens ``(B, L, C)``."""
        return self.backbone(images)[0]

    def forward(self, images: torch.Tensor, text_emb: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        tokens, grid = self.backbone(images)
        return self.forward_head(tokens, text_emb, text_mask, grid=grid)

    def encode_text(self, text_emb: torch.Tensor | None, text_mask: torch.Tensor | None, device: torch.device):
        """Description tokens (A, K', d), their mask (A, K') and prototypes (A, d); learned queries without text.

        K' is K in eval and min(K, ``text_samples``) in training (only the sampled descriptions are encoded)."""
        c = self.config
        if not c.use_text:
            return self.au_queries[:, None, :], torch.ones(c.num_aus, 1, dtype=torch.bool, device=device), \
                self.au_queries
        if text_emb is None:
            raise UserError(f"model {c.name!r} uses the text prior: pass text_emb (A, K, D)")
        if text_emb.ndim != 3 or text_emb.shape[0] != c.num_aus or text_emb.shape[2] != c.text_dim:
            raise UserError(f"text prior has shape {tuple(text_emb.shape)}; model {c.name!r} expects "
                            f"({c.num_aus}, K, {c.text_dim}) (AUs, descriptions, embedding dim)")
        text_emb = text_emb.to(device)
        if text_mask is None:
            text_mask = torch.ones(text_emb.shape[:2], dtype=torch.bool, device=device)
        elif text_mask.shape != text_emb.shape[:2]:
            raise UserError(f"text mask has shape {tuple(text_mask.shape)}, expected {tuple(text_emb.shape[:2])}")
        return self.text_branch(text_emb, text_mask.to(device=device, dtype=torch.bool))

    def forward_head(self, tokens: torch.Tensor, text_emb: torch.Tensor | None = None,
                     text_mask: torch.Tensor | None = None, grid: tuple[int, int] | None = None
                     ) -> dict[str, torch.Tensor | None]:
        """Everything after the backbone. ``grid`` is the token grid (h, w); a square one is assumed if None."""
        if grid is None:
            side = int(round(tokens.shape[1] ** 0.5))
            grid = (side, tokens.shape[1] // side)
        token_maps, visual = self.au_graph(self.proj(tokens))
        text_tokens, text_keep, prototypes = self.encode_text(text_emb, text_mask, tokens.device)
        text = prototypes.expand(visual.shape[0], -1, -1)
        maps = None
        if self.ddca is not None:
            visual, text, maps = self.ddca(visual, token_maps, text_tokens, text_keep, prototypes)
            maps = maps.unflatten(-1, grid)
        if self.cdca is not None:
            visual, text = self.cdca(visual, text)
        logits = self.head(visual, text)
        return {"logits": logits, "maps": maps, "visual": visual,
                "text": prototypes if self.config.use_text else None}


class LinearAU(nn.Module):
    """Baseline: backbone → global average pool → one linear logit per AU. Ignores the text prior."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, config.pretrained, config.backbone_weights)
        self.classifier = nn.Linear(self.backbone.num_features, config.num_aus)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)[0]

    def forward_head(self, tokens: torch.Tensor, *args, **kwargs) -> dict[str, torch.Tensor | None]:
        pooled = tokens.mean(1)
        return {"logits": self.classifier(pooled), "maps": None, "visual": None, "text": None}

    def forward(self, images: torch.Tensor, text_emb: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        return self.forward_head(self.forward_features(images))
