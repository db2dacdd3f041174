"""The HiVA model: backbone → AU graph → text branch → DDCA → CDCA → head, every block switchable.

Our reading of the abstract (the paper's code is not public): the text prior's per-AU descriptions are encoded to
d-dimensional tokens and pooled to one prototype per AU; DDCA lets each AU's visual node and text prototype look
at each other (and yields the per-AU spatial map); CDCA mixes information across AUs; the head compares each
refined visual node with its refined text feature. ``LinearAU`` is the plain backbone + linear heads baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from augtext.errors import UserError
from augtext.grounding import GEOMETRY
from hiva_core.models.au_graph import AUGraph
from hiva_core.models.backbone import Backbone, build_backbone
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
    # Stride of the token grid (8, 16 or 32): 16 dilates a CNN's last stage for maps twice as fine (8×8 at 128 px).
    # None = 16 where the backbone can dilate, its own stride elsewhere; resolved at build like dim. A run saved
    # before this key existed was built at stride 32 (LEGACY_MODEL_OPTIONS).
    output_stride: int | None = None
    # MixStyle (hiva_core.models.mixstyle): per-batch probability of mixing early feature statistics across images
    # in training, a domain-generalisation regulariser; 0 = off. No weights: eval, predict and export are unchanged.
    mixstyle: float = 0.0
    dim: int | None = None  # model width d; None = default_dim(the backbone's feature width), resolved at build
    heads: int = 8
    graph_topk: int = 4
    text_samples: int = 4  # descriptions sampled per AU per training step (eval uses every valid one)
    text_pool: str = "mean"  # "mean" | "attention": how description tokens become one prototype per AU
    head: str = "cosine"  # "cosine" | "linear"
    use_text: bool = True  # False: learned AU query embeddings stand in for the text prototypes
    use_graph: bool = True
    use_ddca: bool = True
    use_cdca: bool = True
    # Predict the expression's geometry (hiva_core.geometry: brows raised, eyes narrowed, lips parted, ... against the
    # person's neutral face) from the shared tokens, as `geometry (B, G)` in the training set's spread: what an
    # open-vocabulary run scores an unseen AU by, along the measures its descriptions name (augtext.grounding).
    # None = on for hiva_open when the training data has neutral landmarks (SynthAU), resolved at train time.
    geometry: bool | None = None
    # With the geometry head, also predict the part of the geometry the trained AUs do not explain (GeometryHead);
    # unseen AUs are read from both. None = on with the geometry head.
    geometry_unexplained: bool | None = None
    # hiva_open: what HiVA learns per AU, read from the AU's text instead. text_film: each AU's token map is the shared
    # one, normalised and scaled/shifted by its prototype (FiLM), the open-vocabulary AFG; text_bias: the head's bias
    # has a term read from the prototype, so each AU has a base rate of its own. None = on for hiva_open (unused by
    # the models with per-AU parameters, which record False).
    text_film: bool | None = None
    text_bias: bool | None = None
    # Predict each AU's intensity (0-1: the manifest's AU<k>_int columns, which SynthAU writes) from its visual
    # node, as `intensity (B, A)` logits: an auxiliary training target that grades what the binary label cuts (a
    # trace at 0.2 is absent, 0.3 present). None = on for hiva and its ablations when the training data has
    # intensities, resolved at train time; eval and predict do not use the head.
    intensity: bool | None = None
    # Read each face beside a neutral frame of the same person (the manifest's `neutral` column, `synth --neutral`,
    # `predict --neutral`): the input is the two images stacked on the channels, (B, 6, H, W); the backbone encodes
    # both and every block reads each token with what changed from the neutral's (reference_tokens). One face's
    # geometry does not tell a thin lip from a pressed one; against the person at rest it does (README).
    reference: bool = False
    # With `reference`: the share of training faces read without their neutral frame (the change half of their
    # tokens replaced by a learned "no neutral" vector, `no_reference`). A run trained with it > 0 also reads a face
    # alone, (B, 3, H, W): a photo without a resting frame, or each frame of a clip to find its resting one.
    reference_dropout: float = 0.0


# Options added after runs were saved, with the value those runs were built with: a config.json without the key
# rebuilds the model it was trained as, not the current default.
LEGACY_MODEL_OPTIONS: dict[str, object] = {
    "output_stride": 32,
    "geometry": False,
    "geometry_unexplained": False,
    "text_film": False,
    "text_bias": False,
    "intensity": False,
}


def default_dim(num_features: int, stride: int) -> int:
    """The default model width d for a backbone with ``num_features`` output channels C and a token grid of
    ``stride``: C/4 rounded down to a power of two, within [128, 512], and at most 256 on a grid finer than stride 32.
    ResNet-50 (C = 2048) → 512 at stride 32, 256 at stride 16 (the default); MobileNetV2 (1280), Swin-B and
    ConvNeXt-B (1024) → 256; ConvNeXt-T (768), ResNet-18 (512) and the test net → 128.

    Why: the AU blocks (AFG, DDCA, CDCA) cost about ``A·(L + 8)·d²`` per image for L tokens, so a fixed d = 512 made
    HiVA train at 2.15× the time of linear heads on MobileNetV2 at 128 px (bench/bench_model.py); a backbone with
    fewer channels is a cheaper one, and C/4 keeps the AU blocks a small share of its cost. Stride 16 has 4× the
    tokens of stride 32 while a dilated backbone costs less than 4× more: at ResNet-50/224 (14×14 tokens) d = 512
    trained at 1.23× linear heads, d = 256 at 1.03–1.16× on the idle machine (0.98–1.22× under load). ``--set
    model.dim=N`` overrides it; a run's config.json records the d it was built with.
    """
    cap = 512 if stride >= 32 else 256
    d = 128
    while d < cap and 2 * d <= num_features // 4:
        d *= 2
    return d


def reference_tokens(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """``model``'s backbone tokens ``(B, L, C)`` and their grid. With ``model.config.reference``, images ``(B, 6, H,
    W)`` (the face, then the neutral frame) give ``(B, L, 2C)``: the face's tokens and their change from the
    neutral's, the two encoded as one batch (the backbone's normalisation sees both). A model trained with
    ``reference_dropout`` (it has ``no_reference``) also reads faces alone, ``(B, 3, H, W)``: the change half is then
    its learned "no neutral" vector, as for the share of training faces it drops the neutral frame of."""
    backbone, config = model.backbone, model.config
    if not config.reference:
        return backbone(images)
    alone = getattr(model, "no_reference", None)
    if alone is not None and images.ndim == 4 and images.shape[1] == 3:
        tokens, grid = backbone(images)
        return torch.cat([tokens, alone.to(tokens.dtype).expand_as(tokens)], -1), grid
    if images.ndim != 4 or images.shape[1] != 6:
        also = " or a face alone as (B, 3, H, W)" if alone is not None else ""
        raise ValueError(
            f"a model with model.reference reads a face and its neutral frame stacked as (B, 6, H, W){also}, got "
            f"{tuple(images.shape)}"
        )
    batch = images.shape[0]
    tokens, grid = backbone(torch.cat([images[:, :3], images[:, 3:]], 0))
    face, rest = tokens[:batch], tokens[batch:]  # slices, not chunk: an exported graph keeps its batch size free
    change = face - rest
    if alone is not None and model.training:  # this step's faces read without their neutral frame
        drop = torch.rand(batch, 1, 1, device=change.device) < config.reference_dropout
        change = torch.where(drop, alone.to(change.dtype).expand_as(change), change)
    return torch.cat([face, change], -1), grid


def no_reference(backbone: Backbone, config: ModelConfig) -> nn.Parameter | None:
    """The learned change half of a face read without a neutral frame, for a model with ``reference_dropout``."""
    if not (config.reference and config.reference_dropout > 0):
        return None
    return nn.Parameter(torch.randn(backbone.num_features) * 0.02)


def token_width(backbone: Backbone, config: ModelConfig) -> int:
    """Channels of the tokens the blocks read: the backbone's, twice with a neutral reference."""
    return backbone.num_features * (2 if config.reference else 1)


