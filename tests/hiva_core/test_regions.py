"""AU regions from the 68 landmarks and the localisation score of `hiva_core eval`, on real SynthAU renders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from augtext.errors import UserError
from hiva_core.cli import main
from hiva_core.regions import (
    AU_REGION,
    MARGIN,
    REGIONS,
    PeakRecorder,
    in_region,
    localisation_score,
    map_peaks,
    polygon_distance,
    region_outline,
    to_model_frame,
)
from tests.hiva_core.conftest import train_argv

pytestmark = pytest.mark.usefixtures("one_thread")
BP4D = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_EXTRA = (9, 25, 26)


@pytest.fixture(scope="module")
def synth_faces(shared_data, tmp_path_factory):
    """12 rendered 64-px SynthAU faces with their landmarks (skipped without the face model or offscreen GL)."""
    from hiva_core.synth import run_synth

    model = shared_data / "ict-facekit" / "ict_facekit_light.npz"
    if not model.is_file():
        pytest.skip(f"no face model at {model}")
    out = tmp_path_factory.mktemp("synth_regions")
    try:
        # Narrow poses: 12 faces turned up to ±45° (the default pose factor) spread the jaw line beyond these tests'
        # tolerance around the canonical frontal face. BP4D rows, not posed faces: a sad face with a strong AU17
        # pushes its lips up into the chin boss's margin.
        run_synth(
            out, n=12, size=64, seed=5, face_model=model, progress=False, msaa=0, factors="all,-pose", labels="bp4d"
        )
    except UserError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")
    return out


def _landmarks(folder) -> list[np.ndarray]:
    df = pd.read_csv(folder / "manifest.csv", keep_default_na=False)
    return [np.asarray(json.loads(v)).reshape(68, 2) for v in df["landmarks"]]


def test_every_dataset_au_has_a_region():
    for au in (*BP4D, *DISFA_EXTRA):
        assert AU_REGION[au] in REGIONS, au


def test_regions_on_rendered_faces(synth_faces):
    """Points a person would place by eye land in the right AUs' regions and nowhere else: the mouth centre is a
    lips point (AU23/24/25) and not a brow point; the middle of the forehead is AU1's, above the outer brow ends
    AU2's, the glabella AU4's; an eye centre is
    AU7's; the crop's lower-left corner (where the issue's AU15/17/23/24 maps peaked) is in no region."""
    for lm in _landmarks(synth_faces):
        mouth = lm[48:60].mean(0)
        brows = lm[17:27].mean(0)
        eyes = lm[36:48].mean(0)
        iod = np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0)))
        forehead = brows + 0.3 * iod * (brows - mouth) / np.hypot(*(brows - mouth))  # up the face from the brows
        eye = lm[36:42].mean(0)
        for au in (23, 24, 25, 26):
            assert in_region(mouth, lm, au) and not in_region(mouth, lm, 1)
        assert in_region(forehead, lm, 1) and not in_region(forehead, lm, 17)
        # AU1 raises the inner brows and AU2 the outer ones: the middle of the forehead and the glabella are AU1's,
        # above each outer brow end AU2's, and neither is the other's
        up = (brows - mouth) / np.hypot(*(brows - mouth))
        for end in (lm[17], lm[26]):
            assert in_region(end + 0.3 * iod * up, lm, 2) and not in_region(end, lm, 1)
        glabella_high = (lm[21] + lm[22]) / 2
        assert in_region(glabella_high, lm, 1) and not in_region(glabella_high, lm, 2)
        assert not in_region(forehead, lm, 2)
        high = brows + 0.6 * iod * (brows - mouth) / np.hypot(*(brows - mouth))  # the upper forehead
        glabella = (lm[21] + lm[22] + lm[27]) / 3  # between the inner brow ends and the nose root
        assert in_region(glabella, lm, 4) and in_region(high, lm, 1) and not in_region(high, lm, 4)
        assert in_region(eye, lm, 7) and in_region(eye, lm, 6) and not in_region(eye, lm, 12)
        assert not in_region(eyes + (0, 0.9 * (mouth - eyes)[1]), lm, 7)  # down by the mouth: not the eyelids
        assert in_region(lm[48], lm, 12) and in_region(lm[54], lm, 15) and not in_region(lm[8], lm, 12)
        assert in_region(lm[8], lm, 17) and not in_region(lm[8], lm, 10)
        # AU17 is the chin boss (where SynthAU draws its dimpling, halfway from the lower lip to the chin), not the
        # mouth, where the astronaut's AU17 map once peaked and counted as landing
        assert in_region((lm[57] + lm[8]) / 2, lm, 17) and not in_region(lm[62], lm, 17)
        assert in_region(lm[33], lm, 9) and in_region(lm[51], lm, 10) and not in_region(lm[27], lm, 17)
        corner = np.array([0.0, 63.0])
        assert not any(in_region(corner, lm, au) for au in AU_REGION)


