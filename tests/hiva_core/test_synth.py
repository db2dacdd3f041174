"""SynthAU: face-model import, AU table, sampling, rendering and the resumable writer (tiny sizes, on CPU)."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augtext.errors import UserError
from hiva_core.synth import aumap, calibration, sampling
from hiva_core.synth.aumap import AU_BLENDSHAPES, OCCURRENCE_THRESHOLD, SYNTH_AUS, blendshape_weights
from hiva_core.synth.writer import manifest_columns, run_synth
from tests.hiva_core.conftest import make_renderer

SIZE = 64


@pytest.fixture(scope="module")
def renderer(face_model_path):
    r = make_renderer(face_model_path, 96)
    yield r
    r.release()


@pytest.fixture(scope="module")
def synth_set(face_model_path, renderer, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    run_synth(out, n=12, size=SIZE, seed=3, face_model=face_model_path, progress=False)
    return out


def _plain(params, **au):
    """A frontal, evenly lit, undegraded, unoccluded sample with the given AU intensities (others 0)."""
    return dataclasses.replace(
        params,
        au_sides={},
        lights=(),
        ground=None,
        occluders=(),
        motion_blur=(0.0, 0.0),
        downscale=1.0,
        color_gain=(1.0, 1.0, 1.0),
        gamma=1.0,
        au={a: float(au.get(f"AU{a}", 0.0)) for a in SYNTH_AUS},
        extra={},
        yaw=0.0,
        pitch=0.0,
        roll=0.0,
        align_jitter=(1.0, 0.0, 0.0, 0.0),
        key_dir=np.array([0.0, 0.3, 1.0]) / np.hypot(0.3, 1.0),
        key_color=np.ones(3),
        fill_dir=np.array([0.0, 0.0, 1.0]),
        fill_color=np.full(3, 0.2),
        ambient=np.full(3, 0.2),
        background={"kind": "flat", "c1": [0.1, 0.3, 0.8], "c2": [0.1, 0.3, 0.8], "angle": 0.0, "cells": 3},
        blur=0.0,
        noise=0.0,
    )


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _patch(img: np.ndarray, center, r: int) -> np.ndarray:
    x, y = (int(round(c)) for c in center)
    return img[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1]


# --- import ---------------------------------------------------------------------------------------------------------


def test_import_ict_partial_matches_npz(shared_data, tmp_path):
    from hiva_core.synth.import_ict import import_ict

    src = shared_data / "ict-facekit"
    ref = np.load(src / "ict_facekit_light.npz")
    got = np.load(import_ict(src, tmp_path / "ict.npz", partial=True))
    np.testing.assert_allclose(got["neutral_vertices"], ref["neutral_vertices"], atol=1e-5)
    np.testing.assert_array_equal(got["triangles"], ref["triangles"])
    np.testing.assert_array_equal(got["uv_triangles"], ref["uv_triangles"])
    np.testing.assert_allclose(got["uv"], ref["uv"], atol=1e-6)
    np.testing.assert_array_equal(got["landmarks68"], ref["landmarks68"])
    np.testing.assert_allclose(got["identity_deltas"][0], ref["identity_deltas"][0], atol=1e-5)
    assert list(got["expression_names"]) == ["mouthSmile_L"]
    smile = list(ref["expression_names"]).index("mouthSmile_L")
    np.testing.assert_allclose(got["expression_deltas"][0], ref["expression_deltas"][smile], atol=1e-5)


def test_import_ict_full_mode_names_missing_files(shared_data, tmp_path):
    from hiva_core.synth.import_ict import import_ict

    with pytest.raises(UserError, match="identity001.obj"):
        import_ict(shared_data / "ict-facekit", tmp_path / "ict.npz")
    with pytest.raises(UserError, match="generic_neutral_mesh.obj"):
        import_ict(tmp_path, tmp_path / "ict.npz")
    assert not (tmp_path / "ict.npz").exists()


def test_missing_face_model_is_a_clear_error(tmp_path, monkeypatch):
    from hiva_core.synth.facemodel import find_face_model

    monkeypatch.setenv("HIVA_FACE_MODEL", str(tmp_path / "nope.npz"))
    with pytest.raises(UserError, match="HIVA_FACE_MODEL"):
        find_face_model()
    with pytest.raises(UserError, match="import-ict"):
        find_face_model(tmp_path / "nope.npz")


def test_damaged_face_model_fails_before_any_folder_is_made(tmp_path, capsys):
    from hiva_core.cli import main

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz file")
    out = tmp_path / "never"
    assert main(["synth", "--out", str(out), "--n", "2", "--face-model", str(bad)]) == 2
    assert "cannot read face model" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("msaa", [-1, 3])
def test_bad_msaa_is_a_clear_error(tmp_path, msaa):
    """Multisampling takes 0 (off) or a power of two; anything else is an error line, not a renderer traceback."""
    from hiva_core.synth import run_synth

    with pytest.raises(UserError, match=r"--msaa must be 0 \(off\) or a power of two"):
        run_synth(out=tmp_path / "s", n=1, msaa=msaa)
    assert not (tmp_path / "s").exists()


# --- AU table and sampling ------------------------------------------------------------------------------------------


def test_au_table_uses_real_shapes_and_sums_left_right(face_model_path):
    names = [str(n) for n in np.load(face_model_path)["expression_names"]]
    aumap.check_names(names)
    w = blendshape_weights({12: 0.5, 6: 1.0}, names)
    assert w[names.index("mouthSmile_L")] == w[names.index("mouthSmile_R")] == pytest.approx(0.5)
    assert w[names.index("cheekRaiser_L")] == pytest.approx(1.0)
    assert w[names.index("browDown_L")] == 0.0
    # Shared shapes add up and clip at 1 (AU26 + AU27 both open the jaw).
    assert blendshape_weights({26: 1.0, 27: 1.0}, names)[names.index("jawOpen")] == 1.0
    assert set(SYNTH_AUS) >= set(calibration.BP4D_AUS) and OCCURRENCE_THRESHOLD == 0.3
    # A lopsided AU moves one side less; a person's expressiveness scales every shape; labels are not weights.
    w = blendshape_weights({12: 0.8}, names, sides={12: (0.5, 1.0)}, gain=1.25)
    assert w[names.index("mouthSmile_L")] == pytest.approx(0.5) and w[names.index("mouthSmile_R")] == pytest.approx(1.0)
    # ... never weaker as a whole: a shape of the face's middle keeps the stronger side's strength, so a present AU
    # (AU17: chin raiser, middle shapes only) is not rendered below a sub-threshold trace of it
    middle = [names.index(s) for s in aumap.AU_BLENDSHAPES[17] if not s.endswith(("_L", "_R"))]
    assert middle and np.array_equal(
        blendshape_weights({17: 0.3}, names, sides={17: (0.6, 1.0)})[middle],
        blendshape_weights({17: 0.3}, names)[middle],
    )


def test_sampling_is_deterministic_and_identity_exclusive():
    a, b = sampling.sample_params(5, 17), sampling.sample_params(5, 17)
    assert a.au == b.au and a.yaw == b.yaw and np.array_equal(a.identity.weights, b.identity.weights)
    assert sampling.sample_params(6, 17).au != a.au
    shifted = sampling.sample_params(5, 17, shifted=True)
    assert not np.allclose(shifted.identity.weights, a.identity.weights)
    folds = {}
    for i in range(40):
        p = sampling.sample_params(0, i)
        assert folds.setdefault(p.identity.identity, p.fold) == p.fold
        assert all(0.0 <= v <= 1.0 for v in p.au.values())
        assert all(v < 0.3 or v >= OCCURRENCE_THRESHOLD for v in p.au.values())
    assert set(folds.values()) == {1, 2, 3}


def test_bp4d_calibration_reproduces_label_rates():
    real = np.array([0.211, 0.171, 0.203, 0.461, 0.549, 0.594, 0.562, 0.466, 0.169, 0.343, 0.165, 0.151])
    calibration.bp4d_combinations.cache_clear()
    for lists in ("auto", None):  # the real lists when present, else (and always for None) the built-in fallback
        masks, probs, residual, _ = calibration.bp4d_combinations(lists)
        bits = (masks[:, None] >> np.arange(12)) & 1
        rates = probs @ bits + residual * np.array(calibration.BP4D_FALLBACK_RESIDUAL_RATES)
        np.testing.assert_allclose(rates, real, atol=0.004)
    rng = np.random.default_rng(0)
    draws = [calibration.sample_aus(rng) for _ in range(3000)]
    au12 = np.mean([d[12] >= OCCURRENCE_THRESHOLD for d in draws])
    assert abs(au12 - 0.562) < 0.04
    assert not any(d[26] >= 0.3 and d[27] >= 0.3 for d in draws)
    traces = np.mean([0 < d[1] < OCCURRENCE_THRESHOLD for d in draws])
    assert 0.1 < traces < 0.4  # inactive AUs sometimes show a sub-threshold trace
    # The intensity factor: the same occurrence, more slight (B-level, 0.3-0.5) intensities and more traces.
    wide = [calibration.sample_aus(np.random.default_rng(i), wide=True) for i in range(1500)]
    narrow = [calibration.sample_aus(np.random.default_rng(i)) for i in range(1500)]
    assert all(
        w.keys() == n.keys() and {a for a in w if w[a] >= 0.3} == {a for a in n if n[a] >= 0.3}
        for w, n in zip(wide, narrow, strict=True)
    )
    slight = [np.mean([0.3 <= d[a] < 0.5 for d in ds for a in d if d[a] >= 0.3]) for ds in (narrow, wide)]
    assert slight[1] > slight[0] + 0.15


# --- rendering ------------------------------------------------------------------------------------------------------


def test_render_is_deterministic(renderer):
    p = sampling.sample_params(1, 4)
    a, b = renderer.render(p), renderer.render(sampling.sample_params(1, 4))
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
    np.testing.assert_allclose(a.landmarks, b.landmarks)
    assert a.image.shape == (96, 96, 3) and a.image.dtype == np.uint8


def test_face_size_in_the_frame_does_not_follow_the_mouth(renderer):
    """At a pose extreme enough to shrink the face into the frame, an open mouth (AU25/26/27) does not shrink it
    more: the framing is that of the neutral face."""
    p = dataclasses.replace(sampling.sample_params(0, 7), yaw=-45.0, pitch=-30.0, roll=-20.0)
    still = dataclasses.replace(p, au={a: 0.0 for a in p.au})
    gaping = dataclasses.replace(p, au={**still.au, 25: 1.0, 26: 0.0, 27: 1.0})
    np.testing.assert_allclose(renderer.geometry(still)[2], renderer.geometry(gaping)[2])


def test_rendered_shapes_follow_the_au_table(renderer):
    names = renderer.model.expression_names
    for i in range(3):
        p = sampling.sample_params(2, i)
        got = renderer.render(p).blendshapes
        expected = np.zeros(len(names))
        for au, value in p.au.items():
            left, right = p.au_sides.get(au, (1.0, 1.0))
            for shape, coef in AU_BLENDSHAPES[au].items():
                side = left if shape.endswith("_L") else right if shape.endswith("_R") else max(left, right)
                expected[names.index(shape)] += value * coef * side * p.identity.expressiveness
        for shape, value in p.extra.items():
            expected[names.index(shape)] += value
        np.testing.assert_allclose(got, np.clip(expected, 0, 1), atol=1e-6)
        assert p.labels == {au: int(v >= 0.3) for au, v in p.au.items()}


def test_looks_like_a_face(renderer, tmp_path):
    base = sampling.sample_params(0, 0, factors="none")  # the plain look: no hair, skin detail or occluders
    base.identity = dataclasses.replace(base.identity, skin=(0.8, 0.62, 0.52))  # a mid tone: eyes darker than skin
    neutral, smile = renderer.render(_plain(base)), renderer.render(_plain(base, AU12=1.0))
    brows = renderer.render(_plain(base, AU1=1.0, AU2=1.0))
    samples = [renderer.render(sampling.sample_params(0, i)).image for i in range(1, 6)]
    sheet = np.concatenate([neutral.image, smile.image, brows.image, *samples], axis=1)
    Image.fromarray(sheet).save(tmp_path / "contact_sheet.png")

    img, lm = neutral.image, neutral.landmarks
    assert ((lm >= 0) & (lm < 96)).all()
    bg = np.array([0.1, 0.3, 0.8]) * 255
    assert np.abs(img[int(lm[30, 1]), int(lm[30, 0])] - bg).mean() > 40  # the nose is not background
    assert np.abs(img[2, 2] - bg).max() < 3  # the corner is
    luma = _luma(img)
    cheeks = np.mean([_patch(luma, (lm[31] + lm[2]) / 2, 2).mean(), _patch(luma, (lm[35] + lm[14]) / 2, 2).mean()])
    eyes = np.mean([_patch(luma, lm[36:42].mean(0), 1).mean(), _patch(luma, lm[42:48].mean(0), 1).mean()])
    assert cheeks > eyes + 10
    # Eyes sit at a consistent height (aligned-crop framing) and the face is left/right symmetric at zero yaw.
    assert 0.35 < lm[36:48, 1].mean() / 96 < 0.5
    assert np.abs(luma - luma[:, ::-1]).mean() < 12
    # AU12 moves the mouth corners, not the brows; AU1+2 the reverse.
    diff = np.abs(_luma(smile.image) - luma)
    corners = np.mean([_patch(diff, lm[i], 4).mean() for i in (48, 54)])
    brow_area = np.mean([_patch(diff, lm[i], 4).mean() for i in (19, 24)])
    assert corners > 3 * brow_area + 1
    diff = np.abs(_luma(brows.image) - luma)
    assert np.mean([_patch(diff, lm[i], 4).mean() for i in (19, 24)]) > np.mean(
        [_patch(diff, lm[i], 4).mean() for i in (48, 54)]
    )


def _five_points(lm: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners of the 68 landmarks: the five points face alignment uses."""
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def test_renders_are_framed_by_the_alignment_template(renderer):
    """SynthAU renders put the face where `prepare` and `predict` put a detected face: the five points sit on
    hiva_core.faces.align.TEMPLATE (before the per-sample jitter), also when the jaw drops (no label-tied zoom)."""
    from hiva_core.faces.align import TEMPLATE

    size = renderer.size
    for i in range(4):  # four people, frontal, neutral, no jitter: the fit's residual only (face proportions)
        lm = renderer.render(_plain(sampling.sample_params(5, i * sampling.SAMPLES_PER_IDENTITY))).landmarks
        np.testing.assert_allclose(_five_points(lm) / size, TEMPLATE, atol=0.025)
    for i in range(4):  # their sampled head poses (the narrow ones: at ±45° yaw the fit's residual is larger)
        p = sampling.sample_params(5, i, factors="all,-pose")
        p = dataclasses.replace(p, au=dict.fromkeys(SYNTH_AUS, 0.0), extra={}, align_jitter=(1.0, 0.0, 0.0, 0.0))
        five = _five_points(renderer.render(p).landmarks) / size
        np.testing.assert_allclose(five[:2].mean(0), TEMPLATE[:2].mean(0), atol=0.03)  # between the eyes
        np.testing.assert_allclose(five[3:].mean(0), TEMPLATE[3:].mean(0), atol=0.03)  # mouth centre
    base = _plain(sampling.sample_params(5, 0))
    neutral, jaw = renderer.render(base).landmarks, renderer.render(_plain(base, AU27=1.0)).landmarks
    np.testing.assert_allclose(_five_points(jaw)[:3], _five_points(neutral)[:3], atol=0.01 * size)
    assert jaw[8, 1] > neutral[8, 1] + 0.05 * size  # the chin went down, the frame did not zoom out


