"""SynthAU's factors of variation: the SPEC, independent random streams, narrow vs wide draws, creases where their AUs
are, occluders over their regions, camera degradations, and `--factors` through the writer and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from augtext.errors import UserError
from hiva_core.synth import sampling
from hiva_core.synth.aumap import SYNTH_AUS
from hiva_core.synth.factors import ALL, FACTORS, factors_label, parse_factors
from hiva_core.synth.look import CREASES, crease_drive
from hiva_core.synth.overlays import degrade, draw_occluders
from tests.hiva_core.test_synth import _luma, _patch, _plain, make_renderer


@pytest.fixture(scope="module")
def big_renderer(shared_data):
    """A 160-px renderer: creases a few pixels apart need the resolution."""
    path = shared_data / "ict-facekit" / "ict_facekit_light.npz"
    if not path.is_file():
        pytest.skip(f"no face model at {path}")
    r = make_renderer(path, 160)
    yield r
    r.release()


def test_factor_spec():
    assert parse_factors("all") == ALL == tuple(FACTORS) and parse_factors(None) == ALL
    assert parse_factors("none") == ()
    assert parse_factors("-occluders,-pose") == parse_factors("all,-occluders,-pose")
    assert "pose" not in parse_factors("-pose") and len(parse_factors("-pose")) == len(FACTORS) - 1
    assert parse_factors("pose,lighting") == ("lighting", "pose")  # FACTORS order
    assert parse_factors("none,+pose") == ("pose",)
    for spec in ("all", "none", "all,-occluders", "pose,lighting", "all,-pose,-camera"):
        assert parse_factors(factors_label(parse_factors(spec))) == parse_factors(spec)
    with pytest.raises(UserError, match="unknown SynthAU factor 'nose'.*valid: all, none, identity"):
        parse_factors("-nose")
    with pytest.raises(UserError, match="empty"):
        parse_factors(" , ")


def test_each_factor_draws_from_its_own_stream():
    """Switching one factor off changes that factor only: the AUs, the person and every other factor stay."""
    from hiva_core.synth.overlays import background

    assert {sampling.sample_params(0, i).background["kind"] for i in range(0, 40, 3)} >= {"noise"}
    for i in range(0, 40, 3):
        a = sampling.sample_params(0, i)
        no_pose, no_light = (
            sampling.sample_params(0, i, factors="-pose"),
            sampling.sample_params(0, i, factors="-lighting"),
        )
        assert a.au == no_pose.au == no_light.au and a.au_sides == no_pose.au_sides
        assert (
            np.array_equal(a.identity.weights, no_pose.identity.weights) and a.identity.look == no_light.identity.look
        )
        assert a.occluders == no_pose.occluders and a.jpeg_quality == no_light.jpeg_quality
        assert np.array_equal(a.key_dir, no_pose.key_dir) and a.yaw == no_light.yaw
        assert abs(no_pose.yaw) <= 25 and no_light.lights == () and no_light.ground is None
        # the background, its noise too, is no factor's: the same image with the degradations off
        no_degradations = sampling.sample_params(0, i, factors="-degradations")
        assert np.array_equal(background(a, 32), background(no_degradations, 32))
        assert np.array_equal(background(a, 32), background(no_light, 32))
    # Identity-level draws are shared by the 8 samples of a person.
    p0, p7 = sampling.sample_params(0, 16), sampling.sample_params(0, 23)
    assert p0.identity.look == p7.identity.look and p0.identity.expressiveness == p7.identity.expressiveness


def test_narrow_and_wide_distributions():
    narrow = [sampling.sample_params(1, i, factors="none") for i in range(240)]
    wide = [sampling.sample_params(1, i) for i in range(240)]
    # Narrow: SynthAU before format 2.
    assert all(len(p.identity.weights) == sampling.IDENTITY_MODES for p in narrow)
    assert max(abs(p.yaw) for p in narrow) <= 25 and all(45 <= p.cam_distance <= 140 for p in narrow)
    assert all(p.occluders == () and p.lights == () and p.identity.look.crease_depth == 0 for p in narrow)
    assert all(p.identity.look.hair_amount == 0 and p.identity.look.beard_density == 0 for p in narrow)
    assert all(p.jpeg_quality >= 70 and p.motion_blur == (0.0, 0.0) and p.au_sides == {} for p in narrow)
    # Wide: the whole identity space, poses to ±45°, near and far cameras, occluders of every kind, coloured lights.
    assert all(len(p.identity.weights) == sampling.IDENTITY_MODES_ALL for p in wide)
    yaws = np.abs([p.yaw for p in wide])
    assert yaws.max() <= 45 and (yaws > 30).mean() > 0.1
    assert min(p.cam_distance for p in wide) < 40 and max(p.cam_distance for p in wide) > 150
    kinds = [o["kind"] for p in wide for o in p.occluders]
    assert {"glasses", "hand", "mask"} <= set(kinds) and 0.1 < len([p for p in wide if p.occluders]) / 240 < 0.6
    assert any(p.identity.look.beard_density > 0 for p in wide) and any(p.identity.look.hair_amount > 0 for p in wide)
    # Creases on most people, none at all on about 40% (format 3): those show an AU only in the face's shape.
    looks = [p.identity.look for p in wide[::8]]  # one per person
    smooth = [lk for lk in looks if lk.crease_depth == 0]
    assert 0.2 < len(smooth) / len(looks) < 0.6 and all(lk.lines == 0 for lk in smooth)
    assert all(lk.crease_depth > 0.02 for lk in looks if lk not in smooth)
    assert any(len(p.lights) >= 1 for p in wide) and min(p.jpeg_quality for p in wide) < 50
    assert any(p.au_sides for p in wide) and all(
        p.au[a] >= 0.3 for p in wide for a in p.au_sides
    )  # only occurring AUs are lopsided
    # The shifted split keeps its meaning: new people, stronger shapes, yaw to ±40°, a harsh key light.
    shifted = [sampling.sample_params(1, i, shifted=True) for i in range(0, 240, 8)]
    assert np.mean([np.abs(p.identity.weights).mean() for p in shifted]) > 1.3 * np.mean(
        [np.abs(p.identity.weights).mean() for p in wide[::8]]
    )
    assert max(abs(p.yaw) for p in shifted) <= 40 and all(p.fill_color.max() < 0.4 for p in shifted)


def test_crease_drive_follows_the_table():
    look = sampling.sample_identity(0, 0, False).look
    quiet = crease_drive({a: 0.0 for a in SYNTH_AUS}, dataclasses.replace(look, lines=0.0))
    assert np.all(quiet == 0)
    drive = crease_drive({**{a: 0.0 for a in SYNTH_AUS}, 4: 1.0}, dataclasses.replace(look, lines=0.0))
    assert drive[CREASES.index("glabella")] == 1.0 and drive[CREASES.index("forehead_inner")] == 0.0
    lined = crease_drive({a: 0.0 for a in SYNTH_AUS}, dataclasses.replace(look, lines=0.3))
    assert 0 < lined[CREASES.index("nasolabial")] < 0.3 and lined[CREASES.index("chin")] == 0.0


@pytest.mark.parametrize(
    ("au", "where"),
    [
        ({"AU1": 1.0, "AU2": 1.0}, "forehead"),  # forehead lines
        ({"AU4": 1.0}, "glabella"),  # vertical furrows between the brows
        ({"AU17": 1.0}, "chin"),  # a dimpled chin
    ],
)
def test_creases_appear_where_their_aus_act(big_renderer, au, where):
    """The same expression, with and without the creases factor: texture (local contrast) rises in the AU's region."""
    base = _plain(sampling.sample_params(0, 0, factors="creases"))
    base.identity = dataclasses.replace(
        base.identity,
        skin=(0.8, 0.62, 0.52),
        look=dataclasses.replace(base.identity.look, lines=0.0, crease_depth=0.08),
    )
    flat = dataclasses.replace(base, identity=dataclasses.replace(base.identity, look=sampling.Look()))

    def texture(params) -> float:
        out = big_renderer.render(_plain(params, **au))
        lm, luma = out.landmarks, _luma(out.image)
        eye_to_brow = lm[19:25, 1].mean() - lm[36:48, 1].mean()  # negative: brows above the eyes
        centre = {
            "forehead": lm[[19, 24]].mean(0) + np.array([0.0, 1.2 * eye_to_brow]),
            "glabella": lm[[21, 22]].mean(0) + np.array([0.0, -0.2 * eye_to_brow]),
            "chin": (lm[57] + lm[8]) / 2,
        }[where]
        patch = _patch(luma, centre, 5)
        return float(np.abs(np.diff(patch, axis=0)).mean() + np.abs(np.diff(patch, axis=1)).mean())

    assert texture(base) > 1.5 * texture(flat)
    # At rest (no AU, no permanent lines) the creases factor draws no crease.
    rest = big_renderer.render(_plain(base)).image.astype(int)
    assert np.abs(rest - big_renderer.render(_plain(flat)).image.astype(int)).mean() < 1.0