def test_drawn_outline_is_the_region_with_its_margin(synth_faces):
    """region_outline (what the bench draws) holds the points in_region accepts, up to its polygon steps."""
    lm = _landmarks(synth_faces)[0]
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 64, size=(400, 2))
    regions = (
        (1, "inner_brows_forehead"),
        (2, "outer_brows_forehead"),
        (4, "brows_glabella"),
        (6, "eye_corners_cheeks"),
        (12, "lip_corners"),
        (17, "chin"),
    )
    for au, region in regions:
        outline = region_outline(lm, region)
        for p in points:  # the outline's circles are inscribed polygons: at least cos(pi/16) of the margin
            if min(polygon_distance(p, poly) for poly in outline) == 0.0:
                assert in_region(p, lm, au), (au, p)
            else:
                assert not in_region(p, lm, au, margin=0.98 * MARGIN), (au, p)


def test_to_model_frame_follows_the_eval_transform():
    """A dot drawn at a known pixel of a non-square photo is where to_model_frame says after the real transform."""
    from hiva_core.data.transforms import build_transforms

    transform = build_transforms(48, augment=False)
    for size, dot in (((80, 64), (50.0, 20.0)), ((64, 96), (12.0, 70.0)), ((64, 64), (40.0, 33.0))):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        x, y = int(dot[0]), int(dot[1])
        image[y - 1 : y + 2, x - 1 : x + 2] = 255  # a 3-px dot centred on pixel (x, y): its centre is (x+.5, y+.5)
        out = transform(Image.fromarray(image)).sum(0)
        row, col = np.unravel_index(int(out.argmax()), out.shape)
        want = to_model_frame(np.array([[x + 0.5, y + 0.5]]), size[0], size[1], 48)[0]
        assert abs(col + 0.5 - want[0]) <= 1.0 and abs(row + 0.5 - want[1]) <= 1.0, (size, (col, row), want)


def test_map_peaks_are_the_hot_cells_centres():
    maps = torch.zeros(2, 3, 4, 4)
    maps[0, 0, 0, 0] = maps[0, 1, 3, 3] = maps[0, 2, 1, 2] = 1
    maps[1, :, 2, 0] = 1
    peaks = map_peaks(maps, 128)
    assert peaks.shape == (2, 3, 2)
    np.testing.assert_allclose(peaks[0], [[16, 16], [112, 112], [80, 48]])
    np.testing.assert_allclose(peaks[1], [[16, 80]] * 3)


def test_localisation_score_counts_present_aus_only(synth_faces):
    lms = np.stack(_landmarks(synth_faces))[:4]
    aus = [1, 12, 17, 5, 11]  # AU11 has no region
    n = len(lms)
    peaks = np.zeros((n, len(aus), 2))
    peaks[:, 0] = lms[:, 17:27].mean(1)  # AU1 at the brows: in
    peaks[:, 1] = lms[:, 54]  # AU12 at a lip corner: in
    peaks[:, 2] = [0.0, 0.0]  # AU17 at the top-left corner: out
    peaks[:2, 2] = lms[:2, 8]  # ... except in two images, at the chin
    labels = np.ones((n, len(aus)), np.float32)
    labels[0, 0] = 0  # absent: not a pair
    labels[:, 3] = 0  # AU5 never present
    mask = np.ones_like(labels, bool)
    mask[1, 0] = False  # unknown: not a pair
    lms = lms.copy()
    lms[3] = np.nan  # no landmarks: the row is skipped
    result = localisation_score(peaks, lms, labels, mask, aus)
    per = result["per_au"]
    assert per["AU1"] == {"hit_rate": 1.0, "chance": None, "pairs": 1, "region": "inner_brows_forehead"}
    assert per["AU12"]["hit_rate"] == 1.0 and per["AU12"]["pairs"] == 3
    assert per["AU17"]["hit_rate"] == pytest.approx(2 / 3)
    assert per["AU5"]["hit_rate"] is None
    assert per["AU11"] == {"hit_rate": None, "chance": None, "pairs": 3, "region": None}
    assert result["average"] == pytest.approx((1 + 1 + 2 / 3) / 3) and result["pairs"] == 7 and result["images"] == 3
    # chance: a peak on a random cell of an 8x8 map lands in AU1's brow/forehead zone at least as often as at a lip
    # corner
    chance = localisation_score(peaks, lms, labels, mask, aus, grid=(8, 8), image_size=64)
    brows, corners = chance["per_au"]["AU1"]["chance"], chance["per_au"]["AU12"]["chance"]
    assert 0.01 < corners <= brows < 0.5 and chance["per_au"]["AU5"]["chance"] is None
    assert chance["chance"] == pytest.approx(np.mean([brows, corners, chance["per_au"]["AU17"]["chance"]]))