# --- writer ---------------------------------------------------------------------------------------------------------


def test_manifest_has_documented_columns(synth_set):
    df = pd.read_csv(synth_set / "manifest.csv")
    assert list(df.columns) == manifest_columns(shifted=False)
    assert len(df) == 12 and df["path"].tolist() == [f"images/{i:06d}.jpg" for i in range(12)]
    for au in SYNTH_AUS:
        assert set(df[f"AU{au}"]) <= {0, 1}
        np.testing.assert_array_equal(df[f"AU{au}"], (df[f"AU{au}_int"] >= OCCURRENCE_THRESHOLD).astype(int))
    assert df.groupby("identity")["fold"].nunique().max() == 1 and set(df["fold"]) <= {1, 2, 3}
    for _, row in df.iterrows():
        lm = np.array(json.loads(row["landmarks"])).reshape(68, 2)
        assert np.isfinite(lm).all() and ((lm[17:] >= 0) & (lm[17:] < SIZE)).all()  # the jaw line may leave it
        assert row["box_x0"] == pytest.approx(lm[:, 0].min(), abs=0.01)
        assert Image.open(synth_set / row["path"]).size == (SIZE, SIZE)
    meta = json.loads((synth_set / "synth.json").read_text())
    assert meta["seed"] == 3 and meta["size"] == SIZE


