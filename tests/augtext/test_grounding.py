from __future__ import annotations

import random
import re

import numpy as np
import pytest

from augtext.grounding import GEOMETRY, describe, ground
from augtext.reference import REFERENCE_AUS, reference_texts

# The measure(s) each AU moves and the direction, from FACS: any one of them may be the main one.
EXPECTED: dict[int, list[tuple[str, int]]] = {
    1: [("inner_brow_height", 1)],
    2: [("outer_brow_height", 1)],
    4: [("brow_gap", -1), ("inner_brow_height", -1)],
    5: [("eye_opening", 1)],
    6: [("eye_opening", -1)],
    7: [("eye_opening", -1)],
    # AU8 draws the lips toward each other while the jaw is lowered (it is coded with AU25/26): its descriptions say so
    8: [("lip_thickness", -1), ("lip_opening", -1), ("jaw_drop", 1)],
    9: [("nose_lip_distance", -1)],
    10: [("nose_lip_distance", -1)],
    11: [("nose_lip_distance", -1)],
    12: [("corner_height", 1)],
    13: [("corner_height", 1)],
    14: [("mouth_width", 1), ("lip_thickness", -1)],
    15: [("corner_height", -1)],
    16: [("lip_opening", 1)],
    17: [("chin_lip_distance", -1)],
    18: [("mouth_width", -1)],
    19: [("lip_opening", 1)],  # the tongue shows between the lips
    20: [("mouth_width", 1)],
    22: [("mouth_width", -1), ("lip_opening", 1)],
    23: [("lip_thickness", -1)],
    24: [("lip_thickness", -1)],
    25: [("lip_opening", 1)],
    26: [("jaw_drop", 1)],
    27: [("jaw_drop", 1)],
    28: [("lip_thickness", -1)],
    31: [("jaw_drop", -1)],  # the teeth clenched
    32: [("lip_thickness", -1)],  # the bitten lip partly hidden
    35: [("mouth_width", -1), ("lip_thickness", -1)],  # the cheeks sucked in narrow the mouth
    41: [("eye_opening", -1)],
    42: [("eye_opening", -1)],
    43: [("eye_opening", -1)],
    44: [("eye_opening", -1)],
    45: [("eye_opening", -1)],
    46: [("eye_opening", -1)],
}
# AU21, the neck tightener, moves no measure of the face's landmarks (the neck is not in them): what its descriptions
# ground to is their companions' (lips pressed in effort, stretched in fear), so it is not held to one here. Nor are
# the jaw pushed forward or to one side (AU29, AU30), the cheeks filled with air or pushed by the tongue (AU33, AU34,
# AU36), the tongue wiping the lips (AU37) or the nostrils (AU38, AU39).
UNSEEN = {21, 29, 30, 33, 34, 36, 37, 38, 39}
GROUNDED = tuple(au for au in REFERENCE_AUS if au in EXPECTED)
# Paraphrases in the style an LLM writes, not taken from the reference set.
PARAPHRASES: dict[int, list[str]] = {
    1: [
        "The inner corners of the eyebrows lift, giving the brows a worried, slanted appearance.",
        "Only the medial portion of each brow is raised, so the eyebrows tilt upward toward the nose.",
        "The central part of the forehead wrinkles as the inner brows are pulled upward.",
        "The eyebrows rise at their inner ends, creating a sad, pleading look.",
    ],
    4: [
        "The eyebrows are pulled down and drawn together, forming vertical wrinkles between them.",
        "The brows lower and knit, creating a furrowed, angry look.",
        "Vertical creases appear between the eyebrows as the brows come closer together.",
        "The brows move downward and inward, so the face looks stern.",
    ],
    5: [
        "The upper eyelids are raised, widening the eyes and exposing more of the white above the iris.",
        "The eyes open wide, with the upper lids pulled up as in surprise.",
        "The upper eyelid retracts, giving a wide-eyed, staring look.",
    ],
    6: [
        "The cheeks are lifted, causing crow's feet to form at the outer corners of the eyes.",
        "The cheeks rise and push the lower eyelids upward, narrowing the eyes.",
        "Raised cheeks bunch the skin below the eyes, making the eyes look smiling.",
    ],
    9: [
        "The nose wrinkles, with creases forming along its bridge and sides.",
        "The nostrils are pulled upward and the nose scrunches up, as if smelling something unpleasant.",
        "The skin of the nose crinkles and the upper lip is drawn up slightly.",
    ],
    12: [
        "The corners of the mouth are pulled up and back, forming a smile.",
        "The lip corners rise toward the cheekbones in a smiling expression.",
        "The mouth widens as the lip corners are drawn upward and outward.",
        "A smile forms as both corners of the lips turn up.",
    ],
    15: [
        "The corners of the mouth are pulled downward, creating a frown.",
        "The lip corners turn down, giving the mouth a sad, downturned shape.",
        "The mouth corners drop, and the lips form an upside-down U.",
    ],
    17: [
        "The chin is pushed upward, wrinkling the skin of the chin and pushing the lower lip up.",
        "The chin boss rises and the chin takes on a dimpled, orange-peel texture.",
        "The lower lip is pushed up by the chin, creating a pout.",
    ],
    18: [
        "The lips are puckered and pushed forward, as if about to kiss.",
        "The mouth narrows as the lips purse together into a rounded shape.",
        "The lips protrude and the lip corners are drawn toward the center of the mouth.",
    ],
    20: [
        "The lips are stretched horizontally, pulling the lip corners toward the ears.",
        "The mouth corners are pulled sideways, flattening and elongating the lips.",
        "The lips stretch wide to the sides in a tense, fearful grimace.",
    ],
    22: [
        "The lips funnel outward, forming a rounded 'O' shape as if saying 'oo'.",
        "The lips are pushed out and flared, with the mouth slightly open.",
        "The lips protrude and turn outward, parting around a round opening.",
    ],
    23: [
        "The lips tighten and become thinner, with the red parts narrowing.",
        "The lips are tensed and narrowed, giving the mouth a hard, thin line.",
        "The mouth looks tight as the lips firm up and thin out.",
    ],
    25: [
        "The lips part slightly, leaving a small gap between them.",
        "The lips separate and the mouth opens a little.",
        "The lips come apart, showing the teeth between them.",
    ],
    26: [
        "The jaw falls open, the lips separating widely.",
        "The jaw drops, leaving the mouth hanging open.",
        "The lower jaw lowers and the chin moves down, opening a gap between the teeth.",
        "The mouth falls open as the jaw relaxes downward.",
    ],
    27: [
        "The mouth is stretched wide open, with the jaw pulled far down.",
        "The jaw is pulled down as far as it goes and the mouth gapes, as in a scream.",
        "The mouth opens to its maximum, the lips stretched taut around a huge opening, like a yawn.",
    ],
    28: [
        "The lips are sucked into the mouth, so that the red parts disappear.",
        "Both lips are rolled inward over the teeth.",
        "The lips are pulled in between the teeth and vanish from view.",
    ],
    43: [
        "The eyes are closed, with the upper eyelids lowered completely.",
        "The eyelids shut and stay closed.",
        "The upper lids droop down until the eyes are fully closed.",
    ],
}


