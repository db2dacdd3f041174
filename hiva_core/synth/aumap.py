"""The one table that turns Action Unit intensities into ICT-FaceKit blendshape weights.

Each AU drives ARKit-style ICT blendshapes (left and right together) with a coefficient: the blendshape weight is
    w[shape] = clip(sum_au intensity[au] * coef[au][shape], 0, 1)
with AU intensities in [0, 1]. The mapping follows DESIGN.md ("Blendshape -> AU"); entries marked approx. are the
closest ICT shapes to the FACS appearance changes, not exact muscle models.

Labels: an AU *occurs* (manifest column `AU12` = 1) when its intensity is >= OCCURRENCE_THRESHOLD (0.3, about FACS
intensity B, the usual BP4D/DISFA cut); the intensity itself is written as `AU12_int` (float in [0, 1]).
Sub-threshold traces (< 0.3) are rendered but labelled 0, so a model must learn intensity, not just shape presence.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

OCCURRENCE_THRESHOLD = 0.3


def _lr(shape: str, coef: float = 1.0) -> dict[str, float]:
    return {f"{shape}_L": coef, f"{shape}_R": coef}


AU_BLENDSHAPES: dict[int, dict[str, float]] = {
    1: _lr("browInnerUp"),  # inner brow raiser
    2: _lr("browOuterUp"),  # outer brow raiser
    4: _lr("browDown"),  # brow lowerer
    5: _lr("eyeWide"),  # upper lid raiser
    6: {**_lr("cheekRaiser"), **_lr("cheekSquint", 0.6)},  # cheek raiser (orbicularis oculi, orbital part)
    7: _lr("eyeSquint"),  # lid tightener
    9: _lr("noseSneer"),  # nose wrinkler
    10: {**_lr("mouthUpperUp"), "mouthShrugUpper": 0.3},  # upper lip raiser
    12: _lr("mouthSmile"),  # lip corner puller
    14: _lr("mouthDimple"),  # dimpler
    15: _lr("mouthFrown"),  # lip corner depressor
    16: _lr("mouthLowerDown"),  # lower lip depressor
    17: {"mouthShrugLower": 1.0},  # chin raiser
    18: {"mouthPucker": 1.0},  # lip pucker
    20: _lr("mouthStretch"),  # lip stretcher
    22: {"mouthFunnel": 1.0},  # lip funneler
    23: {**_lr("mouthPress", 0.5), "mouthPucker": 0.35},  # lip tightener (approx.)
    24: _lr("mouthPress"),  # lip pressor
    25: {"jawOpen": 0.15, **_lr("mouthLowerDown", 0.35)},  # lips part (small jaw drop + lower lip down)
    26: {"jawOpen": 0.45},  # jaw drop (medium)
    27: {"jawOpen": 1.0, **_lr("mouthStretch", 0.2)},  # mouth stretch (large jaw opening)
    28: {"mouthRollLower": 1.0, "mouthRollUpper": 1.0},  # lip suck
    43: _lr("eyeBlink"),  # eyes closed
}
SYNTH_AUS: list[int] = sorted(AU_BLENDSHAPES)


def blendshape_weights(
    intensities: Mapping[int, float],
    names: list[str],
    extra: Mapping[str, float] | None = None,
    sides: Mapping[int, tuple[float, float]] | None = None,
    gain: float = 1.0,
) -> np.ndarray:
    """AU intensities (+ optional non-AU nuisance shapes such as gaze) -> (len(names),) weights in [0, 1].

    `sides`: AU -> (left, right) gains for an AU that shows more on one side (its `_L` / `_R` shapes scaled; the label
    stays the intensity's); `gain`: a person's expressiveness, scaling every AU's shapes."""
    index = {n: i for i, n in enumerate(names)}
    w = np.zeros(len(names), dtype=np.float64)
    for au, value in intensities.items():
        left, right = (sides or {}).get(au, (1.0, 1.0))
        for shape, coef in AU_BLENDSHAPES[au].items():
            # a shape of the face's middle (no _L/_R) is as strong as the stronger side: a lopsided AU is weaker on
            # one side, never weaker as a whole (its label is its intensity's)
            side = left if shape.endswith("_L") else right if shape.endswith("_R") else max(left, right)
            w[index[shape]] += float(value) * coef * side * gain
    for shape, value in (extra or {}).items():
        w[index[shape]] += float(value)
    return np.clip(w, 0.0, 1.0).astype(np.float32)


def occurrence(intensity: float) -> int:
    return int(intensity >= OCCURRENCE_THRESHOLD)


def check_names(names: list[str]) -> None:
    """Every shape the table uses must exist in the face model (a clear error if an npz is from another model)."""
    from augtext.errors import UserError

    missing = sorted({s for m in AU_BLENDSHAPES.values() for s in m} - set(names))
    if missing:
        raise UserError(f"the face model lacks blendshapes {', '.join(missing)} that the AU table needs")
