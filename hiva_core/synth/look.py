"""A synthetic person's look beyond the mesh: skin tone and detail, creases, eyebrows, scalp hair and facial hair.

`Look` holds what the fragment shader (hiva_core.synth.shading) draws; one is drawn per identity, so the 8 samples of
a person share it. Each part comes from its factor's random stream (hiva_core.synth.factors) and has a narrow form
(the factor off: SynthAU's look before format 2) and a wide one (on).

Creases follow the AUs through CREASE_AUS: a crease's drive is 1 - prod(1 - coef * intensity) over its AUs, never
below the person's permanent lines (`Look.lines`, an age-like floor), times the person's crease depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# Crease channels (the shader's order) and the AUs that deepen them (FACS appearance changes).
CREASES = ("forehead_inner", "forehead_outer", "glabella", "crow", "nasolabial", "bunny", "chin")
CREASE_AUS: dict[str, dict[int, float]] = {
    "forehead_inner": {1: 1.0, 2: 0.3},  # AU1: horizontal lines, centre of the forehead
    "forehead_outer": {2: 1.0, 1: 0.3},  # AU2: lines towards the sides
    "glabella": {4: 1.0, 9: 0.3},  # AU4: vertical furrows between the brows
    "crow": {6: 1.0, 7: 0.25, 12: 0.2},  # AU6: crow's feet at the outer eye corners
    "nasolabial": {6: 0.5, 9: 0.7, 10: 0.9, 12: 0.9, 14: 0.3},  # the fold from the nose wing past the mouth corner
    "bunny": {9: 1.0, 4: 0.15},  # AU9: wrinkles across the nose bridge
    "chin": {17: 1.0},  # AU17: dimpled ("orange peel") chin
}
LINES_SHARE = np.array([0.5, 0.5, 0.3, 0.45, 0.7, 0.0, 0.0])  # how much each channel shows as a permanent line

HAIR_COLOURS = np.array(  # sRGB: black, dark brown, brown, light brown, blond, red, grey, white
    [
        [0.05, 0.04, 0.035],
        [0.14, 0.09, 0.06],
        [0.28, 0.18, 0.10],
        [0.45, 0.33, 0.20],
        [0.72, 0.58, 0.36],
        [0.50, 0.22, 0.09],
        [0.52, 0.50, 0.48],
        [0.82, 0.80, 0.77],
    ]
)
HAIR_P = np.array([0.3, 0.22, 0.15, 0.1, 0.08, 0.05, 0.07, 0.03])
BEARD_STYLES = {  # weights of the shader's beard regions: moustache, chin, jaw and cheeks, neck
    "stubble": (1.0, 1.0, 1.0, 0.6),
    "moustache": (1.0, 0.0, 0.0, 0.0),
    "goatee": (1.0, 1.0, 0.0, 0.0),
    "chinstrap": (0.0, 1.0, 1.0, 0.3),
    "full": (1.0, 1.0, 1.0, 0.8),
}


@dataclass(frozen=True)
class Look:
    """Per-person appearance drawn by the shader; the defaults draw nothing beyond a brow band (all factors off)."""

    seed: tuple[float, float, float] = (0.0, 0.0, 0.0)  # offset into the procedural noise (a person's own pattern)
    blotch: float = 0.0  # low-frequency albedo variation (fraction)
    redness: float = 0.0  # reddish patches (fraction)
    freckles: float = 0.0  # freckle contrast
    pores: float = 0.0  # pore bump amplitude (cm)
    crease_depth: float = 0.0  # groove depth at full drive (cm); 0 = no creases
    lines: float = 0.0  # permanent lines as a floor on the crease drives (0..1)
    forehead_spacing: float = 0.8  # cm between forehead lines
    brow_rgb: tuple[float, float, float] = (0.1, 0.07, 0.05)
    brow_alpha: float = 0.75  # opacity of the brow over the skin
    brow_width: float = 0.4  # half thickness (cm) at the inner end
    brow_offset: float = 0.1  # centre above the landmark brow line (cm)
    brow_arch: float = 0.0  # extra lift at the middle (cm)
    brow_taper: float = 0.0  # thinning towards the tail (fraction of the width)
    brow_tail: float = 1.0  # where the brow ends along the landmark brow (1 = the last landmark)
    brow_sparse: float = 0.0  # strand texture: 0 = solid, 1 = sparse hairs
    hair_rgb: tuple[float, float, float] = (0.1, 0.07, 0.05)
    hair_amount: float = 0.0  # 0 = bald
    hairline: tuple[float, float, float] = (11.5, 9.0, -2.0)  # hairline height (cm) at the front, temples, back
    beard: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # moustache, chin, jaw, neck weights
    beard_density: float = 0.0
    beard_rgb: tuple[float, float, float] = (0.1, 0.07, 0.05)


def skin_look(rng: np.random.Generator, wide: bool) -> dict:
    """Skin tone (sRGB), iris colour, lip tint and, when wide, albedo detail and pores."""
    if wide:
        t = rng.uniform()  # lightness; then an undertone from pink (-1) to olive/yellow (+1)
        dark, light = np.array([0.30, 0.19, 0.13]), np.array([0.96, 0.80, 0.72])
        under = rng.uniform(-1.0, 1.0)
        tone = np.array([-0.02, 0.015, -0.05]) if under > 0 else np.array([0.03, -0.02, 0.0])
        skin = dark + t * (light - dark) + abs(under) * tone * (0.4 + t) + rng.normal(0, 0.02, 3)
        skin[1] = min(skin[1], 0.95 * skin[0])  # skin is never greener than red, nor bluer than green
        skin[2] = min(skin[2], 0.98 * skin[1])
        skin = np.clip(skin, 0.05, 1.0)
    else:
        t = rng.uniform(0.0, 1.0)
        dark, light = np.array([0.36, 0.22, 0.15]), np.array([0.93, 0.76, 0.66])
        skin = np.clip(dark + t * (light - dark) + rng.normal(0, 0.025, 3), 0.05, 1.0)
    iris_choices = np.array(
        [[0.22, 0.12, 0.06], [0.35, 0.22, 0.10], [0.25, 0.38, 0.52], [0.30, 0.40, 0.25], [0.45, 0.45, 0.42]]
    )
    iris = iris_choices[rng.choice(len(iris_choices), p=[0.45, 0.2, 0.15, 0.12, 0.08])] * rng.uniform(0.8, 1.2)
    out = {
        "skin": tuple(float(x) for x in skin),
        "iris": tuple(float(x) for x in np.clip(iris, 0, 1)),
        "lip_tint": float(rng.uniform(0.05, 0.45) if wide else rng.uniform(0.1, 0.3)),
        "seed": tuple(float(x) for x in rng.uniform(0, 100, 3)),
    }
    if wide:
        out.update(
            blotch=float(rng.uniform(0.02, 0.12)),
            redness=float(rng.uniform(0.0, 0.35)),
            freckles=float(rng.uniform(0.3, 1.0) if rng.uniform() < 0.2 else 0.0),
            pores=float(rng.uniform(0.002, 0.008)),
        )
    return out


SMOOTH_SHARE = 0.4  # people whose skin shows no creases at all (AU-driven or permanent): the AU is its geometry


def crease_look(rng: np.random.Generator, wide: bool) -> dict:
    """Creases of a person. A share of people (SMOOTH_SHARE) have none, as young or smooth skin and face models
    without wrinkle maps show none: a model must then see the AU in the shape of the face, not only in its lines.
    The smooth draw comes last in the stream, so every creased person's creases are as before."""
    if not wide:
        return {}
    age = rng.uniform() ** 1.5  # most people young-ish: few permanent lines
    depth, spacing = rng.uniform(0.6, 1.4) * (0.05 + 0.03 * age), rng.uniform(0.6, 1.0)
    smooth = rng.uniform() < SMOOTH_SHARE
    return {
        "crease_depth": 0.0 if smooth else float(depth),
        "lines": 0.0 if smooth else float(0.35 * age),
        "forehead_spacing": float(spacing),
    }