def _w(weights: np.ndarray, measure: str) -> float:
    return float(weights[GEOMETRY.index(measure)])


def _main_is(weights: np.ndarray, expected: list[tuple[str, int]]) -> bool:
    """The strongest measure is one of `expected`, in its direction."""
    i = int(np.argmax(np.abs(weights)))
    return weights[i] != 0 and (GEOMETRY[i], int(np.sign(weights[i]))) in expected


def _supports(weights: np.ndarray, expected: list[tuple[str, int]]) -> bool:
    """One of `expected` is clearly there (at least half the strongest), and none points the other way."""
    peak = np.abs(weights).max()
    clear = any(s * _w(weights, m) >= 0.5 * peak > 0 for m, s in expected)
    return clear and not any(s * _w(weights, m) < 0 for m, s in expected)


def test_every_reference_au_but_those_no_measure_sees_has_its_measure() -> None:
    assert set(REFERENCE_AUS) - set(GROUNDED) == UNSEEN


@pytest.mark.parametrize("au", sorted(UNSEEN - {21}))
def test_what_no_measure_sees_grounds_nothing_of_its_own(au: int) -> None:
    """The jaw thrust is not a jaw drop or a chin raise, air-filled cheeks are not raised cheeks narrowing the eyes;
    the cheek blow and puff ground only the closed lips they are made with."""
    weights = ground(reference_texts(au))
    if au in (33, 34):
        assert describe(weights) == "lip_opening -1.00"
    else:
        assert not weights.any(), describe(weights)