def test_pooled_localisation_of_parts_is_that_of_the_whole(synth_faces):
    """--folds all: the folds' hits and pairs pooled give what scoring every row at once gives."""
    from hiva_core.regions import pool_localisation

    lms = np.stack(_landmarks(synth_faces))
    aus, n = [1, 12, 17], len(lms)
    rng = np.random.default_rng(0)
    peaks = rng.uniform(0, 64, size=(n, len(aus), 2))
    peaks[::2, 1] = lms[::2, 54]  # half the AU12 peaks on a lip corner
    labels = (rng.random((n, len(aus))) < 0.6).astype(np.float32)
    mask = np.ones_like(labels, bool)
    score = {"grid": (8, 8), "image_size": 64}
    whole = localisation_score(peaks, lms, labels, mask, aus, **score)
    cut = n // 3
    parts = [
        localisation_score(peaks[s], lms[s], labels[s], mask[s], aus, **score) for s in (slice(cut), slice(cut, n))
    ]
    pooled = pool_localisation([{**p, "grid": [8, 8]} for p in parts])
    for name, row in whole["per_au"].items():
        assert pooled["per_au"][name]["pairs"] == row["pairs"]
        assert pooled["per_au"][name]["hit_rate"] == pytest.approx(row["hit_rate"])
        assert pooled["per_au"][name]["chance"] == pytest.approx(row["chance"])
    assert pooled["average"] == pytest.approx(whole["average"]) and pooled["images"] == whole["images"]
    assert pooled["grid"] == [8, 8] and 0 < pooled["per_au"]["AU12"]["hit_rate"] < 1


def test_peak_recorder_keeps_peaks_in_order():
    def predict(images):
        b = images.shape[0]
        maps = torch.zeros(b, 2, 2, 2)
        maps[:, 0, 1, 1] = 1
        maps[:, 1, 0, 1] = 1
        return {"probs": torch.full((b, 2), 0.5), "maps": maps}

    rec = PeakRecorder(predict, 64)
    assert rec.peaks is None
    assert rec(torch.zeros(3, 3, 64, 64)).shape == (3, 2)
    rec(torch.zeros(1, 3, 64, 64))
    assert rec.peaks.shape == (4, 2, 2) and rec.grid == (2, 2)
    np.testing.assert_allclose(rec.peaks[0], [[48, 48], [48, 16]])


