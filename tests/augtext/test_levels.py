from __future__ import annotations

import pytest

from augtext.facs import FACS
from augtext.levels import LEVELS, contradicts_level, stated_levels
from augtext.validate import validate_description


@pytest.mark.parametrize(
    "text, levels",
    [
        ("At level B (slight) of AU4, the brows are drawn a little down.", {"B"}),
        ("D (severe) - the nose wrinkles hard.", {"D"}),
        ("E: the lips are pressed together hard.", {"E"}),
        ("Scored at C, the upper lip is clearly raised.", {"C"}),
        ("The lips are pressed together, which FACS scores as an A.", {"A"}),
        ("A severe, D-level action pulls the corners down.", {"D"}),
        ("At trace intensity the corners lift a hair.", {"A"}),
        ("At the maximum level the jaw hangs wide open.", {"E"}),
        ("From a faint trace at A to deep furrows at E, the brows knit.", {"A", "E"}),
        ("The nose wrinkler at A raises the upper lip.", {"A"}),
        ("At its maximum the jaw hangs open.", {"E"}),
        # the article "a" and a capital at a sentence's start are no levels
        ("A faint tug lifts the lip corners a little.", set()),
        ("A level, calm brow line sits above the eyes.", set()),
        ("The lip corners are pulled up at a slant.", set()),
    ],
)
def test_the_level_a_text_states(text, levels):
    assert stated_levels(text) == levels


@pytest.mark.parametrize(
    "text",
    [
        "At level A (trace), the lip corners are pulled up and back as far as possible, deepening the folds a lot.",
        "Level E (maximum): the lip corners barely lift, a trace of movement hardly visible.",
        "Level B: the brows are lowered to their maximum, deep vertical furrows between them.",
        "Level A, the strongest intensity, pulls the inner brows fully up.",
        "At E, the weakest level, the inner brows lift slightly.",
        "The lips are pressed together with maximal force, which FACS scores as an A.",
        "At trace intensity the cheeks are pushed up as high as they can go, with very deep crow's feet.",
        "D (severe) - the nose wrinkles only a little, a faint line on its bridge.",
        # the level's own name beside its letter is no degree: "a slight, B-level ...", "a severe, D-level ..."
        "A slight, B-level raise pulls the lip corners up as far as they go.",
        "The corners rise a little, barely noticeable: a severe, D-level smile.",
        "At its maximum, the smile lifts the corners so faintly that the change is hardly visible.",
        # the scale itself misstated: a letter with another level's name (SmolLM2 wrote the first)
        "At level B (marked), the eyebrows are drawn down and the eye opening narrows from above.",
        "B (marked): the lip corners rise.",
        "A severe, B-level raise lifts the corners.",
        # a marked level (C) with only the faintest degree
        "At level C (marked), the lip corners rise by only a trace, so slight that it is barely visible.",
        "Level C: the corners lift, a change a coder can barely detect.",
    ],
)
def test_a_level_contradicted_by_the_degree_described(text):
    assert contradicts_level(text)
    assert validate_description(text, FACS[12]) in {"wrong_level", "wrong_direction", "off_topic", "no_change"}


@pytest.mark.parametrize(
    "text",
    [
        "At level A (trace), the lip corners lift only slightly.",
        "Level E: the lips are pressed together as hard as possible; only a faint line remains where they meet.",
        "Unlike the faint trace at level A, at level E the corners are pulled far up.",
        "From a faint trace at A to deep furrows at E, the brows descend and knit.",
        "At level D (severe), the lids narrow strongly; the iris is barely visible.",
        "Level C (marked): the upper lip is clearly raised.",
        "At level B (slight), the nasolabial furrow becomes deeper as the upper lip rises.",  # than at rest
        "At level E (extreme), the lids are squeezed hard.",  # extreme: FACS's D, loosely E
        "A (slight) pull lifts the lip corners a little.",  # an article, not level A
        "Level B (slight): the lids droop but do not close fully.",  # a denied degree is not the one described
        "At level B (slight), a small tension shows along the lid margins as the lower lid begins to tighten.",
        "The lip corners are pulled up as far as they go.",  # no level stated: nothing to contradict
        # a part hidden by a strong action is not a faint change
        "At E the lids are squeezed shut, the iris barely visible between them.",
        # "hard to see" is a weak degree, not a hard press
        "At level A (trace), the lips are pressed together only lightly, and the narrowing is hard to see.",
        "At level A (trace), the lips press together, a change that is hard to spot.",
        # a marked level's slight secondary signs, or another part that barely moves
        "At level C (marked), the mouth opens a little as the lips come apart while the jaw barely moves.",
        "Level C (marked): the eyes are narrow cracks, with only a faint line of eye between the lids.",
        "At level C, the corners rise clearly and the cheeks lift slightly.",
    ],
)
def test_a_level_the_text_agrees_with(text):
    assert not contradicts_level(text)


def test_the_right_au_at_the_wrong_level_is_dropped_by_the_rules():
    assert validate_description("Level E (maximum): the lip corners barely lift up.", FACS[12]) == "wrong_level"
    assert validate_description("At level E (maximum) the lip corners are pulled far up.", FACS[12]) is None
    assert set(LEVELS) == set("ABCDE")