def test_the_neck_grounds_nothing() -> None:
    """AU21's descriptions name the neck, which no measure sees; the companions a few of them mention ("in terror the
    lips part") are no reading of it: the cosine head scores it."""
    assert not ground(reference_texts(21)).any()
    neck = ground(["In terror the lips part and the neck tightens, the skin of the neck pulled taut into cords."])
    assert _w(neck, "lip_opening") > 0 and _w(neck, "lip_thickness") == 0  # "taut" is the neck's, not the lips'


def test_lips_toward_each_other_close_the_opening() -> None:
    """AU8 draws the lips toward each other over a lowered jaw: the opening between the lips gets smaller."""
    assert _w(ground(reference_texts(8)), "lip_opening") < 0
    for text in (
        "The lips move toward each other while the jaw stays lowered, so the mouth opening gets smaller.",
        "Contraction of the orbicularis oris with the mandible held down narrows the gap between the lips.",
        "The fibres shorten, shrinking the mouth opening while the teeth remain separated.",
    ):
        assert _w(ground([text]), "lip_opening") < 0, text
    assert _w(ground(["The lips part slightly, leaving a small gap between them."]), "lip_opening") > 0


@pytest.mark.parametrize("au", GROUNDED)
def test_reference_descriptions_ground_to_the_aus_measure(au: int) -> None:
    weights = ground(reference_texts(au))
    assert _main_is(weights, EXPECTED[au]), f"AU{au}: {describe(weights)}"


def test_reference_descriptions_name_companion_measures() -> None:
    assert _w(ground(reference_texts(12)), "mouth_width") > 0  # a smile also widens the mouth
    assert _w(ground(reference_texts(27)), "lip_opening") > 0  # a stretched mouth parts the lips


def test_shuffled_descriptions_mostly_miss() -> None:
    """The control: each AU grounded with another AU's descriptions. Only AUs that share a measure (AU23 and AU24,
    AU16 and AU25, ...) can still hit, so the test above could fail."""
    grounded = {au: ground(reference_texts(au)) for au in GROUNDED}
    rng, aus, hits = random.Random(0), list(GROUNDED), []
    for _ in range(200):
        other = aus[:]
        while any(a == b for a, b in zip(aus, other, strict=True)):
            rng.shuffle(other)
        hits.append(sum(_main_is(grounded[b], EXPECTED[a]) for a, b in zip(aus, other, strict=True)))
    assert np.mean(hits) < 0.15 * len(aus) and max(hits) < len(aus) // 2


@pytest.mark.parametrize("au", sorted(PARAPHRASES))
def test_paraphrases_ground_to_the_aus_measure(au: int) -> None:
    weights = ground(PARAPHRASES[au])
    assert _supports(weights, EXPECTED[au]), f"AU{au}: {describe(weights)}"


def test_negated_and_contrasting_clauses_do_not_count() -> None:
    weights = ground(["The brows are not raised; they are drawn together."])
    assert _w(weights, "brow_gap") < 0 and _w(weights, "inner_brow_height") <= 0
    weights = ground(["Unlike AU12 the corners do not rise, they are pulled down."])
    assert _w(weights, "corner_height") < 0
    weights = ground(["The lip corners rise, unlike AU15, which pulls them down."])
    assert _w(weights, "corner_height") > 0
    assert _w(ground(["The lips part without raising the brows."]), "inner_brow_height") == 0


