"""hiva_open and `--aus`: AUs scored from their descriptions alone, subsets for every model, the errors, the width rule.

The zero-shot path runs end to end on the tiny faces: hiva_open trained on AU1 and AU2 with a prior from the
reference backend (`augtext generate --backend reference`), then evaluated and run on AU4, which it never saw.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from augtext.textprior import TextPrior, shuffled_prior
from hiva_core.cli import main
from hiva_core.models import create_model, default_dim, open_vocabulary
from hiva_core.task import AUTask
from hiva_core.thresholds import write_thresholds
from tests.hiva_core.conftest import train_argv

D = 16
TINY = {"backbone": "tiny", "dim": 32, "heads": 2, "graph_topk": 2, "text_samples": 2}


# ------------------------------------------------------------------------------------------------------ the model
def test_hiva_open_has_no_per_au_parameter():
    few, many = create_model("hiva_open", 2, D, **TINY), create_model("hiva_open", 9, D, **TINY)
    assert {k: v.shape for k, v in few.state_dict().items()} == {k: v.shape for k, v in many.state_dict().items()}
    assert few.state_dict()["head.bias"].shape == ()  # one bias for every AU
    assert open_vocabulary(few) and not open_vocabulary(create_model("hiva", 2, D, **TINY))


def test_hiva_open_scores_any_aus_and_permuting_them_permutes_the_outputs():
    """Weights at a trained model's spread: at initialisation every AU reads the same node from the shared token map
    (cosine similarities 1 within float error), so the graph's top-k neighbours are ties that the AUs' order breaks."""
    torch.manual_seed(0)
    model = create_model("hiva_open", 3, D, **TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 3 / p.shape[1] ** 0.5)
    images = torch.randn(2, 3, 48, 40)
    emb = torch.randn(5, 4, D)
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[1, 2:] = False
    perm = torch.tensor([3, 0, 4, 2, 1])
    nodes, propagate = [], model.au_graph.propagate
    model.au_graph.propagate = lambda x: (nodes.append(x), propagate(x))[1]
    with torch.no_grad():
        out, shuffled = model(images, emb, mask), model(images, emb[perm], mask[perm])
    for x in nodes:  # no near-tie between a node's k-th and (k+1)-th neighbour: the graph does not depend on order
        unit = torch.nn.functional.normalize(x, dim=-1)
        sim = (unit @ unit.transpose(1, 2) + torch.eye(5)).sort(dim=-1, descending=True).values
        assert (sim[..., TINY["graph_topk"] - 1] - sim[..., TINY["graph_topk"]]).min() > 1e-3
    assert out["logits"].shape == (2, 5) and out["maps"].shape == (2, 5, 6, 5)
    torch.testing.assert_close(shuffled["logits"], out["logits"][:, perm])
    torch.testing.assert_close(shuffled["maps"], out["maps"][:, perm])
    torch.testing.assert_close(out["maps"].sum((-1, -2)), torch.ones(2, 5))  # spatial distributions, as HiVA's


def test_hiva_open_reads_each_aus_feature_map_and_base_rate_from_its_text():
    """text_film and text_bias (on for hiva_open, off for models with per-AU parameters): each AU's token map is the
    shared one scaled and shifted by a layer of its prototype, and its logit has a term read from the prototype, so
    changing one AU's descriptions changes that AU's map and base rate and no other AU's map."""
    torch.manual_seed(0)
    model = create_model("hiva_open", 3, D, **TINY).eval()
    assert model.config.text_film and model.config.text_bias
    assert not any(create_model("hiva", 3, D, **TINY).config.__dict__[k] for k in ("text_film", "text_bias"))
    images, emb = torch.randn(2, 3, 48, 40), torch.randn(4, 3, D)
    with torch.no_grad():
        plain = model(images, emb)  # zero-initialised: every AU reads the shared map, one bias for all
        for layer in (model.film, model.text_bias):
            layer.weight.normal_(0, 1)
        film = model(images, emb)
        other = emb.clone()
        other[1] = torch.randn(3, D)
        changed = model(images, other)
        rate = model.text_bias(model.encode_text(emb, None, images.device)[2]).squeeze(-1)  # (A,): from the text
        model.text_bias.weight.zero_()
        no_bias = model(images, emb)
    assert (film["maps"] - plain["maps"]).abs().amax((-1, -2)).min() > 1e-4  # every AU's map is its own now
    moved = (changed["maps"] - film["maps"]).abs().amax((0, -1, -2))
    assert moved[1] > 1e-4 and moved[[0, 2, 3]].max() < 1e-6  # the graph and CDCA come after the maps
    torch.testing.assert_close(film["logits"] - no_bias["logits"], rate.expand(2, -1))
    for option, prefix in {"text_film": "film.", "text_bias": "text_bias."}.items():
        off = create_model("hiva_open", 3, D, **TINY, **{option: False})
        assert not getattr(off.config, option) and not any(k.startswith(prefix) for k in off.state_dict())
        assert any(k.startswith(prefix) for k in model.state_dict())


