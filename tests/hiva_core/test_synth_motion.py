"""SynthAU's `motion` factor: each person makes the AUs their own way (hiva_core.synth.motion)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hiva_core.synth import sampling
from hiva_core.synth.motion import MAX_TURN, MIX, SIZE, motion_fields, sample_motion, vary
from tests.hiva_core.test_synth import _plain, renderer  # noqa: F401  (the fixture)


def _fields(seed: int, rest: np.ndarray, still=None) -> np.ndarray:
    return motion_fields(sample_motion(np.random.default_rng(seed)), rest, still)


def test_fields_are_smooth_and_of_their_spread():
    rng = np.random.default_rng(0)
    rest = rng.uniform(-8, 8, (4000, 3))
    f = np.concatenate([_fields(s, rest) for s in range(40)])
    assert 0.8 * MIX < np.std(np.log(f[:, 0])) < 1.2 * MIX and 0.8 * MIX < np.std(np.log(f[:, 1])) < 1.2 * MIX
    assert 0.8 * SIZE < np.std(np.log(f[:, 3])) < 1.2 * SIZE and abs(np.mean(np.log(f[:, 3]))) < 0.05
    assert np.abs(f[:, 2]).max() <= MAX_TURN + 1e-6
    # smooth: two points 2 mm apart get nearly the same fields, points 20 cm apart unrelated ones
    near = _fields(1, np.array([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]]))
    assert np.abs(np.log(near[0, [0, 1, 3]]) - np.log(near[1, [0, 1, 3]])).max() < 0.25
    # still points keep ICT's motion
    still = np.zeros(len(rest), bool)
    still[::3] = True
    g = _fields(2, rest, still)
    assert np.array_equal(g[still], np.tile([1.0, 1.0, 0.0, 1.0], (still.sum(), 1)).astype(np.float32))


def test_vary_keeps_what_an_au_means():
    rng = np.random.default_rng(3)
    d = rng.standard_normal((2000, 3)).astype(np.float32)
    f = _fields(4, rng.uniform(-8, 8, (2000, 3)))
    out = vary(d, f)
    # nothing moves that did not; the depth keeps ICT's share; the in-plane length is kept but for the size
    assert np.array_equal(vary(np.zeros_like(d), f), np.zeros_like(d))
    assert np.allclose(out[:, 2], d[:, 2] * f[:, 3], atol=1e-5)
    assert np.allclose(np.linalg.norm(out[:, :2], axis=1), np.linalg.norm(d[:, :2], axis=1) * f[:, 3], rtol=1e-4)
    # a point that moves up still moves up (mixes are positive; the turn is below 90 degrees)
    up = np.tile([0.0, 1.0, 0.0], (2000, 1)).astype(np.float32)
    assert (vary(up, f)[:, 1] > 0).all()
    # identity fields change nothing
    plain = np.tile([1.0, 1.0, 0.0, 1.0], (2000, 1)).astype(np.float32)
    assert np.allclose(vary(d, plain), d, atol=1e-6)
    # and a displacement is re-mixed: the brows of one person lower more than they draw together, another's less
    knit = np.tile([1.0, -1.0, 0.0], (2000, 1)).astype(np.float32)
    ratio = np.abs(vary(knit, f)[:, 0] / vary(knit, f)[:, 1])
    assert ratio.min() < 0.5 and ratio.max() > 2.0


def test_motion_is_a_persons_and_a_factor_of_its_own():
    on, off = sampling.sample_params(0, 16), sampling.sample_params(0, 16, factors="-motion")
    assert on.identity.motion is not None and off.identity.motion is None
    assert on.au == off.au and on.identity.look == off.identity.look and on.yaw == off.yaw
    assert np.array_equal(on.identity.weights, off.identity.weights)
    same_person = sampling.sample_params(0, 23).identity.motion
    assert np.array_equal(same_person.phases, on.identity.motion.phases)
    other = sampling.sample_params(0, 24).identity.motion
    assert not np.array_equal(other.phases, on.identity.motion.phases)


def test_rendered_motion_moves_the_au_only(renderer):
    base = _plain(sampling.sample_params(0, 40))
    assert base.identity.motion is not None
    ict = dataclasses.replace(base, identity=dataclasses.replace(base.identity, motion=None))
    # at rest the person is the same, motion or not (the neutral frame never changes)
    assert np.array_equal(renderer.render(base).image, renderer.render(ict).image)
    face = dataclasses.replace(base, au={**base.au, 4: 1.0, 12: 1.0})
    face_ict = dataclasses.replace(face, identity=ict.identity)
    v, w, _, _ = renderer.geometry(face)
    v_ict, w_ict, _, _ = renderer.geometry(face_ict)
    assert np.array_equal(w, w_ict)  # the same blendshape weights: the same label
    moved = np.linalg.norm(v - v_ict, axis=1)
    rest = renderer.geometry(dataclasses.replace(face, au={a: 0.0 for a in face.au}))[0]
    ict_motion = np.linalg.norm(v_ict - rest, axis=1)
    assert moved[ict_motion < 1e-6].max() < 1e-4  # only where the AUs move the face
    assert moved.max() > 0.05  # and there, their own way
    assert moved[renderer.rigid].max() < 1e-4  # eyeballs and teeth as ICT's
