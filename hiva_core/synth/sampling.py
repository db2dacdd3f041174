"""Per-sample scene parameters: identity, Action Units, head pose, camera, lighting, look, occluders, degradations.

Deterministic for (seed, index, factors): a sample's base generator (AU occurrence, gaze, background) comes from
`SeedSequence([seed, split, index])`, each factor of variation from its own stream (hiva_core.synth.factors), and an
identity's draws from streams keyed by `IDENTITY_STREAM` and the identity number, so resuming, `--workers` and
rendering order never change a sample, and switching one factor off changes that factor only. The shifted split uses
its own `split` code (new identities, new samples), stronger identity shapes, yaw up to ±40° and a harsh key light,
whatever the factors. AU occurrence is calibrated on real BP4D labels (hiva_core.synth.calibration).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hiva_core.synth.aumap import OCCURRENCE_THRESHOLD
from hiva_core.synth.calibration import sample_independent, sample_intensities, sample_occurrence, sample_sides
from hiva_core.synth.expressions import sample_expression
from hiva_core.synth.factors import ALL, factor_rng, parse_factors
from hiva_core.synth.look import Look, beard_look, crease_look, hair_look, skin_look
from hiva_core.synth.overlays import sample_occluders

SAMPLES_PER_IDENTITY = 8  # consecutive indices share one synthetic person (shape, skin, eyes, brows, hair)
NUM_FOLDS = 3
IDENTITY_STREAM = 7_919  # separates identity generators from sample generators
SPLIT_CODE = {"train": 1, "shifted": 2}
IDENTITY_MODES = 40  # identity PCA modes sampled with `identity` off (the rest carry < 0.03 cm rms each)
IDENTITY_MODES_ALL = 100  # the whole ICT identity space (`identity` on)
SHIFTED_IDENTITY_SCALE = 1.6
# How a face's AUs are drawn (`synth --labels`): BP4D label rows (their co-occurrence), every AU on its own at the same
# rates (no co-occurrence to learn), or a posed basic-emotion prototype (hiva_core.synth.expressions).
LABELS = ("bp4d", "independent", "posed")
# What `synth` draws unless told: BP4D rows for two faces in three, a posed expression for the third. Measured at full
# scale (README, "a third of the training faces posed"; two seeds): +11 to +14 F1 / +9 AUC on faces posing an
# expression, -0.5 to -2.7 F1 on faces carrying BP4D rows, real faces AUC 94.7-95.6 against 91.5-93.1.
DEFAULT_LABELS = "bp4d:2,posed:1"


def parse_labels(spec: str) -> tuple[tuple[str, float], ...]:
    """`synth --labels`: one of LABELS, or a mix of them with weights, `bp4d:2,posed:1` (a weight left out is 1),
    -> ((kind, share), ...) in LABELS order, shares summing to 1. Each face of a mix draws its kind from a stream of
    its own, then its AUs as a set of that kind alone draws them: face i of a mix is face i of the pure set of its
    kind. Raises ValueError naming what is wrong."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in str(spec).split(",")):
        name, _, weight = part.partition(":")
        name = name.strip()
        if name not in LABELS:
            raise ValueError(f"{name!r} is not one of {', '.join(LABELS)}")
        if name in weights:
            raise ValueError(f"{name} is named twice")
        try:
            value = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise ValueError(f"{name}'s weight {weight.strip()!r} is not a number") from None
        if not (value > 0 and np.isfinite(value)):
            raise ValueError(f"{name}'s weight must be a positive number, got {weight.strip()}")
        weights[name] = value
    total = sum(weights.values())
    return tuple((k, weights[k] / total) for k in LABELS if k in weights)


def labels_label(mix: tuple[tuple[str, float], ...]) -> str:
    """The canonical spelling of a parsed --labels, `bp4d` or `bp4d:0.666667,posed:0.333333`: synth.json records it
    and the render processes draw from it, so a set resumed with the same mix in other words is the same set."""
    if len(mix) == 1:
        return mix[0][0]
    return ",".join(f"{k}:{share:.6g}" for k, share in mix)