def test_a_hiva_open_run_saved_before_the_text_options_loads_as_built(tmp_path):
    """A config.json without model.text_film / text_bias (runs trained before they existed) rebuilds the shared-map,
    shared-bias model it was trained as, for eval, predict and --resume."""
    from hiva_core.checkpoint import load_run
    from hiva_core.config import DataSection, ModelSection, TrainConfig
    from hiva_core.run_folder import RunFolder

    cfg = TrainConfig(data=DataSection(image_size=32), model=ModelSection(name="hiva_open", **TINY))
    prior = TextPrior(
        aus=[1, 2], embeddings=np.ones((2, 1, D), np.float32), mask=np.ones((2, 1), bool), model="t", fingerprint="f"
    )
    net = create_model("hiva_open", 2, D, **TINY, text_film=False, text_bias=False)
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_config(cfg, net, [1, 2], prior)
    run.write_prior(prior)
    run.write_model(net)
    info = json.loads(run.config_file.read_text())
    assert info["model_config"].pop("text_film") is False and info["model_config"].pop("text_bias") is False
    run.config_file.write_text(json.dumps(info))
    loaded = load_run(run.path, device="cpu")
    assert not loaded.model.config.text_film and not loaded.model.config.text_bias
    model = run.read_train_config().model
    assert model.text_film is False and model.text_bias is False


@pytest.mark.parametrize("option", [{"use_text": False}, {"head": "linear"}])
def test_hiva_open_needs_text_and_a_cosine_head(option):
    from augtext.errors import UserError

    with pytest.raises(UserError, match="hiva_open"):
        create_model("hiva_open", 3, D, **{**TINY, **option})


def test_default_width_follows_the_backbone_and_its_stride():
    assert [default_dim(c, 32) for c in (24, 768, 1280, 2048, 3072)] == [128, 128, 256, 512, 512]
    assert [default_dim(c, 16) for c in (24, 768, 1280, 2048, 3072)] == [128, 128, 256, 256, 256]
    for name in ("hiva", "hiva_open", "linear"):
        model = create_model(name, 3, D, backbone="tiny", heads=2)
        assert model.config.dim == default_dim(model.backbone.num_features, model.backbone.stride)
        assert create_model(name, 3, D, backbone="tiny", dim=48, heads=2).config.dim == 48  # explicit wins
    from augtext.errors import UserError

    with pytest.raises(UserError, match="divisible by heads 5"):
        create_model("hiva", 3, D, backbone="tiny", heads=5)  # the default d (128) and the heads are checked too


