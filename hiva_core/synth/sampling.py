"""Per-sample scene parameters: identity, Action Units, head pose, camera, lighting, colours, background, degradations.

Deterministic for (seed, index): every sample's generator comes from `SeedSequence([seed, split, index])`, every
identity's from `SeedSequence([seed, split, IDENTITY_STREAM, identity])`, so resuming, `--workers` and rendering order
never change a sample. The shifted split uses its own `split` code, hence new identities and new samples.

AU occurrence is calibrated on real BP4D labels: the 12 BP4D AUs of a sample are one real BP4D frame's label row,
drawn from the label lists when they are found (this reproduces BP4D's marginals and every co-occurrence exactly),
else from BP4D_FALLBACK (below). The other AUs follow OTHER_AU_RATES and the documented coupling rules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from hiva_core.synth.aumap import OCCURRENCE_THRESHOLD, SYNTH_AUS

BP4D_AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
SAMPLES_PER_IDENTITY = 8  # consecutive indices share one synthetic person (shape, skin, eyes, brows)
NUM_FOLDS = 3
IDENTITY_STREAM = 7_919  # separates identity generators from sample generators
SPLIT_CODE = {"train": 1, "shifted": 2}
IDENTITY_MODES = 40  # identity PCA modes sampled (the rest carry < 0.03 cm rms each)

# Fallback when the BP4D label lists are absent: the 128 most frequent 12-AU label combinations of all 146,847 BP4D
# frames (union of BP4D_test_label_fold{1,2,3}.txt from CVI-SZU/MDHR @ 3497bed; bit i = BP4D_AUS[i]) with their frame
# counts, covering 67.25% of frames; the remaining 32.75% are drawn AU by AU from the marginals of those remaining
# frames (BP4D_FALLBACK_RESIDUAL_RATES). Computed once with numpy from the lists; marginals match BP4D exactly.
BP4D_FALLBACK = (
    "0:11619 f8:8402 78:6883 4:3571 60:1814 fb:1710 f0:1506 14:1494 200:1470 80:1410 3:1387 e0:1374 2f8:1366 "
    "68:1335 1f8:1317 e8:1294 20:1245 10:1205 58:1172 40:1159 3f8:1129 a80:1128 70:1061 1:1041 fa:960 5:941 "
    "7b:892 4f8:883 7a:840 2:832 278:809 bf8:783 bc:761 280:761 63:751 b0:706 f9:699 d8:648 6f8:636 79:617 "
    "7f8:577 6a:559 1c:553 204:552 178:548 7c:534 fc:525 215:511 c0:506 a0:486 fd:466 a00:464 778:454 "
    "e80:437 ab8:433 50:427 378:424 214:417 6b:414 90:414 2e8:413 478:408 af8:406 268:399 2c0:397 800:397 "
    "30:389 2e0:377 62:373 678:373 330:369 1f0:368 220:366 2fc:365 24:358 21:355 480:352 b4:344 5f8:338 "
    "e1:336 eb:325 ad8:323 2f0:318 880:314 61:308 35:297 2fb:293 ef8:290 84:287 250:286 71:282 a90:282 "
    "38:278 270:275 338:272 31:272 404:270 c80:261 258:260 260:259 fd8:252 ff8:241 238:239 b78:237 e3:234 "
    "1fb:234 600:231 ebc:228 83:226 235:226 400:225 13:224 ea:223 100:223 e00:222 e24:221 18:218 e2:214 "
    "abc:213 460:213 15:213 fbc:211 201:210 34:209 2e3:208 680:207 a84:207 578:205"
)
BP4D_FALLBACK_TOTAL = 146_847
BP4D_FALLBACK_RESIDUAL_RATES = [0.361, 0.296, 0.328, 0.454, 0.574, 0.597, 0.562, 0.578, 0.347, 0.59, 0.344, 0.305]

# AUs outside BP4D: base rates per frame, set from DISFA's label rates where DISFA has the AU (AU9 .05, AU25 .30,
# AU26 .15 over its 3 folds) and from FACS co-occurrence knowledge otherwise (rare, posed-looking AUs kept rare).
OTHER_AU_RATES = {
    5: 0.08,
    9: 0.05,
    16: 0.08,
    18: 0.05,
    20: 0.08,
    22: 0.04,
    25: 0.25,
    26: 0.15,
    27: 0.03,
    28: 0.03,
    43: 0.05,
}
# Coupling rules (applied in this order):
#   AU9 (nose wrinkler) 0.15 when AU10 or AU4 is on;  AU25 (lips part) 0.45 when AU10 or AU12 is on;
#   AU26/AU27 (jaw drop / mouth stretch) exclude each other and bring AU25 with probability 0.9;
#   AU24 (lips pressed) and AU28 (lips sucked in) switch off AU25/26/27;  AU18, AU20, AU22 exclude each other;
#   AU43 (eyes closed) switches off AU5.
TRACE_PROB = 0.3  # an inactive AU is rendered at a sub-threshold trace intensity this often
TRACE_MAX = 0.25  # traces stay clearly below OCCURRENCE_THRESHOLD


def shared_data_candidates() -> list[Path]:
    repo = Path(__file__).resolve().parents[2]
    return [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]


def find_bp4d_lists() -> Path | None:
    env = os.environ.get("HIVA_BP4D_LISTS")
    cands = [Path(env)] if env else [p / "protocols" / "BP4D" for p in shared_data_candidates()]
    for c in cands:
        if (c / "BP4D_test_label_fold1.txt").is_file():
            return c
    return None


@lru_cache(maxsize=4)
def bp4d_combinations(lists: str | None = "auto") -> tuple[np.ndarray, np.ndarray, float, str]:
    """(masks, probabilities, residual probability, source) of the 12-AU BP4D label combinations."""
    folder = find_bp4d_lists() if lists == "auto" else (Path(lists) if lists else None)
    if folder is not None:
        import pandas as pd

        rows = [
            pd.read_csv(folder / f"BP4D_test_label_fold{k}.txt", sep=r"\s+", header=None).to_numpy()
            for k in (1, 2, 3)
            if (folder / f"BP4D_test_label_fold{k}.txt").is_file()
        ]
        labels = (np.concatenate(rows) == 1).astype(np.int64)
        masks, counts = np.unique((labels << np.arange(12)).sum(1), return_counts=True)
        return masks, counts / counts.sum(), 0.0, str(folder)
    pairs = [p.split(":") for p in BP4D_FALLBACK.split()]
    masks = np.array([int(m, 16) for m, _ in pairs])
    counts = np.array([int(c) for _, c in pairs], dtype=np.float64)
    return masks, counts / BP4D_FALLBACK_TOTAL, 1.0 - counts.sum() / BP4D_FALLBACK_TOTAL, "built-in fallback"


@dataclass
class Identity:
    identity: int
    weights: np.ndarray  # (IDENTITY_MODES,) identity PCA weights
    skin: tuple[float, float, float]  # sRGB albedo
    hair: tuple[float, float, float]  # brow / lash colour
    brow_strength: float
    iris: tuple[float, float, float]
    lip_tint: float


@dataclass
class SampleParams:
    index: int
    identity: Identity
    fold: int
    au: dict[int, float]  # AU code -> intensity in [0, 1] (every SYNTH_AUS code)
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
    ambient: np.ndarray
    specular: float
    background: dict = field(default_factory=dict)
    blur: float = 0.0  # Gaussian sigma in pixels at 256 px
    noise: float = 0.0  # Gaussian noise sigma in grey levels
    jpeg_quality: int = 95
    noise_seed: int = 0

    @property
    def labels(self) -> dict[int, int]:
        return {au: int(v >= OCCURRENCE_THRESHOLD) for au, v in self.au.items()}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def sample_identity(seed: int, identity: int, shifted: bool) -> Identity:
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, SPLIT_CODE["shifted" if shifted else "train"], IDENTITY_STREAM, identity])
    )
    scale = 1.6 if shifted else 1.0
    weights = rng.standard_normal(IDENTITY_MODES) * scale
    # Skin: interpolate between a deep and a light tone, with a small hue jitter.
    t = rng.uniform(0.0, 1.0)
    dark, light = np.array([0.36, 0.22, 0.15]), np.array([0.93, 0.76, 0.66])
    skin = np.clip(dark + t * (light - dark) + rng.normal(0, 0.025, 3), 0.05, 1.0)
    hair_choices = np.array(
        [[0.06, 0.05, 0.04], [0.18, 0.11, 0.07], [0.35, 0.23, 0.13], [0.55, 0.42, 0.27], [0.40, 0.18, 0.08]]
    )
    hair = hair_choices[rng.choice(len(hair_choices), p=[0.35, 0.3, 0.17, 0.1, 0.08])]
    iris_choices = np.array(
        [[0.22, 0.12, 0.06], [0.35, 0.22, 0.10], [0.25, 0.38, 0.52], [0.30, 0.40, 0.25], [0.45, 0.45, 0.42]]
    )
    iris = iris_choices[rng.choice(len(iris_choices), p=[0.45, 0.2, 0.15, 0.12, 0.08])] * rng.uniform(0.8, 1.2)
    return Identity(
        identity=identity,
        weights=weights.astype(np.float32),
        skin=tuple(skin),
        hair=tuple(hair),
        brow_strength=float(rng.uniform(0.55, 0.95)),
        iris=tuple(np.clip(iris, 0, 1)),
        lip_tint=float(rng.uniform(0.1, 0.3)),
    )


def sample_aus(rng: np.random.Generator) -> dict[int, float]:
    """Occurrence (BP4D-calibrated + rules) then intensities: active in [0.3, 1], sometimes a trace below 0.3."""
    masks, probs, residual, _ = bp4d_combinations()
    if rng.uniform() < residual:
        bits = rng.uniform(size=12) < np.array(BP4D_FALLBACK_RESIDUAL_RATES)
    else:
        mask = int(masks[rng.choice(len(masks), p=probs / probs.sum())])
        bits = [(mask >> i) & 1 == 1 for i in range(12)]
    on = {au for au, b in zip(BP4D_AUS, bits, strict=True) if b}
    rates = dict(OTHER_AU_RATES)
    if on & {4, 10}:
        rates[9] = 0.15
    if on & {10, 12}:
        rates[25] = 0.45
    u = {au: rng.uniform() for au in rates}  # one draw per AU, always, so rules never shift later draws
    on |= {au for au, r in rates.items() if u[au] < r}
    if 26 in on and 27 in on:
        on.discard(26 if u[26] < u[27] else 27)
    if on & {26, 27} and rng.uniform() < 0.9:
        on.add(25)
    if on & {24, 28}:
        on -= {25, 26, 27}
    for first, rest in ((18, (20, 22)), (20, (22,))):
        if first in on:
            on -= set(rest)
    if 43 in on:
        on.discard(5)
    active = rng.uniform(OCCURRENCE_THRESHOLD, 1.0, size=len(SYNTH_AUS))
    trace = np.where(rng.uniform(size=len(SYNTH_AUS)) < TRACE_PROB, rng.uniform(0.0, TRACE_MAX, len(SYNTH_AUS)), 0.0)
    return {au: float(active[i] if au in on else trace[i]) for i, au in enumerate(SYNTH_AUS)}


def sample_params(seed: int, index: int, shifted: bool = False) -> SampleParams:
    identity = index // SAMPLES_PER_IDENTITY
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODE["shifted" if shifted else "train"], index]))
    ident = sample_identity(seed, identity, shifted)
    au = sample_aus(rng)
    gx, gy = rng.normal(0, 0.15, 2)
    extra = {  # gaze (both eyes the same way) and a slight sideways jaw: nuisance shapes, no AU label
        ("eyeLookOut_L" if gx > 0 else "eyeLookIn_L"): abs(gx),
        ("eyeLookIn_R" if gx > 0 else "eyeLookOut_R"): abs(gx),
        ("eyeLookUp_L" if gy > 0 else "eyeLookDown_L"): abs(gy),
        ("eyeLookUp_R" if gy > 0 else "eyeLookDown_R"): abs(gy),
        ("jawLeft" if rng.uniform() < 0.5 else "jawRight"): rng.uniform(0, 0.1),
    }
    if shifted:
        yaw, pitch, roll = rng.uniform(-40, 40), rng.uniform(-25, 25), rng.normal(0, 8)
        key_dir = _unit([rng.choice([-1, 1]) * rng.uniform(0.6, 1.0), rng.uniform(-0.4, 0.8), rng.uniform(0.0, 0.5)])
        key_color = rng.uniform(0.5, 1.0, 3) * rng.uniform(1.3, 1.9)
        fill_color = rng.uniform(0.0, 0.4, 3) * rng.uniform(0.1, 0.3)
        ambient = np.full(3, rng.uniform(0.05, 0.15))
    else:
        yaw, pitch, roll = np.clip(rng.normal(0, 8), -25, 25), np.clip(rng.normal(0, 6), -18, 18), rng.normal(0, 3)
        key_dir = _unit([rng.uniform(-0.7, 0.7), rng.uniform(0.0, 0.8), rng.uniform(0.6, 1.0)])
        key_color = (1.0 - rng.uniform(0, 0.15, 3)) * rng.uniform(0.85, 1.2)
        fill_color = (1.0 - rng.uniform(0, 0.2, 3)) * rng.uniform(0.15, 0.4)
        ambient = np.full(3, rng.uniform(0.15, 0.3)) * (1.0 - rng.uniform(0, 0.1, 3))
    fill_dir = _unit([-key_dir[0] + rng.normal(0, 0.2), rng.uniform(-0.3, 0.3), rng.uniform(0.5, 1.0)])
    kind = rng.choice(["flat", "gradient", "noise"])
    background = {
        "kind": str(kind),
        "c1": rng.uniform(0.05, 0.95, 3).tolist(),
        "c2": rng.uniform(0.05, 0.95, 3).tolist(),
        "angle": float(rng.uniform(0, 2 * np.pi)),
        "cells": int(rng.integers(3, 9)),
    }
    return SampleParams(
        index=index,
        identity=ident,
        fold=identity % NUM_FOLDS + 1,
        au=au,
        extra=extra,
        yaw=float(yaw),
        pitch=float(pitch),
        roll=float(roll),
        cam_distance=float(rng.uniform(45, 140)),
        align_jitter=(
            float(rng.normal(1.0, 0.03)),
            float(rng.normal(0, 0.015)),
            float(rng.normal(0, 0.015)),
            float(rng.normal(0, 1.5)),
        ),
        key_dir=key_dir,
        key_color=key_color,
        fill_dir=fill_dir,
        fill_color=fill_color,
        ambient=ambient,
        specular=float(rng.uniform(0.05, 0.3)),
        background=background,
        blur=float(rng.choice([0.0, rng.uniform(0.3, 1.5)], p=[0.6, 0.4])),
        noise=float(rng.uniform(0.0, 5.0)),
        jpeg_quality=int(rng.integers(70, 97)),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )
