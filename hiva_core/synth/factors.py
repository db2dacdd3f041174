"""The factors of variation of SynthAU, by name, each switchable (`hiva_core synth --factors SPEC`).

A factor that is on draws from its wide distribution; a factor that is off draws from the narrow one SynthAU had before
(format 1: one identity space of 40 modes, a flat albedo, one brow band, no hair, no occluders, a white key and fill
light, yaw about N(0, 8 deg), uniform intensities, mild blur and noise). `--factors none` therefore renders the old
narrow distribution (the same ranges, not the same images: the draws changed with format 2).

Every factor draws from its own random stream (`factor_rng`), so switching one factor off changes that factor only:
the other factors of every sample stay as they were, and a leave-one-factor-out comparison is paired.

SPEC: `all` (the default), `none`, a list of names (`pose,lighting`: only these), or `all` minus names
(`-occluders,-pose` or `all,-occluders`); `none,+pose` also works.
"""

from __future__ import annotations

import numpy as np

from augtext.errors import UserError

FACTORS: dict[str, str] = {
    "identity": "the full ICT identity space (100 modes) with heavier tails; off: 40 modes, N(0, 1)",
    "skin": "skin tones incl. olive and pale, albedo detail (blotches, redness, freckles), pores, shine; "
    "off: one flat albedo",
    "creases": "wrinkles driven by the AUs: forehead lines (AU1, AU2), brow furrow (AU4), crow's feet (AU6), "
    "nasolabial folds (AU6/9/10/12), nose wrinkles (AU9), chin dimpling (AU17), plus faint permanent lines, on 60% of "
    "people (40% smooth: the AU only in the face's shape); off: none",
    "hair": "eyebrow shape, thickness, position, colour and density; scalp hair and hairline; off: one brow band, bald",
    "occluders": "facial hair, glasses (some dark), a hand, a face mask; AU labels unchanged; off: none",
    "lighting": "1-4 lights, coloured, rim light, hemisphere ambient; off: a white key and a fill light",
    "camera": "field of view (camera at 25-250 cm) and wider framing jitter; off: 45-140 cm",
    "intensity": "more subtle (B) and trace (A) AU levels, left/right asymmetry, per-person expressiveness; "
    "off: intensities uniform in [0.3, 1]",
    "pose": "yaw up to ±45°, pitch ±30°, roll ±20°; off: yaw N(0, 8°) within ±25°, pitch N(0, 6°), roll N(0, 3°)",
    "degradations": "motion blur, defocus, low resolution, noise, JPEG 40-95, colour cast and gamma; "
    "off: mild blur, noise and JPEG 70-96",
}
ALL: tuple[str, ...] = tuple(FACTORS)
STREAM = {name: 101 + i for i, name in enumerate(FACTORS)}  # random-stream codes (never reorder: they seed draws)
STREAM["background"] = 100  # not a factor: the background's noise, apart from every factor (format 4)
STREAM["labels"] = 99  # not a factor: the AUs of `synth --labels independent|posed` (hiva_core.synth.sampling)
STREAM["label_kind"] = 98  # not a factor: which kind of AUs a face of a mixed `--labels` set gets
STREAM["neutral"] = 97  # not a factor: the neutral frame of `synth --neutral` (its head's drift, its own alignment)


def parse_factors(spec: str | None = "all") -> tuple[str, ...]:
    """A factor SPEC -> the factors that are on, in FACTORS order (UserError naming an unknown one)."""
    if spec is None:
        return ALL
    items = [s.strip().lower() for s in str(spec).split(",") if s.strip()]
    if not items:
        raise UserError(f"--factors is empty; give all, none, or names from: {', '.join(FACTORS)}")
    on: set[str] = set(ALL) if items[0].startswith("-") else set()
    for item in items:
        name = item.lstrip("+-")
        if name in ("all", "none") and item == name:
            on = set(ALL) if name == "all" else set()
            continue
        if name not in FACTORS:
            raise UserError(
                f"unknown SynthAU factor '{name}' in --factors {spec!r}; valid: all, none, {', '.join(FACTORS)}"
            )
        if item.startswith("-"):
            on.discard(name)
        else:
            on.add(name)
    return tuple(f for f in FACTORS if f in on)


def factors_label(factors: tuple[str, ...]) -> str:
    """The shortest SPEC for a factor set: all, none, all,-x,-y or x,y."""
    if set(factors) == set(ALL):
        return "all"
    if not factors:
        return "none"
    off = [f for f in ALL if f not in factors]
    return "all," + ",".join(f"-{f}" for f in off) if len(off) < len(factors) else ",".join(factors)


def factor_rng(seed: int, split: int, factor: str, *key: int) -> np.random.Generator:
    """The random stream of one factor for one sample (key: its index) or one identity (key: a stream code and the
    identity number)."""
    return np.random.default_rng(np.random.SeedSequence([seed, split, *key, STREAM[factor]]))