def test_neutral_landmarks_are_the_same_person_without_the_aus(renderer):
    """The neutral face is the same person in the same pose and frame: equal to the face where no AU is on; lips
    parted and a jaw dropped show against it as what hiva_core.geometry calls them."""
    from augtext.grounding import GEOMETRY
    from hiva_core.geometry import expression_geometry

    params = sampling.sample_params(0, 5)
    rest = dataclasses.replace(params, au={a: 0.0 for a in SYNTH_AUS}, au_sides={})
    verts, _, mvp, _ = renderer.geometry(rest)
    np.testing.assert_allclose(renderer.neutral_landmarks(params), renderer.landmarks(verts, mvp)[0])
    open_mouth = dataclasses.replace(rest, au={a: 0.8 if a in (25, 26) else 0.0 for a in SYNTH_AUS})
    verts, _, mvp, _ = renderer.geometry(open_mouth)
    change = expression_geometry(renderer.landmarks(verts, mvp)[0][None], renderer.neutral_landmarks(open_mouth)[None])
    assert change[0, GEOMETRY.index("lip_opening")] > 0.05 and change[0, GEOMETRY.index("jaw_drop")] > 0.05
    assert np.abs(change[0, : GEOMETRY.index("eye_opening") + 1]).max() < 0.01  # brows and eyes stay


