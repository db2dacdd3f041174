"""The AU-aware dynamic graph: per-AU token maps and nodes (ME-GraphAU's AFG) plus a per-sample GCN.

AFG (AU-specific feature generator): A separate projections of the shared tokens give one token map per AU,
``(B, A, L, d)``; the mean over the L tokens is that AU's node. The tokens arrive already projected from the
backbone's C channels to d by one shared layer (``HiVA.proj``, with norm), so the per-AU layers are d→d: they cost
``A·L·d²`` per image instead of ``A·L·C·d`` (ResNet-50: C = 2048, d = 512, a quarter).

The graph is built per sample from the cosine similarity of its nodes: each node keeps its ``topk`` most similar
nodes (itself included), the adjacency is normalised as ``D^-1/2 Â D^-1/2`` and one residual GCN layer updates the
nodes. As in ME-GraphAU the top-k choice is a hard, non-differentiable selection; gradients flow through the node
features.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class AUFeatureGenerator(nn.Module):
    """A AU-specific projections of the tokens, one batched GEMM: ``(B, L, d) → (B, A, L, d)`` (stored AU-major)."""

    def __init__(self, num_aus: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_aus, dim, dim))
        self.bias = nn.Parameter(torch.zeros(num_aus, dim))
        self.norm = nn.LayerNorm(dim)
        nn.init.kaiming_uniform_(self.weight.view(num_aus * dim, dim), a=math.sqrt(5))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # AU-major memory: one batched GEMM per AU with the bias fused (baddbmm) writes (A, B·L, d), normalised
        # in that layout, and returned as a (B, A, L, d) view. DDCA's text→vision reads it back AU-major
        # (`transpose(0, 1)`, contiguous again), so its LayerNorm and attention run without a permuting copy of the
        # largest tensor of the head, forward or backward.
        a, d = self.bias.shape
        batch, length, _ = tokens.shape
        flat = tokens.reshape(1, batch * length, d).expand(a, -1, -1)
        maps = torch.baddbmm(self.bias[:, None, :], flat, self.weight.transpose(1, 2))
        return torch.relu(self.norm(maps)).view(a, batch, length, d).transpose(0, 1)


def dynamic_adjacency(nodes: torch.Tensor, topk: int) -> torch.Tensor:
    """Normalised per-sample adjacency ``(B, A, A)`` from the top-k cosine neighbours of each node."""
    unit = nn.functional.normalize(nodes.detach().float(), dim=-1)
    sim = unit @ unit.transpose(1, 2)
    k = max(1, min(topk, sim.shape[-1]))
    sim = sim + torch.eye(sim.shape[-1], device=sim.device)  # the node itself is always a neighbour
    idx = sim.topk(k, dim=-1).indices
    adj = torch.zeros_like(sim).scatter_(-1, idx, 1.0)
    deg = adj.sum(-1).rsqrt()
    return (deg[:, :, None] * adj * deg[:, None, :]).to(nodes.dtype)


class AUGraph(nn.Module):
    """Tokens ``(B, L, d)`` → per-AU token maps ``(B, A, L, d)`` and nodes ``(B, A, d)``.

    With ``use_graph=False`` the nodes are the pooled AFG maps and no GCN runs (the no-graph ablation).
    With ``num_aus=None`` there is no AFG (no per-AU parameter): ``propagate`` runs the GCN over nodes made
    elsewhere, for as many AUs as it is given (hiva_open).
    """

    def __init__(self, num_aus: int | None, dim: int, topk: int = 4, use_graph: bool = True):
        super().__init__()
        self.afg = AUFeatureGenerator(num_aus, dim) if num_aus is not None else None
        self.topk = topk
        if use_graph:
            self.gcn_self = nn.Linear(dim, dim)
            self.gcn_neighbours = nn.Linear(dim, dim, bias=False)
            self.gcn_norm = nn.LayerNorm(dim)
        self.use_graph = use_graph

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.afg(tokens)
        return maps, self.propagate(maps.mean(dim=2))

    def propagate(self, nodes: torch.Tensor) -> torch.Tensor:
        """One residual GCN step over the per-sample top-k graph of ``nodes (B, A, d)``, any A (identity when the
        graph is off)."""
        if not self.use_graph:
            return nodes
        adj = dynamic_adjacency(nodes, self.topk)
        update = self.gcn_self(nodes) + adj @ self.gcn_neighbours(nodes)
        return nodes + torch.relu(self.gcn_norm(update))