def _quadrants(n: int = 24, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """AU a is present when quadrant a is bright (3 AUs)."""
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(n, 3, generator=g) > 0.5).float()
    images = torch.randn(n, 3, size, size, generator=g) * 0.1
    for a, (y, x) in enumerate([(0, 0), (0, size // 2), (size // 2, 0)]):
        images[:, :, y : y + size // 2, x : x + size // 2] += 2.0 * labels[:, a, None, None, None]
    return images, labels


def _f1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    pred = (logits > 0).float()
    tp, fp, fn = (pred * labels).sum(0), (pred * (1 - labels)).sum(0), ((1 - pred) * labels).sum(0)
    return (2 * tp / (2 * tp + fp + fn).clamp(min=1)).mean().item()


def test_shuffled_prior_control(one_thread):
    """hiva_open learns which description goes with which quadrant; the same model given the shuffled prior (each
    AU holding another AU's descriptions) detects the wrong quadrants: its outputs follow the text."""
    images, labels = _quadrants()
    g = torch.Generator().manual_seed(3)
    prior = TextPrior(
        aus=[1, 2, 4],
        embeddings=torch.randn(3, 4, D, generator=g).numpy(),
        mask=np.ones((3, 4), dtype=bool),
        model="test",
        fingerprint="f",
    )
    control = shuffled_prior(prior, seed=0)
    assert control.aus == prior.aus and not any(
        np.array_equal(control.embeddings[i], prior.embeddings[i]) for i in range(3)
    )
    torch.manual_seed(0)
    model = create_model("hiva_open", 3, D, **TINY)
    task = AUTask(model, align_weight=0.1)
    opt = torch.optim.AdamW(task.parameters(), lr=3e-3)
    emb, mask = torch.from_numpy(prior.embeddings), torch.from_numpy(prior.mask)
    batch = {"image": images, "labels": labels, "mask": torch.ones_like(labels, dtype=torch.bool)}
    model.train()
    for _ in range(120):
        loss = task(batch, emb, mask)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        right = _f1(model(images, emb, mask)["logits"], labels)
        wrong = _f1(
            model(images, torch.from_numpy(control.embeddings), torch.from_numpy(control.mask))["logits"], labels
        )
    assert right > 0.9 and wrong < right - 0.3, (right, wrong)


# ------------------------------------------------------------------------------------------------ runs and --aus
@pytest.fixture(scope="module")
def reference_cache(tmp_path_factory) -> Path:
    """A cache written by the reference backend (AU1, AU2, AU4), embedded with the offline MiniLM."""
    from augtext.cli import main as augtext_main
    from augtext.embed import embed_cache
    from tests.textcache import minilm

    cache = tmp_path_factory.mktemp("reference_cache")
    assert (
        augtext_main(
            ["generate", "--backend", "reference", "--au", "1,2,4", "--n", "2", "--no-gate", "--cache", str(cache)]
        )
        == 0
    )
    embed_cache(cache, encoder=minilm())
    return cache


def _train_open(out: Path, cache: Path, data: Path, epochs: int) -> Path:
    """hiva_open trained on AU1 and AU2 of `data` (fold 1) on one thread; AU4 is left for zero-shot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        argv = train_argv(cache, data, out, "--fold", "1", "--model", "hiva_open", epochs=epochs)
        rc = main([*argv, "--set", "data.aus=[1,2]"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def open_run(tmp_path_factory, reference_cache, tiny_faces) -> Path:
    """hiva_open trained on AU1 and AU2 of the tiny faces (fold 1); AU4 is left for zero-shot."""
    return _train_open(tmp_path_factory.mktemp("runs") / "open", reference_cache, tiny_faces, epochs=3)


def _eval(run: Path, data: Path, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / f"eval{len(list(tmp_path.glob('eval*.json')))}.json"
    assert main(["eval", "--run", str(run), "--data", str(data), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_eval_aus_subset_matches_the_full_run(trained_run, tiny_faces, tmp_path, one_thread):
    run, _ = trained_run
    full = _eval(run, tiny_faces, tmp_path)
    part = _eval(run, tiny_faces, tmp_path, "--aus", "4,1")
    assert list(part["per_au"]) == ["AU1", "AU4"]
    for au in ("AU1", "AU4"):
        assert part["per_au"][au] == full["per_au"][au]


def test_zero_shot_eval_and_predict_on_an_unseen_au(open_run, reference_cache, tiny_faces, tmp_path, one_thread):
    assert json.loads((open_run / "config.json").read_text())["aus"] == [1, 2]
    seen = _eval(open_run, tiny_faces, tmp_path)
    both = _eval(open_run, tiny_faces, tmp_path, "--aus", "1,2,4", "--text-cache", str(reference_cache))
    assert list(both["per_au"]) == ["AU1", "AU2", "AU4"]
    assert np.isfinite(both["per_au"]["AU4"]["auc"]) and both["n"] == seen["n"]
    # what scored the AU the run was not trained on, for the paper's table
    assert both["unseen_aus"] == {"AU4": "the cosine head (the run has no geometry head)"} and "unseen_aus" not in seen
    alone = _eval(open_run, tiny_faces, tmp_path, "--aus", "4", "--text-cache", str(reference_cache))
    assert alone["per_au"]["AU4"] == both["per_au"]["AU4"]  # the model runs over its training AUs + the new one
    # With thresholds for its own AUs (AU1, AU2), the header says why the new one is at 0.5.
    stored = tmp_path / "stored"
    shutil.copytree(open_run, stored)
    write_thresholds(stored / "thresholds.json", {"thresholds": {"AU1": 0.4, "AU2": 0.6}})
    alone = _eval(stored, tiny_faces, tmp_path, "--aus", "4", "--text-cache", str(reference_cache))
    assert alone["thresholds"] == "threshold 0.5 (the run has no thresholds for these AUs: it was not trained on them)"
    both = _eval(stored, tiny_faces, tmp_path, "--aus", "1,2,4", "--text-cache", str(reference_cache))
    assert both["thresholds"] == "the run's per-AU thresholds (0.5 for AU4)"

    images = sorted((tiny_faces.parent / "img").glob("*.png"))[:3]
    table, heat = tmp_path / "zero_shot.csv", tmp_path / "heat"
    assert (
        main(
            [
                "predict",
                *map(str, images),
                "--run",
                str(open_run),
                "--no-detect",
                "--aus",
                "4",
                "--text-cache",
                str(reference_cache),
                "--out",
                str(table),
                "--heatmaps",
                str(heat),
            ]
        )
        == 0
    )
    rows = pd.read_csv(table)
    assert [c for c in rows.columns if c.startswith("AU")] == ["AU4_prob", "AU4"]
    assert rows["AU4_prob"].between(0, 1).all() and len(list(heat.glob("*.png"))) == 3


def test_predict_aus_subset_of_a_per_au_model(trained_run, tiny_faces, tmp_path, one_thread):
    run, _ = trained_run
    images = sorted((tiny_faces.parent / "img").glob("*.png"))[:4]
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    assert main(["predict", *map(str, images), "--run", str(run), "--no-detect", "--out", str(full)]) == 0
    assert (
        main(
            [
                "predict",
                *map(str, images),
                "--run",
                str(run),
                "--no-detect",
                "--aus",
                "2",
                "--out",
                str(part),
                "--heatmaps",
                str(tmp_path / "heat"),
            ]
        )
        == 0
    )
    a, b = pd.read_csv(full), pd.read_csv(part)
    assert [c for c in b.columns if c.startswith("AU")] == ["AU2_prob", "AU2"]
    np.testing.assert_allclose(b["AU2_prob"], a["AU2_prob"], rtol=1e-5)


@pytest.fixture(scope="module")
def other_model_cache(tmp_path_factory) -> Path:
    """AU4's descriptions embedded with another (fake, 8-d) model than the runs' MiniLM."""
    from augtext.embed import embed_cache
    from tests.textcache import description_texts, write_descriptions

    class Fake:
        def encode(self, sentences, **kwargs):
            vectors = np.random.default_rng(len(sentences)).normal(size=(len(sentences), 8)).astype(np.float32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    cache = tmp_path_factory.mktemp("other_model")
    write_descriptions(cache, {4: description_texts(4, 3)})
    embed_cache(cache, model="fake-encoder", encoder=Fake())
    return cache


@pytest.mark.parametrize(
    ("which", "extra", "needles"),
    [
        ("per_au", ["--aus", "4,6", "--text-cache", "{ref}"], ["per-AU parameters", "AU6", "hiva_open"]),
        ("open", ["--aus", "4"], ["AU4", "--text-cache", "`augtext generate --cache DIR --au 4`"]),
        # AU45 too: the reference set (the default backend) has every FACS AU, so the plain command writes it
        ("open", ["--aus", "45"], ["AU45", "--text-cache", "`augtext generate --cache DIR --au 45`"]),
        ("open", ["--aus", "2,9", "--text-cache", "{ref}"], ["AU9", "no descriptions"]),
        ("open", ["--aus", "4", "--text-cache", "{other}"], ["AU4", "all-MiniLM-L6-v2", "fake-encoder"]),
        ("open", ["--text-cache", "{ref}"], ["--aus"]),
        ("open", ["--aus", "3"], ["AU3", "Valid codes"]),
    ],
)
def test_aus_errors_exit_2_and_name_the_problem(
    which, extra, needles, trained_run, open_run, reference_cache, other_model_cache, tiny_faces, capsys
):
    run = trained_run[0] if which == "per_au" else open_run
    extra = [e.format(ref=reference_cache, other=other_model_cache) for e in extra]
    images = sorted((tiny_faces.parent / "img").glob("*.png"))[:1]
    for argv in (
        ["eval", "--run", str(run), "--data", str(tiny_faces), *extra],
        ["predict", *map(str, images), "--run", str(run), "--no-detect", *extra],
    ):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        for needle in needles:
            assert needle in err, (needle, err)


def test_a_run_keeps_the_width_it_was_built_with(tmp_path):
    """A run trained with the default width resumes at that width even if the default changes later."""
    from hiva_core.config import DataSection, ModelSection, TrainConfig
    from hiva_core.run_folder import RunFolder

    cfg = TrainConfig(data=DataSection(image_size=32), model=ModelSection(name="hiva_open", backbone="tiny", heads=4))
    assert cfg.model.dim is None
    model = create_model("hiva_open", 2, D, **cfg.model.overrides())
    prior = TextPrior(
        aus=[1, 2],
        embeddings=np.zeros((2, 1, D), np.float32),
        mask=np.ones((2, 1), bool),
        model="test",
        fingerprint="f",
    )
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_config(cfg, model, [1, 2], prior)
    assert run.read_train_config().model.dim == model.config.dim == default_dim(24, model.backbone.stride)
    info = json.loads(run.config_file.read_text())
    info["model_config"]["dim"] = 64  # as if it had been built under another default
    run.config_file.write_text(json.dumps(info))
    assert run.read_train_config().model.dim == 64


# ------------------------------------------------------------------------------ zero-shot from the face's geometry
@pytest.fixture(scope="module")
def geometry_faces(tiny_faces, tmp_path_factory) -> Path:
    """The tiny faces with landmarks and neutral landmarks: where AU4 is drawn, the brows are drawn together and
    lowered (what AU4's descriptions say); elsewhere the face is its neutral one, give or take a little."""
    from tests.hiva_core.test_geometry import face

    rows = pd.read_csv(tiny_faces)
    rng = np.random.default_rng(0)
    faces, neutrals = [], []
    for i, au4 in enumerate(rows["AU4"]):
        neutral = face(i)
        moved = neutral + rng.normal(0, 0.3, neutral.shape)
        if au4:
            moved[[19, 20, 21]] += [3.0, 2.0]
            moved[[22, 23, 24]] += [-3.0, 2.0]
        faces.append(json.dumps(moved.reshape(-1).round(2).tolist()))
        neutrals.append(json.dumps(neutral.reshape(-1).round(2).tolist()))
    rows["landmarks"], rows["neutral_landmarks"] = faces, neutrals
    path = tiny_faces.parent / "manifest_geometry.csv"
    rows.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def geometry_run(tmp_path_factory, reference_cache, geometry_faces) -> Path:
    return _train_open(tmp_path_factory.mktemp("runs") / "open_geometry", reference_cache, geometry_faces, epochs=10)


def test_an_unseen_au_is_scored_from_the_geometry_its_descriptions_name(
    geometry_run, open_run, reference_cache, geometry_faces, tmp_path, capsys, one_thread
):
    """hiva_open trained on AU1 and AU2 learns the faces' geometry on the way; AU4, never trained on, is read from
    it along what AU4's descriptions say (brows drawn together and lowered) and ranks the faces; the run without
    geometry ranks them from the cosine head alone."""
    info = json.loads((geometry_run / "config.json").read_text())
    assert info["model_config"]["geometry"] is True and info["aus"] == [1, 2]
    log = pd.read_csv(geometry_run / "log.csv")
    assert log["geometry"].iloc[-1] < log["geometry"].iloc[0]
    capsys.readouterr()
    grounded = _eval(geometry_run, geometry_faces, tmp_path, "--aus", "4", "--text-cache", str(reference_cache))
    err = capsys.readouterr().err
    assert "AU4: scored from the face's geometry: brow_gap -" in err, err
    assert grounded["unseen_aus"]["AU4"].startswith("the face's geometry: brow_gap -"), grounded["unseen_aus"]
    assert grounded["per_au"]["AU4"]["auc"] > 0.9, grounded["per_au"]["AU4"]
    # the shuffled control: AU4 given another AU's descriptions reads another measure. Both derangements of the three
    # AUs (the second is the first applied twice): with AU2's it reads the outer brows, which never move on these
    # faces, so whatever it ranks is what the tiny head learned besides; with AU1's, the inner brows up (AU4 lowers
    # them). Over the two, as the README's control averages over the AUs, the ranking is gone.
    from augtext.prior import shuffle_cache

    controls, cache = [], reference_cache
    for step in ("once", "twice"):
        cache, previous = tmp_path / f"shuffled_{step}", cache
        shuffle_cache(previous, cache, seed=0)
        controls.append(_eval(geometry_run, geometry_faces, tmp_path, "--aus", "4", "--text-cache", str(cache)))
        assert "brow_gap" not in capsys.readouterr().err
    aucs = [c["per_au"]["AU4"]["auc"] for c in controls]
    assert np.mean(aucs) < grounded["per_au"]["AU4"]["auc"] - 0.25, aucs
    # a run without the geometry head: the cosine head, as before
    assert json.loads((open_run / "config.json").read_text())["model_config"]["geometry"] is False
    # predict reads it the same way
    rows = pd.read_csv(geometry_faces)
    images = [str(geometry_faces.parent / p) for p in rows["path"][:8]]
    table = tmp_path / "predicted.csv"
    argv = ["predict", *images, "--run", str(geometry_run), "--no-detect", "--aus", "4", "--out", str(table)]
    assert main([*argv, "--text-cache", str(reference_cache)]) == 0
    assert "AU4: scored from the face's geometry" in capsys.readouterr().err
    predicted = pd.read_csv(table)["AU4_prob"].to_numpy()
    assert predicted[rows["AU4"][:8].to_numpy() == 1].min() > predicted[rows["AU4"][:8].to_numpy() == 0].max()


def test_geometry_needs_neutral_landmarks_and_is_off_for_per_au_models(
    reference_cache, tiny_faces, geometry_faces, tmp_path, capsys, one_thread
):
    argv = train_argv(reference_cache, tiny_faces, tmp_path / "r1", "--model", "hiva_open", epochs=1)
    capsys.readouterr()
    assert main([*argv, "--set", "model.geometry=true"]) == 2
    err = capsys.readouterr().err
    assert "model.geometry=true needs" in err and "neutral_landmarks" in err
    assert main(train_argv(reference_cache, geometry_faces, tmp_path / "r2", "--fold", "1", epochs=1)) == 0
    assert json.loads((tmp_path / "r2" / "config.json").read_text())["model_config"]["geometry"] is False
    unweighted = train_argv(reference_cache, geometry_faces, tmp_path / "r3", "--model", "hiva_open", epochs=1)
    assert main([*unweighted, "--fold", "1", "--set", "train.geometry_weight=0"]) == 0  # no loss, no head
    assert json.loads((tmp_path / "r3" / "config.json").read_text())["model_config"]["geometry"] is False