def test_manifest_loads_through_build_dataset(synth_set):
    data = pytest.importorskip("hiva_core.data")
    if not hasattr(data, "build_dataset"):
        pytest.skip("hiva_core.data.build_dataset not there yet")
    ds = data.build_dataset(str(synth_set), split="test", fold=1, image_size=32, aus=[1, 12, 25])
    df = pd.read_csv(synth_set / "manifest.csv")
    assert len(ds) == int((df["fold"] == 1).sum())
    item = ds[0]
    assert tuple(item["image"].shape) == (3, 32, 32)
    row = df[df["fold"] == 1].iloc[0]
    np.testing.assert_array_equal(item["labels"].numpy(), [row["AU1"], row["AU12"], row["AU25"]])


def test_a_set_stopped_before_its_last_image_is_no_data_until_finished(
    tmp_path, face_model_path, monkeypatch, synth_set
):
    """Ctrl-C after 5 of 12 images: no manifest.csv (train and eval would take 5 faces for the set), the rows so far
    in manifest.partial.csv; reading the folder as data names the unfinished set; the same command finishes it,
    byte for byte the set rendered in one go."""
    from hiva_core.data.manifest import find_manifest
    from hiva_core.synth import writer

    real, calls = writer._Worker.__call__, []

    def call(self, i):
        calls.append(i)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(self, i)

    out = tmp_path / "stopped"
    monkeypatch.setattr(writer._Worker, "__call__", call)
    with pytest.raises(KeyboardInterrupt):
        run_synth(out, n=12, size=SIZE, seed=3, face_model=face_model_path, progress=False, workers=1)
    assert not (out / "manifest.csv").exists() and len(pd.read_csv(out / "manifest.partial.csv")) == 5
    with pytest.raises(UserError, match=r"holds an unfinished set .*manifest.partial.csv.*hiva_core synth --out"):
        find_manifest(out)
    monkeypatch.undo()
    run_synth(out, n=12, size=SIZE, seed=3, face_model=face_model_path, progress=False, workers=1)
    assert not (out / "manifest.partial.csv").exists()
    assert (out / "manifest.csv").read_text() == (synth_set / "manifest.csv").read_text()


