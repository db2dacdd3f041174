"""Posed expressions: the AUs of the basic emotions' prototypes and their major variants, as FACS codes them.

`hiva_core synth --labels posed` draws each face's AUs from this table instead of BP4D label rows: one of six
emotions or a neutral face, equally often, then one of that emotion's AU combinations. The table is EMFACS's (Ekman,
Friesen and Hager, *FACS Investigator's Guide*, 2002, the prototypes and major variants of surprise, fear,
happiness, sadness, disgust and anger), restricted to the AUs SynthAU renders (AU11, AU54 and AU64 of some variants
are left out; an intensity letter or a `25/26/27` choice becomes one combination each). Such a set differs from
BP4D-like training data the way faces posed to FACS-coded targets do: few AUs per face (a quarter of them none or
one), co-occurrence by emotion rather than by conversation, and AUs BP4D's rows rarely combine (AU5 with AU1+AU2,
AU20 with AU4).
"""

from __future__ import annotations

import numpy as np

EXPRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "neutral": ((),),
    "surprise": ((1, 2, 5, 26), (1, 2, 5, 27), (1, 2, 5), (1, 2, 26), (1, 2, 27), (5, 26), (5, 27)),
    "fear": ((1, 2, 4, 5, 20, 25), (1, 2, 4, 5, 20, 26), (1, 2, 4, 5, 25), (1, 2, 4, 5), (1, 2, 5, 25), (5, 20, 25)),
    "happiness": ((6, 12), (12,)),
    "sadness": ((1, 4, 15), (1, 4, 15, 17), (6, 15)),
    "disgust": ((9,), (9, 15, 16), (9, 17), (10,), (10, 16, 25), (10, 17)),
    "anger": (
        (4, 5, 7, 23),
        (4, 5, 7, 24),
        (4, 5, 7, 17, 23),
        (4, 5, 7, 17, 24),
        (4, 5, 7, 23, 25),
        (4, 5, 7, 10, 23, 25),
        (4, 5, 7, 10, 22, 23, 25),
    ),
}


def sample_expression(rng: np.random.Generator) -> tuple[str, set[int]]:
    """An expression name (uniform over EXPRESSIONS) and the AUs of one of its combinations (uniform)."""
    names = list(EXPRESSIONS)
    name = names[int(rng.integers(len(names)))]
    variants = EXPRESSIONS[name]
    return name, set(variants[int(rng.integers(len(variants)))])