def test_occluders_cover_their_regions(big_renderer):
    params = _plain(sampling.sample_params(0, 0, factors="none"))
    face = big_renderer.render(params)
    img, lm, size = face.image / 255.0, face.landmarks, face.image.shape[0]
    alpha = np.zeros((size, size, 1))
    alpha[int(lm[19, 1]) : int(lm[8, 1]), int(lm[0, 0]) : int(lm[16, 0])] = 1.0
    mask = {"kind": "mask", "rgb": [0.9, 0.1, 0.1], "top": 0.5, "pleats": False}
    glasses = {
        **{"kind": "glasses", "power": 2.0, "scale": 1.6, "aspect": 0.8, "lift": 0.0, "thickness": 0.12},
        **{"frame": [0.0, 0.0, 1.0], "tint": [0.0, 0.0, 0.0], "opacity": 0.9, "glare": 0.0},
    }
    hand = {"kind": "hand", "anchor": "mouth", "side": 1, "angle": 0.0, "size": 0.9, "shift": [0.0, 0.0]}
    hand.update(spread=3.0, tone=1.0)

    def changed(occ, point) -> float:
        p = dataclasses.replace(params, occluders=(occ,))
        out = draw_occluders(img.copy(), alpha, lm, p)
        return float(np.abs(_patch(out, point, 1) - _patch(img, point, 1)).mean())

    mouth, eye, brow = lm[62], lm[36:42].mean(0), lm[19]
    assert changed(mask, mouth) > 0.2 and changed(mask, eye) < 0.01 and changed(mask, brow) < 0.01
    assert changed(glasses, eye) > 0.2 and changed(glasses, mouth) < 0.01
    assert changed(hand, mouth) > 0.05 and changed(hand, brow) < 0.01
    # A red mask over the mouth is red where the mouth was; the AU labels never change with occluders.
    out = draw_occluders(img.copy(), alpha, lm, dataclasses.replace(params, occluders=(mask,)))
    r, g, _ = _patch(out, mouth, 1).reshape(-1, 3).mean(0)
    assert r > 2 * g
    assert dataclasses.replace(params, occluders=(mask, glasses, hand)).labels == params.labels