def test_resume_rerenders_only_missing_images(synth_set, face_model_path):
    before = {p.name: p.read_bytes() for p in (synth_set / "images").iterdir()}
    manifest = (synth_set / "manifest.csv").read_text()
    for name in ("000002.jpg", "000007.jpg"):
        (synth_set / "images" / name).unlink()
    (synth_set / "images" / "000009.jpg").write_bytes(b"truncated")
    run_synth(synth_set, n=12, size=SIZE, seed=3, face_model=face_model_path, progress=False)
    after = {p.name: p.read_bytes() for p in (synth_set / "images").iterdir()}
    assert after == before  # the three re-rendered images are byte-identical JPEGs
    assert (synth_set / "manifest.csv").read_text() == manifest
    # Killed before the manifest was written: valid images are kept, their rows rebuilt without rendering.
    (synth_set / "manifest.csv").unlink()
    mtimes = {p.name: p.stat().st_mtime_ns for p in (synth_set / "images").iterdir()}
    run_synth(synth_set, n=12, size=SIZE, seed=3, face_model=face_model_path, progress=False)
    assert (synth_set / "manifest.csv").read_text() == manifest
    assert {p.name: p.stat().st_mtime_ns for p in (synth_set / "images").iterdir()} == mtimes
    # A set written before the neutral landmarks: resumed, it gains them from each image's parameters, no rendering.
    pd.read_csv(synth_set / "manifest.csv").drop(columns="neutral_landmarks").to_csv(
        synth_set / "manifest.csv", index=False
    )
    run_synth(synth_set, n=12, size=SIZE, seed=3, face_model=face_model_path, progress=False)
    assert (synth_set / "manifest.csv").read_text() == manifest
    assert {p.name: p.stat().st_mtime_ns for p in (synth_set / "images").iterdir()} == mtimes
    with pytest.raises(UserError, match="seed"):
        run_synth(synth_set, n=12, size=SIZE, seed=4, face_model=face_model_path, progress=False)
    with pytest.raises(UserError, match="msaa"):  # another antialiasing would mix two looks in one set
        run_synth(synth_set, n=12, size=SIZE, seed=3, face_model=face_model_path, progress=False, msaa=0)