def _label_kind(seed: int, split: int, index: int, mix: tuple[tuple[str, float], ...]) -> str:
    if len(mix) == 1:
        return mix[0][0]
    u = factor_rng(seed, split, "label_kind", index).uniform()
    edges = np.cumsum([share for _, share in mix])
    return mix[min(int(np.searchsorted(edges, u, side="right")), len(mix) - 1)][0]


@dataclass
class Identity:
    identity: int
    weights: np.ndarray  # (IDENTITY_MODES or IDENTITY_MODES_ALL,) identity PCA weights
    skin: tuple[float, float, float]  # sRGB albedo
    iris: tuple[float, float, float]
    lip_tint: float
    look: Look = field(default_factory=Look)  # skin detail, creases, brows, hair, facial hair (the shader's part)
    expressiveness: float = 1.0  # gain on every blendshape (how much this person's face moves per AU intensity)


@dataclass
class SampleParams:
    index: int
    identity: Identity
    fold: int
    au: dict[int, float]  # AU code -> intensity in [0, 1] (every SYNTH_AUS code); the labels come from these
    extra: dict[str, float]  # non-AU nuisance blendshapes (gaze, jaw sideways)
    yaw: float
    pitch: float
    roll: float
    cam_distance: float  # cm
    align_jitter: tuple[float, float, float, float]  # scale, dx, dy (fractions of the image), residual roll (deg)
    key_dir: np.ndarray
    key_color: np.ndarray
    fill_dir: np.ndarray
    fill_color: np.ndarray
    ambient: np.ndarray  # light from above (hemisphere sky)
    specular: float
    background: dict = field(default_factory=dict)
    blur: float = 0.0  # Gaussian sigma in pixels at 256 px
    noise: float = 0.0  # Gaussian noise sigma in grey levels
    jpeg_quality: int = 95
    noise_seed: int = 0
    factors: tuple[str, ...] = ALL
    au_sides: dict[int, tuple[float, float]] = field(default_factory=dict)  # AU -> (left, right) gain, lopsided AUs
    lights: tuple = ()  # more lights beyond key and fill: ((direction (3,), colour (3,)), ...)
    ground: np.ndarray | None = None  # hemisphere light from below (None: the same as `ambient`)
    occluders: tuple[dict, ...] = ()  # drawn over the face (hiva_core.synth.overlays): glasses, hand, mask
    motion_blur: tuple[float, float] = (0.0, 0.0)  # length (pixels at 256 px), angle (degrees)
    downscale: float = 1.0  # low resolution: the face as captured at this fraction of 256 px, enlarged back
    color_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white balance of the camera
    gamma: float = 1.0
    expression: str = ""  # posed faces (`synth --labels posed` or a mix with it): the expression whose AUs it shows
    label_kind: str = "bp4d"  # how its AUs were drawn (LABELS): the kind a mixed set chose for this face

    @property
    def labels(self) -> dict[int, int]:
        return {au: int(v >= OCCURRENCE_THRESHOLD) for au, v in self.au.items()}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _split(shifted: bool) -> int:
    return SPLIT_CODE["shifted" if shifted else "train"]


def _factors(factors) -> tuple[str, ...]:
    return parse_factors(factors) if isinstance(factors, str) or factors is None else tuple(factors)


