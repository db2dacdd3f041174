from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hiva_core.losses import WeightedAsymmetricLoss, alignment_loss, au_weights
from hiva_core.models import create_model
from hiva_core.task import AUTask


def _megraph_reference(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """ME-GraphAU's WeightedAsymmetricLoss, written out as in its repository (probabilities in, no mask)."""
    x = torch.sigmoid(logits)
    los_pos = labels * torch.log(x.clamp(min=1e-8))
    los_neg = (1 - labels) * torch.log((1 - x).clamp(min=1e-8))
    loss = (los_pos + x.detach() * los_neg) * weight.view(1, -1)
    return -loss.mean(dim=-1).mean()


def test_asl_defaults_match_megraph_au():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    labels = (torch.rand(6, 4, generator=g) > 0.5).float()
    weight = torch.tensor([0.5, 1.0, 1.5, 1.0])
    ours = WeightedAsymmetricLoss(weight)(logits, labels)
    torch.testing.assert_close(ours, _megraph_reference(logits, labels, weight))


def test_asl_without_focusing_is_bce():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 3, generator=g)
    labels = (torch.rand(5, 3, generator=g) > 0.5).float()
    ours = WeightedAsymmetricLoss(gamma_neg=0.0, gamma_pos=0.0)(logits, labels)
    torch.testing.assert_close(ours, torch.nn.functional.binary_cross_entropy_with_logits(logits, labels))


def test_asl_clip_discards_easy_negatives():
    logits = torch.tensor([[-3.0, 0.0]])  # p = 0.047 (easy negative), 0.5
    labels = torch.zeros(1, 2)
    loss = WeightedAsymmetricLoss(clip=0.05, gamma_neg=2.0)(logits, labels)
    p = 0.5 - 0.05
    torch.testing.assert_close(loss, torch.tensor(-(p**2) * math.log(1 - p) / 2))


@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_masked_entries_contribute_nothing(clip):
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 3, generator=g, requires_grad=True)
    labels = (torch.rand(4, 3, generator=g) > 0.5).float()
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0, 1] = mask[2, 0] = False
    labels[0, 1] = float("nan")  # unknown label, as AUDataset stores it
    loss_fn = WeightedAsymmetricLoss(torch.tensor([1.0, 2.0, 0.5]), gamma_pos=1.0, clip=clip)
    loss = loss_fn(logits, labels, mask)
    loss.backward()
    assert torch.isfinite(loss)
    assert logits.grad[0, 1] == 0 and logits.grad[2, 0] == 0
    assert (logits.grad[mask] != 0).all()
    flipped = labels.clone()
    flipped[2, 0] = 1 - flipped[2, 0]
    flipped[0, 1] = 1.0
    assert torch.equal(loss_fn(logits.detach(), flipped, mask), loss.detach())
    # The mean runs over known entries only: the average of each known entry's loss on its own.
    singles = []
    for b, a in mask.nonzero().tolist():
        one = torch.zeros_like(mask)
        one[b, a] = True
        singles.append(loss_fn(logits.detach(), labels, one))
    torch.testing.assert_close(loss.detach(), torch.stack(singles).mean())


def test_au_weights_inverse_rate_mean_one():
    labels = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=np.float32)
    # rates 0.5, 0.25, 0.25 -> 1/rate 2, 4, 4 -> scaled to mean 1
    torch.testing.assert_close(au_weights(labels), torch.tensor([0.6, 1.2, 1.2]))
    mask = np.ones_like(labels, dtype=bool)
    mask[2:, 0] = False  # AU 0 known on 2 frames, both positive: rate 1
    labels_nan = labels.copy()
    labels_nan[2, 1] = np.nan  # unknown: excluded even without an explicit mask entry
    w = au_weights(labels_nan, mask)
    # rates 1, 1/3, 1/4 -> 1, 3, 4 -> scaled: 3/8, 9/8, 12/8
    torch.testing.assert_close(w, torch.tensor([3 / 8, 9 / 8, 12 / 8]))


def test_au_weights_never_positive_is_finite():
    labels = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    w = au_weights(labels)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w, torch.tensor([4 / 3, 2 / 3]))  # AU 0 counted as 1 positive in 4


def test_alignment_rewards_matching_text():
    text = torch.eye(3, 8)
    labels = torch.ones(2, 3)
    aligned = alignment_loss(text.expand(2, -1, -1), text, labels)
    shuffled = alignment_loss(text[[1, 2, 0]].expand(2, -1, -1), text, labels)
    assert aligned < 0.01 < shuffled