def test_workers_and_shifted_split(face_model_path, synth_set, tmp_path):
    run_synth(tmp_path / "w", n=2, size=SIZE, seed=3, face_model=face_model_path, workers=2, progress=False)
    for i in range(2):  # two processes, each with its own GL context, render what one process rendered
        a = np.asarray(Image.open(tmp_path / "w" / "images" / f"{i:06d}.jpg")).astype(int)
        b = np.asarray(Image.open(synth_set / "images" / f"{i:06d}.jpg")).astype(int)
        assert np.abs(a - b).mean() < 1.0
    from hiva_core.cli import main

    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "x"),
                "--n",
                "3",
                "--size",
                str(SIZE),
                "--shifted",
                "--face-model",
                str(face_model_path),
            ]
        )
        == 0
    )
    df = pd.read_csv(tmp_path / "x" / "manifest.csv")
    assert list(df.columns) == manifest_columns(shifted=True)
    assert set(df["split"]) == {"test"} and df["subject"].str.startswith("X").all()
    assert main(["synth", "--out", str(tmp_path / "y"), "--n", "0", "--face-model", str(face_model_path)]) == 2


# --- posed expressions ----------------------------------------------------------------------------------------------


def test_posed_faces_show_an_expressions_aus_on_the_same_people_and_scenes():
    from hiva_core.synth.expressions import EXPRESSIONS

    variants = {name: {frozenset(v) for v in vs} for name, vs in EXPRESSIONS.items()}
    assert all(set(v) <= set(SYNTH_AUS) for vs in EXPRESSIONS.values() for v in vs)  # every AU is one SynthAU renders
    seen = set()
    for i in range(140):
        posed, plain = sampling.sample_params(0, i, labels="posed"), sampling.sample_params(0, i, labels="bp4d")
        present = frozenset(a for a, on in posed.labels.items() if on)
        assert present in variants[posed.expression], (i, posed.expression, sorted(present))
        assert plain.expression == "" and posed.expression in EXPRESSIONS
        seen.add(posed.expression)
        # Paired: the person and every other draw are the plain sample's; only the AUs differ.
        assert posed.identity.identity == plain.identity.identity
        np.testing.assert_array_equal(posed.identity.weights, plain.identity.weights)
        assert (posed.yaw, posed.pitch, posed.cam_distance, posed.jpeg_quality, posed.extra) == (
            plain.yaw,
            plain.pitch,
            plain.cam_distance,
            plain.jpeg_quality,
            plain.extra,
        )
        np.testing.assert_array_equal(posed.key_dir, plain.key_dir)
    assert seen == set(EXPRESSIONS)  # 140 draws reach all seven
    again = sampling.sample_params(0, 7, labels="posed")
    assert again.au == sampling.sample_params(0, 7, labels="posed").au  # deterministic