def check_width(config: ModelConfig) -> None:
    """The width checks create_model makes (UserError): positive sizes, d divisible by the heads."""
    name = config.name
    if config.num_aus < 1 or (config.dim is not None and config.dim < 1) or config.text_samples < 1:
        raise UserError(
            f"model {name!r}: num_aus, dim and text_samples must be positive (got {config.num_aus}, "
            f"{config.dim}, {config.text_samples})"
        )
    if config.dim is not None and config.dim % config.heads:
        raise UserError(f"model {name!r}: dim {config.dim} must be divisible by heads {config.heads}")
    if not 0 <= config.reference_dropout < 1:
        raise UserError(
            f"model.reference_dropout must be in [0, 1) (the share of training faces read without their neutral "
            f"frame), got {config.reference_dropout}"
        )
    if config.reference_dropout and not config.reference:
        raise UserError("model.reference_dropout needs model.reference=true (a model that reads neutral frames)")


def resolve_dim(config: ModelConfig, backbone: Backbone) -> ModelConfig:
    """``config`` as built on ``backbone``: ``dim`` filled from its width when None (an explicit dim is kept as
    given) and ``output_stride`` the stride of its token grid."""
    config = replace(config, output_stride=backbone.stride)
    if config.dim is not None:
        return config
    config = replace(config, dim=default_dim(backbone.num_features, backbone.stride))
    check_width(config)
    return config


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