def test_degradations():
    rng = np.random.default_rng(0)
    img = np.clip(rng.uniform(size=(64, 64, 3)), 0, 1)
    params = sampling.sample_params(0, 0, factors="none")
    plain = dataclasses.replace(params, blur=0.0, noise=0.0)
    assert np.abs(degrade(img, plain).astype(int) - np.round(img * 255).astype(int)).max() <= 1

    def energy(out, axis) -> float:
        return float(np.abs(np.diff(out.astype(float), axis=axis)).mean())

    moved = degrade(img, dataclasses.replace(plain, motion_blur=(24.0, 0.0)))  # a horizontal streak
    assert energy(moved, 1) < 0.5 * energy(moved, 0)
    small = degrade(img, dataclasses.replace(plain, downscale=0.1))  # captured at 26 px: less than these 64
    assert energy(small, 0) < 0.6 * energy(degrade(img, plain), 0)
    assert np.array_equal(degrade(img, dataclasses.replace(plain, downscale=0.4)), degrade(img, plain))  # 102 px
    cast = degrade(np.full((8, 8, 3), 0.5), dataclasses.replace(plain, color_gain=(1.2, 1.0, 0.8)))
    assert cast[..., 0].mean() > cast[..., 1].mean() > cast[..., 2].mean()
    noisy = dataclasses.replace(plain, noise=6.0, noise_seed=3)
    assert np.array_equal(degrade(img, noisy), degrade(img, noisy))  # seeded


