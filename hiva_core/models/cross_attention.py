"""Cross-attention between AU visual features and AU text features: DDCA (per AU) and CDCA (across AUs).

One multi-head attention serves every direction. Leading dimensions broadcast, which is how the per-AU DDCA runs
for all AUs at once: a query of shape ``(B, A, 1, d)`` against keys ``(1, A, K, d)`` attends only within its own
AU. Masked keys get zero weight; a query with no valid key gets a zero update instead of NaN.
"""

from __future__ import annotations

import torch
from torch import nn


class MultiHeadCrossAttention(nn.Module):
    """Multi-head attention over broadcastable leading dims: ``q (..., Lq, d)``, ``kv (..., Lk, d)``.

    Returns the output ``(..., Lq, d)`` and the head-averaged weights ``(..., Lq, Lk)``.

    The key and value projections are folded into the (few) queries instead of being applied to the (many) keys:
    ``q_h · (W_k x + b_k) = (W_k,h^T q_h) · x + const`` (the constant cancels in the softmax) and
    ``Σ_l a_l (W_v x_l + b_v) = W_v (Σ_l a_l x_l) + b_v Σ_l a_l``. Same result as projecting every key, but DDCA's
    text→vision step (one query per AU against a (B, A, L, d) token map) costs ``H·d`` per token instead of ``d²``.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim, bias=False)  # a key bias adds a constant per query: softmax drops it
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, d = self.heads, q.shape[-1]
        qh = self.q(q).unflatten(-1, (h, d // h)).transpose(-2, -3)  # (..., H, Lq, dh)
        # einsum with the per-head weights batched over H (a broadcasting `@` would copy them per query)
        qk = torch.einsum("...hqe,hed->...hqd", qh, self.k.weight.view(h, d // h, d).to(qh.dtype)) * (d // h) ** -0.5
        # Heads and queries share one matmul against the raw keys (no per-head copy of a (B, A, L, d) token map).
        x = kv.to(qk.dtype)
        scores = (qk.flatten(-3, -2) @ x.transpose(-1, -2)).unflatten(-2, (h, -1))  # (..., H, Lq, Lk)
        if mask is not None:
            valid = mask[..., None, None, :]  # (..., 1, 1, Lk)
            scores = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
            weights = scores.softmax(-1) * valid  # rows with no valid key become all zero, not NaN
        else:
            weights = scores.softmax(-1)
        ctx = (weights.flatten(-3, -2) @ x).unflatten(-2, (h, -1))  # (..., H, Lq, d): weighted raw keys
        values = torch.einsum("...hqd,hed->...hqe", ctx, self.v.weight.view(h, d // h, d).to(ctx.dtype))
        values = values + self.v.bias.view(h, 1, d // h) * weights.sum(-1, keepdim=True)
        return self.out(values.transpose(-2, -3).flatten(-2)), weights.mean(-3)


class CrossBlock(nn.Module):
    """Pre-norm cross-attention + FFN, both residual: ``x ← x + attn(norm(x), norm(ctx)); x ← x + ffn(norm(x))``.

    ``query_residual=False`` drops the first residual (``x ← attn(norm(x), norm(ctx))``): the output is what the
    query read from the context, not the query plus it. hiva_open uses this to pool an AU's visual feature with its
    text prototype as the query, so that the feature carries no copy of the text it is later compared with.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, query_residual: bool = True):
        super().__init__()
        self.query_residual = query_residual
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = MultiHeadCrossAttention(dim, heads)
        self.norm_ffn = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(
        self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        update, weights = self.attn(self.norm_q(x), self.norm_kv(ctx), mask)
        x = x + update if self.query_residual else update
        return x + self.ffn(self.norm_ffn(x)), weights


class DDCA(nn.Module):
    """Disentangled dual cross-attention: every AU talks only to itself, in both directions, in parallel.

    vision→text: visual node i (query) attends to AU i's description tokens (masked).
    text→vision: AU i's text prototype (query) attends to AU i's spatial token map; its attention weights,
    ``(B, A, L)``, are the AU's spatial activation map (they sum to 1 over space).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.vision_to_text = CrossBlock(dim, heads)
        self.text_to_vision = CrossBlock(dim, heads)

    def forward(
        self,
        nodes: torch.Tensor,
        token_maps: torch.Tensor,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        prototypes: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """nodes (B,A,d), token_maps (B,A,L,d), text_tokens (A,K,d), text_mask (A,K), prototypes (A,d) or (B,A,d).

        Returns refined nodes (B,A,d), refined text (B,A,d) and maps (B,A,L).
        """
        b = nodes.shape[0]
        visual, _ = self.vision_to_text(nodes[:, :, None, :], text_tokens[None], text_mask[None])
        proto = prototypes.expand(b, *prototypes.shape[-2:])
        # AU-major (A, B, ...): the AFG's token maps are stored that way, so the (A, B, L, d) view is contiguous and
        # the block's LayerNorm and matmuls use it in place (any layout gives the same result)
        text, maps = self.text_to_vision(proto.transpose(0, 1)[:, :, None, :], token_maps.transpose(0, 1))
        return visual.squeeze(2), text.squeeze(2).transpose(0, 1), maps.squeeze(2).transpose(0, 1)


class CDCA(nn.Module):
    """Contextual dual cross-attention: all A visual nodes attend to all A text features and vice versa."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.vision_to_text = CrossBlock(dim, heads)
        self.text_to_vision = CrossBlock(dim, heads)

    def forward(self, visual: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """visual (B,A,d), text (B,A,d) → both refined, (B,A,d)."""
        new_visual, _ = self.vision_to_text(visual, text)
        new_text, _ = self.text_to_vision(text, visual)
        return new_visual, new_text