def test_posed_set_records_its_expressions_and_refuses_mixing(face_model_path, tmp_path):
    from hiva_core.cli import main

    out = tmp_path / "posed"
    args = ["synth", "--out", str(out), "--n", "4", "--size", str(SIZE), "--face-model", str(face_model_path)]
    assert main([*args, "--labels", "posed", "--shifted"]) == 0
    df = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(df.columns) == manifest_columns(shifted=True, labels="posed")
    for _, row in df.iterrows():
        params = sampling.sample_params(0, int(row["index"]), shifted=True, labels="posed")
        assert row["expression"] == params.expression
        assert [row[f"AU{a}"] for a in SYNTH_AUS] == [params.labels[a] for a in SYNTH_AUS]
    assert json.loads((out / "synth.json").read_text())["labels"] == "posed"
    before = (out / "manifest.csv").read_bytes()
    assert main([*args, "--shifted", "--labels", "bp4d"]) == 2  # the same folder with BP4D rows: refused, unchanged
    assert main([*args, "--shifted"]) == 2  # or with the default mix
    assert (out / "manifest.csv").read_bytes() == before
    assert "expression" not in manifest_columns(shifted=False, labels="bp4d")


def test_independent_labels_keep_the_rates_and_drop_the_co_occurrence():
    bp4d = calibration.BP4D_AUS
    rows = {
        kind: np.array(
            [[p.labels[a] for a in bp4d] for p in (sampling.sample_params(0, i, labels=kind) for i in range(1500))]
        )
        for kind in ("bp4d", "independent")
    }
    np.testing.assert_allclose(rows["independent"].mean(0), calibration.bp4d_marginals(), atol=0.05)
    np.testing.assert_allclose(rows["bp4d"].mean(0), calibration.bp4d_marginals(), atol=0.05)
    corr = {kind: np.corrcoef(r.T)[np.triu_indices(len(bp4d), 1)] for kind, r in rows.items()}
    assert np.abs(corr["bp4d"]).max() > 0.4  # BP4D rows: AU6 with AU12, AU10 with AU12, ...
    assert np.abs(corr["independent"]).max() < 0.1  # every AU on its own
    plain, alone = sampling.sample_params(0, 9, labels="bp4d"), sampling.sample_params(0, 9, labels="independent")
    assert (plain.identity.identity, plain.yaw, plain.jpeg_quality) == (
        alone.identity.identity,
        alone.yaw,
        alone.jpeg_quality,
    )
    with pytest.raises(UserError, match="--labels 'rows': 'rows' is not one of bp4d, independent, posed"):
        run_synth("unused", n=1, labels="rows")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bp4d:0,posed", "bp4d's weight must be a positive number, got 0"),
        ("bp4d:two,posed", "bp4d's weight 'two' is not a number"),
        ("posed,posed:2", "posed is named twice"),
        ("bp4d:nan", "bp4d's weight must be a positive number, got nan"),
    ],
)
def test_bad_label_mix_is_named(spec, message, tmp_path):
    with pytest.raises(UserError, match=re.escape(f"--labels {spec!r}: {message}")):
        run_synth(tmp_path / "never", n=1, labels=spec)
    assert not (tmp_path / "never").exists()