def test_factors_through_writer_and_cli(shared_data, tmp_path):
    from hiva_core.cli import main
    from hiva_core.synth import run_synth

    model = shared_data / "ict-facekit" / "ict_facekit_light.npz"
    if not model.is_file():
        pytest.skip("no face model")
    try:
        run_synth(tmp_path / "a", n=2, size=32, face_model=model, factors="-occluders", progress=False)
    except UserError as exc:
        if "OpenGL" in str(exc):
            pytest.skip(str(exc))
        raise
    meta = json.loads((tmp_path / "a" / "synth.json").read_text())
    assert meta["factors_spec"] == "all,-occluders" and meta["format_version"] == 4
    with pytest.raises(UserError, match="factors"):  # another factor set never resumes into the same folder
        run_synth(tmp_path / "a", n=2, size=32, face_model=model, factors="all", progress=False)
    with pytest.raises(UserError, match="unknown SynthAU factor"):
        run_synth(tmp_path / "b", n=1, size=32, face_model=model, factors="all,-hairdo", progress=False)
    assert not (tmp_path / "b").exists()
    argv = ["synth", "--out", str(tmp_path / "c"), "--n", "1", "--size", "32", "--face-model", str(model)]
    assert main([*argv, "--factors", "-pose,-camera"]) == 0
    assert json.loads((tmp_path / "c" / "synth.json").read_text())["factors_spec"] == "all,-camera,-pose"
    assert main([*argv, "--factors=none,+hairdo"]) == 2


def test_synth_says_when_labels_come_from_the_fallback(shared_data, tmp_path, monkeypatch, capsys):
    """Without the BP4D lists the labels are drawn from the built-in table: synth says so (one line on stderr) and
    synth.json records it; with the lists it says nothing."""
    from hiva_core.synth import calibration, run_synth

    model = shared_data / "ict-facekit" / "ict_facekit_light.npz"
    if not model.is_file():
        pytest.skip("no face model")
    monkeypatch.setenv("HIVA_BP4D_LISTS", str(tmp_path / "no-lists"))
    calibration.bp4d_combinations.cache_clear()
    try:
        try:
            run_synth(tmp_path / "a", n=1, size=32, face_model=model, progress=False)
        except UserError as exc:
            if "OpenGL" in str(exc):
                pytest.skip(str(exc))
            raise
        assert "BP4D label lists not found" in capsys.readouterr().err
        assert json.loads((tmp_path / "a" / "synth.json").read_text())["bp4d_calibration"] == "built-in fallback"
        lists = shared_data / "protocols" / "BP4D"
        if lists.is_dir():
            monkeypatch.setenv("HIVA_BP4D_LISTS", str(lists))
            calibration.bp4d_combinations.cache_clear()
            run_synth(tmp_path / "b", n=1, size=32, face_model=model, progress=False)
            assert "not found" not in capsys.readouterr().err
    finally:
        monkeypatch.delenv("HIVA_BP4D_LISTS")
        calibration.bp4d_combinations.cache_clear()


def test_hand_shadow_moves_without_wrapping_round():
    from hiva_core.synth.overlays import _shifted

    a = np.zeros((6, 6))
    a[0, 5] = 1.0  # a corner pixel moved down-right leaves the image instead of coming back on the other side
    assert _shifted(a, 1, 1).sum() == 0
    assert _shifted(a, 2, -3)[2, 2] == 1.0 and _shifted(a, 2, -3).sum() == 1.0
    assert np.array_equal(_shifted(a, 0, 0), a) and _shifted(a, 9, 0).sum() == 0