def sample_identity(seed: int, identity: int, shifted: bool, factors=ALL) -> Identity:
    on, split = set(_factors(factors)), _split(shifted)

    def rng(factor: str) -> np.random.Generator:
        return factor_rng(seed, split, factor, IDENTITY_STREAM, identity)

    r = rng("identity")
    if "identity" in on:  # the whole space; a fifth of the people far out in it, some with one extreme mode
        weights = r.standard_normal(IDENTITY_MODES_ALL)
        extreme, scale = r.uniform() < 0.2, r.uniform(1.2, 1.6)
        mode, push = r.integers(0, 10), r.choice([-1, 1]) * r.uniform(1.8, 2.5)
        if shifted:
            weights *= SHIFTED_IDENTITY_SCALE
        else:
            weights *= scale if extreme else 1.0
            if r.uniform() < 0.2:
                weights[mode] = push
    else:
        weights = r.standard_normal(IDENTITY_MODES) * (SHIFTED_IDENTITY_SCALE if shifted else 1.0)
    skin = skin_look(rng("skin"), "skin" in on)
    hair = hair_look(rng("hair"), "hair" in on)
    look = Look(
        seed=skin["seed"],
        **{k: v for k, v in skin.items() if k not in ("skin", "iris", "lip_tint", "seed")},
        **crease_look(rng("creases"), "creases" in on),
        **hair,
        **beard_look(rng("occluders"), "occluders" in on, hair.get("hair_rgb", hair["brow_rgb"])),
    )
    gain = rng("intensity").uniform(0.85, 1.15)
    return Identity(
        identity=identity,
        weights=weights.astype(np.float32),
        skin=skin["skin"],
        iris=skin["iris"],
        lip_tint=skin["lip_tint"],
        look=look,
        expressiveness=float(gain) if "intensity" in on else 1.0,
    )


def _pose(rng: np.random.Generator, wide: bool, shifted: bool) -> tuple[float, float, float]:
    if shifted:
        return rng.uniform(-40, 40), rng.uniform(-25, 25), rng.normal(0, 8)
    if wide:  # mostly near frontal, 40% anywhere up to ±45°
        near = rng.uniform() < 0.6
        yaw = np.clip(rng.normal(0, 15), -45, 45) if near else rng.uniform(-45, 45)
        pitch = np.clip(rng.normal(0, 10), -30, 30) if rng.uniform() < 0.7 else rng.uniform(-30, 30)
        return yaw, pitch, np.clip(rng.normal(0, 7), -20, 20)
    return np.clip(rng.normal(0, 8), -25, 25), np.clip(rng.normal(0, 6), -18, 18), rng.normal(0, 3)


def _jitter(rng: np.random.Generator, wide: bool) -> tuple[float, float, float, float]:
    """How far the detector's alignment strays: scale, dx, dy (fractions of the image), residual roll (degrees)."""
    if wide:
        return rng.normal(1.0, 0.05), rng.normal(0, 0.025), rng.normal(0, 0.025), rng.normal(0, 3.0)
    return rng.normal(1.0, 0.03), rng.normal(0, 0.015), rng.normal(0, 0.015), rng.normal(0, 1.5)


def _camera(rng: np.random.Generator, wide: bool) -> tuple[float, tuple[float, float, float, float]]:
    """Camera distance (field of view: the face fills the frame, so near means a wide angle) and framing jitter."""
    distance = float(np.exp(rng.uniform(np.log(25.0), np.log(250.0))) if wide else rng.uniform(45, 140))
    return distance, tuple(float(x) for x in _jitter(rng, wide))


def _light_colour(rng: np.random.Generator) -> np.ndarray:
    """White, warm (tungsten), cool (shade, screens) or a tinted colour."""
    kind = rng.choice(4, p=[0.45, 0.25, 0.2, 0.1])
    if kind == 0:
        return 1.0 - rng.uniform(0, 0.1, 3)
    if kind == 1:
        return np.array([1.0, 0.78, 0.55]) * rng.uniform(0.9, 1.05, 3)
    if kind == 2:
        return np.array([0.75, 0.87, 1.0]) * rng.uniform(0.9, 1.05, 3)
    hue = rng.uniform(0, 2 * np.pi)
    tint = 0.5 + 0.5 * np.cos(hue - np.array([0.0, 2.1, 4.2]))
    return 1.0 - rng.uniform(0.1, 0.35) * (1.0 - tint)