def test_alignment_uses_only_known_positive_aus():
    g = torch.Generator().manual_seed(3)
    visual = torch.randn(2, 3, 8, generator=g, requires_grad=True)
    text = torch.randn(3, 8, generator=g)
    labels = torch.tensor([[1.0, 0.0, float("nan")], [0.0, 1.0, 1.0]])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    loss = alignment_loss(visual, text, labels, mask)
    loss.backward()
    used = torch.tensor([[True, False, False], [False, True, False]])
    assert (visual.grad[~used] == 0).all() and (visual.grad[used] != 0).any(-1).all()
    none = alignment_loss(visual, text, torch.zeros(2, 3), mask)
    assert none == 0 and none.requires_grad


TINY = {"backbone": "tiny", "dim": 16, "heads": 2}


def _task_inputs() -> tuple[dict, torch.Tensor, torch.Tensor]:
    """A batch of two 32-px images with three AUs, and a text prior of 4 descriptions per AU (16-d)."""
    torch.manual_seed(0)
    batch = {
        "image": torch.randn(2, 3, 32, 32),
        "labels": torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
        "mask": torch.ones(2, 3, dtype=torch.bool),
    }
    return batch, torch.randn(3, 4, 16), torch.ones(3, 4, dtype=torch.bool)


def test_task_adds_alignment_only_with_text():
    batch, emb, mask = _task_inputs()
    for name, has_text in (("hiva", True), ("hiva_no_text", False), ("linear", False)):
        task = AUTask(create_model(name, 3, 16, **TINY), au_weights(batch["labels"]), align_weight=0.5).eval()
        out = task(batch, emb, mask)
        assert out["logits"].shape == (2, 3)
        assert (out["align"] > 0) == has_text
        torch.testing.assert_close(out["loss"], out["asl"] + 0.5 * out["align"])
        out["loss"].backward()


def test_task_adds_the_region_term_for_models_with_maps():
    batch, emb, mask = _task_inputs()
    for name, has_maps in (("hiva", True), ("hiva_open", True), ("linear", False)):
        model = create_model(name, 3, 16, **TINY)
        task = AUTask(model, au_weights(batch["labels"]), align_weight=0.5, region_weight=2.0, aus=[1, 12, 17])
        out = task.eval()(batch, emb, mask)
        assert (out["region"] > 0) == has_maps
        torch.testing.assert_close(out["loss"], out["asl"] + 0.5 * out["align"] + 2.0 * out["region"])
        out["loss"].backward()
    off = AUTask(create_model("hiva", 3, 16, **TINY), region_weight=2.0).eval()  # no AU codes: no regions
    assert off(batch, emb, mask)["region"] == 0


@pytest.mark.parametrize("dataset", ["bp4d", "gft"])
def test_prepare_lists_take_names_from_list_formats_and_weights_from_au_weights(dataset, tmp_path):
    """`hiva_core prepare` writes the file names the list reader looks for, and weight files that hold the trainer's
    au_weights of the training labels, also for an AU that never occurs in training (it once got a 1e6 weight that
    left every other AU near 0)."""
    from augtext.facs import DATASET_AUS
    from hiva_core.data.lists import LIST_FORMATS
    from hiva_core.prepare import UNKNOWN, FrameJob, SequenceJob, write_lists

    fmt, n_aus = LIST_FORMATS[dataset], len(DATASET_AUS[dataset])
    rng = np.random.default_rng(0)
    splits = {"S1": 1, "S2": 2, "S3": 3} if fmt.folds else {"S1": 1, "S2": 0, "S3": 0}
    jobs = []
    for subject, split in splits.items():
        labels = rng.integers(0, 2, size=(6, n_aus))
        labels[:, 0] = int(split == 1)  # AU 0 occurs only in S1: never in the training split that leaves S1 out
        labels[0, 1] = UNKNOWN
        frames = tuple(FrameJob(i, f"{subject}/{i}.jpg", tuple(int(v) for v in row)) for i, row in enumerate(labels))
        jobs.append(SequenceJob(subject, "", None, None, 0, frames))
    ok = {fj.out_rel for job in jobs for fj in job.frames}
    write_lists(dataset, jobs, splits, ok, tmp_path)
    for fold in (1, 2, 3) if fmt.folds else (None,):
        paths_name, labels_name = fmt.file_names("train", fold)
        train = np.loadtxt(tmp_path / labels_name)
        assert len(train) == len((tmp_path / paths_name).read_text().splitlines()) == 12
        weights = np.loadtxt(tmp_path / fmt.weights_name(fold))
        expected = au_weights(np.where(train == UNKNOWN, np.nan, train), dtype=torch.float64).numpy()
        np.testing.assert_allclose(weights, expected, atol=1e-6)
        assert np.isfinite(weights).all() and weights.min() > 0.1
        assert (tmp_path / fmt.file_names("test", fold)[1]).is_file()