def test_lower_before_a_part_is_a_position() -> None:
    assert describe(ground(["The lower lip is pulled down."])) == "lip_opening +1.00"
    assert describe(ground(["The lower lids tighten."])) == "eye_opening -1.00"
    assert describe(ground(["The brows are lowered."]), top=2) == "inner_brow_height -0.50, outer_brow_height -0.50"
    assert describe(ground(["The lower teeth show beneath the chin."])) == "lip_opening +1.00"  # the chin: not lowered


def test_parts_that_stay_do_not_move() -> None:
    weights = ground(["The brows rise while the lip corners stay down."])
    assert _w(weights, "inner_brow_height") > 0 and _w(weights, "corner_height") == 0
    assert _w(ground(["The eyelids close and stay closed."]), "eye_opening") < 0


@pytest.mark.parametrize("texts", [[], [""], ["asdf"], ["The face."], ["   ", "AU12"], ["The lips."]])
def test_nothing_matched_gives_zeros(texts: list[str]) -> None:
    weights = ground(texts)
    assert weights.shape == (len(GEOMETRY),) and weights.dtype == np.float64 and not weights.any()
    assert describe(weights) == "nothing"


def test_weights_are_normalised_in_geometry_order() -> None:
    assert GEOMETRY[:3] == ("inner_brow_height", "outer_brow_height", "brow_gap")
    assert GEOMETRY[-1] == "chin_lip_distance" and len(GEOMETRY) == 11
    for au in (4, 22, 27):
        weights = ground(reference_texts(au))
        assert weights.shape == (len(GEOMETRY),) and weights.dtype == np.float64
        assert np.abs(weights).sum() == pytest.approx(1.0)
    weights = ground(["The jaw drops and the lips part."])
    assert describe(weights) == "lip_opening +0.50, jaw_drop +0.50"  # ties in GEOMETRY order


def test_stray_mentions_are_dropped() -> None:
    texts = ["The lips part."] * 4 + ["The lips part while the brows rise."]
    assert describe(ground(texts)) == "lip_opening +1.00"  # the brows: 1/5 of the lips' votes, under a quarter


def test_result_does_not_depend_on_order() -> None:
    texts = list(reference_texts(12)) + PARAPHRASES[12]
    shuffled = texts[:]
    random.Random(1).shuffle(shuffled)
    assert np.array_equal(ground(texts), ground(shuffled))
    assert np.array_equal(ground(texts), ground(tuple(reversed(texts))))


def test_never_reads_the_au_code() -> None:
    texts = reference_texts(1)
    renamed = [re.sub(r"\bAU\d+", "AU99", t) for t in texts]
    assert any(a != b for a, b in zip(texts, renamed, strict=True))
    assert np.array_equal(ground(texts), ground(renamed))


def test_describe() -> None:
    weights = np.zeros(len(GEOMETRY))
    weights[GEOMETRY.index("lip_opening")], weights[GEOMETRY.index("jaw_drop")] = 0.55, 0.45
    assert describe(weights) == "lip_opening +0.55, jaw_drop +0.45"
    assert describe(weights, top=1) == "lip_opening +0.55"


@pytest.mark.parametrize("bad", [[1, "The lips part."], [None], "The lips part."])
def test_non_strings_are_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        ground(bad)  # type: ignore[arg-type]


def test_the_neck_and_the_skin_under_the_jaw_are_not_the_jaw() -> None:
    """The neck tightener's "skin under the jaw is pulled down" was read as the jaw dropping."""
    assert _w(ground(["The skin under the jaw is pulled down and the neck looks strained."]), "jaw_drop") == 0
    assert _w(ground(["Vertical cords stand out below the chin, down toward the collarbones."]), "jaw_drop") == 0
    assert _w(ground(["The jaw drops and the mouth hangs open."]), "jaw_drop") > 0