class GeometryHead(nn.Module):
    """Projected tokens ``(B, L, d)`` → the expression's geometry ``(B, G)`` (hiva_core.geometry, G measures) in units
    of ``scale``, the training set's spread of each measure (a buffer, set by ``fit`` before training and saved with
    the weights). Each measure pools the tokens with attention of its own (where on the face it looks), then reads one
    number.

    With ``unexplained``, a second ``(B, G)``: the part of the geometry that the ``num_aus`` trained AUs do not account
    for (``geometry − [labels, 1] @ explained``, hiva_core.geometry.explained_by_aus fitted on the training rows), in
    units of its own spread. Learning it makes the tokens carry what the frequent AUs' movements would drown (a pucker
    narrows the mouth far less often than a smile widens it); an AU the run never saw is read from both."""

    def __init__(self, dim: int, num_aus: int = 0, unexplained: bool = False):
        super().__init__()
        self.count = count = len(GEOMETRY)
        outputs = 2 * count if unexplained else count
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())
        self.attend = nn.Linear(dim, outputs)
        self.read = nn.Parameter(torch.randn(outputs, dim) * dim**-0.5)  # not zeros: the layers below learn from step 1
        self.bias = nn.Parameter(torch.zeros(outputs))
        self.register_buffer("scale", torch.ones(count))
        self.unexplained = unexplained
        if unexplained:
            self.register_buffer("explained", torch.zeros(num_aus + 1, count))
            self.register_buffer("unexplained_scale", torch.ones(count))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The geometry ``(B, G)`` and, with ``unexplained``, its unexplained part ``(B, G)`` (else None)."""
        hidden = self.mlp(tokens)
        weights = self.attend(hidden).softmax(dim=1)  # (B, L, outputs): over the tokens
        out = torch.einsum("blg,bld,gd->bg", weights, hidden, self.read) + self.bias
        if not self.unexplained:
            return out, None
        return out[:, : self.count], out[:, self.count :]

    @torch.no_grad()
    def fit(self, geometry: np.ndarray, labels: np.ndarray) -> None:
        """Set the units (and what the AUs explain) from the training rows: geometry (N, G), labels (N, A), NaN
        unknown."""
        from hiva_core.geometry import explained_by_aus, spread

        scale = spread(geometry)
        self.scale.copy_(torch.from_numpy(scale))
        if self.unexplained:
            explained = explained_by_aus(labels, geometry / scale)
            design = np.concatenate([labels, np.ones((len(labels), 1))], axis=1)
            self.explained.copy_(torch.from_numpy(explained))
            self.unexplained_scale.copy_(torch.from_numpy(spread(geometry / scale - design @ explained)))

    def unexplained_target(
        self, geometry: torch.Tensor, geometry_mask: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The unexplained part of a batch's measured geometry (B, G), in units, and where it is known: the measure
        and every AU label of the row."""
        design = torch.cat([labels.float(), labels.new_ones(len(labels), 1).float()], dim=1)
        target = (geometry.float() / self.scale - design @ self.explained) / self.unexplained_scale
        return target, geometry_mask & label_mask.all(dim=1, keepdim=True)