def test_eval_reports_localisation_on_synthau(synth_faces, text_cache, tiny_faces, tmp_path, capsys):
    """`hiva_core eval` on SynthAU (landmarks) adds the localisation table and JSON block; on data without
    landmarks it adds neither."""
    run = tmp_path / "run"
    argv = train_argv(text_cache, synth_faces, run, "--fold", "1", "--set", "data.aus=1,2,4", epochs=1)
    assert main(argv) == 0
    capsys.readouterr()
    out_json = tmp_path / "eval.json"
    assert main(["eval", "--run", str(run), "--data", str(synth_faces), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "Localisation: share of present AUs whose map (4×4) peaks" in printed and "| AU1 |" in printed
    loc = json.loads(out_json.read_text())["localisation"]
    fold1 = int((pd.read_csv(synth_faces / "manifest.csv")["fold"] == 1).sum())
    assert loc["grid"] == [4, 4] and loc["images"] == fold1  # tiny backbone: stride 8 at 32 px
    assert set(loc["per_au"]) == {"AU1", "AU2", "AU4"} and loc["margin_iod"] == 0.25
    for name, row in loc["per_au"].items():
        assert (
            row["region"]
            == {"AU1": "inner_brows_forehead", "AU2": "outer_brows_forehead", "AU4": "brows_glabella"}[name]
        )
        assert row["hit_rate"] is None or 0.0 <= row["hit_rate"] <= 1.0
        assert row["hit_rate"] is None or 0.0 < row["chance"] < 1.0
    plain = tmp_path / "plain.json"
    assert main(["eval", "--run", str(run), "--data", str(tiny_faces), "--json", str(plain)]) == 0
    assert "Localisation" not in capsys.readouterr().out and "localisation" not in json.loads(plain.read_text())
    # --folds all: one localisation over every fold's faces (each fold run scored on its own fold).
    folds = tmp_path / "folds"
    argv = train_argv(text_cache, synth_faces, folds, "--folds", "all", "--set", "data.aus=1,2,4", epochs=1)
    assert main([*argv, "--set", "train.max_steps_per_epoch=1"]) == 0
    capsys.readouterr()
    assert (
        main(["eval", "--run", str(folds), "--data", str(synth_faces), "--folds", "all", "--json", str(out_json)]) == 0
    )
    assert "Over all folds (hits and pairs pooled). Localisation: share" in capsys.readouterr().out
    pooled = json.loads(out_json.read_text())["mean"]["localisation"]
    assert pooled["images"] == len(pd.read_csv(synth_faces / "manifest.csv")) and pooled["grid"] == [4, 4]


def test_region_prior_covers_each_aus_region_on_the_canonical_face():
    from hiva_core.regions import region_prior

    prior = region_prior([1, 2, 12, 17, 99], (8, 8), 128)
    assert prior.shape == (5, 8, 8) and ((prior >= 0) & (prior <= 1)).all()
    brows, outer, corners, chin, unknown = prior
    assert brows[:3, 3:5].mean() > 0.6 and brows[4:].max() == 0  # top of the face only, in its middle
    assert outer[:3, [1, 6]].mean() > 0.6 and outer[4:].max() == 0 and outer[:, 3:5].max() == 0  # the outer brows
    assert corners[5:7].sum() > 2 and corners[:4].max() == 0  # the mouth's rows
    assert chin[7].sum() > chin[:5].sum() == 0  # the bottom row
    assert (unknown == 1).all()  # no region known: no constraint
    fine = region_prior([12], (14, 14), 224)[0]
    assert fine.shape == (14, 14) and 0 < fine.mean() < 0.1


def test_region_loss_asks_maps_to_look_inside():
    from hiva_core.losses import region_loss
    from hiva_core.regions import region_prior

    prior = torch.as_tensor(region_prior([1, 17, 99], (4, 4), 64), dtype=torch.float32)
    logits = torch.zeros(2, 3, 4, 4, requires_grad=True)
    loss = region_loss(logits.flatten(2).softmax(-1).unflatten(-1, (4, 4)), prior)
    loss.backward()
    assert loss > 0.5
    assert logits.grad[:, 2].abs().max() == 0  # the AU without a region adds nothing
    inside = prior[0] > 0.5
    assert (logits.grad[:, 0][:, inside] < 0).all() and (logits.grad[:, 0][:, prior[0] == 0] > 0).all()
    peaked = torch.zeros(1, 2, 4, 4)
    peaked[0, 0, 0, 2] = peaked[0, 1, 3, 2] = 1.0  # brow map on the forehead, chin map on the chin
    assert region_loss(peaked, prior[:2]) < 0.4 < 5 < region_loss(peaked.flip(2), prior[:2])


def test_canonical_landmarks_are_the_mean_aligned_synthau_face(synth_faces):
    """CANONICAL_LANDMARKS is where an aligned face's landmarks sit: the mean of these renders (sampled poses and
    expressions included) is within 0.04 of the crop side of it, the eyes and mouth corners on align.TEMPLATE."""
    from hiva_core.faces.align import TEMPLATE
    from hiva_core.regions import CANONICAL_LANDMARKS

    mean = np.mean(_landmarks(synth_faces), axis=0) / 64
    assert np.abs(mean - CANONICAL_LANDMARKS).max() < 0.04
    eyes = np.stack([CANONICAL_LANDMARKS[36:42].mean(0), CANONICAL_LANDMARKS[42:48].mean(0)])
    np.testing.assert_allclose(eyes, TEMPLATE[:2], atol=0.015)
    np.testing.assert_allclose(CANONICAL_LANDMARKS[[48, 54]], TEMPLATE[3:], atol=0.015)
