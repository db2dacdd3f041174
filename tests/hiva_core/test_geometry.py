"""The expression's geometry: measures of 68 landmarks against the neutral face, read from manifests, learned by a
model head, and used to score an AU the run never saw along what its descriptions say the face does."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from augtext.errors import UserError
from augtext.grounding import GEOMETRY
from hiva_core.geometry import explained_by_aus, expression_geometry, measures, spread
from hiva_core.models import create_model

# iBUG 68: the index each point has in the mirrored face
MIRROR = np.array(
    [*range(16, -1, -1), *range(26, 21, -1), *range(21, 16, -1), 27, 28, 29, 30, *range(35, 30, -1)]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [*range(54, 47, -1), *range(59, 54, -1), *range(64, 59, -1), 67, 66, 65]
)


def face(seed: int = 0) -> np.ndarray:
    """A plausible 68-point layout in pixels (eyes level at y = 40, 40 px apart), with some jitter."""
    rng = np.random.default_rng(seed)
    pts = np.zeros((68, 2))
    pts[0:17] = np.stack([np.linspace(10, 90, 17), 60 + 30 * np.sin(np.linspace(0, np.pi, 17))], 1)
    pts[17:22] = np.stack([np.linspace(18, 42, 5), [30, 27, 26, 27, 29]], 1)
    pts[22:27] = np.stack([np.linspace(58, 82, 5), [29, 27, 26, 27, 30]], 1)
    pts[27:31] = np.stack([[50] * 4, np.linspace(40, 58, 4)], 1)
    pts[31:36] = np.stack([np.linspace(44, 56, 5), [62, 63, 64, 63, 62]], 1)
    for first, cx in ((36, 30), (42, 70)):
        pts[first : first + 6] = [[cx - 8, 40], [cx - 3, 37], [cx + 3, 37], [cx + 8, 40], [cx + 3, 43], [cx - 3, 43]]
    pts[48:55] = [[38, 76], [42, 73], [46, 72], [50, 73], [54, 72], [58, 73], [62, 76]]
    pts[55:60] = [[58, 80], [54, 82], [50, 83], [46, 82], [42, 80]]
    pts[60:68] = [[40, 76], [46, 75], [50, 75], [54, 75], [60, 76], [54, 77], [50, 77], [46, 77]]
    return pts + rng.normal(0, 0.3, pts.shape)


def test_measures_do_not_change_with_position_size_roll_or_a_mirror():
    pts = face()
    base = measures(pts)
    angle = np.radians(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (pts - 50) @ rot.T * 2.5 + [200, -30]
    mirrored = np.stack([100 - pts[:, 0], pts[:, 1]], 1)[MIRROR]
    np.testing.assert_allclose(measures(moved), base, atol=1e-9)
    np.testing.assert_allclose(measures(mirrored), base, atol=1e-9)
    assert measures(np.stack([pts, moved])).shape == (2, len(GEOMETRY))
    with pytest.raises(ValueError, match="68"):
        measures(pts[:60])


@pytest.mark.parametrize(
    ("move", "measure", "sign"),
    [
        ({66: (0, 4), 65: (0, 4), 67: (0, 4), 57: (0, 4), 56: (0, 4), 58: (0, 4)}, "lip_opening", 1),
        ({21: (3, 2), 22: (-3, 2)}, "brow_gap", -1),
        ({21: (0, -4), 22: (0, -4)}, "inner_brow_height", 1),
        ({48: (-3, -3), 54: (3, -3)}, "corner_height", 1),
        ({37: (0, 2), 38: (0, 2), 43: (0, 2), 44: (0, 2)}, "eye_opening", -1),
        ({i: (0, 8) for i in range(4, 13)}, "jaw_drop", 1),
    ],
)
def test_a_movement_shows_in_its_measure_and_not_elsewhere_on_the_face(move, measure, sign):
    """A movement of the mouth changes no measure of the brows and eyes, and the other way round (measures of one
    part move together: lips parted by the lower lip are also a lower lip further from the nose)."""
    neutral = face(1)
    moved = neutral.copy()
    for i, delta in move.items():
        moved[i] += delta
    change = expression_geometry(moved[None], neutral[None])[0]
    j = GEOMETRY.index(measure)
    assert np.sign(change[j]) == sign and abs(change[j]) > 0.03
    upper = GEOMETRY.index("nose_lip_distance")  # brows and eyes before it, nose and mouth from it on
    elsewhere = change[upper:] if j < upper else change[:upper]
    np.testing.assert_allclose(elsewhere, 0, atol=1e-9)


def _explained_rows(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of two AUs (N, 2) and a geometry of three measures: the first moved by AU a (+2) and AU b (-1), the
    second by AU b only, the third by a movement no label names (`other`, returned too)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 2)) < [0.4, 0.3]).astype(np.float32)
    other = (rng.random(n) < 0.1).astype(np.float64)
    geometry = np.stack([2 * labels[:, 0] - labels[:, 1], 1.5 * labels[:, 1], 3 * other], 1)
    return labels, geometry + rng.normal(0, 0.05, geometry.shape), other


def test_what_the_aus_explain_is_taken_out_and_what_they_do_not_is_left():
    labels, geometry, other = _explained_rows()
    labels[:5, 0] = np.nan  # unknown labels and measures: rows left out of the fit
    geometry[5:10, 1] = np.nan
    weights = explained_by_aus(labels, geometry)
    assert weights.shape == (3, 3)
    np.testing.assert_allclose(weights[:2, :2], [[2, 0], [-1, 1.5]], atol=0.05)
    rest = geometry - np.concatenate([labels, np.ones((len(labels), 1))], 1) @ weights
    known = np.isfinite(rest).all(1)
    assert np.abs(rest[known, :2]).max() < 0.25  # the AUs' movements: gone
    assert np.corrcoef(rest[known, 2], other[known])[0, 1] > 0.99  # the movement no AU names: kept
    assert not explained_by_aus(np.full((3, 2), np.nan), geometry[:3]).any()


def test_spread_ignores_unknown_values_and_is_one_where_nothing_varies():
    values = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, np.nan], [np.nan, 5.0, np.nan]])
    np.testing.assert_allclose(spread(values), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(spread(np.array([[0.0], [4.0]])), [2.0])


# -------------------------------------------------------------------------------------------------- manifests
def _manifest(tmp_path, neutral_cells: list[str]) -> str:
    from PIL import Image

    rows = []
    for i, cell in enumerate(neutral_cells):
        Image.new("RGB", (32, 32), (i * 40, 90, 90)).save(tmp_path / f"{i}.png")
        lm = face(i)
        lm[[66, 57], 1] += 3  # lips parted
        rows.append(
            {"path": f"{i}.png", "AU25": 1, "landmarks": json.dumps(lm.reshape(-1).tolist()), "neutral_landmarks": cell}
        )
    path = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_a_manifest_with_neutral_landmarks_gives_each_row_its_geometry(tmp_path):
    from hiva_core.data import build_dataset

    cells = [json.dumps(face(i).reshape(-1).tolist()) for i in range(3)]
    ds = build_dataset(_manifest(tmp_path, [cells[0], "", cells[2]]), split="all", image_size=32)
    assert ds.geometry.shape == (3, len(GEOMETRY))
    assert np.isnan(ds.geometry[1]).all() and (ds.geometry[[0, 2], GEOMETRY.index("lip_opening")] > 0).all()
    item = ds[1]
    assert item["geometry_mask"].sum() == 0 and torch.equal(item["geometry"], torch.zeros(len(GEOMETRY)))
    assert ds[0]["geometry_mask"].all()
    np.testing.assert_array_equal(ds.subset([2, 0]).geometry, ds.geometry[[2, 0]])


def test_a_bad_landmark_cell_names_its_line(tmp_path):
    from hiva_core.data import build_dataset

    with pytest.raises(UserError, match=r"line 3: neutral_landmarks must be a JSON list of 136 numbers"):
        build_dataset(_manifest(tmp_path, [json.dumps(face().reshape(-1).tolist()), "[1, 2]"]), split="all")


# ------------------------------------------------------------------------------------------------------ models
TINY = {"backbone": "tiny", "dim": 32, "heads": 2, "graph_topk": 2, "text_samples": 2}


def test_the_geometry_head_is_there_only_when_asked_for():
    images, emb = torch.randn(2, 3, 32, 32), torch.randn(3, 2, 16)
    for name in ("hiva", "hiva_open"):
        plain = create_model(name, 3, 16, **TINY)
        assert plain.geometry_head is None and plain.config.geometry is False
        assert "geometry" not in plain(images, emb)
        model = create_model(name, 3, 16, geometry=True, **TINY)
        assert model.config.geometry is True and model.config.geometry_unexplained is True  # on with the head
        assert model.state_dict()["geometry_head.explained"].shape == (3 + 1, len(GEOMETRY))
        out = model(images, emb)
        assert out["geometry"].shape == out["unexplained"].shape == (2, len(GEOMETRY))
        alone = create_model(name, 3, 16, geometry=True, geometry_unexplained=False, **TINY)
        assert alone(images, emb)["unexplained"] is None and "geometry_head.explained" not in alone.state_dict()
        assert create_model(name, 3, 16, geometry_unexplained=True, **TINY).geometry_head is None


def test_the_head_learns_its_units_and_the_unexplained_target_from_the_training_rows():
    """fit sets the measures' spread and what the trained AUs explain; the target of a face whose geometry the AUs
    explain is near 0, that of a face with a movement no AU names is not, and rows with an unknown label are not
    asked for it."""
    from hiva_core.task import AUTask

    labels, geometry, other = _explained_rows()
    padded = np.zeros((len(labels), len(GEOMETRY)))
    padded[:, :3] = geometry
    model = create_model("hiva_open", 2, 16, geometry=True, **TINY)
    head = model.geometry_head
    head.fit(padded, labels)
    np.testing.assert_allclose(head.scale[:3].numpy(), geometry.std(0), rtol=1e-4)
    target, known = head.unexplained_target(
        torch.as_tensor(padded[:50]),
        torch.ones(50, len(GEOMETRY), dtype=torch.bool),
        torch.as_tensor(labels[:50]),
        torch.tensor([[True, True]] * 49 + [[True, False]]),
    )
    assert known[:49].all() and not known[49].any()
    rest = (target * head.unexplained_scale).numpy()  # in the measures' spread
    assert np.abs(rest[:, :2]).max() < 0.3 and np.abs(rest[other[:50] == 1, 2]).min() > 2
    assert head.unexplained_scale[2] > 0.95 and head.unexplained_scale[:2].max() < 0.1
    # the task's geometry term: the mean of the two smooth-L1 terms
    images = torch.randn(4, 3, 32, 32)
    batch = {
        "image": images,
        "labels": torch.as_tensor(labels[:4]),
        "mask": torch.ones(4, 2, dtype=torch.bool),
        "geometry": torch.as_tensor(padded[:4], dtype=torch.float32),
        "geometry_mask": torch.ones(4, len(GEOMETRY), dtype=torch.bool),
    }
    model.eval()
    emb = torch.randn(2, 2, 16)
    term = AUTask(model, geometry_weight=1.0)(batch, emb)["geometry"]
    out = model(images, emb)
    plain = torch.nn.functional.smooth_l1_loss(out["geometry"], batch["geometry"] / head.scale)
    target, _ = head.unexplained_target(batch["geometry"], batch["geometry_mask"], batch["labels"], batch["mask"])
    unexplained = torch.nn.functional.smooth_l1_loss(out["unexplained"], target)
    assert float(term) == pytest.approx(float(((plain + unexplained) / 2).detach()), rel=1e-5)


def test_grounded_scores_read_new_aus_from_the_geometry():
    from hiva_core.vocabulary import GEOMETRY_OFFSET, GEOMETRY_SLOPE, GroundedScores

    class Fixed(torch.nn.Module):
        def forward(self, images, text_emb=None, text_mask=None):
            geometry = torch.zeros(2, len(GEOMETRY))
            geometry[0, GEOMETRY.index("lip_opening")] = 3.0  # face 0: lips parted by three spreads
            return {"logits": torch.full((2, 2), 0.25), "geometry": geometry}

    queries = np.zeros((2, len(GEOMETRY)))
    queries[1, GEOMETRY.index("lip_opening")] = 1.0
    out = GroundedScores(Fixed(), queries, [False, True])(torch.zeros(2, 3, 8, 8))
    assert out["logits"][:, 0].tolist() == [0.25, 0.25]  # the head's score for the AU it was trained on
    expected = [GEOMETRY_SLOPE * (3.0 - GEOMETRY_OFFSET), -GEOMETRY_SLOPE * GEOMETRY_OFFSET]
    assert out["logits"][:, 1].tolist() == pytest.approx(expected)

    class WithUnexplained(Fixed):
        def forward(self, images, text_emb=None, text_mask=None):
            out = super().forward(images)
            unexplained = torch.zeros(2, len(GEOMETRY))
            unexplained[:, GEOMETRY.index("lip_opening")] = torch.tensor([1.0, 2.0])  # what no trained AU explains
            return {**out, "unexplained": unexplained}

    out = GroundedScores(WithUnexplained(), queries, [False, True])(torch.zeros(2, 3, 8, 8))
    expected = [GEOMETRY_SLOPE * ((3.0 + 1.0) / 2 - GEOMETRY_OFFSET), GEOMETRY_SLOPE * (1.0 - GEOMETRY_OFFSET)]
    assert out["logits"][:, 1].tolist() == pytest.approx(expected)  # the mean of the two