def _lighting(rng: np.random.Generator, wide: bool, shifted: bool) -> dict:
    if shifted:  # one harsh, coloured key from the side, little fill
        key_dir = _unit([rng.choice([-1, 1]) * rng.uniform(0.6, 1.0), rng.uniform(-0.4, 0.8), rng.uniform(0.0, 0.5)])
        key_color = rng.uniform(0.5, 1.0, 3) * rng.uniform(1.3, 1.9)
        fill_color = rng.uniform(0.0, 0.4, 3) * rng.uniform(0.1, 0.3)
        ambient, ground, extra = np.full(3, rng.uniform(0.05, 0.15)), None, ()
    elif wide:  # 1-4 lights anywhere in front, some from the side or behind (rim), coloured; sky and ground differ
        key_dir = _unit([rng.uniform(-1.0, 1.0), rng.uniform(-0.5, 1.0), rng.uniform(0.0, 1.0)])
        key_color = _light_colour(rng) * rng.uniform(0.6, 1.6)
        fill_color = _light_colour(rng) * rng.uniform(0.1, 0.6)
        count = rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15])
        extra = tuple(
            (
                _unit([rng.uniform(-1, 1), rng.uniform(-0.6, 1.0), rng.uniform(-0.8, 0.8)]),
                _light_colour(rng) * rng.uniform(0.2, 1.0),
            )
            for _ in range(count)
        )
        sky = _light_colour(rng) * rng.uniform(0.1, 0.4)
        ambient, ground = sky, sky * rng.uniform(0.2, 1.0) * _light_colour(rng)
    else:
        key_dir = _unit([rng.uniform(-0.7, 0.7), rng.uniform(0.0, 0.8), rng.uniform(0.6, 1.0)])
        key_color = (1.0 - rng.uniform(0, 0.15, 3)) * rng.uniform(0.85, 1.2)
        fill_color = (1.0 - rng.uniform(0, 0.2, 3)) * rng.uniform(0.15, 0.4)
        ambient, ground, extra = np.full(3, rng.uniform(0.15, 0.3)) * (1.0 - rng.uniform(0, 0.1, 3)), None, ()
    fill_dir = _unit([-key_dir[0] + rng.normal(0, 0.2), rng.uniform(-0.3, 0.3), rng.uniform(0.5, 1.0)])
    return {
        "key_dir": key_dir,
        "key_color": key_color,
        "fill_dir": fill_dir,
        "fill_color": fill_color,
        "ambient": ambient,
        "ground": ground,
        "lights": extra,
        "specular": float(rng.uniform(0.05, 0.5) if wide else rng.uniform(0.05, 0.3)),
    }


def _degradations(rng: np.random.Generator, wide: bool) -> dict:
    if not wide:
        return {
            "blur": float(rng.choice([0.0, rng.uniform(0.3, 1.5)], p=[0.6, 0.4])),
            "noise": float(rng.uniform(0.0, 5.0)),
            "jpeg_quality": int(rng.integers(70, 97)),
            "noise_seed": int(rng.integers(0, 2**31 - 1)),
        }
    # Sizes are in pixels of a 256-px image (scaled to the render size), so a small render is not degraded more.
    blur, motion, small = rng.uniform(0.3, 1.6), (rng.uniform(2.0, 7.0), rng.uniform(0, 180)), rng.uniform(0.25, 0.8)
    return {
        "blur": float(blur if rng.uniform() < 0.3 else 0.0),
        "motion_blur": tuple(float(x) for x in motion) if rng.uniform() < 0.15 else (0.0, 0.0),
        "downscale": float(small if rng.uniform() < 0.25 else 1.0),
        "noise": float(rng.uniform(0.0, 8.0)),
        "jpeg_quality": int(rng.integers(40, 96)),
        "noise_seed": int(rng.integers(0, 2**31 - 1)),
        "color_gain": tuple(float(x) for x in np.exp(rng.normal(0, 0.04, 3))),
        "gamma": float(np.exp(rng.normal(0, 0.1))),
    }


# `synth --neutral`: the head of a face's neutral frame strays from the face's pose by this spread (degrees, each of
# yaw, pitch and roll), as the resting frame nearest in pose does in a video: a landmark reader against a neutral
# 2 / 5 / 10 degrees off scores AUC 96.6 / 94.5 / 90.7 against 98.0 in the very pose (README, neutral reference).
NEUTRAL_POSE_SPREAD = 3.0


