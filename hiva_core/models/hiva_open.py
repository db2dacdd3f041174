"""hiva_open: HiVA with no per-AU parameter, so that it scores any AU whose descriptions it is given.

What HiVA learns per AU, hiva_open takes from the AU's text:
- AU features. HiVA's AFG has one d×d projection per AU. Here each AU's token map is the shared one, projected and
  normalised once, then scaled and shifted per channel by a shared layer of the AU's prototype (FiLM, ``text_film``;
  without it every AU reads the shared map). The prototype is the query of DDCA's text→vision attention over its
  map; what it reads there (without the query added back, see ``CrossBlock(query_residual=False)``) is the AU's
  visual node, and its attention weights are the AU's map.
- The graph. Per-sample top-k similarity over whichever AUs are given, with the GCN's shared weights.
- DDCA vision→text and CDCA. Shared weights already; they run over any number of AUs.
- The head. ``s · cos(visual_i, text_i) + b + w · prototype_i``: one scale and one bias for every AU, and (with
  ``text_bias``) a bias term read from the AU's prototype, so that a rare AU can have a lower base rate.

The training AUs are not part of the architecture: ``num_aus`` in the config only records how many there were, and
``forward`` takes a prior of any A. ``use_ddca=False`` drops the vision→text half only (text→vision is how AU
features are made); ``use_text`` must stay on and the head is cosine.
"""

from __future__ import annotations

import torch
from torch import nn

from hiva_core.models.au_graph import AUGraph
from hiva_core.models.cross_attention import CDCA, CrossBlock
from hiva_core.models.heads import CosineHead
from hiva_core.models.hiva import HiVA, ModelConfig, TextBranch


class HiVAOpen(HiVA):
    """``forward(images, text_emb (A, K, D), text_mask (A, K))`` for any A → the outputs of HiVA for those A AUs."""

    open_vocabulary = True

    def build_blocks(self, c: ModelConfig) -> None:
        self.text_branch = TextBranch(c.text_dim, c.dim, c.text_samples, c.text_pool)
        self.text_to_vision = CrossBlock(c.dim, c.heads, query_residual=False)
        self.au_graph = AUGraph(None, c.dim, c.graph_topk, c.use_graph)
        self.vision_to_text = CrossBlock(c.dim, c.heads) if c.use_ddca else None
        self.cdca = CDCA(c.dim, c.heads) if c.use_cdca else None
        self.head = CosineHead(None)
        if c.text_film:
            self.film_tokens = nn.Sequential(nn.Linear(c.dim, c.dim), nn.LayerNorm(c.dim))
            self.film = nn.Linear(c.dim, 2 * c.dim)
            nn.init.zeros_(self.film.weight)  # starts as the shared map for every AU
            nn.init.zeros_(self.film.bias)
        if c.text_bias:
            self.text_bias = nn.Linear(c.dim, 1, bias=False)
            nn.init.zeros_(self.text_bias.weight)  # starts as the shared bias

    def forward_blocks(
        self, tokens: torch.Tensor, text_emb: torch.Tensor | None, text_mask: torch.Tensor | None, grid: tuple[int, int]
    ) -> dict[str, torch.Tensor | None]:
        text_tokens, text_keep, prototypes = self.encode_text(text_emb, text_mask, tokens.device)
        if self.config.text_film:  # DDCA text→vision over each AU's own map: (B, A, d) features, (B, A, L) maps
            scale, shift = self.film(prototypes)[:, None].chunk(2, dim=-1)  # (A, 1, d) each
            au_tokens = torch.relu(self.film_tokens(tokens)[:, None] * (1 + scale) + shift)  # (B, A, L, d)
            visual, maps = self.text_to_vision(prototypes[:, None], au_tokens)
            visual, maps = visual.squeeze(2), maps.squeeze(2)
        else:  # over the shared map: A queries, one key set
            visual, maps = self.text_to_vision(prototypes[None], tokens)
        visual = self.au_graph.propagate(visual)
        if self.vision_to_text is not None:  # DDCA vision→text: node i reads AU i's own descriptions
            visual, _ = self.vision_to_text(visual[:, :, None, :], text_tokens[None], text_keep[None])
            visual = visual.squeeze(2)
        text = prototypes.expand(visual.shape[0], -1, -1)
        if self.cdca is not None:
            visual, text = self.cdca(visual, text)
        logits = self.head(visual, text)
        if self.config.text_bias:
            logits = logits + self.text_bias(prototypes).squeeze(-1)
        return {
            "logits": logits,
            "maps": maps.unflatten(-1, grid),
            "visual": visual,
            "text": prototypes,
        }


def open_vocabulary(model: nn.Module) -> bool:
    """Whether `model` has no per-AU parameter (it scores AUs it was not trained on, given their descriptions)."""
    return bool(getattr(model, "open_vocabulary", False))