def test_a_label_mix_draws_each_face_as_its_kind_alone():
    """`bp4d:2,posed:1`: about a third of the faces posed, each face i exactly face i of the pure set of its kind (AUs,
    expression, person, scene); the same mix spelt otherwise is the same set."""
    kinds = []
    for i in range(300):
        mixed = sampling.sample_params(0, i, labels="bp4d:2,posed:1")
        alone = sampling.sample_params(0, i, labels=mixed.label_kind)
        assert (mixed.au, mixed.expression, mixed.yaw, mixed.identity.identity) == (
            alone.au,
            alone.expression,
            alone.yaw,
            alone.identity.identity,
        )
        assert sampling.sample_params(0, i, labels="posed:1, bp4d:2").label_kind == mixed.label_kind
        kinds.append(mixed.label_kind)
    assert set(kinds) == {"bp4d", "posed"} and 0.25 < kinds.count("posed") / len(kinds) < 0.42
    assert sampling.labels_label(sampling.parse_labels("posed:1,bp4d:2")) == "bp4d:0.666667,posed:0.333333"


def test_mixed_set_records_each_faces_kind(face_model_path, tmp_path):
    from hiva_core.cli import main

    out = tmp_path / "mixed"
    args = ["synth", "--out", str(out), "--n", "6", "--size", str(SIZE), "--face-model", str(face_model_path)]
    assert main([*args, "--labels", "bp4d,posed"]) == 0
    df = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(df.columns) == manifest_columns(shifted=False, labels="bp4d,posed")
    assert "label_kind" in df.columns and "expression" in df.columns
    for _, row in df.iterrows():
        params = sampling.sample_params(0, int(row["index"]), labels="bp4d:0.5,posed:0.5")
        assert row["label_kind"] == params.label_kind and row["expression"] == params.expression
        assert (row["expression"] != "") == (params.label_kind == "posed")
        assert [row[f"AU{a}"] for a in SYNTH_AUS] == [params.labels[a] for a in SYNTH_AUS]
    assert json.loads((out / "synth.json").read_text())["labels"] == "bp4d:0.5,posed:0.5"
    assert main([*args, "--labels", "posed:3,bp4d:3"]) == 0  # the same mix in other words resumes
    assert main([*args, "--labels", "bp4d:2,posed:1"]) == 2  # another mix is refused


def test_the_default_set_mixes_bp4d_rows_with_posed_faces(face_model_path, tmp_path):
    """What `synth` draws unless told (sampling.DEFAULT_LABELS): the CLI, run_synth and sample_params agree."""
    import inspect

    from hiva_core.cli import main, synth

    assert inspect.signature(synth).parameters["labels"].default.default == sampling.DEFAULT_LABELS
    assert inspect.signature(run_synth).parameters["labels"].default == sampling.DEFAULT_LABELS
    out = tmp_path / "default"
    assert (
        main(["synth", "--out", str(out), "--n", "9", "--size", str(SIZE), "--face-model", str(face_model_path)]) == 0
    )
    df = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(df.columns) == manifest_columns(shifted=False)
    assert json.loads((out / "synth.json").read_text())["labels"] == "bp4d:0.666667,posed:0.333333"
    assert list(df["label_kind"]) == [sampling.sample_params(0, i).label_kind for i in range(9)]
    assert set(df["label_kind"]) == {"bp4d", "posed"}


def test_a_set_of_another_default_names_the_flag_that_resumes_it(face_model_path, tmp_path, capsys):
    """A folder rendered with BP4D rows (the old default) is refused by the default, naming `--labels bp4d`."""
    from hiva_core.cli import main

    out = tmp_path / "rows"
    args = ["synth", "--out", str(out), "--size", str(SIZE), "--face-model", str(face_model_path)]
    assert main([*args, "--n", "3", "--labels", "bp4d"]) == 0
    capsys.readouterr()
    assert main([*args, "--n", "4"]) == 2
    err = capsys.readouterr().err
    assert "labels='bp4d'" in err and "--labels bp4d to resume" in err
    assert len(list((out / "images").iterdir())) == 3  # nothing rendered under the refused settings
    assert main([*args, "--n", "4", "--size", str(SIZE + 16), "--labels", "bp4d"]) == 2
    assert f"--size {SIZE} to resume" in capsys.readouterr().err
    assert main([*args, "--n", "4", "--labels", "bp4d"]) == 0
    assert len(pd.read_csv(out / "manifest.csv")) == 4