def hair_look(rng: np.random.Generator, wide: bool) -> dict:
    """Brow and scalp hair. Narrow: SynthAU's old brow band (colour mixed towards the skin), bald."""
    if not wide:
        choices = np.array(
            [[0.06, 0.05, 0.04], [0.18, 0.11, 0.07], [0.35, 0.23, 0.13], [0.55, 0.42, 0.27], [0.40, 0.18, 0.08]]
        )
        hair = choices[rng.choice(len(choices), p=[0.35, 0.3, 0.17, 0.1, 0.08])]
        return {"brow_rgb": tuple(float(x) for x in hair), "brow_alpha": float(rng.uniform(0.55, 0.95))}
    hair = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_P)] * rng.uniform(0.85, 1.15)
    hair = np.clip(hair, 0.0, 1.0)
    # Brows are usually the hair's colour, darker for fair hair; sometimes a different shade.
    brow = hair * rng.uniform(0.55, 1.0) if rng.uniform() < 0.8 else HAIR_COLOURS[rng.choice(4)]
    bald = rng.uniform() < 0.12
    front = rng.uniform(10.0, 12.5) + (rng.uniform(1.0, 3.0) if rng.uniform() < 0.2 else 0.0)  # a receding line
    return {
        "brow_rgb": tuple(float(x) for x in brow),
        "brow_alpha": float(rng.uniform(0.45, 1.0)),
        "brow_width": float(rng.uniform(0.15, 0.5)),
        "brow_offset": float(rng.uniform(-0.25, 0.35)),
        "brow_arch": float(rng.uniform(-0.1, 0.4)),
        "brow_taper": float(rng.uniform(0.0, 0.7)),
        "brow_tail": float(rng.uniform(0.75, 1.1)),
        "brow_sparse": float(rng.uniform(0.1, 0.9)),
        "hair_rgb": tuple(float(x) for x in hair),
        "hair_amount": 0.0 if bald else float(rng.uniform(0.75, 1.0)),
        "hairline": (float(front), float(front - rng.uniform(1.0, 3.5)), float(rng.uniform(-5.0, 1.0))),
    }


def beard_look(rng: np.random.Generator, wide: bool, hair_rgb) -> dict:
    """Facial hair (an occluder of the lower face): 25% of people when wide; none when narrow."""
    if not wide:
        return {}
    style = rng.choice(list(BEARD_STYLES), p=[0.35, 0.15, 0.15, 0.1, 0.25])
    has = rng.uniform() < 0.25
    density = rng.uniform(0.3, 0.6) if style == "stubble" else rng.uniform(0.6, 1.0)
    rgb = np.clip(np.asarray(hair_rgb) * rng.uniform(0.7, 1.1), 0, 1)
    return {
        "beard": BEARD_STYLES[str(style)] if has else (0.0, 0.0, 0.0, 0.0),
        "beard_density": float(density) if has else 0.0,
        "beard_rgb": tuple(float(x) for x in rgb),
    }


def crease_drive(au: Mapping[int, float], look: Look) -> np.ndarray:
    """(len(CREASES),) drive in [0, 1] of every crease channel for these AU intensities."""
    drive = np.array(
        [1.0 - np.prod([1.0 - c * float(au.get(a, 0.0)) for a, c in CREASE_AUS[name].items()]) for name in CREASES]
    )
    return np.maximum(drive, look.lines * LINES_SHARE)
