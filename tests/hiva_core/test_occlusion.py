"""data.hide_half: training faces with one half hidden and that half's AUs unknown (hiva_core.data.occlusion)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augtext.errors import UserError
from hiva_core.config import DataSection, TrainConfig
from hiva_core.data.occlusion import SPLIT, HalfOcclusion, au_halves
from hiva_core.regions import CANONICAL_LANDMARKS

AUS = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26, 43]


def test_each_au_belongs_to_the_half_its_region_lies_in():
    upper, lower = au_halves(AUS)
    assert [a for a, u in zip(AUS, upper, strict=True) if u] == [1, 2, 4, 5, 7, 43]
    assert [a for a, w in zip(AUS, lower, strict=True) if w] == [10, 12, 14, 15, 17, 23, 24, 25, 26]
    assert not (upper | lower)[[AUS.index(6), AUS.index(9)]].any()  # the cheeks and the nose cross the cut
    assert not any(au_halves([99]))  # an AU without a region: unknown whichever half is hidden


@pytest.mark.parametrize("size", [112, 128, 224])
def test_the_cut_falls_between_the_eyes_and_the_nostrils_of_an_evaluated_crop(size):
    """The evaluation transform resizes the crop by 256/224 and centre-crops: map the canonical face through it."""
    scale = round(size * 256 / 224) / size
    y = (CANONICAL_LANDMARKS[:, 1] * scale - (scale - 1) / 2) * size
    cut = HalfOcclusion(AUS, 1.0, size).cut
    assert y[36:48].max() < cut < y[31:36].min()  # lower eyelids above, nostrils below
    assert abs(cut / size - SPLIT) < 0.01


def test_a_hidden_half_is_blank_and_its_aus_unknown():
    torch.manual_seed(0)
    occlude = HalfOcclusion(AUS, 1.0, 128)
    upper, lower = au_halves(AUS)
    image, mask = torch.randn(3, 128, 128), torch.ones(len(AUS), dtype=torch.bool)
    seen = set()
    for _ in range(40):
        out, kept = occlude(image, mask)
        top, bottom = out[:, : occlude.cut], out[:, occlude.cut :]
        if (top == 0).all():
            assert torch.equal(bottom, image[:, occlude.cut :]) and kept.numpy().tolist() == lower.tolist()
            seen.add("upper hidden")
        else:
            assert (bottom == 0).all() and torch.equal(top, image[:, : occlude.cut])
            assert kept.numpy().tolist() == upper.tolist()
            seen.add("lower hidden")
    assert seen == {"upper hidden", "lower hidden"}
    assert torch.equal(image[:, :1], image[:, :1])  # the input is not changed in place
    unknown = mask.clone()
    unknown[0] = False
    _, kept = HalfOcclusion(AUS, 1.0, 128)(image, unknown)
    assert not kept[0]  # an unknown label stays unknown
    never = HalfOcclusion(AUS, 0.0, 128)
    assert never(image, mask) == (image, mask)


def test_share_of_faces_occluded_follows_p():
    torch.manual_seed(1)
    occlude = HalfOcclusion(AUS, 0.3, 64)
    image, mask = torch.ones(3, 64, 64), torch.ones(len(AUS), dtype=torch.bool)
    hidden = np.mean([bool((occlude(image, mask)[0] == 0).any()) for _ in range(2000)])
    assert hidden == pytest.approx(0.3, abs=0.04)


def test_training_faces_only_are_occluded(tiny_faces):
    from hiva_core.distributed import DistInfo
    from hiva_core.train import build_datasets

    cfg = TrainConfig(data=DataSection(spec=str(tiny_faces), fold=1, image_size=32, hide_half=1.0, val_fraction=0.1))
    splits = build_datasets(cfg, DistInfo())
    assert isinstance(splits.train.occlude, HalfOcclusion)
    assert splits.test.occlude is None and splits.val.occlude is None
    item = splits.train[0]  # AU1/AU2/AU4: all upper AUs; with the upper half hidden none is known
    assert item["mask"].sum() in (0, int((~torch.isnan(torch.from_numpy(splits.train.labels[0]))).sum()))
    off = TrainConfig(data=DataSection(spec=str(tiny_faces), fold=1, image_size=32))
    assert build_datasets(off, DistInfo()).train.occlude is None
    with pytest.raises(UserError, match="data.hide_half"):
        DataSection(hide_half=1.5)


def test_a_run_trains_and_resumes_with_it(tmp_path, text_cache, tiny_faces, one_thread):
    """A run with data.hide_half records it, and --resume continues with it (the same config)."""
    import json

    from hiva_core.cli import main
    from tests.hiva_core.conftest import train_argv

    out = tmp_path / "run"
    argv = train_argv(text_cache, tiny_faces, out, "--fold", "1", "--set", "data.hide_half=0.5", epochs=1)
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["config"]["data"]["hide_half"] == 0.5
    assert main([*train_argv(text_cache, tiny_faces, out, "--fold", "1", epochs=2), "--resume"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["data"]["hide_half"] == 0.5