def neutral_params(params: SampleParams, seed: int, shifted: bool = False) -> SampleParams:
    """The same person at rest beside sample `params`: every AU at 0, the head turned a little (NEUTRAL_POSE_SPREAD),
    framed by an alignment of its own, its own sensor noise; the scene (camera, light, look, occluders, the
    degradations) the same, as another frame of the same video. Its own random stream: the sample is unchanged."""
    rng = factor_rng(seed, _split(shifted), "neutral", params.index)
    dyaw, dpitch, droll = rng.normal(0, NEUTRAL_POSE_SPREAD, 3)
    jitter = _jitter(rng, "camera" in params.factors)
    return replace(
        params,
        au={a: 0.0 for a in params.au},
        au_sides={},
        expression="",
        yaw=float(params.yaw + dyaw),
        pitch=float(params.pitch + dpitch),
        roll=float(params.roll + droll),
        align_jitter=tuple(float(x) for x in jitter),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def sample_params(
    seed: int, index: int, shifted: bool = False, factors=ALL, labels: str = DEFAULT_LABELS
) -> SampleParams:
    """The scene of sample `index`. `factors`: the factors of variation that are on (a SPEC string or names).
    `labels` (parse_labels: one of LABELS or a mix): how the AUs are drawn; with `independent` or `posed` they come
    from a stream of their own, so the person and every other draw stay those of the same index with `bp4d` (a
    paired set)."""
    factors = _factors(factors)
    mix = parse_labels(labels)
    on, split = set(factors), _split(shifted)
    identity = index // SAMPLES_PER_IDENTITY

    def rng(factor: str) -> np.random.Generator:
        return factor_rng(seed, split, factor, index)

    base = np.random.default_rng(np.random.SeedSequence([seed, split, index]))
    ident = sample_identity(seed, identity, shifted, factors)
    occurring = sample_occurrence(base)  # drawn whatever `labels`, so that the base stream's later draws stay paired
    expression, label_kind = "", _label_kind(seed, split, index, mix)
    if label_kind == "posed":
        expression, occurring = sample_expression(factor_rng(seed, split, "labels", index))
    elif label_kind == "independent":
        occurring = sample_independent(factor_rng(seed, split, "labels", index))
    r_int = rng("intensity")
    au = sample_intensities(occurring, r_int, "intensity" in on)
    sides = sample_sides(au, r_int) if "intensity" in on else {}
    gx, gy = base.normal(0, 0.15, 2)
    extra = {  # gaze (both eyes the same way) and a slight sideways jaw: nuisance shapes, no AU label
        ("eyeLookOut_L" if gx > 0 else "eyeLookIn_L"): abs(gx),
        ("eyeLookIn_R" if gx > 0 else "eyeLookOut_R"): abs(gx),
        ("eyeLookUp_L" if gy > 0 else "eyeLookDown_L"): abs(gy),
        ("eyeLookUp_R" if gy > 0 else "eyeLookDown_R"): abs(gy),
        ("jawLeft" if base.uniform() < 0.5 else "jawRight"): base.uniform(0, 0.1),
    }
    kind = base.choice(["flat", "gradient", "noise"])
    background = {
        "kind": str(kind),
        "c1": base.uniform(0.05, 0.95, 3).tolist(),
        "c2": base.uniform(0.05, 0.95, 3).tolist(),
        "angle": float(base.uniform(0, 2 * np.pi)),
        "cells": int(base.integers(3, 9)),
        "seed": int(factor_rng(seed, split, "background", index).integers(0, 2**31 - 1)),
    }
    yaw, pitch, roll = _pose(rng("pose"), "pose" in on, shifted)
    distance, jitter = _camera(rng("camera"), "camera" in on)
    return SampleParams(
        index=index,
        identity=ident,
        fold=identity % NUM_FOLDS + 1,
        au=au,
        extra=extra,
        yaw=float(yaw),
        pitch=float(pitch),
        roll=float(roll),
        cam_distance=distance,
        align_jitter=jitter,
        background=background,
        factors=factors,
        au_sides=sides,
        occluders=sample_occluders(rng("occluders")) if "occluders" in on else (),
        **_lighting(rng("lighting"), "lighting" in on, shifted),
        **_degradations(rng("degradations"), "degradations" in on),
        expression=expression,
        label_kind=label_kind,
    )
