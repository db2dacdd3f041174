"""AU occurrence and intensity for SynthAU, calibrated on real BP4D labels.

The 12 BP4D AUs of a sample are one real BP4D frame's label row, drawn from the label lists when they are found (this
reproduces BP4D's marginals and every co-occurrence exactly), else from BP4D_FALLBACK (below). The other AUs follow
OTHER_AU_RATES and the documented coupling rules. Occurrence and intensity are separate draws (`sample_occurrence`,
`sample_intensities`), so the `intensity` factor never changes which AUs occur.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from hiva_core.synth.aumap import OCCURRENCE_THRESHOLD, SYNTH_AUS

BP4D_AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]

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
# The `intensity` factor: more subtle levels, as spontaneous data has them (most AUs at FACS A-C).
WIDE_TRACE_PROB = 0.35  # trace (A-level, 0.05-0.2, labelled 0) on inactive AUs
WIDE_TRACE_MAX = 0.2  # traces end a little further from the threshold than before, as the slight AUs start at it
WIDE_SUBTLE_PROB = 0.3  # an active AU at a slight (B-level) intensity in [0.3, 0.5]
ASYMMETRY_PROB = 0.2  # an active AU shows more on one side (gain 0.6-0.9 on the other)


FALLBACK_SOURCE = "built-in fallback"  # bp4d_combinations' source without the BP4D lists


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
    return masks, counts / BP4D_FALLBACK_TOTAL, 1.0 - counts.sum() / BP4D_FALLBACK_TOTAL, FALLBACK_SOURCE


def sample_occurrence(rng: np.random.Generator) -> set[int]:
    """The AUs that occur: a BP4D label row (or the fallback) for the 12 BP4D AUs, then the rates and rules."""
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
    on = _one_jaw(on, u)
    if on & {26, 27} and rng.uniform() < 0.9:
        on.add(25)
    return _physical(on)


def _one_jaw(on: set[int], u: dict[int, float]) -> set[int]:
    """AU26 (jaw drop) and AU27 (mouth stretch) exclude each other: the one drawn further below its rate stays."""
    if 26 in on and 27 in on:
        on.discard(26 if u[26] < u[27] else 27)
    return on


def _physical(on: set[int]) -> set[int]:
    """The exclusions a face imposes: AU24/AU28 switch off AU25/26/27; AU18, AU20, AU22 exclude each other (the
    first wins); AU43 switches off AU5."""
    if on & {24, 28}:
        on -= {25, 26, 27}
    for first, rest in ((18, (20, 22)), (20, (22,))):
        if first in on:
            on -= set(rest)
    if 43 in on:
        on.discard(5)
    return on


@lru_cache(maxsize=1)
def bp4d_marginals() -> np.ndarray:
    """The 12 BP4D AUs' occurrence rates (BP4D_AUS order) that `sample_occurrence` draws with."""
    masks, probs, residual, _ = bp4d_combinations()
    bits = np.array([[(int(m) >> i) & 1 for i in range(12)] for m in masks], dtype=np.float64)
    rows = (probs / probs.sum()) @ bits
    return (1 - residual) * rows + residual * np.array(BP4D_FALLBACK_RESIDUAL_RATES)


def sample_independent(rng: np.random.Generator) -> set[int]:
    """The AUs that occur, each on its own: the BP4D AUs at BP4D's rates and the others at OTHER_AU_RATES, with no
    co-occurrence (no label rows, no coupling), then only the rules that are physical: AU26/AU27 exclude each other,
    AU24 and AU28 switch off AU25/26/27, AU18/AU20/AU22 exclude each other, AU43 switches off AU5."""
    on = {au for au, rate in zip(BP4D_AUS, bp4d_marginals(), strict=True) if rng.uniform() < rate}
    u = {au: rng.uniform() for au in OTHER_AU_RATES}
    on |= {au for au, rate in OTHER_AU_RATES.items() if u[au] < rate}
    return _physical(_one_jaw(on, u))


def sample_intensities(on: set[int], rng: np.random.Generator, wide: bool = False) -> dict[int, float]:
    """Intensity of every SYNTH_AUS code: occurring AUs at [0.3, 1] (wide: often slight, 0.3-0.5), the others 0 or
    a sub-threshold trace."""
    n = len(SYNTH_AUS)
    if wide:
        subtle = rng.uniform(size=n) < WIDE_SUBTLE_PROB
        active = np.where(subtle, rng.uniform(OCCURRENCE_THRESHOLD, 0.5, n), rng.uniform(OCCURRENCE_THRESHOLD, 1.0, n))
        traced = rng.uniform(size=n) < WIDE_TRACE_PROB
        trace = np.where(traced, rng.uniform(0.05, WIDE_TRACE_MAX, n), 0.0)
    else:
        active = rng.uniform(OCCURRENCE_THRESHOLD, 1.0, size=n)
        trace = np.where(rng.uniform(size=n) < TRACE_PROB, rng.uniform(0.0, TRACE_MAX, n), 0.0)
    return {au: float(active[i] if au in on else trace[i]) for i, au in enumerate(SYNTH_AUS)}


def sample_sides(au: dict[int, float], rng: np.random.Generator) -> dict[int, tuple[float, float]]:
    """Left/right gains of the occurring AUs that show more on one side (the `intensity` factor)."""
    sides = {}
    for a in SYNTH_AUS:
        lopsided, gain, left = rng.uniform() < ASYMMETRY_PROB, rng.uniform(0.6, 0.9), rng.uniform() < 0.5
        if lopsided and au[a] >= OCCURRENCE_THRESHOLD:
            sides[a] = (gain, 1.0) if left else (1.0, gain)
    return sides


def sample_aus(rng: np.random.Generator, wide: bool = False) -> dict[int, float]:
    """Occurrence (BP4D-calibrated + rules) then intensities, from one generator."""
    return sample_intensities(sample_occurrence(rng), rng, wide)
