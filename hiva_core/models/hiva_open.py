"""hiva_open: HiVA with no per-AU parameter, so that it scores any AU whose descriptions it is given.

It is HiVA's path (AU token maps → graph → DDCA → CDCA → cosine head) with what HiVA learns per AU read from the AU's
text instead:
- AU features. HiVA's AFG has one d×d projection per AU. Here the tokens are projected and normalised once, and each
  AU's token map is that map scaled and shifted channel by channel by a shared layer of the AU's text prototype
  (FiLM; ``text_film``), then a ReLU, as the AFG's. Its mean over space is the AU's graph node, and DDCA's
  text→vision attention of the prototype over it is the AU's spatial map.
- The graph. Per-sample top-k similarity over whichever AUs are given, with the GCN's shared weights.
- DDCA and CDCA. Shared weights already; they run over any number of AUs.
- The head. ``s · cos(visual_i, text_i) + b + w · prototype_i``: one scale and one bias for every AU, and (with
  ``text_bias``) a bias term read from the AU's prototype, so that each AU has a base rate of its own.

The training AUs are not part of the architecture: ``num_aus`` in the config only records how many there were, and
``forward`` takes a prior of any A. ``use_text`` must stay on and the head is cosine.

Runs saved before ``text_film`` (False for them, ``LEGACY_MODEL_OPTIONS``) were built another way and still load:
each AU's visual node is what its prototype reads from the shared token map (``CrossBlock(query_residual=False)``,
whose attention weights are the AU's map), then the graph, DDCA's vision→text half (``use_ddca``) and CDCA.
"""

from __future__ import annotations

import torch
from torch import nn

from hiva_core.models.au_graph import AUGraph
from hiva_core.models.cross_attention import CDCA, DDCA, CrossBlock
from hiva_core.models.heads import CosineHead
from hiva_core.models.hiva import HiVA, ModelConfig, TextBranch


class HiVAOpen(HiVA):
    """``forward(images, text_emb (A, K, D), text_mask (A, K))`` for any A → the outputs of HiVA for those A AUs."""

    open_vocabulary = True

    def build_blocks(self, c: ModelConfig) -> None:
        self.text_branch = TextBranch(c.text_dim, c.dim, c.text_samples, c.text_pool)
        self.au_graph = AUGraph(None, c.dim, c.graph_topk, c.use_graph)
        if c.text_film:
            self.film_tokens = nn.Sequential(nn.Linear(c.dim, c.dim), nn.LayerNorm(c.dim))
            self.film = nn.Linear(c.dim, 2 * c.dim)
            nn.init.zeros_(self.film.weight)  # starts as one shared map for every AU
            nn.init.zeros_(self.film.bias)
            self.ddca = DDCA(c.dim, c.heads) if c.use_ddca else None
        else:
            self.text_to_vision = CrossBlock(c.dim, c.heads, query_residual=False)
            self.vision_to_text = CrossBlock(c.dim, c.heads) if c.use_ddca else None
        self.cdca = CDCA(c.dim, c.heads) if c.use_cdca else None
        self.head = CosineHead(None)
        self.text_bias = nn.Linear(c.dim, 1, bias=False) if c.text_bias else None
        if self.text_bias is not None:
            nn.init.zeros_(self.text_bias.weight)  # starts as the shared bias

    def au_features(self, tokens: torch.Tensor, prototypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each AU's token map, the shared one modulated by its prototype: ``(B, A, L, d)`` (stored AU-major, as the
        AFG's), and the graph's nodes ``(B, A, d)``."""
        scale, shift = self.film(prototypes)[:, None, None].chunk(2, dim=-1)  # (A, 1, 1, d) each
        maps = torch.relu(self.film_tokens(tokens)[None] * (1 + scale) + shift).transpose(0, 1)
        return maps, self.au_graph.propagate(maps.mean(dim=2))

    def forward_blocks(
        self, tokens: torch.Tensor, text_emb: torch.Tensor | None, text_mask: torch.Tensor | None, grid: tuple[int, int]
    ) -> dict[str, torch.Tensor | None]:
        if self.config.text_film:
            out = super().forward_blocks(tokens, text_emb, text_mask, grid)
        else:
            out = self.shared_map_blocks(tokens, text_emb, text_mask, grid)
        if self.text_bias is not None:
            out["logits"] = out["logits"] + self.text_bias(out["text"]).squeeze(-1)
        return out

    def shared_map_blocks(
        self, tokens: torch.Tensor, text_emb: torch.Tensor | None, text_mask: torch.Tensor | None, grid: tuple[int, int]
    ) -> dict[str, torch.Tensor | None]:
        """The blocks of a run saved before ``text_film``."""
        text_tokens, text_keep, prototypes = self.encode_text(text_emb, text_mask, tokens.device)
        # DDCA text→vision over the shared map: A queries, one key set; (B, A, d) features and (B, A, L) maps
        visual, maps = self.text_to_vision(prototypes[None], tokens)
        visual = self.au_graph.propagate(visual)
        if self.vision_to_text is not None:  # DDCA vision→text: node i reads AU i's own descriptions
            visual, _ = self.vision_to_text(visual[:, :, None, :], text_tokens[None], text_keep[None])
            visual = visual.squeeze(2)
        text = prototypes.expand(visual.shape[0], -1, -1)
        if self.cdca is not None:
            visual, text = self.cdca(visual, text)
        return {
            "logits": self.head(visual, text),
            "maps": maps.unflatten(-1, grid),
            "visual": visual,
            "text": prototypes,
        }


def open_vocabulary(model: nn.Module) -> bool:
    """Whether `model` has no per-AU parameter (it scores AUs it was not trained on, given their descriptions)."""
    return bool(getattr(model, "open_vocabulary", False))