class HiVA(nn.Module):
    """HiVA for ``num_aus`` AUs. ``forward(images, text_emb, text_mask)`` → dict of ``logits (B, A)``,
    ``maps (B, A, h, w)`` or None, ``visual (B, A, d)`` and ``text (A, d)`` (the prior's prototypes) or None."""

    open_vocabulary = False  # per-AU parameters (AFG, head biases): it scores only the AUs it was trained on

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.backbone = build_backbone(
            config.backbone, config.pretrained, config.backbone_weights, config.output_stride, config.mixstyle
        )
        geometry = bool(config.geometry)
        unexplained = geometry if config.geometry_unexplained is None else geometry and config.geometry_unexplained
        text = {k: self.open_vocabulary and getattr(config, k) is not False for k in ("text_film", "text_bias")}
        self.config = c = replace(
            resolve_dim(config, self.backbone),
            geometry=geometry,
            geometry_unexplained=unexplained,
            intensity=bool(config.intensity),
            **text,
        )
        self.proj = nn.Sequential(nn.Linear(token_width(self.backbone, c), c.dim), nn.LayerNorm(c.dim))
        self.no_reference = no_reference(self.backbone, c)
        self.build_blocks(c)
        self.geometry_head = GeometryHead(c.dim, c.num_aus, bool(c.geometry_unexplained)) if c.geometry else None
        self.intensity_head = LinearHead(c.num_aus, c.dim) if c.intensity else None

    def build_blocks(self, c: ModelConfig) -> None:
        """The blocks after the shared projection: AU graph, text branch, DDCA, CDCA, head."""
        self.au_graph = AUGraph(c.num_aus, c.dim, c.graph_topk, c.use_graph)
        if c.use_text:
            self.text_branch = TextBranch(c.text_dim, c.dim, c.text_samples, c.text_pool)
        else:
            self.au_queries = nn.Parameter(torch.randn(c.num_aus, c.dim) * 0.02)
        self.ddca = DDCA(c.dim, c.heads) if c.use_ddca else None
        self.cdca = CDCA(c.dim, c.heads) if c.use_cdca else None
        self.head = CosineHead(c.num_aus) if c.head == "cosine" else LinearHead(c.num_aus, c.dim)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone tokens ``(B, L, C)`` (``(B, L, 2C)`` with a neutral reference: reference_tokens)."""
        return reference_tokens(self, images)[0]

    def forward(
        self, images: torch.Tensor, text_emb: torch.Tensor | None = None, text_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        tokens, grid = reference_tokens(self, images)
        return self.forward_head(tokens, text_emb, text_mask, grid=grid)

    def encode_text(self, text_emb: torch.Tensor | None, text_mask: torch.Tensor | None, device: torch.device):
        """Description tokens (A, K', d), their mask (A, K') and prototypes (A, d); learned queries without text.

        K' is K in eval and min(K, ``text_samples``) in training (only the sampled descriptions are encoded).
        Tensors that break the contract are a ValueError, a caller's bug: what a user can get wrong (a cache or run
        prior of other AUs or another dim) is refused with a UserError naming the file before the model runs
        (``train_data.read_prior``, ``checkpoint.load_run``, ``vocabulary.select_aus``)."""
        c = self.config
        if not c.use_text:
            return (
                self.au_queries[:, None, :],
                torch.ones(c.num_aus, 1, dtype=torch.bool, device=device),
                self.au_queries,
            )
        if text_emb is None:
            raise ValueError(f"model {c.name!r} uses the text prior: pass text_emb (A, K, D)")
        # the prior's numpy arrays (load_text_prior's `embeddings`, `mask`) are taken as they are
        text_emb = torch.as_tensor(text_emb)
        text_mask = None if text_mask is None else torch.as_tensor(text_mask)
        aus = "A" if self.open_vocabulary else c.num_aus  # an open-vocabulary model takes any number of AUs
        if text_emb.ndim != 3 or text_emb.shape[2] != c.text_dim or (aus != "A" and text_emb.shape[0] != aus):
            raise ValueError(
                f"text prior has shape {tuple(text_emb.shape)}; model {c.name!r} expects "
                f"({aus}, K, {c.text_dim}) (AUs, descriptions, embedding dim)"
            )
        text_emb = text_emb.to(device)
        if text_mask is None:
            text_mask = torch.ones(text_emb.shape[:2], dtype=torch.bool, device=device)
        elif text_mask.shape != text_emb.shape[:2]:
            raise ValueError(f"text mask has shape {tuple(text_mask.shape)}, expected {tuple(text_emb.shape[:2])}")
        return self.text_branch(text_emb, text_mask.to(device=device, dtype=torch.bool))

    def forward_head(
        self,
        tokens: torch.Tensor,
        text_emb: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """Everything after the backbone. ``grid`` is the token grid (h, w); a square one is assumed if None."""
        if grid is None:
            side = int(round(tokens.shape[1] ** 0.5))
            grid = (side, tokens.shape[1] // side)
        tokens = self.proj(tokens)
        out = self.forward_blocks(tokens, text_emb, text_mask, grid)
        if self.intensity_head is not None:
            out["intensity"] = self.intensity_head(out["visual"])
        if self.geometry_head is not None:
            out["geometry"], out["unexplained"] = self.geometry_head(tokens)
        return out

    def au_features(self, tokens: torch.Tensor, prototypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-AU token maps ``(B, A, L, d)`` and graph nodes ``(B, A, d)``: the AFG's and the GCN's."""
        return self.au_graph(tokens)

    def forward_blocks(
        self, tokens: torch.Tensor, text_emb: torch.Tensor | None, text_mask: torch.Tensor | None, grid: tuple[int, int]
    ) -> dict[str, torch.Tensor | None]:
        """The blocks of ``build_blocks`` on projected tokens ``(B, L, d)`` over a ``grid`` of L tokens."""
        text_tokens, text_keep, prototypes = self.encode_text(text_emb, text_mask, tokens.device)
        token_maps, visual = self.au_features(tokens, prototypes)
        text = prototypes.expand(visual.shape[0], -1, -1)
        maps = None
        if self.ddca is not None:
            visual, text, maps = self.ddca(visual, token_maps, text_tokens, text_keep, prototypes)
            maps = maps.unflatten(-1, grid)
        if self.cdca is not None:
            visual, text = self.cdca(visual, text)
        logits = self.head(visual, text)
        return {"logits": logits, "maps": maps, "visual": visual, "text": prototypes if self.config.use_text else None}


class LinearAU(nn.Module):
    """Baseline: backbone → global average pool → one linear logit per AU. Ignores the text prior."""

    open_vocabulary = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.backbone = build_backbone(
            config.backbone, config.pretrained, config.backbone_weights, config.output_stride, config.mixstyle
        )
        self.config = resolve_dim(config, self.backbone)  # dim unused here, but recorded like HiVA's
        self.classifier = nn.Linear(token_width(self.backbone, config), config.num_aus)
        self.no_reference = no_reference(self.backbone, config)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return reference_tokens(self, images)[0]

    def forward_head(self, tokens: torch.Tensor, *args, **kwargs) -> dict[str, torch.Tensor | None]:
        pooled = tokens.mean(1)
        return {"logits": self.classifier(pooled), "maps": None, "visual": None, "text": None}

    def forward(
        self, images: torch.Tensor, text_emb: torch.Tensor | None = None, text_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        return self.forward_head(self.forward_features(images))
