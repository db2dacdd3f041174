from __future__ import annotations

import dataclasses

import pytest

from augtext.errors import UserError
from augtext.facs import DATASET_AUS, EXPRESSIONS, FACS, ActionUnit, au_label, get_au, parse_au_label, parse_au_spec

MAIN_CODES = [
    1,
    2,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    26,
    27,
    28,
    29,
    30,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    39,
    41,
    42,
    43,
    44,
    45,
    46,
]


def test_every_main_code_and_no_other():
    assert sorted(FACS) == MAIN_CODES
    for missing in (0, 3, 40, 47, 51):
        assert missing not in FACS


@pytest.mark.parametrize("code", MAIN_CODES)
def test_action_unit_facts_are_complete(code):
    au = FACS[code]
    assert isinstance(au, ActionUnit) and au.code == code and au.label == f"AU{code}"
    for field in ("name", "muscles", "region"):
        assert getattr(au, field).strip(), field
    assert len(au.appearance) >= 2 and all(a.strip() for a in au.appearance)
    assert au.region_keywords and all(k == k.lower() and k.strip() for k in au.region_keywords)
    assert len(set(au.region_keywords)) == len(au.region_keywords)
    for refs in (au.cooccurs, au.lookalikes):
        assert refs, "every AU names related AUs (the contrast and context styles need them)"
        assert all(r in FACS for r in refs), refs
        assert code not in refs
        assert len(set(refs)) == len(refs)


def test_action_unit_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FACS[12].name = "x"  # type: ignore[misc]


def test_known_facts():
    assert FACS[12].name == "Lip Corner Puller" and "zygomaticus major" in FACS[12].muscles
    assert FACS[6].name == "Cheek Raiser" and 7 in FACS[6].lookalikes
    assert FACS[1].name == "Inner Brow Raiser" and "frontalis" in FACS[1].region_keywords
    assert FACS[26].name == "Jaw Drop" and FACS[25].name == "Lips Part"
    assert "brow" in FACS[4].region_keywords and "mouth" in FACS[12].region_keywords
    assert all(set(codes) <= set(FACS) for codes in EXPRESSIONS.values())


def test_dataset_presets_match_the_benchmarks():
    assert DATASET_AUS == {
        "bp4d": [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24],
        "disfa": [1, 2, 4, 6, 9, 12, 25, 26],
        "gft": [1, 2, 4, 6, 10, 12, 14, 15, 23, 24],
    }


@pytest.mark.parametrize("name", ["bp4d", "disfa", "gft", "BP4D", "Disfa", " gft "])
def test_presets(name):
    assert parse_au_spec(name) == DATASET_AUS[name.strip().lower()]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1-26", [c for c in MAIN_CODES if c <= 26]),
        ("1-46", MAIN_CODES),
        ("1,2,4", [1, 2, 4]),
        ("4,2,1,2", [1, 2, 4]),
        ("1-7,12", [1, 2, 4, 5, 6, 7, 12]),
        ("AU12", [12]),
        ("au12, AU6", [6, 12]),
        ("AU1-AU4", [1, 2, 4]),
        ("3-5", [4, 5]),
        ("40-41", [41]),
        ("12-12", [12]),
        ("disfa,27", [1, 2, 4, 6, 9, 12, 25, 26, 27]),
        ("bp4d,gft", sorted(set(DATASET_AUS["bp4d"]) | set(DATASET_AUS["gft"]))),
    ],
)
def test_parse_au_spec(spec, expected):
    assert parse_au_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "quoted"),
    [
        ("3", "AU3"),
        ("1,3", "AU3"),
        ("40", "AU40"),
        ("47", "AU47"),
        ("1-", "'1-'"),
        ("-5", "'-5'"),
        ("a", "'a'"),
        ("1,a", "'a'"),
        ("5-2", "'5-2'"),
        ("3-3", "'3-3'"),
        ("3-0", "'3-0'"),
        ("1-200", "'1-200'"),
        ("1-47", "'1-47'"),
        ("bp4d,50-60", "'50-60'"),
        ("1,,2", "empty item"),
        ("", "empty AU spec"),
        ("ckplus", "'ckplus'"),
        ("1.5", "'1.5'"),
    ],
)
def test_bad_specs_name_the_part_and_list_valid_codes(spec, quoted):
    with pytest.raises(UserError) as info:
        parse_au_spec(spec)
    message = str(info.value)
    assert quoted in message
    assert "Valid codes: 1-2, 4-39, 41-46" in message
    assert "bp4d" in message


@pytest.mark.parametrize("spec", ["1-200", "1-47", "45-99", "AU1-AU100"])
def test_a_range_ending_past_the_last_code_is_refused(spec):
    """Inside 1-46 a range skips the codes FACS lacks (1-26 has no 3); one that ends past 46 is a typo, not a wish for
    every AU, and used to be taken silently."""
    with pytest.raises(UserError, match=rf"range '{spec}' in AU spec '{spec}' ends at \d+, past AU46, the highest"):
        parse_au_spec(spec)
    assert parse_au_spec("1-46") == MAIN_CODES and parse_au_spec("45-46") == [45, 46]


def test_labels():
    assert au_label(12) == "AU12"
    assert parse_au_label("AU12") == 12
    assert parse_au_label("au6") == 6
    assert parse_au_label("12") == 12
    assert get_au(25).code == 25
    for bad in ("AU3", "AUx", "smile", "AU"):
        with pytest.raises(UserError, match="Valid codes"):
            parse_au_label(bad)
    with pytest.raises(UserError, match="AU40"):
        get_au(40)


def test_every_muscle_an_au_is_credited_to_has_its_nerves():
    from augtext.facs import INNERVATION, NERVES, own_muscles

    used = set().union(*(own_muscles(code) for code in FACS))
    assert used <= set(INNERVATION)
    assert all(set(nerves) <= set(NERVES) for nerves in INNERVATION.values())
    assert INNERVATION["levator palpebrae superioris"] == ("oculomotor nerve",)  # not the facial nerve
