from __future__ import annotations

import json
import textwrap

import pytest

from augtext.facs import FACS
from augtext.movement import named_aus
from augtext.validate import (
    GATE_REASONS,
    NEAR_DUPLICATE_THRESHOLD,
    PARSE_REASONS,
    REJECTION_REASONS,
    TEXT_REASONS,
    NearDuplicateFilter,
    ParseError,
    breaks_off,
    clean_text,
    ends_at_cut,
    parse_response,
    validate_description,
)

A = "The inner ends of the eyebrows are pulled upward by the frontalis."
B = "Short horizontal wrinkles appear across the middle of the forehead."


@pytest.mark.parametrize(
    "raw",
    [
        f'["{A}", "{B}"]',
        f'```json\n["{A}", "{B}"]\n```',
        f'```\n["{A}",\n "{B}"]\n```\nThese describe AU1.',
        f'Here are 2 descriptions of AU1:\n["{A}", "{B}"]\nI hope this helps!',
        f'Sure! [AU1] is the inner brow raiser.\n["{A}", "{B}"]',
        f'{{"descriptions": ["{A}", "{B}"]}}',
        f'{{"au": "AU1", "sentences": ["{A}", "{B}"]}}',
        f'[{{"text": "{A}"}}, {{"description": "{B}"}}]',
        f'{{"descriptions": [{{"id": 1, "text": "{A}"}}, {{"id": 2, "text": "{B}"}}]}}',
        f"['{A}', '{B}']",
        f'["{A}", "{B}",]',
        f"1. {A}\n2. {B}",
        f"Here you go:\n- {A}\n- {B}\n",
        f'* "{A}"\n* "{B}"',
        f"1) {A}\n2) {B}",
        f'  [\n    "{A}",\n    "{B}"\n  ]  ',
    ],
)
def test_parse_real_looking_outputs(raw):
    assert parse_response(raw) == [A, B]


@pytest.mark.parametrize(
    "raw",
    [
        # the answer after a reasoning model's thinking, not the list it drafted inside it
        f'<think>\nThey want AU1. Draft: ["The brows drop."] -- no, that is AU4.\n</think>\n\n["{A}", "{B}"]',
        f'<thinking>Two sentences.</thinking>["{A}", "{B}"]',
        f'<think>\n<think>nested</think> more thought\n</think>\n```json\n["{A}", "{B}"]\n```',
        # the chat template opened <think> in the prompt: the answer holds only its end
        f'Draft: ["The brows drop."]. Fine.\n</think>\n["{A}", "{B}"]',
        # a line break inside a JSON string (not valid JSON; LLMs write it)
        f'["{A.replace(" are ", chr(10) + "are ")}", "{B}"]',  # "...eyebrows<newline>are pulled..."
        # bold headings on list items
        f"1. **Appearance:** {A}\n2. **Anatomy**: {B}",
        # lists under keys of their own; a markdown table
        json.dumps({"appearance": [A], "anatomical": [B]}),
        f"| # | description |\n|---|---|\n| 1 | {A} |\n| 2 | {B} |",
    ],
)
def test_parse_reasoning_line_breaks_and_headings(raw):
    assert parse_response(raw) == [A, B]


def test_parse_single_json_string_and_object():
    assert parse_response(f'"{A}"') == [A]
    assert parse_response(f'{{"description": "{A}"}}') == [A]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty_response"),
        ("   \n ", "empty_response"),
        (f'["{A}", "The forehead wrin', "malformed_json"),
        (f'```json\n["{A}", "{B}"\n', "malformed_json"),
        (f'{{"descriptions": ["{A}"', "malformed_json"),
        (f'[{{"text": "{A}"}}, {{"text": "{B}"}}, {{"text": "The', "malformed_json"),
        (f'Here:\n[\n  {{"description": "{A}"}},\n  {{"description": "The', "malformed_json"),
        ("The inner brows go up. The forehead wrinkles.", "no_json"),
        ('{"error": "rate limited"}', "no_list"),
        ('{"error": "You exceeded your current quota, please check your plan."}', "no_list"),
        ("[]", "empty_response"),  # well-formed and empty (the reference set run out): nothing for --lenient
        ('{"descriptions": []}', "empty_response"),
        ("[1, 2, 3]", "no_list"),
        ('["", "  "]', "no_list"),
        # a reasoning model's thinking and no answer: cut short by the token limit, or nothing after it
        (f'<think>\nThe user wants AU1. Maybe ["{A}"]... let me also', "reasoning_only"),
        (f'<think>The user wants AU1: ["{A}"]</think>\n\n', "reasoning_only"),
        (f'The user wants AU1, e.g. ["{A}"]. Let me write the list.\n</think>', "reasoning_only"),
    ],
)
def test_parse_errors(raw, reason):
    with pytest.raises(ParseError) as info:
        parse_response(raw)
    assert str(info.value) == reason and info.value.reason == reason
    assert isinstance(info.value, ValueError) and reason in PARSE_REASONS


PROSE = (
    "AU1 lifts the inner ends of the eyebrows. The forehead wrinkles in the middle! "
    "In short: the brows slant upward toward the centre"
)


@pytest.mark.parametrize(
    ("raw", "strict_reason", "salvaged"),
    [
        (
            PROSE,
            "no_json",
            [
                "AU1 lifts the inner ends of the eyebrows.",
                "The forehead wrinkles in the middle!",
                "In short: the brows slant upward toward the centre",
            ],
        ),
        (f'["{A}", "{B}", "The fore', "malformed_json", [A, B]),
        (f'[{{"text": "{A}"}}, {{"text": "{B}"}}, {{"text": "The', "malformed_json", [A, B]),
        (f'["{A}", "with \\"quotes\\" inside", "x', "malformed_json", [A, 'with "quotes" inside']),
    ],
)
def test_lenient_parse_salvages_what_strict_rejects(raw, strict_reason, salvaged):
    with pytest.raises(ParseError, match=strict_reason):
        parse_response(raw)
    assert parse_response(raw, lenient=True) == salvaged


def test_plain_lines_and_paragraphs_are_a_list():
    """Descriptions one per line or per paragraph, without markers, are items (whole: a two-sentence description
    stays one); a line ending in ':' introduces them; a line going on in lower case, or after a line that ends
    mid-sentence, is the one above, wrapped. --lenient reads such prose by sentence, as it reads a small model's
    (whose lines ramble)."""
    two = f"{A} {B}"
    assert parse_response(f"{A}\n{B}") == [A, B]
    answer = f"Here are two descriptions of AU1:\n\n{two}\n\n{A}\n"
    assert parse_response(answer) == [two, A]
    assert parse_response(answer, lenient=True) == ["Here are two descriptions of AU1:", A, B, A]
    wrapped = A.replace(" the eyebrows", "\n  the eyebrows")
    assert wrapped != A and parse_response(f"{wrapped}\n{B}") == [A, B]
    first, rest = "The inner ends of the eyebrows are pulled upward by the", "Frontalis muscle above them."
    assert parse_response(f"{first}\n{rest}\n{B}") == [f"{first} {rest}", B]  # ends mid-sentence: goes on
    with pytest.raises(ParseError, match="no_json"):  # one line of prose is no list
        parse_response(f"Here is one:\n{two}")


@pytest.mark.parametrize("lenient", [False, True])
def test_a_bold_label_over_its_text_is_a_heading_not_part_of_it(lenient):
    """A short bold label on a line of its own ("**1. Smile shape**") heads the description below it, with or
    without a blank line between, as markdown headings do; in a list item it is cut off the text as a bold lead-in
    ("**Appearance:** ...") is (user test 49: "Smile shape The lip corners are ..." was kept)."""
    want = [A, B]
    for sep in ("\n", "\n\n"):
        raw = f"**1. Inner brows**{sep}{A}\n\n**2. Forehead lines**{sep}{B}\n"
        assert parse_response(raw, lenient=lenient) == want
    assert parse_response(f"__Anatomy:__\n{A}\n__Appearance__\n{B}", lenient=lenient) == want
    assert parse_response(f"1. **Inner brows**\n   {A}\n2. **Forehead lines**\n   {B}", lenient=lenient) == want


def test_plain_lines_without_full_stops_are_items_of_their_own():
    """Descriptions one per line without a full stop (bold or not) are items; only a line that plainly breaks off
    (a comma, a dash, a word no sentence ends on) goes on in the next one."""
    one, two = "The inner brows rise toward the forehead", "The outer brows are lifted high over the eyes"
    assert parse_response(f"{one}\n{two}") == [one, two]
    assert parse_response(f"**{one}**\n**{two}**") == [one, two]
    assert parse_response(f"{one} and the\n{two}\n{one}") == [f"{one} and the {two}", one]
    assert parse_response(f"{one},\nFrontalis pulling them\n{two}") == [f"{one}, Frontalis pulling them", two]


def test_lenient_parse_puts_hand_wrapped_lines_back_together():
    """Prose wrapped by hand at a fixed width: --lenient reads whole sentences, not the halves of a line break (which
    could pass the rules as a description cut short: "The corners of the mouth are drawn back and up at an angle
    toward the")."""
    prose = f"{A} {B} {A.replace('The inner', 'Then the inner')}"
    wrapped = "\n".join(textwrap.wrap(prose, 40))
    assert any(line[:1].islower() for line in wrapped.splitlines()[1:])
    assert parse_response(wrapped, lenient=True) == [A, B, A.replace("The inner", "Then the inner")]
    assert parse_response("The brows lower\nThe eyes narrow", lenient=True) == ["The brows lower", "The eyes narrow"]


def test_lenient_parse_still_rejects_nothing():
    for raw in ("", "  ", "...", "[ ]", "[", '["'):
        with pytest.raises(ParseError):
            parse_response(raw, lenient=True)
    assert parse_response(f'["{A}"]', lenient=True) == [A]


def test_parse_prefers_list_lines_over_a_stray_bracket():
    assert parse_response(f"1. {A} [AU1]\n2. {B}") == [A, B]  # the tag after the text is not kept either


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  1.  The   brow\n rises. ", "The brow rises."),
        ('- "The brow rises."', "The brow rises."),
        ("\u201cThe brow rises.\u201d,", "The brow rises."),
        ("* 'The brow rises.'", "The brow rises."),
        ("3) The brow rises.", "The brow rises."),
        ("The brow rises.", "The brow rises."),
        ("(A) At trace level the brow barely rises.", "(A) At trace level the brow barely rises."),
        ('"Raised" brows and a "surprised" look.', '"Raised" brows and a "surprised" look.'),
        ("2 eyebrows rise.", "2 eyebrows rise."),
        # a length the model notes after the text, as a word limit in the prompt invites
        ("1) The brow rises toward the hairline. (7 words)", "The brow rises toward the hairline."),
        ("The brow rises toward the hairline. [7 words]", "The brow rises toward the hairline."),
        ("The brow rises toward the hairline \u2013 6 words", "The brow rises toward the hairline"),
        ("The brow rises (about 2 words) slightly.", "The brow rises (about 2 words) slightly."),
        ("The corners go down (AU15).", "The corners go down."),
        # parts labelled with codes: the last code labels the last part, not the text
        ("Wide eyes (AU5) and a dropped jaw (AU26).", "Wide eyes (AU5) and a dropped jaw (AU26)."),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


AU1, AU12 = FACS[1], FACS[12]


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        (A, AU1, None),
        ("In AU1 the inner brows lift, unlike AU2 where the outer brows rise.", AU1, None),
        ("The zygomaticus major draws the lip corners up and back into a smile.", AU12, None),
        ("A smile forms as the corners of the mouth are pulled toward the cheekbones.", AU12, None),
        ("I'm sorry, but I cannot describe facial muscles of the brow.", AU1, "refusal"),
        ("As an AI language model I do not see faces, but the brow rises.", AU1, "refusal"),
        ("I cannot help with describing the inner brow raiser today.", AU1, "refusal"),
        ("I\u2019m sorry, describing the inner brow raiser is beyond me.", AU1, "refusal"),
        ("12345 67890 !!! ??? ### $$$ %%% 1 2 3 4 5 6 7 8", AU1, "garbage"),
        ("Here's a JSON list of strings that describe the facial muscles of the brow:", AU1, "garbage"),
        ("Sure, here are three sentences about the inner brow raiser of the forehead.", AU1, "garbage"),
        ("The answer is a list of sentences about how the inner brows rise.", AU1, "garbage"),
        ("眉毛的内侧向上抬起，额头中部出现横向皱纹。眉毛的内侧向上抬起。", AU1, "not_english"),
        ("Les sourcils internes se lèvent vers le haut du front.", AU1, "not_english"),
        ("Las cejas internas suben hacia arriba en la frente.", AU1, "not_english"),
        ("Die inneren Augenbrauen werden nach oben gezogen.", AU1, "not_english"),
        ("The brow rises, as in the phrase 'en la frente' for the forehead.", AU1, None),
        ("Inner brows lift, forehead wrinkles horizontally, eyes look worried.", AU1, None),
        ("Brows rise.", AU1, "too_short"),
        ("The inner brow rises", AU1, "too_short"),
        (" ".join(["The inner brow rises slowly and"] * 13), AU1, "too_long"),
        ("AU4 pulls the eyebrows down and together, making vertical furrows.", AU1, "wrong_au"),
        ("In action unit 12 the eyebrows are lifted at their inner ends.", AU1, "wrong_au"),
        ("This is a pleasant and happy feeling that people often enjoy very much.", AU1, "off_topic"),
        ("The lip corners are pulled back and up toward the cheekbones.", AU1, "off_topic"),
    ],
)
def test_validate_description(text, au, reason):
    assert validate_description(text, au) == reason
    assert reason is None or reason in TEXT_REASONS


AU4, AU15, AU24, AU25, AU43 = FACS[4], FACS[15], FACS[24], FACS[25], FACS[43]


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        # On topic but no action on the face: what a scripted or small LLM writes around the question.
        ("The nose is in the middle of the face and is used for breathing and smelling.", FACS[9], "no_change"),
        ("Lips are an important part of the face used for speaking, eating and kissing.", AU25, "no_change"),
        ("Brow lowerer is a facial action unit that is coded by trained coders in FACS.", AU4, "no_change"),
        ("A smile is a universal expression that people across cultures use to show happiness.", AU12, "no_change"),
        # ... while any movement, visible sign or the AU's muscle is enough.
        ("The nose looks scrunched, with horizontal lines across its root.", FACS[9], None),
        ("The lip corner puller is produced by zygomaticus major, which runs from the cheekbone.", AU12, None),
        ("The mouth looks downturned at the corners of the lips.", AU15, None),
        ("The smile reaches the eyes and shows the upper teeth.", AU12, None),
        # The opposite movement, and none of the own: a lookalike's or antagonist's description under this AU.
        ("The lip corners are pulled down, turning the mouth into an inverted U of sadness.", AU12, "wrong_direction"),
        ("The lip corners appear to be raised, with folds on the skin below them.", AU15, "wrong_direction"),
        ("The lips are pressed firmly together into a thin tight line across the face.", AU25, "wrong_direction"),
        ("The lips are pressed tightly together so no gap shows.", AU25, "wrong_direction"),  # "no gap": not a parting
        ("The lips part slightly so that a small gap shows between them.", AU24, "wrong_direction"),
        ("The eyebrows go up in surprise and the whole brow arches high.", AU4, "wrong_direction"),
        ("The upper eyelids lift so far that white shows above the irises.", AU43, "wrong_direction"),
        # ... for the rarer AUs too: lids slack, a nose smoothed, a furrow flattened, corners dropped, a lower lip
        # pushed up, a tongue drawn in, a pucker sent as a stretch, a neck gone slack, lips relaxed and full
        ("The lids go slack and droop, leaving the eyes looking bigger and softer.", FACS[7], "wrong_direction"),
        ("The skin of the nose is smoothed flat and the nostril wings sink down.", FACS[9], "wrong_direction"),
        ("The fold beside the nose fades and softens, its skin smoothed.", FACS[11], "wrong_direction"),
        ("The corners of the mouth drop steeply downward into tight points.", FACS[13], "wrong_direction"),
        ("The chin pushes the lower lip upward into a pout.", FACS[16], "wrong_direction"),
        ("The tongue retracts and is hidden behind the teeth.", FACS[19], "wrong_direction"),
        ("The lips are pushed forward and their corners drawn toward the middle.", FACS[20], "wrong_direction"),
        ("The skin of the neck loosens and sags below the jaw.", FACS[21], "wrong_direction"),
        ("The lips relax and loosen, and their red margins look fuller.", FACS[23], "wrong_direction"),
        ("The lips tighten and thin into a firm, flat line.", FACS[18], "wrong_direction"),
        # A muscle's name or a pull says no direction: it does not save a stated opposite; where a muscle runs is none.
        ("In AU12 the zygomaticus major pulls the lip corners down and inward into a frown.", AU12, "wrong_direction"),
        ("The levator labii superioris pulls the upper lip downward over the teeth.", FACS[10], "wrong_direction"),
        (
            "The levator palpebrae superioris contracts and lowers the upper eyelid, covering the eye.",
            FACS[5],
            "wrong_direction",
        ),
        (
            "The lip corner puller is zygomaticus major, which runs from the cheekbone down to the mouth corner.",
            AU12,
            None,
        ),
        ("The orbicularis oculi pulls the skin around the eye inward and may lower the brows slightly.", FACS[6], None),
        # A "whereas" clause with the AU's own muscle at work is the text's own, not a contrast.
        (
            "AU15 and AU17 co-occur, but the mentalis pushes the lower lip up, whereas the triangularis pulls"
            " the corners down.",
            AU15,
            None,
        ),
        (
            "AU18 works against AU20: the risorius stretches the corners outward, whereas the incisivus muscles"
            " pull them toward the midline.",
            FACS[18],
            None,
        ),
        # Lips rolled in over the teeth are the opposite of a funnel or a pucker.
        ("The lips are rolled inward over the teeth until their red parts disappear.", FACS[22], "wrong_direction"),
        ("The lips are sucked in and rolled over the teeth, thinning the mouth.", FACS[18], "wrong_direction"),
        # "hoist" is a raise: the own movement beside another muscle's lowering, and the opposite of a frown
        (
            "In a sceptical look the lateral frontalis hoists one outer brow while the corrugator pulls the other"
            " down.",
            FACS[2],
            None,
        ),
        ("The eyebrows are hoisted high, smoothing the skin between them.", AU4, "wrong_direction"),
        # Negated or contrasting clauses do not count, the own movement wins, and a noun is not a movement.
        ("Instead of lifting the lip corners, the depressor pulls them down and out.", AU15, None),
        ("Unlike the lip corner depressor, which pulls them down, it draws the corners up.", AU12, None),
        ("The lips part and are no longer pressed together.", AU25, None),
        ("The lips are pressed together so that their red parts narrow and bulge.", AU24, None),
        ("The brows are lowered and drawn together, not raised.", AU4, None),
        ("AU9 lowers the inner brows as a side effect, but unlike AU4 it also wrinkles the nose.", FACS[9], None),
        ("The brows tilt into an oblique line, high near the nose and lower toward the temples.", AU1, None),
        ("As if trying to close the mouth with the lips alone while the jaw hangs down.", FACS[8], None),
    ],
)
def test_descriptions_must_say_what_the_face_does_in_the_aus_direction(text, au, reason):
    assert validate_description(text, au) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        # The AU's movement credited to a muscle that does not make it, and to none of its own: what small LLMs invent.
        ("AU12: the corrugator supercilii contracts, pulling the lip corners up into a smile.", AU12, "wrong_muscle"),
        ("The inner brows are lifted by the zygomaticus major, giving an oblique brow.", AU1, "wrong_muscle"),
        ("The mentalis muscle pulls the lip corners downward into a frown.", AU15, "wrong_muscle"),
        ("The frontalis lifts the cheeks and narrows the eyes from below.", FACS[6], "wrong_muscle"),
        ("The brows are lowered and drawn together by the levator palpebrae superioris.", AU4, "wrong_muscle"),
        ("The buccinator tightens the lips, narrowing the red of the lips.", FACS[23], "wrong_muscle"),
        ("Contraction of the risorius deepens the nasolabial furrow in its middle.", FACS[11], "wrong_muscle"),
        ("The orbicularis draws the lip corners up toward the cheekbones.", AU12, "wrong_muscle"),  # either ring
        # ... the orbicularis oculi's other part; a muscle that makes no AU
        (
            "The palpebral part of the orbicularis oculi lifts the cheeks and forms crow's feet.",
            FACS[6],
            "wrong_muscle",
        ),
        (
            "The lids tighten as the orbital part of the orbicularis oculi contracts, narrowing the eye.",
            FACS[7],
            "wrong_muscle",
        ),
        (
            "The neck tightens into vertical cords through contraction of the sternocleidomastoid.",
            FACS[21],
            "wrong_muscle",
        ),
        # ... the frontalis's other part: its medial part makes AU1, its lateral part AU2; "the frontalis" either
        ("The lateral part of the frontalis lifts the inner ends of the brows upward.", AU1, "wrong_muscle"),
        ("The medial frontalis lifts the tails of the eyebrows upward at the sides.", FACS[2], "wrong_muscle"),
        ("The frontalis lifts the inner ends of the brows upward.", AU1, None),
        (
            "The outer brows rise as the lateral frontalis contracts, while the medial frontalis stays at rest.",
            FACS[2],
            None,
        ),
        # ... by any of its names, old or Latin; a name that stands for several muscles counts for each of them
        ("The pars orbitalis of the orbicularis oculi pulls the cheeks up, bagging the lower lids.", FACS[6], None),
        ("The pars orbitalis of the orbicularis oculi tightens the lower lids.", FACS[7], "wrong_muscle"),
        ("The triangularis draws the corners of the mouth down and out.", AU15, None),
        ("The zygomatic major muscle pulls the lip corners up toward the cheekbones.", AU12, None),  # short forms
        ("The zygomatic major lifts the inner ends of the eyebrows.", AU1, "wrong_muscle"),
        ("The depressor anguli pulls the lip corners up into a smile.", AU12, "wrong_muscle"),
        ("The epicranius raises the inner ends of the brows, wrinkling the forehead.", AU1, None),
        ("The caninus lifts the lip corners sharply into a narrow point.", FACS[13], None),
        ("The zygomaticus pulls the lip corners up and back in a smile.", AU12, None),
        ("The quadratus labii superioris raises the upper lip, baring the upper teeth.", FACS[10], None),
        # Other muscles in a contrast, a denial, a companion's clause, relaxing or opposing do not count.
        ("Unlike the zygomaticus major, which pulls the corners up, this muscle pulls the corners down.", AU15, None),
        ("Not the mentalis but a muscle beside it pulls the lip corners down and out.", AU15, None),
        ("Together with AU6, whose orbicularis oculi lifts the cheeks, the lip corners rise.", AU12, None),
        ("With the Cheek Raiser's orbicularis oculi crinkling the eyes, the lip corners are pulled up.", AU12, None),
        ("The upper lids are lifted high while the orbicularis oculi relaxes.", FACS[5], None),
        ("The masseter relaxes and the jaw drops, parting the lips.", FACS[26], None),
        # An AU made by a muscle's relaxation (facs.relaxed_muscles) is not made by that muscle contracting.
        (
            "AU26 lowers the jaw because the masseter contracts strongly and pulls the mandible down.",
            FACS[26],
            "wrong_muscle",
        ),
        (
            "Contraction of the levator palpebrae superioris pulls the upper lids down over the eyes.",
            AU43,
            "wrong_muscle",
        ),
        ("The jaw falls open as the masseter and temporalis let go.", FACS[26], None),
        ("In surprise the orbicularis oris relaxes so the lips part, and the frontalis lifts the brows.", AU25, None),
        ("The zygomaticus major pulls the corners up, beside the orbicularis oculi of the cheeks.", AU12, None),
        # A companion's muscle at its own work, in a clause of its own, beside the AU's movement: context, not a credit
        (
            "The lip corners are pulled up while the orbicularis oculi lifts the cheeks and narrows the eyes.",
            AU12,
            None,
        ),
        ("In sadness the inner brows rise while the corrugator draws them together.", AU1, None),
        # ... an expression named as the clause's setting is not the AU's movement stated there
        ("In a Duchenne smile the orbicularis oculi crinkles the eyes as the lip corners rise.", AU12, None),
        ("The lip corners are pulled up as the orbicularis oculi raises the cheeks in a genuine smile.", AU12, None),
        ("In a Duchenne smile the orbicularis oculi pulls the lip corners up.", AU12, "wrong_muscle"),
        ("With the mentalis pushing the chin up, the lip corners are pulled down into a pout.", AU15, None),
        ("As the zygomaticus major lifts the lip corners, the cheeks rise and the lower lids bag.", FACS[6], None),
        # ... the companion's movement whatever part it names ("the brows": AU1's or AU2's), corners pulled high
        (
            "In surprise the jaw drops while the frontalis raises the brows and the levator palpebrae opens the eyes.",
            FACS[26],
            None,
        ),
        (
            "The cheeks push up and the crow's feet deepen, as in a laugh where the zygomaticus major pulls the lip"
            " corners high.",
            FACS[6],
            None,
        ),
        # ... but a muscle said to cause the AU's movement is credited with it
        (
            "The lips are pressed together because the mentalis pushes the lower lip up against the upper.",
            FACS[24],
            "wrong_muscle",
        ),
        ("The corrugator contracts, and the inner ends of the brows are lifted.", AU1, "wrong_muscle"),
        # "the corners" alone are the lip corners: the sharp lip puller's muscle pulling them is no companion's work
        ("The levator anguli oris pulls the corners up toward the cheeks.", FACS[12], "wrong_muscle"),
        # An AU whose muscles have no name in the table (the tongue's) is not judged by muscle.
        ("The genioglossus pushes the tongue forward so that it shows between the lips.", FACS[19], None),
    ],
)
def test_descriptions_credit_the_aus_own_muscle(text, au, reason):
    assert validate_description(text, au) == reason


def test_muscle_names_and_each_aus_own_muscles():
    from augtext.facs import MUSCLES, muscles_named, own_muscles

    # every AU whose muscles string names a muscle of the table has it as its own; the tongue's and the jaw's have none
    assert own_muscles(12) == {"zygomaticus major"} and own_muscles(9) == {"levator labii superioris alaeque nasi"}
    assert own_muscles(10) == {"levator labii superioris"}  # not AU9's longer name
    assert own_muscles(26) == {"masseter", "temporalis", "pterygoid"} and own_muscles(19) == frozenset()
    assert all(own_muscles(code) <= set(MUSCLES) for code in FACS)
    # every muscle of the table is some AU's, but the four that make none (a neck, ear and two jaw muscles)
    assert set(MUSCLES) - {m for code in FACS for m in own_muscles(code)} == {
        "sternocleidomastoid",
        "auricularis",
        "mylohyoid",
        "geniohyoid",
    }
    # the orbicularis oculi's parts: the orbital ring is AU6's, the palpebral part in the lids AU7's; unnamed, either
    orbital, palpebral = "orbicularis oculi, orbital part", "orbicularis oculi, palpebral part"
    assert own_muscles(6) == {orbital} and own_muscles(7) == {palpebral} and own_muscles(46) == {orbital, palpebral}
    medial, lateral = "frontalis, medial part", "frontalis, lateral part"  # and the frontalis's: AU1's and AU2's
    assert own_muscles(1) == {medial} and own_muscles(2) == {lateral}
    for text, part in [
        ("the orbital part of the orbicularis oculi", orbital),
        ("orbicularis oculi, palpebral portion", palpebral),
        ("the palpebral orbicularis", palpebral),
        ("the orbicularis oculi (pars orbitalis)", orbital),
        ("pars orbitalis of the orbicularis oculi", orbital),
        ("the medial part of the frontalis", medial),
        ("frontalis, pars lateralis", lateral),
        ("the outer frontalis", lateral),
        ("the central fibres of the frontalis", medial),
    ]:
        assert muscles_named(text) == [{part}], text
    assert muscles_named("the orbicularis oculi") == [{orbital, palpebral}]
    assert muscles_named("the occipitofrontalis") == [{medial, lateral}]
    assert muscles_named("the frontalis, lateral to the corrugator")[0] == {medial, lateral}  # where it lies
    assert muscles_named("the zygomaticus, then the zygomaticus minor") == [
        {"zygomaticus major", "zygomaticus minor"},
        {"zygomaticus minor"},
    ]
    assert muscles_named("the lip's levator and the frontal bone") == []  # no muscle's name
    # what the muscles string says relaxes: "relaxation of A, B and C" up to a ";", "a relaxed B" alone
    from augtext.facs import relaxed_muscles

    assert relaxed_muscles(26) == {"masseter", "temporalis", "pterygoid"}
    assert relaxed_muscles(33) == {"buccinator"}  # not the orbicularis oris that closes the lips
    assert relaxed_muscles(43) == {"levator palpebrae superioris"}  # not the orbicularis oculi after the ";"
    assert relaxed_muscles(12) == frozenset()


def test_every_facs_visible_change_says_a_change_in_its_aus_direction():
    """The project's own FACS facts (augtext/facs.py, what prompts and the gate are built from) are what a good
    description says: each passes the change and direction rules for its AU (as every reference description
    passes every rule: test_quality)."""
    for code, au in FACS.items():
        for fact in au.appearance:
            assert validate_description(f"In this action {fact}, as coders see it.", au) not in (
                "no_change",
                "wrong_direction",
            ), (code, fact)


def test_the_bp4d_aus_own_visible_changes_pass_the_rules():
    """What the prompt itself tells the model a BP4D AU looks like, sent back verbatim, is kept (AU4's "the skin above
    the eyes bulges and the eye opening narrows from above" was off_topic: AU4's words had no "above the eyes"). Not
    every AU's: AU9's "the inner brows may be drawn down and the lower eyelids pushed up" names no nose."""
    from augtext.facs import DATASET_AUS

    for code in DATASET_AUS["bp4d"]:
        for fact in FACS[code].appearance:
            sentence = f"{fact[0].upper()}{fact[1:]}."
            if len(sentence.split()) >= 6:
                assert validate_description(sentence, FACS[code]) is None, (code, fact)


def test_name_words_count_as_on_topic():
    # AU46 "Wink": the name word alone is enough.
    assert validate_description("A quick wink is made while the other side stays still.", FACS[46]) is None
    # Word-prefix matching: "lid" must not match inside "valid".
    assert validate_description("This is a valid and solid sentence about nothing much.", FACS[7]) == "off_topic"


def test_reason_vocabulary():
    assert set(PARSE_REASONS) | set(TEXT_REASONS) | set(GATE_REASONS) | {"duplicate"} == set(REJECTION_REASONS)
    assert len(set(REJECTION_REASONS)) == len(REJECTION_REASONS)


SMILE = "The lip corners are pulled back and up toward the cheekbones, forming a smile."


@pytest.mark.parametrize(
    ("other", "duplicate"),
    [
        (SMILE, True),
        ("the lip corners are pulled back and up toward the cheekbones forming a smile", True),
        ("  - 'The lip corners are pulled back and up toward the cheekbones, forming a smile!' ", True),
        ("The lip corners are pulled back and up toward the cheekbones, making a smile.", True),
        ("The lip corners are pulled up and back toward the cheekbones, forming a smile.", True),
        ("The lip corners are pulled back and up, which deepens the nasolabial furrow.", False),
        ("In AU12 the zygomaticus major contracts and the cheeks are pushed up.", False),
        ("When smiling, the lip corners rise and the cheeks bunch up under the eyes.", False),
    ],
)
def test_near_duplicates(other, duplicate):
    seen = NearDuplicateFilter()
    assert not seen.is_duplicate(SMILE) and len(seen) == 0
    seen.add(SMILE)
    assert len(seen) == 1
    assert seen.is_duplicate(other) is duplicate
    assert (seen.similarity(other) >= NEAR_DUPLICATE_THRESHOLD) is duplicate


def test_filter_threshold_and_seed():
    strict = NearDuplicateFilter([SMILE], threshold=0.95)
    assert not strict.is_duplicate("The lip corners are pulled back and up toward the cheekbones, making a smile.")
    assert strict.is_duplicate(SMILE.upper())


def test_a_set_of_dicts_never_crashes_the_parser():
    # `{{...}, {...}}` is a Python set of dicts: literal_eval raises TypeError (unhashable), which once crashed
    # `augtext generate` after the answer was logged.
    raw = '{{"text": "The inner brows rise and the forehead wrinkles."}, {"text": "Brows lift."}}'
    try:
        texts = parse_response(raw, lenient=True)
    except ParseError:
        texts = []
    assert all(isinstance(t, str) for t in texts)


@pytest.mark.parametrize(
    "text",
    [
        '"Sentence 1": "When AU24 shows, the skin above and below the lips bunches."',
        '{"chinese_head_to_lateral_rotary_squash_3"',
        "The lips <b>press</b> together and the skin around the mouth bunches.",
        "The lips press together, see https://example.org for pictures of the mouth.",
        "lip_press = True when the lips are pressed together at the mouth.",
        "mouth_state = pressed lips, the skin around the mouth bunching.",  # snake_case without the AU's code
        'press = "the lips are pressed together and bunch the skin around them"',
        "The lips press together | the skin around the mouth bunches.",  # one pipe is no record
        "pressed = lips == together so the skin around the mouth bunches",
    ],
)
def test_code_json_and_markup_are_rejected(text):
    assert validate_description(text, FACS[24]) == "markup"


@pytest.mark.parametrize(
    ("au", "text", "cleaned"),
    [
        (
            2,
            "| AU 2 | Outer Brow Raiser | frontalis, pars lateralis | lateral brow and forehead skin pulled upward |",
            "AU 2; Outer Brow Raiser; frontalis, pars lateralis; lateral brow and forehead skin pulled upward",
        ),
        (
            5,
            "AU: 5 | name: Upper Lid Raiser | look: upper lid retracted, white of the eye exposed above the iris",
            "AU: 5; name: Upper Lid Raiser; look: upper lid retracted, white of the eye exposed above the iris",
        ),
        (
            28,
            "| AU28 vs AU24 | AU28: lips sucked into the mouth, unseen | AU24: lips pressed together, still seen |",
            "AU28 vs AU24; AU28: lips sucked into the mouth, unseen; AU24: lips pressed together, still seen",
        ),
    ],
)
def test_a_table_row_or_a_record_of_fields_is_read_as_its_cells(au, text, cleaned):
    """A small model's table row or `key: value | key: value` record (a blind set's terse voice): its cells joined by
    "; ", judged as words (these were `markup`, for the pipes); a table's rule row leaves nothing."""
    assert clean_text(text) == cleaned
    assert validate_description(text, FACS[au]) is None
    assert clean_text("|---|:---:|---|") == "" and validate_description("| --- | --- |", FACS[au]) == "garbage"


@pytest.mark.parametrize(
    ("au", "text"),
    [
        (
            9,
            "AU9 = nose wrinkle. Skin on the bridge and sides of the nose bunches into creases, the nostrils hike up.",
        ),
        (
            18,
            "au18 lip pucker = lips pushed forward and drawn together into a kissy shape, little wrinkles around them",
        ),
        (4, "brow_down (AU 4) lowers and gathers the brows, leaving vertical lines at the glabella."),
        (5, "eye_wide (AU5) raises the upper eyelid itself, so extra white shows above the iris."),
    ],
)
def test_an_equation_in_words_and_a_trackers_name_beside_its_code_are_no_code(au, text):
    """ "X = words" reads "X is words", not an assignment (a value of two words or more); a face tracker's snake_case
    name given with the AU's code is a name (as a rig's camelCase control is), not an identifier of code."""
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    "text",
    [
        "Text: The lips are pressed firmly together, closing the mouth.",
        "Sentence 2: the lips are pressed firmly together at the mouth.",
    ],
)
def test_labels_before_the_text_are_stripped(text):
    """A label before the text ("Text:", "Sentence 2:", "Description 1 -", "AU24:") names the item; the text after it
    is what is judged (talk about the answer after a label is still talk: "Text: Here are ...")."""
    assert validate_description(text, FACS[24]) is None
    assert clean_text(text).lower().startswith("the lips are pressed firmly together")
    assert clean_text("AU24 (Lip Pressor): the lips are pressed together.") == "the lips are pressed together."
    assert clean_text("AU24 presses the lips together.") == "AU24 presses the lips together."  # the text itself
    assert validate_description("Text: Here are three sentences about the lips pressing.", FACS[24]) == "garbage"


@pytest.mark.parametrize(
    ("au", "text", "ok"),
    [
        (17, "Chinese New Year celebrations in the city include dragon dances and fireworks.", False),
        (17, "The chins of both people wrinkle as the lower lip is pushed up.", True),
        (1, "The brows rise at their inner ends toward the middle of the face.", True),
        (7, "The valid answer is shown in the list here today for everyone.", False),
        (12, "A crooked half-smile shows on one side of the face only.", True),
        (24, "The lips are pressed hard together and the skin bunches around them.", True),
        # AU4's own sign without the word brow: the frown names it
        (4, "The skin above the upper eyelids bulges and the face takes on a frowning look.", True),
    ],
)
def test_topic_words_match_whole_words_with_listed_inflections(au, text, ok):
    assert (validate_description(text, FACS[au]) is None) is ok


# -- scripted LLM answers a FACS coder would drop (or keep), found by an adversarial review ------------------------


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # The AU's name is not a movement: "Raiser", "Puller", "Lips Part" name the action, they do not describe it.
        ("AU1 is known as the Inner Brow Raiser in the Facial Action Coding System.", 1),
        ("The Lip Corner Depressor is AU15 in the Facial Action Coding System.", 15),
        ("AU23 is named Lip Tightener in the FACS manual for coders.", 23),
        ("AU25 is the action unit called Lips Part in the FACS manual.", 25),
        # ... nor is a position: "the lower face" is where, not "lowered".
        ("AU17 is the Chin Raiser, an action unit of the lower face.", 17),
        ("The Lip Stretcher, AU20, is a lower face action unit in FACS.", 20),
        # A movement that is denied is not one the face makes.
        ("The inner brows do not rise at all and the forehead stays smooth.", 1),
        ("The mouth does not open and the lips stay together.", 25),
        ("The eyes don't close; the lids stay where they are.", 43),
    ],
)
def test_names_positions_and_denied_movements_say_no_change(text, au):
    assert validate_description(text, FACS[au]) == "no_change"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("The eyebrows drop and knit together, forming a scowl over the eyes.", 1),
        ("The outer eyebrows sink down toward the eyelids.", 2),
        ("The brows go up toward the hairline, and the eyes widen.", 4),
        ("The eyebrows are pulled up high, opening the eyes.", 4),
        ("The lip corners are pulled sideways toward the ears, stretching the lips flat.", 12),
        ("The lip corners go up toward the cheekbones, making the mouth look happy.", 15),
        ("The corners of the mouth turn up into a smile.", 15),
        ("The chin is lowered and the lower lip drops down, relaxing.", 17),
        ("The lip corners are pulled back and up toward the cheekbones.", 20),
        # "lower" before a part of the face is a position, not the AU's own lowering movement
        ("The upper eyelids lift and the lower lids stay still.", 43),
        ("The lower lip is pressed up against the upper teeth, keeping the mouth shut.", 26),
        # "red parts" are the lips' red margins, not the lips parting
        ("The lips roll inward over the teeth until their red parts disappear.", 25),
        # a jaw drop is the jaw's movement: the lips parting with the jaw closed is AU25
        ("The lips part slightly while the jaw stays closed and the teeth remain together.", 26),
        # AU1 and AU2 differ by where the brow rises: the other end only is the other AU
        ("The inner ends of the eyebrows are raised, giving the brows an oblique, worried shape.", 2),
        ("The inner brows are drawn up toward the centre of the forehead.", 2),
        ("The outer ends of the eyebrows are lifted, arching the brows at the sides.", 1),
        ("The tails of the eyebrows go up toward the temples, arching the outer brows.", 1),
        # the cheeks and the upper lip go up in AU6 and AU10; down is their opposite (user test 49's scripted server)
        ("The cheeks drop and the skin under the eyes is smoothed downward.", 6),
        ("The upper lip is pushed down and pressed against the lower lip.", 10),
        # a denial ends at "but": what follows is the text's own (here the opposite of AU12's)
        ("The lip corners are not raised but pulled down into a frown.", 12),
        # bags below the lower lids are where the cheek's skin gathers (AU6), not lids that tighten (AU7)
        ("The cheeks push up, crow's feet form and bags appear beneath the lower lids.", 7),
        # the lip stretcher's platysma shows in the neck, but a text about the neck alone is the neck tightener
        ("The platysma contracts and the cords of the neck stand out under the skin.", 20),
        # lid droop stops short of closing: lids that close completely are eyes closed (AU43)
        ("The upper lids close completely and remain shut for a while.", 41),
        # the dimpler pulls the corners in: "In AU14" is a preposition, not a corner pulled in
        ("In AU14 the lip corners are pulled outward and apart, stretching the cheeks flat.", 14),
    ],
)
def test_the_opposite_movement_or_the_other_end_of_the_brow_is_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # both ends, or the own end with the other one staying still
        ("The brows are raised at their inner ends, while the outer ends stay in place.", 1),
        ("Only the outer part of the brow lifts; the inner ends stay level.", 2),
        ("The eyebrows arch upward at the sides, giving a surprised look.", 2),
        # positions beside the own movement, denials of the opposite one, muscles, a pucker (a movement, not a name)
        ("The jaw is lowered and the mouth falls open, with the lower teeth visible.", 26),
        ("The lower and upper eyelids meet, and the eyes stay shut.", 43),
        ("The lower lip pushes upward and the chin bunches and wrinkles.", 17),
        ("The lip corners don't turn down; they are pulled up and back into a smile.", 12),
        ("The lips are parted but the jaw is not lowered.", 25),
        ("The lips pucker and are pushed forward into a small rounded shape.", 18),
        ("The corners of the lips are turned down, so the mouth looks unhappy.", 15),
        ("The lip corners are drawn outward toward the ears, and the lips flatten.", 20),
        # the contrast and context styles name other AUs beside the own movement
        ("Unlike AU4, which pulls the brows down, the inner ends of the eyebrows are lifted.", 1),
        ("In contrast with AU4, the inner brows are raised rather than lowered.", 1),
        ("Together with AU4, the inner brows rise while being drawn together, as in grief.", 1),
        ("Combined with AU6, the lip corners rise and the cheeks lift, creating a genuine smile.", 12),
        ("Together with AU1 and AU4, the lip corners turn down, giving a clear look of sadness.", 15),
        ("With AU26, the lips part as the jaw drops, opening the mouth wider.", 25),
        ("AU1 with AU2 raises the whole brow, the outer ends arching high.", 2),
        # a denial followed by "but" and the own movement, as a contrast sentence puts it (user test 49)
        ("Compared with AU15, AU14 does not pull the lip corners down but tightens them and forms dimples.", 14),
        ("The brows are not only lowered but also drawn together into a frown.", 4),
        # the cheeks and the upper lip going up, with a "down" elsewhere in the sentence
        ("The cheeks rise and the outer brow tails are pulled down a little toward the eyes.", 6),
        ("Together with AU15, the upper lip rises and the lip corners are pulled down.", 10),
    ],
)
def test_right_descriptions_in_many_phrasings_pass_the_rules(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au", "described"),
    [
        # A lookalike of the same region and direction, told apart by where the face changes (PARTS): each names only
        # the lookalike's part. (text, asked AU, the AU it describes)
        ("The upper eyelids are raised so that white shows above the iris.", 6, 5),
        ("The eyelids tighten and the lower lid straightens, making the eyes look strained.", 6, 7),
        ("The lids tighten and the lower eyelid straightens, while the cheeks do not move at all.", 6, 7),
        ("The zygomaticus major pulls the lip corners up toward the cheekbones into a smile.", 6, 12),
        ("The cheeks push up and the skin under the eyes gathers into puffy bags.", 7, 6),
        ("The upper eyelids lift so far that a band of white shows above the irises.", 7, 5),
        ("The cheeks rise and crow's feet crinkle at the outer eye corners.", 5, 6),
        ("The lower eyelids are raised and straightened, giving the eyes a tense look.", 5, 7),
        ("The eyebrows are raised high and arched, making the eyes look bigger.", 5, 1),
        ("The cheeks lift and crow's feet appear at the corners of the eyes.", 12, 6),
        ("The upper lip is raised straight up, exposing the upper teeth.", 9, 10),
        ("The centre of the upper lip rises into an arch while the nose stays smooth.", 9, 10),
        ("The nose wrinkles and the nostril wings are pulled up, as at a bad smell.", 10, 9),
        ("The lower lip is pulled down and out, showing the lower teeth.", 10, 16),
        ("The upper lip is drawn straight up, baring the upper teeth.", 16, 10),
        ("The lip corners are pulled down, turning the mouth into an inverted U.", 16, 15),
        ("The lower lip is pulled down and slightly outward, exposing the lower teeth and gums.", 15, 16),
        ("The lip corners are pulled down, and the skin below them wrinkles.", 17, 15),
        ("The jaw drops and the mouth hangs open with a wide gap between the teeth.", 25, 26),
        ("The jaw is pulled far down and the mouth opens very wide, as in a yawn.", 25, 27),
        ("The lips part slightly and a small gap shows between them.", 26, 25),
        ("The lips part slightly, revealing the teeth.", 27, 25),
        # lip shapes: the funnel's flare vs the pucker's knot; pressing vs tightening without pressing
        ("The lips flare forward and turn outward, so the mouth forms a wide ring.", 18, 22),
        ("The lips are gathered into a small wrinkled knot, as if blowing a kiss.", 22, 18),
        ("The lips are squeezed hard against each other until the skin around them bulges.", 23, 24),
        (
            "The lips are tightened and thinned, their red parts rolled slightly in, with a small gap between them.",
            24,
            23,
        ),
        # the rarer mouth AUs: toward each other vs pressed or sucked in; the furrow vs a smile; the tongue vs an open
        # mouth; sucked in vs pressed, tightened or pushed out
        ("Both lips are rolled in behind the teeth until no red shows.", 8, 28),
        ("The lips are squeezed hard against each other until the skin around them bulges.", 8, 24),
        ("The zygomaticus major draws the lip corners up and back into a grin.", 11, 12),
        ("The mouth falls open as the jaw drops, while the tongue stays behind the lower teeth.", 19, 26),
        ("The lips are pressed tightly together without being drawn into the mouth.", 28, 24),
        ("The lips are pushed forward and turned outward into a flared ring.", 28, 22),
        # a smile's broad oblique pull is not the sharp lip pull
        ("The lip corners are drawn obliquely up and back into a broad, gentle smile.", 13, 12),
        # a blink is no eye closure held; the dimpler's corners pulled in are no smile
        ("The lids drop and lift again in a quick blink that is over in a moment.", 43, 45),
        ("The lip corners are tucked inward and tightened, and a dimple forms beside each.", 12, 14),
        # the lip corners are a smile's part, not the upper lip's; lips pushed forward and flared are no tightening;
        # nostrils flared are AU38's, not the nose wrinkled; lids tensed with the eyes kept open are no blink
        ("The corners of the mouth are drawn up and back toward the cheekbones in a broad smile.", 10, 12),
        ("The lips are pushed forward and funnelled outward, their red parts turned out.", 23, 22),
        ("The nostrils dilate and flare wide, as in heavy breathing.", 9, 38),
        ("The lids tense and the lower lid rises, narrowing the eyes without closing them.", 45, 7),
        # a smile's oblique pull toward the cheekbones is no dimpler
        ("The corners of the mouth rise obliquely toward the cheekbones in a wide smile.", 14, 12),
        # the own part named only as staying still is not the part that moves
        ("The outer ends of the eyebrows are lifted high toward the temples while the inner ends stay flat.", 1, 2),
        ("The inner ends of the eyebrows rise, leaving the outer brow tails where they were.", 2, 1),
        ("The outer brow tails lift, keeping the inner ends of the brows untouched.", 1, 2),
    ],
)
def test_a_lookalikes_part_alone_is_wrong_direction(text, au, described):
    assert validate_description(text, FACS[au]) == "wrong_direction", described
    assert validate_description(text, FACS[described]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # both parts named: the own one moves, the lookalike's stays still, is denied or is a companion's
        ("Unlike AU5, the upper lid is not raised; the cheeks lift and crow's feet form beside the eyes.", 6),
        ("Unlike AU6, the cheeks do not move; only the upper lid is raised so more of the eyeball shows.", 5),
        ("The eyes fly open and the brows lift with them, giving a startled look.", 5),
        ("In surprise the brows rise and the upper eyelids lift, so the eyes look wide and staring.", 5),
        ("With AU12, the cheeks rise and the lower eyelids are pushed up, giving a warm, genuine smile.", 6),
        ("The lower lids are pulled up and tensed, so the eyes look focused while the cheeks stay still.", 7),
        ("Together with AU6, the lids tighten while the cheeks lift, as seen in a pained squint.", 7),
        ("Wrinkles form along the bridge and sides of the nose, and the upper lip is drawn up a little.", 9),
        ("Unlike AU9, the nose does not wrinkle; only the upper lip is pulled upward.", 10),
        ("The centre of the upper lip is drawn up into an arch while the lower lip stays in place.", 10),
        ("With AU6, the lip corners rise and crow's feet appear at the eyes, a genuine smile.", 12),
        ("Unlike AU16, the lower lip is not pulled down; the corners of the mouth turn down instead.", 15),
        ("The mouth turns down and the chin puckers, as if about to cry.", 15),
        ("The lower lip is pulled down and out, and the mouth corners stay level.", 16),
        ("With AU15, the chin rises and the lip corners turn down in a sulky pout.", 17),
        ("The lips separate and the mouth opens a little while the jaw stays closed.", 25),
        ("With AU26, the lips part as the jaw drops, leaving the mouth open.", 25),
        ("Unlike AU25, the lips do not just part: the whole jaw drops down.", 26),
        ("The mouth drops open and the lips fall apart.", 26),
        ("The jaw drops as far as it can and the lips are stretched, as in a yawn.", 27),
        ("The lips tighten and draw together over the open jaw.", 8),
        ("Unlike AU12's broad oblique pull, AU13 draws the lip corners up sharply into points.", 13),
        ("The eyes close and stay closed for several seconds, much longer than a blink.", 43),
        ("AU11 pulls the upper lip up and out near the lip corners.", 11),
        ("The lips are tightly sucked in and rolled over the teeth.", 28),
        ("With AU25 and AU26, the tongue is pushed out between the parted lips over the lower teeth.", 19),
        ("The lower lids tighten and a small bulge forms below the lower lids as the cheeks stay still.", 7),
        ("The lips stretch sideways and flatten, and with the platysma the cords of the neck may show.", 20),
        ("The upper lids droop heavily but do not close completely.", 41),
        # the nasolabial furrow is the upper lip raiser's sign; lip corners rising are no lips parting
        ("The upper part of the nasolabial furrow deepens and the nostril wings widen and lift.", 10),
        ("In a laugh the mouth falls open as the jaw drops, and the lip corners rise.", 26),
        ("The furrow from the nostril down toward the lip corner deepens as the upper lip rises.", 10),
        ("The lip corners are drawn in and tightened in a suppressed smile, a small dimple beside each.", 14),
    ],
)
def test_own_part_beside_a_lookalikes_part_passes_the_rules(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a contrast that states the look-alike's movement first and the own AU's after "whereas": the look-alike's
        # clause (it names only the look-alike's code) is not the text's, the own one is (own_clauses)
        ("AU12 lifts the lip corners, whereas AU15 drags them downward.", 15),
        ("AU2 pulls up the outer brow, but AU4 lowers the brows and draws them together.", 4),
        ("AU25 separates the lips with the jaw still, while AU26 lets the jaw drop.", 26),
    ],
)
def test_a_look_alikes_clause_in_a_contrast_is_not_the_texts_own(text, au):
    from augtext.movement import named_aus, own_clauses

    assert validate_description(text, FACS[au]) is None
    own = own_clauses(text, FACS[au])
    assert named_aus(own) == {au}, own
    # a contrast describes both AUs: sent as the look-alike, it passes too (its own clause is then the other one)
    (other,) = named_aus(text) - {au}
    assert validate_description(text, FACS[other]) is None
    assert named_aus(own_clauses(text, FACS[other])) == {other}


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("AU4 pulls the eyebrows down and together, making vertical furrows.", 1),
        ("AU1 and AU4 draw the brows together and up at their inner ends.", 2),
        ("AU15 pulls the lip corners down, unlike a smile.", 12),
    ],
)
def test_another_aus_code_outside_contrasts_and_companions_is_wrong_au(text, au):
    assert validate_description(text, FACS[au]) == "wrong_au"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("Unlike AU12, which pulls the corners up, this movement pulls the lip corners down into an arc.", 12),
        ("Rather than the Lip Corner Puller, which lifts the corners, this action presses the lips into a line.", 12),
        ("As opposed to AU1 (the inner brow raiser), the outer ends of the brows are lifted here.", 1),
        # named: what it describes is the other AU, its text (a contrast stating both, as above, describes both)
        ("Unlike AU12, which draws the corners up, AU20 stretches them straight out toward the ears.", 12),
        ("Unlike AU16, which bares the lower teeth, AU15 pulls the lip corners down over them.", 16),
    ],
)
def test_a_text_set_against_the_au_it_is_sent_as_is_wrong_au(text, au):
    """It describes another movement, named or not; comparing the AU with itself at another level is no such
    contrast (below). Sent as the other AU, the same text is a contrast that style asks for."""
    assert validate_description(text, FACS[au]) == "wrong_au"
    for other in named_aus(text) - {au}:
        assert validate_description(text, FACS[other]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("AU34 keeps the air behind sealed lips; the cheek blow lets it stream out between them.", 33),
        ("AU9 wrinkles the bridge of the nose, while nostril dilation widens the nostril openings.", 38),
        ("AU45 closes both eyes for an instant; a wink shuts one eye while the other stays open.", 46),
        ("AU24 presses the lips together, whereas the Jaw Clencher bulges the masseter at the jaw angle.", 31),
        ("AU43 shuts the eyes completely; Slit leaves a thin line of the eye showing between the lids.", 42),
    ],
)
def test_a_text_naming_its_own_au_by_name_beside_another_code_is_not_wrong_au(text, au):
    """The contrast style often names the look-alike by code and its own AU by name."""
    assert validate_description(text, FACS[au]) is None


def test_its_own_name_in_a_contrast_or_as_a_common_phrase_does_not_name_the_au():
    # a denied or contrasted name is the look-alike's; "the lips part" is a clause, not AU25's name
    assert (
        validate_description("Unlike a blink, AU46 shuts only one eye while the other stays open.", FACS[45])
        == "wrong_au"
    )
    assert (
        validate_description("AU26 lowers the jaw so that the teeth separate and the lips part.", FACS[25])
        == "wrong_au"
    )


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("The masseter relaxes and the jaw drops open, so the teeth come apart.", 31),
        ("The cheeks are sucked in between the teeth, leaving hollows on both sides.", 33),
        ("The cheeks are drawn in against the molars, so the face looks gaunt.", 34),
        ("The cheeks swell and balloon outward with air held behind the lips.", 35),
        ("The nostrils are pinched narrow, the nostril wings drawn in toward the septum.", 38),
        ("The nostril wings flare outward, the openings becoming larger and rounder.", 39),
        ("The upper eyelids are raised so that white shows above the iris.", 41),
        ("The cheeks puff out round, the air held in the mouth behind sealed lips.", 33),  # AU34's
        ("The cheeks swell as air is blown out through the pursed lips, as when cooling soup.", 34),  # AU33's
        ("The tongue sticks out of the mouth between the lips, its tip visible.", 36),  # AU19's
        ("The upper teeth bite down on the lower lip, denting it.", 37),  # AU32's
        ("The eyes close completely and remain shut for several seconds.", 42),  # AU43's
        ("One eye closes for a moment while the other stays open.", 45),  # AU46's
        ("Both eyes close and reopen in a quick flick.", 46),  # AU45's
    ],
)
def test_the_rarer_aus_opposites_and_lookalikes_are_wrong_direction(text, au):
    """AUs 29-46: the cheeks filled vs sucked in, the nostrils flared vs pinched, the jaw clenched vs let drop, the lid
    lowered vs raised (MOVES); air blown out vs held, a tongue bulge vs the tongue shown, the lips wiped vs bitten, a
    slit vs closed eyes, a blink vs a wink (PARTS)."""
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("The teeth are clenched hard and the masseter bulges at the angle of the jaw.", 31),
        ("Air is blown out through the nearly closed lips and the cheeks expand with it.", 33),
        ("The cheeks puff out with air held in the mouth behind closed lips.", 34),
        ("The cheeks are sucked in between the teeth, so hollows appear on both sides.", 35),
        ("The tongue pushes against the inside of the lower lip, raising a bulge under it.", 36),
        ("The tip of the tongue sweeps across the upper lip, leaving it moist.", 37),
        ("The nostril wings flare and the nostrils widen.", 38),
        ("The nostrils are pinched narrow and look slit-like.", 39),
        ("The upper eyelids droop and cover more of the iris, the eyes half open and heavy.", 41),
        ("The lids are lowered until the eye is a narrow slit, almost but not fully closed.", 42),
        ("Both eyes close and reopen at once, the lids meeting only briefly.", 45),
        ("One eye closes and reopens while the other eye stays open.", 46),
    ],
)
def test_the_rarer_aus_own_movements_pass_the_rules(text, au):
    assert validate_description(text, FACS[au]) is None


def test_the_au_compared_with_itself_at_another_level_passes():
    text = "Unlike AU12 at trace level, at level E the lip corners are pulled far up and back into a broad smile."
    assert validate_description(text, FACS[12]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("Brow lifts are a cosmetic procedure that raises sagging eyebrows and smooths the forehead lines.", 1),
        ("Botox injected between the eyebrows relaxes the frown lines there for three to four months.", 4),
        ("A chin implant projects the chin forward and upward and balances a weak jawline in profile.", 17),
        ("Mascara brushed from the roots upward makes the lashes look longer and opens up the eyes.", 5),
        ("Plucking the hairs under the outer brows raises their arch and makes the eyes look more open.", 2),
        ("Eyebrow shapes go in and out of fashion every few years.", 2),
        ("Cheek dimples are an inherited trait linked to a variation in the cheek muscle.", 14),
        ("Forehead lines grow deeper with age as the skin thins and loses its elasticity.", 1),
        ("Older skin sags around the mouth, so the lip corners droop even at rest.", 15),
        ("A horse curls its upper lip up to draw scents toward a special organ in its nose.", 10),
        ("Most monkeys bare their teeth with the lips pulled back as a sign of fear.", 12),
        ("At the vet, the dog's lips pull back over its teeth.", 10),  # an animal's part after an opening phrase
        ("Keep your chin up is an idiom for staying hopeful in hard times.", 17),
        ("Raising an eyebrow at something means treating it with suspicion.", 2),
        ("Bell's palsy can leave one lip corner drooping down for weeks.", 15),
        ("A fractured jaw is wired shut so the mouth cannot open while it heals.", 26),
        ("Massage the masseter in small circles to ease the tension of teeth grinding.", 26),
        ("Short upward strokes of eyebrow pencil along the outer brow make sparse tails look fuller.", 2),
        # a muscle's embryology, the origin of its name, what pierces it
        ("The mentalis develops from the mesoderm of the second pharyngeal arch, as do its neighbours.", 17),
        ("The zygomaticus major takes its name from the zygomatic bone, whose arch joins face and skull.", 12),
        ("The risorius was named from the Latin risus, laughter, and is thin or absent in many people.", 20),
        ("The buccinator is pierced by the parotid duct and helps keep food between the teeth.", 14),
        # the face's evolution and inheritance, how often a movement is made and what it does for the eye
        ("Among primates only modern humans have a bony chin; it evolved in our own species.", 17),
        ("People blink about 15 times per minute, less often while reading a screen.", 45),
        ("Every blink spreads the tear film over the cornea and keeps the eye moist.", 45),
    ],
)
def test_what_is_done_to_a_face_is_off_topic(text, au):
    """Cosmetics, surgery, grooming, massage, products, inherited looks, ageing, illness, a muscle's history, an
    animal, an idiom: they name the part and even a change, and describe no facial action of a person."""
    assert validate_description(text, FACS[au]) == "off_topic"


def test_a_muscles_history_beside_its_action_and_a_pencil_thin_line_are_descriptions():
    text = "The zygomaticus major, which takes its name from the cheekbone, pulls the lip corners up and back."
    assert validate_description(text, FACS[12]) is None
    text = "Whereas AU9 lowers the brows only as a by-product of wrinkling the nose, AU4 pulls them down and together."
    assert validate_description(text, FACS[4]) is None
    text = "The corrugator supercilii, in Latin the wrinkler of the brow, draws the brows down and together."
    assert validate_description(text, FACS[4]) is None
    assert validate_description("The lips are pressed into a pencil-thin line, firm and pale.", FACS[24]) is None
    # a blink's movement is its brevity, whichever eyes the text names
    for text in (
        "Both eyes close and reopen in a fraction of a second, spreading the tear film over the cornea.",
        "The lids close and reopen quickly, about 15 times per minute.",
    ):
        assert validate_description(text, FACS[45]) is None


def test_an_animal_in_a_simile_or_a_word_said_is_no_subject():
    text = "Like a dog about to snarl, the upper lip is drawn up and the upper teeth are bared."
    assert validate_description(text, FACS[10]) is None
    text = "The lips push forward and flare into a funnel, as if saying 'oo'."
    assert validate_description(text, FACS[22]) is None
    text = "The upper lip curls up like a dog's snarl, baring the canine teeth."
    assert validate_description(text, FACS[10]) is None
    text = "The lips pull back as a dog's would when it snarls, and the upper teeth show."
    assert validate_description(text, FACS[10]) is None


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        ("The frontalis is supplied by the temporal branch of the facial nerve.", 1, "no_change"),
        ("The mentalis receives its blood from the inferior labial artery and lies over the chin.", 17, "no_change"),
        # where the muscle starts and ends, and how it got its name: anatomy, not an action
        (
            "The mentalis arises from the incisive fossa of the mandible and inserts into the skin of the chin.",
            17,
            "no_change",
        ),
        ("The depressor anguli oris is also known as the triangularis muscle of the face.", 15, "no_change"),
        ("The tongue is a muscular organ that helps with taste and speech.", 19, "no_change"),
        # the nerve beside a movement: the movement is the text's
        ("Signals along the facial nerve make the zygomaticus major pull the lip corners up.", 12, None),
        ("The zygomaticus major, which arises from the cheekbone, pulls the lip corners up and back.", 12, None),
        # the muscle alone, no supply: the anatomical style's change
        ("In AU17 the work is done by the mentalis, a small muscle of the chin.", 17, None),
    ],
)
def test_a_muscles_nerve_or_blood_supply_is_no_change(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


def test_the_lip_stretchers_muscle_is_no_rise():
    """ "risorius" is not "rise": the lip stretcher sent as AU12 states its sideways pull and no rise."""
    text = "The risorius pulls the lip corners horizontally toward the ears, flattening the lips without an upward arc."
    assert validate_description(text, FACS[12]) == "wrong_direction"
    assert validate_description(text, FACS[20]) is None


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"sentence_1": A, "sentence_2": B}),  # numbered descriptions in an object
        json.dumps({"1": A, "2": B}),
        f"[\u201c{A}\u201d, \u201c{B}\u201d]",  # typographic quotes
        f"1. **{A}**\n2. *{B}*",  # markdown emphasis
        f"Sure! Here you go:\n\n- __{A}__\n- {B}",
    ],
)
def test_parse_more_answer_shapes(raw):
    assert parse_response(raw) == [A, B]


A2, B2 = A.split(" are pulled "), B.split(" appear ")  # each text cut in two, for items over two lines


@pytest.mark.parametrize(
    "raw",
    [
        # list items over several lines: indented, or going on in lower case; a blank line between items
        f"1. {A2[0]}\n   are pulled {A2[1]}\n2. {B2[0]}\n   appear {B2[1]}",
        f"1. {A2[0]}\nare pulled {A2[1]}\n\n2. {B2[0]}\nappear {B2[1]}\n\nHope this helps!",
        f"descriptions:\n  - >-\n    {A2[0]}\n    are pulled {A2[1]}\n  - >-\n    {B2[0]}\n    appear {B2[1]}",  # YAML
        # other markers: dashes and dots of every kind, no space after a number, "1 -", bold numbers, letters, tabs
        f"\u2014 {A}\n\u00b7 {B}",
        f"\u25e6 {A}\n\u25aa {B}",
        f"1.{A}\n2.{B}",
        f"1 - {A}\n2 - {B}",
        f"**1.** {A}\n**2.** {B}",
        f"a) {A}\nb) {B}",
        f"1\t{A}\n2\t{B}",
        # labels before the text: the item's name, the AU's code, a bold title with a dash
        f"Description 1: {A}\nDescription 2: {B}",
        f"1. Description: {A}\n2. Description: {B}",
        f"- AU1: {A}\n- AU1 (Inner Brow Raiser) - {B}",
        f"1. **Brow shape** \u2013 {A}\n2. **Forehead** \u2013 {B}",
        json.dumps([f"AU1: {A}", f"AU1: {B}"]),
        # HTML, CSV, markdown headings over each item
        f"<ol>\n  <li>{A}</li>\n  <li><b>{B}</b></li>\n</ol>",
        f"<ul><li>{A}<li>{B}</ul>",
        f'id,description\n1,"{A}"\n2,"{B}"',
        f"### Description 1\n{A}\n\n### Description 2\n{B}",
        # JSON: keys in any case, one wordy field, style names with one string each, a list written as one string,
        # // comments, the prompt's example echoed before the answer
        json.dumps([{"Description": A}, {"DESCRIPTION": B}]),
        json.dumps([{"index": 0, "sentence_text": A}, {"index": 1, "sentence_text": B}]),
        json.dumps({"appearance": A, "anatomical": B}),
        json.dumps({"descriptions": f"1. {A}\n2. {B}"}),
        f'[\n  // the brows\n  "{A}",\n  "{B}" // the forehead\n]',
        f'Write 2 descriptions as a JSON list, e.g. ["When AU1 shows, the brows rise."]\n\nAnswer:\n["{A}", "{B}"]',
    ],
)
def test_parse_list_shapes_llms_write(raw):
    assert parse_response(raw) == [A, B]


@pytest.mark.parametrize(
    "raw",
    [
        f'1. "{A}" - this one describes the visible change.\n2. "{B}" (the muscle)',  # a comment after the quote
        f"descriptions:\n  - text: {A}\n    words: 11\n    level: A\n  - text: {B}\n    words: 9",  # YAML items
        f"1. Visible change: {A}\n2. Muscle action: {B}",  # plain labels
        json.dumps([f"{A[:-1]} (AU1).", f"{B[:-1]} [AU1]."]),  # the AU's tag after the text
        json.dumps([f"{A} (Inner Brow Raiser)", B]),
    ],
)
def test_what_a_model_adds_around_a_text_is_not_kept_with_it(raw):
    """Seen from a scripted vLLM server (user test 50): each was kept glued to the text, or (the bracketed tag)
    dropped as markup."""
    assert parse_response(raw) == [A, B]
    assert all(validate_description(t, FACS[1]) is None for t in parse_response(raw))


def test_a_level_before_the_text_is_no_label():
    raw = "1. Trace: The inner brows barely lift.\n2. Level B: the inner brows rise a little."
    assert parse_response(raw) == ["Trace: The inner brows barely lift.", "Level B: the inner brows rise a little."]


def test_a_text_that_only_sets_another_au_apart_says_no_change():
    """ "Not to be confused with AU12, where the lip corners are pulled up." sent as AU15 says nothing of AU15."""
    assert validate_description("Not to be confused with AU12, where the lip corners are pulled up.", FACS[15]) == (
        "no_change"
    )
    text = "Not to be confused with AU12: here the lip corners are pulled down into an arc."
    assert validate_description(text, FACS[15]) is None


def test_intensity_levels_heading_lines_stay_in_the_text():
    """ "(A) ..." heads an intensity level's line: the lines are a list, each keeping its level."""
    raw = f"(A) {A}\n(B) {B}"
    assert parse_response(raw) == [f"(A) {A}", f"(B) {B}"]


def test_markdown_emphasis_does_not_hide_talk_about_the_answer():
    assert validate_description("**Certainly! Here are five sentences about AU12.**", AU12) == "garbage"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("Sure, so AU 15 comes from the depressor anguli oris.", "So AU 15 comes from the depressor anguli oris."),
        ("**Certainly! The lip corners are pulled up.**", "The lip corners are pulled up."),
        ("Great question! The brows are drawn down.", "The brows are drawn down."),
        ("Now, if we look at the chin, it is pushed up.", "If we look at the chin, it is pushed up."),
        ("Honestly AU9 wrinkles the nose.", "Honestly AU9 wrinkles the nose."),  # no comma: part of the text
        ("Sure, here are five sentences about AU6:", "Here are five sentences about AU6:"),
    ],
)
def test_a_chatty_opener_is_no_part_of_the_description(raw, kept):
    """A chat model's opener ("Sure,", "Honestly,", "Great question!") is cut; what is left is judged as it stands,
    and talk about the answer stays garbage."""
    assert clean_text(raw) == kept
    verdict = validate_description(raw, FACS[6] if "AU6" in raw else AU12)
    assert (verdict == "garbage") == ("here are" in raw)


def test_a_lid_covering_the_iris_is_not_the_upper_lid_raiser_stated():
    """The upper lid raiser (AU5) shows more of the iris; a lid that rises or falls to cover part of it says where a
    movement goes, not AU5's part. The gate then does not count AU5 against a lid tightening that says so."""
    from augtext.movement import states_own_movement

    assert not states_own_movement("The lower lid pushes up to cover part of the iris.", FACS[5])
    assert not states_own_movement("The lower eyelid is raised, covering part of the lower iris.", FACS[5])
    assert states_own_movement("The upper lid is raised, exposing the top of the iris.", FACS[5])
    assert (
        validate_description("The lower lid pushes up to cover part of the iris and the eye narrows.", FACS[7]) is None
    )


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("The furrow beside the lip corners deepens as they are pulled up toward the", 12),
        ("The lips take a downturned shape. The skin below the lip corners may", 15),  # a real SmolLM2 answer's end
        ("The inner brows are pulled upward by the frontalis and", 1),
        ("The lip corners are drawn up and back, deepening the folds of", 12),
        ("The inner ends of the eyebrows rise as the medial frontalis contracts, which", 1),
        ("The brows are lowered and drawn together (", 4),
    ],
)
def test_a_text_that_breaks_off_is_cut_off(text, au):
    """Otherwise a good description: only its end is wrong."""
    assert breaks_off(text)
    assert validate_description(text, FACS[au]) == "cut_off"


@pytest.mark.parametrize(
    "text",
    [
        "The inner ends of the eyebrows are drawn up",  # particles a description ends on
        "The brows are lowered and drawn in",
        "The lips are pressed together and the corners pushed out",
        "The lip corners are pulled down further than that",
        "Level A: the lip corners lift slightly. words: 9 level: A",  # a level letter, not the article
        "The inner brows rise toward the.",  # a full stop ends it, whatever precedes (not this rule's business)
    ],
)
def test_a_text_that_ends_on_a_word_a_sentence_may_end_on_is_not_cut_off(text):
    assert not breaks_off(text)


def test_the_text_an_answer_breaks_off_in_is_found_by_its_end():
    raw = '["The brows rise.", "The inner brows are pulled up by the medial fron'
    texts = parse_response(raw, cut=True)
    assert texts == ["The brows rise.", "The inner brows are pulled up by the medial fron"]
    assert ends_at_cut(raw, texts[-1]) and not ends_at_cut(raw, texts[0])
    assert not ends_at_cut("1. The brows rise.\n2. The inner brows lift.", "The inner brows lift.")  # it ended
    with pytest.raises(ParseError, match="malformed_json"):  # not said to be cut: strict parsing still refuses it
        parse_response(raw)
    assert parse_response('["The brows rise.", "', cut=True) == ["The brows rise."]  # nothing of the next one yet
    assert parse_response(raw, lenient=True, cut=True) == texts  # --lenient: the same, the unfinished one last
    prose = '["The inner brows rise toward the forehead and'  # no finished string: lenient reads it as before
    assert parse_response(prose, lenient=True, cut=True) == parse_response(prose, lenient=True)
    assert parse_response(prose, cut=True) == ["The inner brows rise toward the forehead and"]  # strict: the string


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a neighbour's degree of the same movement (DEGREES)
        ("The upper eyelids droop slightly, so the eyes look sleepy but remain open.", 43),  # AU41's
        ("The lids lower until the eyes are just a slit, a sliver of the iris showing between them.", 43),  # AU42's
        ("The mouth is stretched wide open as the jaw is pulled down strongly, the lips taut.", 26),  # AU27's
        ("The jaw simply hangs loose, the mouth slack and a little open.", 27),  # AU26's
        ("The eyelids are shut for a sustained period, the eyes completely covered.", 45),  # AU43's
        # described as one AU, called by the neighbour's name in lower case
        ("The cheeks swell while the lips stay pressed shut, keeping the air in; this is the cheek blow.", 33),
        ("The lips are parted, but the jaw stays in place; this is the jaw drop action.", 26),
        ("In Blink, the eyelids stay closed for several seconds as if asleep.", 45),
        ("The upper lids drop, cover the eyes and remain closed for a while; this is the blink action.", 45),
        ("The lids almost meet, leaving a thin line of the eye between them.", 43),  # AU42's: "almost" is short of it
        ("Slit: the upper lids come all the way down and cover the eyes entirely, as in sleep.", 42),  # AU43's
        ("The jaw is yanked down well past a relaxed opening, the mouth strained wide open.", 26),  # AU27's
        ("The masseter lets go and the jaw sags under its own weight, a moderate gap between the teeth.", 27),  # AU26's
        ("The jaw is actively pulled down, so the mouth gapes wide and the skin around it tightens.", 26),  # AU27's
        # two parts kept still together: neither is the part that moves (AU25's lips, not AU26's jaw)
        ("A thin gap opens between the lips as they relax, but the chin and mandible remain at rest.", 26),
        ("Only one eyelid comes down and goes up again while the other eye keeps looking ahead.", 45),  # AU46's
        ("Both upper eyelids sweep down together and lift again at once.", 46),  # AU45's
    ],
)
def test_a_neighbours_degree_or_a_name_the_text_calls_it_by_is_wrong_direction(text, au):
    """The jaw's and lids' neighbours differ by how far or how long the same movement goes (AU26 let drop vs AU27
    pulled wide; AU41/42 short of closure vs AU43 closed; AU43 kept vs AU45 brief); a text that states only the
    neighbour's, or describes one AU and calls it by the neighbour's name ("this is the cheek blow"), is wrong."""
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("The upper lids droop until they meet the lower lids and the eyes stay closed.", 43),
        ("At level A (trace), the upper eyelids sit just lower than at rest, the eyes still open.", 43),  # FACS 2002
        ("The jaw drops open as its muscles relax, leaving a gap between the teeth without stretching the lips.", 26),
        ("The jaw is pulled far down, the mouth much wider than in a relaxed jaw drop.", 27),
        ("The eyes close and reopen at once; unlike eyes kept shut for a while, a blink is brief.", 45),
        ("When one eye closes and reopens while the other eye remains open, it is a wink, not a blink.", 46),
        ("The lids lower until the eye is a narrow slit, almost but not completely shut.", 42),
        ("The mouth opens far wider than a relaxed jaw drop, the jaw pulled down hard.", 27),
        ("Both eyes close and open again in a fraction of a second.", 45),
        ("The mouth opens a little, while the jaw and teeth stay where they are.", 25),
    ],
)
def test_the_own_degree_passes_beside_a_neighbours_in_a_contrast_or_a_stated_level(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("The lowered, knitted brows combine with pressed lips (AU24) and tensed lower lids.", 4),
        ("The lids tense and the eye opening narrows, while the lips are pressed together by AU24.", 7),
        ("In grief the lip corners turn down, together with the inner brow raise of AU1.", 15),
        ("One mouth corner tightens into a dimple, sometimes with a trace of AU12 on the same side.", 14),
    ],
)
def test_a_companion_named_by_code_after_its_movement_is_context_not_wrong_au(text, au):
    """The context style asks for companions; a model names one by code after describing it ("pressed lips (AU24)",
    "pressed together by AU24", "the inner brow raise of AU1") as often as before ("together with AU6, ...")."""
    assert validate_description(text, FACS[au]) is None


def test_corners_that_sink_are_pulled_down_unless_they_sink_in():
    """Mouth corners that "sink" state AU15's movement (so the gate does not count AUs whose movement the text does not
    state against it); the dimpler's corners that "sink into small dimples" or "sink inward" do not."""
    from augtext.movement import states_own_movement

    assert states_own_movement("The mouth corners sink and the lips stretch a little, a glum look.", FACS[15])
    assert not states_own_movement("An observer notices the lip corners sink into small dimples.", FACS[15])
    assert not states_own_movement("The lip corners firm and sink inward as a dimple deepens.", FACS[15])


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a name ending in an agent noun is a name in lower case too: its "lower lip" or "lip corner" is no part the
        # text moves, and what the text moves is the look-alike's part
        ("The lip corner depressor pulls the middle of the lower lip down, baring the lower teeth.", 15),
        ("In the upper lip raiser, the lip corners are pulled up sharply into points and the cheeks puff out.", 10),
        ("The lower-lip depressor draws the lip corners down into an arch.", 16),
    ],
)
def test_a_lower_case_name_is_no_part_the_text_moves(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a clause that names no AU but states the movement of a companion the text names by code is the
        # companion's: the brows lowering is AU4's, not a look-alike's part that AU6 moves
        ("Paired with AU4 and AU9 in a face of pain, the cheek raiser squeezes the eyes while the brows lower.", 6),
        ("When AU5 joins AU4, the eyes glare: the brows come down, yet the upper lids are still pulled up.", 5),
        # parts kept smooth, and the AU set apart from a look-alike, are not what the text moves
        (
            "The lid tightener keeps the cheeks and the outer eye corners smooth, which separates it from a cheek "
            "raise with its crow's-feet creases.",
            7,
        ),
        # a parting of the lips is a movement ("parts of the face" is not)
        (
            "AU25 differs from AU27: the mouth stretch pulls the jaw far down, whereas AU25 is only a parting of the "
            "lips.",
            25,
        ),
    ],
)
def test_a_companions_clause_and_a_part_kept_smooth_are_not_the_texts_part(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # both lips pressed, tightened or funnelled, the chin and lower lip left out: the lips' AUs (23, 24, 22), not
        # the chin raiser's or the lower lip depressor's
        ("The lips are pressed together tightly.", 17),
        ("Unlike AU16, which pulls the lower lip down, AU17 tightens and thins the lips without moving the chin.", 17),
        ("The lower lip depressor stretches both lips out sideways toward the ears, flattening the mouth.", 16),
        # lip corners drawn down are AU15's, not the lip stretcher's
        ("AU12 lifts the lip corners, whereas AU20 pulls them down toward the jaw in a frown.", 20),
        ("The lip corners are pulled downward and the chin wrinkles under them.", 20),
        # lips pushed against each other are pressed (AU24), not tightened
        ("Unlike AU20, which stretches the lips sideways, AU23 pushes them firmly against each other.", 23),
        # corners pulled straight out toward the ears are the lip stretcher's, not the lip corner depressor's; the
        # lower lip lowered is the lower lip depressor's, not the lip stretcher's
        ("C (marked): the lips are stretched laterally, the corners pulled straight out toward the ears.", 15),
        ("The lower lip is lowered and stretched, and the chin skin may flatten.", 20),
        # a smooth oblique pull "gently up and back" is the smile's, not the sharp lip puller's; "a smooth line" is
        # no part kept still, and a part named only in a denied clause ("no cheek puffing") is not the text's
        (
            "AU14 tucks the corners in, whereas AU13 pulls them gently up and back along a smooth oblique line, with "
            "no cheek puffing at all.",
            13,
        ),
    ],
)
def test_a_look_alikes_lips_or_direction_is_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # the lower lip as "the bottom lip", "the lip" after it is named, "the lower front teeth"
        ("The bottom lip drops away from the teeth and stretches a bit sideways, so the lower front teeth show.", 16),
        (
            "Whereas AU26 drops the jaw and carries the lower lip with it, AU16 lowers the lip on its own, pulling it "
            "away from the teeth.",
            16,
        ),
        ("The mentalis pushes the chin boss up, so the lower lip pouts and the lips press together.", 17),
        ("The lip corners are stretched sideways and slightly down, the lips flattened against the teeth.", 20),
        ("The lips tighten and narrow, their red margins thinning, while pressing slightly together.", 23),
        ("The lower lip is stretched horizontally, and small bulges may appear below the lip corners.", 15),
        ("The lower lip is stretched a little sideways as the corners turn down, a sad, pouting look.", 15),
    ],
)
def test_the_own_part_beside_a_look_alikes_lips_passes(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a brow raise told only at the eyes, whatever it is called: the upper lid raiser's movement
        (
            "In surprise, the outer brow raiser widens the eyes by lifting the upper eyelid, exposing white above "
            "the iris.",
            2,
        ),
        ("The upper eyelids lift and the eyes look enlarged, white above the iris; this is the inner brow raiser.", 1),
        # the brows lowered and knit with the nose left out: the brow lowerer's, not the nose wrinkler's
        (
            "This action unit lowers and draws the brows together, producing vertical furrows, with no change to "
            "the nose.",
            9,
        ),
        # the orbital part of the orbicularis oculi is a muscle's name, not the cheek or the eye's surround
        (
            "The orbital part of the orbicularis oculi tenses the lids and draws the lower lid up, narrowing the "
            "eye slit while the cheek stays still.",
            6,
        ),
        # both lips pressed or funnelled are not the dimpler's corners
        (
            "When the buccinator contracts, the lips are pressed firmly together and bulges form above and below "
            "the lip red.",
            14,
        ),
        ("The lips are drawn toward each other while the mouth stays slightly open.", 14),
        # the chin pushed up is the chin raiser's, not the lip tightener's
        ("When angry, the lip tightener pushes the chin boss up so the lower lip rises and the chin wrinkles.", 23),
        # corners pulled up sharply into points with the cheeks puffed: the sharp lip puller's shape, not the smile's
        ("The lip corners are pulled up steeply into sharp little points while the cheeks puff out beside them.", 12),
        ("The cheeks puff out as the lip corners are pulled up sharply, while the lips are not drawn back far.", 12),
        # a two-word name as the subject of a verb is a noun: "the jaw drop stretches" drops no jaw
        (
            "Unlike the lips part action, the jaw drop stretches the mouth open as wide as possible, pulling the "
            "lower jaw far down.",
            26,
        ),
    ],
)
def test_a_look_alikes_region_or_a_name_as_subject_is_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        (
            "The skin of the upper eyelid fold is stretched upward at the outer corner, exposing more of the eye cover "
            "fold.",
            2,
        ),  # the fold AU2 stretches is no lid raised
        ("In surprise the brows rise and the upper lids lift, so white shows above the iris.", 1),
        ("AU9 lowers the inner brows as a side effect, but unlike AU4 it also wrinkles the nose.", 9),
        (
            "The lip corners tighten and sink into the cheeks, a small dimple beside each, the lips pressed a little.",
            14,
        ),
        (
            "A unilateral AU14, maybe with a slight AU12 on the same side, gives the one-sided tight smirk of "
            "contempt.",
            14,
        ),
        ("The lips tighten and narrow, and with AU17 the chin boss pushes up beneath them.", 23),
        ("A jaw drop can occur with the lips closed, the teeth parted behind them.", 26),
        ("The lip corners are pulled up and back in a broad smile, and the cheeks puff up a little.", 12),
        ("The zygomaticus major pulls the corners obliquely up toward the cheekbones, sharply at high intensity.", 12),
    ],
)
def test_the_own_region_beside_a_look_alikes_passes(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a pronoun after a look-alike's part in the own clause refers to that part
        ("AU12 lifts the corners, whereas AU14 presses the lips firmly together, making them thin.", 14),
        # the jaw dropped, the lips parted: not the lip stretcher's; lips sucked over the teeth: not the tightener's
        ("In fear, the risorius drops the jaw and parts the lips.", 20),
        ("Lip tightener: the lips are sucked into the mouth over the teeth.", 23),
        # a smile named as the setting is no lip corner moving; bags below the lids are the cheek's
        ("In a smile, AU12 raises the cheeks and gathers crow's feet at the outer eye corners.", 12),
        ("At level E of AU7 the cheeks are pushed up hard, with deep crow's feet and strongly bagged lower lids.", 7),
        # a name as a heading is a name
        ("With lips part, the jaw is actively pulled far down and the mouth stretched wide open.", 25),
    ],
)
def test_a_look_alikes_part_beside_a_pronoun_a_setting_or_a_heading_is_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("AU7 narrows the eyes in anger, alongside the lowered brows of AU4, producing a hard, focused stare.", 7),
        ("A one-sided AU14, perhaps with a trace of AU12 on the same side, is the typical smirk of contempt.", 14),
        ("AU24 with AU17 gives a tight-lipped, clenched look of holding back anger.", 24),
        ("The lips stretch sideways and part a little as the jaw drops in a scream of fear.", 20),
        ("The lip edges roll in slightly and thin, the lips tightened over the teeth.", 23),
        ("In a broad smile the lip corners are pulled up and back toward the cheekbones.", 12),
        # "peak intensity" and a sharp rise are no sharp lip pull's pointed corners
        ("At peak intensity the lip corners rise sharply and the cheeks lift.", 12),
    ],
)
def test_a_glare_a_smirk_tight_lips_and_the_own_part_in_a_setting_pass(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # an emotion's AUs listed with the companions' codes in parentheses, the own AU's movement uncoded
        ("Sadness: inner brows up (AU1), brows knit (AU4) and the mouth corners pulled down, a downcast face.", 15),
        ("Anger: lowered brows (AU4), tense glaring lids (AU7) and tight, thinned lips.", 23),
        ("Surprise: brows raised (AU1+2), eyes widened (AU5), jaw dropped.", 26),
        # the own AU called "this AU" in a contrast's own clause
        ("AU1 tilts the brows up at their inner ends, whereas this AU raises the outer portions of the brows.", 2),
    ],
)
def test_companions_labelled_by_code_and_this_au_in_a_contrast_pass(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a label's code with nothing of the own AU's movement beside it is still another AU's text
        ("The brows are lowered and drawn together (AU4), creating vertical furrows.", 1),
        # the own AU named in a "whereas" clause by its name: that clause is the text's own
        ("AU9 wrinkles the nose, whereas upper lip raiser pushes the chin and lower lip up, wrinkling the chin.", 10),
        # a part left unwrinkled, or unchanged after a comma, is not the part that moves
        ("AU4 knits the brows, whereas AU9 pulls the upper lip up and leaves the nose bridge unwrinkled.", 9),
        (
            "Happiness, AU12: the cheeks push up, lower-lid bags form and crow's feet appear, the mouth itself "
            "unchanged.",
            12,
        ),
        ("AU26: the lips part while the teeth stay together, the jaw not moving.", 26),
        # the nose is no cheek raiser's part; the lips stretched to the sides are no lip corner depressor's
        (
            "With AU12 in a smile, orbicularis oculi shows as the nose wrinkling along its bridge and the nostrils "
            "lifting.",
            6,
        ),
        ("Lip corner depressor: the lips stretch to the sides and flatten, the mouth elongated.", 15),
        # a muscle named is not the part that moves: the lower lip and the chin are the look-alikes'
        ("Compared with AU17, the triangularis draws the lower lip down and slightly out, baring the lower teeth.", 15),
        ("Unlike AU24, orbicularis oris in this action pushes the chin up and wrinkles it, lifting the lower lip.", 23),
        ("lip pressor, in anger with AU4: the chin boss pushes up and the chin skin wrinkles like orange peel.", 24),
        # a name as a heading
        ("Jaw drop: the mouth is stretched wide open by an active pull of the jaw, the lips drawn tight.", 26),
        ("Level C of jaw drop: the lips are clearly pressed tight together.", 26),
    ],
)
def test_a_label_a_name_or_a_still_part_does_not_save_a_look_alikes_text(text, au):
    assert validate_description(text, FACS[au]) is not None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # threading, exercise and a chin-up are no facial action; a bone that forms a wall moves nothing
        ("Eyebrow threading removes unwanted hair by twisting a thin cotton thread along the brow line.", 1),
        ("A chin-up is a bodyweight exercise in which you pull yourself up to a bar with your palms facing you.", 17),
        ("The zygomatic bone forms the prominence of the cheek and part of the lateral wall of the orbit.", 12),
    ],
)
def test_grooming_exercise_and_bones_are_not_facial_actions(text, au):
    assert validate_description(text, FACS[au]) in {"off_topic", "no_change"}


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("Lip pressor: the lips are sucked into the mouth over the teeth until their red parts disappear.", 24),
        (
            "AU13 (cheek puffer) pulls the lip corners up and back at a moderate angle, with no puffing of the cheeks.",
            13,
        ),
        ("AU41 closes the eyes completely and keeps them closed, with the upper lids relaxed.", 41),
    ],
)
def test_a_dimple_a_lip_suck_an_old_name_and_shut_eyes_are_look_alikes(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("Threading a needle, a person may stick the tongue tip out between the lips in concentration.", 19),
        ("Wrinkles form across the bridge of the nose as it is pulled up.", 9),
        ("The upper lids droop and hang heavily, the eyes half open and sleepy.", 41),
        ("In a broad smile the lip corners rise up and back, and a dimple may show in the cheek.", 12),
        # contempt's one-sided pull with a dimple beside it (AU12 with AU14) is the lip corner puller's too
        ("A one-sided pull of the lip corner, with a dimple beside it, shows contempt.", 12),
    ],
)
def test_a_needle_forming_wrinkles_a_droop_and_a_smiles_dimple_pass(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # the own AU by name after a look-alike's clause: its clause, not a companion's
        ("Compared with AU1, which lifts the outer brow, the Outer Brow Raiser raises the inner brow corners.", 2),
        ("Unlike AU24, which only thins the lips, the Lip Tightener presses the lips hard against each other.", 23),
        # both lips, the brows, the corners of the lips, an eye 'opening', a hard stare: the look-alike's
        ("The chin raiser presses the upper and lower lips firmly together.", 17),
        ("In anger, the lid tightener draws the brows down and together, furrowing the glabella.", 7),
        ("In this AU the corners of the lips are drawn up and back toward the cheekbones.", 10),
        ("When the upper lid raiser acts, the lids tighten and the lower lid rises, narrowing the eye opening.", 5),
        ("Unlike AU14, which lifts the corners, AU12 tightens the corners and forms dimples.", 12),
        ("At level C of the dimpler, the lip line angles down into a frown.", 14),
        ("The nose wrinkler draws the brows together and down above an unlined nose.", 9),
        ("In a genuine smile, AU12 is the lifting of the cheeks and crow's feet at the outer corners of the eyes.", 12),
        (
            "Unlike AU6, which tightens the lid margins, AU7 raises the cheeks, pushing skin against the lower lid.",
            7,
        ),
        ("In Slit, the upper eyelid rises to reveal sclera above the iris.", 42),
        ("In the outer brow raiser, the lateral frontalis lowers the brow tails, flattening the arch.", 2),
        ("The Lip Presser pushes the chin boss upward and wrinkles the chin.", 24),
        ("At level C of AU20, the lip corners are pulled downward and the lower lip stretches into an inverted U.", 20),
        ("In AU26 the lips separate while the teeth stay together, so the mandible remains in place.", 26),
    ],
)
def test_a_look_alikes_movement_under_the_own_name_a_dash_or_a_still_clause_is_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("In AU6 the palpebral part of the orbicularis oculi tightens the lids, with little change in the cheeks.", 6),
        ("The paired nasal bones meet at the midline to form the bridge of the nose.", 9),
        ("The mental protuberance of the mandible shapes the chin.", 17),
        ("The skin of the upper eyelid is among the thinnest on the body.", 5),
    ],
)
def test_a_still_cheek_bones_that_meet_and_the_thinnest_skin_are_not_the_aus_movement(text, au):
    assert validate_description(text, FACS[au]) is not None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        (
            "In anger, the lid tightener often appears with AU4 and AU23, giving a hard stare with lowered brows, "
            "narrowed eyes and tightened lips.",
            7,
        ),
        ("Anger pairs AU4 with AU5, AU7 and AU23 \u2014 a lowered, knotted brow over glaring eyes and tight lips.", 4),
        (
            "In pain, AU6 co-occurs with AU4 and AU7 \u2014 the cheeks lift, the brows lower, the eyes squeeze.",
            6,
        ),
        (
            "Whereas AU27 pulls the jaw down forcibly, Jaw Drop is a passive opening in which the lips stay slack.",
            26,
        ),
        ("Compared with AU1+2, AU1 alone leaves the brow tails where they are, so the wrinkles stay in the centre.", 1),
        ("With AU42 the upper lids sag so far that only a thin slit of the eye remains visible.", 42),
        ("When someone is happy, the Lip Corner Puller shapes the mouth into a smile.", 12),
        ("This AU differs from AU4: instead of lowering the brows, it pulls the inner brow corners upward.", 1),
        ("This action unit differs from AU28 because the lips are pressed together, not pulled in over the teeth.", 24),
    ],
)
def test_the_own_name_beside_companions_a_dash_and_this_au_differing_pass(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a part that does not move after a comma, or left free of wrinkles, is no own part
        ("Cheek raiser tightens the eyelids and the lower lid bulges, cheeks do not move.", 6),
        (
            "The nose wrinkler raises the upper lip, leaving the nasal root and sides of the nose free of wrinkles.",
            9,
        ),
        # the look-alike's part or direction: the lower lip for AU9, straight out or flat for AU12, pulled down for
        # AU14, to the side for AU15
        ("In disgust the nose wrinkler pulls the lower lip down and out so the bottom teeth show.", 9),
        ("The lip corner puller pulls the lips straight out to the side so the mouth looks flat.", 12),
        ("That smug look is the dimpler: one side of your mouth pulls straight down at the corner.", 14),
        ("The lip corner depressor stretches the lips to the side so the mouth becomes long.", 15),
        # a dimple that pops up raises nothing; a sharp pull with puffed cheeks at a stated level is AU13's
        ("With AU12 your mouth corners tuck in tight and a little dimple pops up beside each one.", 12),
        ("At intensity C, the Lip Corner Puller makes a sharp upward pull of the corners, the cheeks puffed out.", 12),
        # a name beside its code, as the opening subject or after a level moves nothing; "and in AU26" is AU26's
        ("Lips part AU25 press the lips tight together so the mouth is closed.", 25),
        ("Jaw drop is just your lips coming apart a little while your teeth stay together.", 26),
        ("At level E of jaw drop the jaw is pulled up hard and the teeth clench together.", 26),
        ("AU25 differs from AU26 because in AU25 the jaw drops down and in AU26 only the lips open.", 25),
    ],
)
def test_a_part_left_still_a_name_as_subject_and_a_sharp_pull_at_a_level_are_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


def test_the_palpebral_part_of_your_orbicularis_is_the_lid_tighteners_muscle():
    text = "The cheek raiser comes from the palpebral part of your orbicularis oculi, which lifts your cheeks."
    assert validate_description(text, FACS[6]) == "wrong_muscle"


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        (
            "Unlike a relaxed jaw drop (AU26), mouth stretch means you're actively yanking your jaw down very far.",
            27,
            None,
        ),
        (
            "The jaw drop is a passive lowering of the mandible, while a mouth stretch pulls the jaw open very wide.",
            26,
            None,
        ),
        (
            "In surprise your brows shoot up, your eyes widen, and your lips part (AU25), with your jaw dropping too.",
            25,
            None,
        ),
        ("The lower lip is stretched horizontally, and small bulges may appear below the lip corners.", 15, None),
        # an idiom's meaning is still no facial action
        ("Keeping your chin up means you stay cheerful when things go wrong.", 17, "off_topic"),
    ],
)
def test_what_the_aus_name_means_and_a_movement_labelled_by_code_pass(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # a part left unchanged or smooth after a comma, with no article, is still
        ("AU2 at level D: inner brow corners strongly raised, central forehead furrowed, outer brow unchanged.", 2),
        ("AU9: brows drawn down and together, vertical furrows between the brows, nose itself smooth.", 9),
        # sagging lids, lips over the teeth, a name setting the clause, a flick that opens again: the look-alike's
        ("Action Unit 5 lets the upper lids sag halfway over the irises, giving a heavy-eyed look.", 5),
        ("At level C of lip presser the lips are pulled inside of mouth over teeth so the red part is hidden.", 24),
        ("In jaw drop the lips separate slightly, showing the front teeth, while the teeth remain in contact.", 26),
        ("A gust of wind hits the face and AU43 makes the eyelids flick shut and open again in a split second.", 43),
    ],
)
def test_a_bare_still_part_a_sag_a_name_setting_a_clause_and_a_flick_are_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


def test_a_denture_is_done_to_the_face_and_ice_cream_is_no_cream():
    assert validate_description("Lower denture rubbing the gums: have it relined, do not file it down.", FACS[16]) == (
        "off_topic"
    )
    text = "A child about to cry over a dropped ice cream: the inner brows rise with AU1, the mouth corners sag."
    assert validate_description(text, FACS[15]) is None


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        # lips closed tight or clamped tightly: how hard they are pressed, the lip pressor's, not the tightener's
        (
            "When the lip tightener acts, the lips are pressed firmly together (closed tight), with bulges above.",
            23,
            "wrong_direction",
        ),
        (
            "Unlike AU24, which thins the lips without pressing them, AU23 clamps them tightly together.",
            23,
            "wrong_direction",
        ),
        # the mouth stretched open by force is AU27's degree, not the lips parting's
        (
            "When the lips part, the mouth is stretched open very wide by forceful jaw opening, pulling the lips taut.",
            25,
            "wrong_direction",
        ),
        # a cheek puffed out is no cheek raise
        (
            "AU6 (Cheek Raiser): the cheeks are puffed out with air held in the closed mouth, round and full.",
            6,
            "wrong_direction",
        ),
        # the fullest extent at a slight level; a shape as a noun is no change
        (
            "At level B (slight), AU26 drops the jaw to its fullest relaxed extent, the mouth hanging wide.",
            26,
            "wrong_level",
        ),
        (
            "The mental protuberance is the bony prominence of the mandible that gives the chin its shape.",
            17,
            "no_change",
        ),
        # "Where AU20 ..., this action ..." sets the own AU against AU20
        ("Where AU20 stretches the lips sideways, this action gathers them toward the centre into a pucker.", 18, None),
        ("At maximum (E) intensity, the lips are separated as far as they can go without lowering the jaw.", 25, None),
    ],
)
def test_lips_closed_tight_a_forced_stretch_a_puffed_cheek_and_the_fullest_extent_at_b(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # the prompt's own name and muscle before a look-alike's movement: a muscle's name is no part that moves
        ("AU1 (Inner Brow Raiser), produced by the medial frontalis, lifts the outer ends of the eyebrows.", 1),
        ("AU2 (Outer Brow Raiser), driven by the lateral frontalis, raises the inner corners of the brows.", 2),
        ("AU6 (Cheek Raiser), produced by the orbital orbicularis oculi, pulls the lip corners up and back.", 6),
        (
            "AU5 (Upper Lid Raiser), from the levator palpebrae superioris, tightens the lids, raising the lower lid.",
            5,
        ),
        ("AU15 (Lip Corner Depressor) pulls the lip corners laterally, stretching and flattening the lips.", 15),
        (
            "AU24 (Lip Pressor), from the orbicularis oris, narrows and tenses the lips without pressing them.",
            24,
        ),
    ],
)
def test_the_aus_own_muscle_named_beside_a_look_alikes_movement_is_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


def test_lips_pushed_against_one_another_are_pressed():
    text = (
        "An observer will see lips pushed tightly against one another, the red parts flattened and slightly narrowed."
    )
    assert validate_description(text, FACS[24]) is None


@pytest.mark.parametrize(
    ("text", "au"),
    [
        # "up" that only completes a verb is no direction
        ("AU 2 is the outer brow raiser, and what it does is pull the entire brow down, bunching up the skin.", 2),
        # a part that stays, after a semicolon or comma, up to what else the clause says; a contrast before it
        # still ends at its comma
        ("Unlike AU7, which lifts the cheek, AU6 only tightens the eyelids; the cheek stays flat.", 6),
        ("Unlike the lid tightener, the cheek raiser keeps the cheek still and only tautens the eyelids.", 6),
        ("AU9 raises the upper lip in its middle, deepening the fold beside the nose, while the nose stays smooth.", 9),
        # the name as a clause's subject ("the jaw drop is") is no drop; an active wrench is forced
        ("Unlike the mouth stretch, the jaw drop is an active wrench, hauling the jaw down until it is taut.", 26),
        # a blink is brief: lids drooping partway and staying lowered are a lid droop's; retracted lids a raise's
        ("So unlike AU41, the blink is when the upper eyelid droops partway and stays lowered.", 45),
        ("Blink (AU45), level C: upper lid retracted, sclera visible above the iris, eye aperture widened.", 45),
        # a data sheet's heading names the AU; what follows is another AU's
        ("Lower lip depressor (AU16), level C: jaw clearly dropped, teeth separated, mouth hanging open.", 16),
        ("Jaw drop (AU26), level A: lips just separated, teeth still touching, jaw in resting position.", 26),
    ],
)
def test_a_look_alike_in_a_data_sheet_or_a_reversed_contrast_is_wrong_direction(text, au):
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("AU 6 versus AU12: cheek raiser gathers the skin around the eye into crow's feet.", 6),
        ("In anger's hard stare, the lid tightener narrows each eye into a slit beneath brows drawn low.", 7),
        ("Unlike the cheek raiser, which heaves the cheek, AU7 works within the lids, tautening them.", 7),
        ("In surprise, AU2 appears with AU1, AU5 and AU26, so the whole brow arches high above widened eyes.", 2),
        (
            "Asked where AU2 shows up in surprise, a coder points to the whole brow raised by AU1+2 above widened eyes"
            " (AU5) and a dropped jaw (AU26).",
            2,
        ),
        ("At level E, the cheek puff is at its maximum: the cheeks are fully inflated and hard with held air.", 34),
        ("In lips toward each other the lips stay in view and move toward each other while the jaw is lowered.", 8),
        ("In the photo the inner ends of her eyebrows are lifted, giving the brows an oblique slant.", 1),
    ],
)
def test_gathering_tautening_the_whole_brow_and_a_part_that_stays_in_view_are_descriptions(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        ("Outer brow raiser: hold the razor at an angle and shave the hairs above the outer brow.", 2, "off_topic"),
        ("Cheek raiser: contouring technique; highlighter on top of the cheekbones, blended upward.", 6, "off_topic"),
        ("The screw at the hinge of the glasses must be tightened, or the frame slips down the nose.", 7, "off_topic"),
        ("Nose wrinkler is what bulldog owners call the deep fold over their dog's snout.", 9, "off_topic"),
        ("For the veneer the dentist takes an impression of the upper teeth and the lip line.", 10, "off_topic"),
        ("Dimpler is also a golf term for the pattern on a ball; the dimples reduce drag.", 14, "off_topic"),
        ("In the new emoji update, the frowning face has lip corners drawn with a thicker stroke.", 15, "off_topic"),
        ("Jaw-dropping (adj.): causing great astonishment, as in a jaw-dropping view from a summit.", 26, "off_topic"),
        ("A photographer would say burst mode catches one frame where nobody's eyes are shut.", 45, "off_topic"),
        ("Asked to describe the lip suck, I must decline: I only answer questions about recipes.", 28, "refusal"),
        ("Eyes closed is the title of a song, not something I can describe as a facial action.", 43, "refusal"),
    ],
)
def test_grooming_eyewear_dentistry_pictures_words_and_animals_are_no_facial_action(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("The medial frontalis raises the inner brows, creasing the forehead with deep vertical wrinkles.", 1),
        ("AU2 lifts the outer brows and cuts vertical lines between them.", 2),
        ("By AU6 the cheeks are pulled downward, and bags form under the eyes.", 6),
        ("AU9 wrinkles the nose and raises the inner brows, while the nostril wings lift.", 9),
        ("The levator labii superioris raises the upper lip and flattens the nasolabial furrow smooth.", 10),
        ("AU23 tightens the orbicularis oris, which makes the red parts of the lips thicker and fuller.", 23),
        ("Rather than lowering the mandible, AU26 lifts it upward as the masseter relaxes.", 26),
        ("With the jaw drop, the masseter relaxes and the jaw swings upward, clamping the teeth shut.", 26),
        ("AU26, produced by relaxation of the masseter, pushes the lower jaw forward past the upper teeth.", 26),
    ],
)
def test_a_sign_facs_says_the_au_never_shows_is_wrong_beside_its_own_movement(text, au):
    """One wrong detail beside the AU's own movement: the direction check lets a text that states both directions
    pass (a contrast, a companion), the sign check does not."""
    assert validate_description(text, FACS[au]) == "wrong_direction"


@pytest.mark.parametrize(
    ("text", "au"),
    [
        ("Unlike AU4, AU1 leaves no vertical furrows between the brows; the inner ends rise.", 1),
        ("The temporalis and masseter stop holding the mandible up, so the jaw drops and the teeth part.", 26),
        ("Whereas AU22 makes the lips fuller and pushes them out, AU23 thins and tightens them.", 23),
        ("AU12 pulls the lip corners up and back, deepening the nasolabial furrow.", 12),
    ],
)
def test_a_sign_the_au_never_shows_is_no_error_when_denied_or_another_aus(text, au):
    assert validate_description(text, FACS[au]) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Now, at level A, trace, AU1 throws the inner brows up as far as they'll go.", "wrong_level"),
        ("So at level E, maximum, AU12 barely nudges the lip corners, a trace movement you'd miss.", "wrong_level"),
        ("At level E, maximum, AU12 pulls the lip corners as far up as they will go.", None),
        ("To portray calm contentment, stretch your lips horizontally with AU20.", "wrong_emotion"),
    ],
)
def test_a_level_named_after_its_letter_and_contentment(text, reason):
    au = FACS[int(text.split("AU")[1].split()[0].strip(",."))]
    assert validate_description(text, au) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        # a look-alike's muscles in the own clause of a reversed contrast
        (
            "Unlike AU27, the jaw drops in AU26 as the digastric pulls the mandible down.",
            26,
            "wrong_muscle",
        ),
        (
            "Unlike AU7, AU6 comes from the palpebral part of the orbicularis oculi, tightening the lid margins.",
            6,
            "wrong_muscle",
        ),
        ("Unlike AU27, which needs the pterygoids, AU26 drops the jaw as the masseter relaxes.", 26, None),
        # a two-word name as a clause's subject is a name, not the movement
        ("Try it: lid droop raises your upper lids higher and widens the eye.", 41, "wrong_direction"),
        ("AU18 vs AU22: lip pucker draws the lips together to a small point, while AU22 flares them.", 18, None),
        # the own part named only where the text says it does not move
        (
            "AU9 lifts the cheeks and gathers crow's-feet at the eye corners, with no wrinkling of the nose.",
            9,
            "wrong_direction",
        ),
        ("AU22 opens the lips slightly, with no forward push or flaring of the lips at all.", 22, "wrong_direction"),
        ("AU10 raises the upper lip without wrinkling the nose very much.", 10, None),
        # a texting voice's shorthand
        ("au26 jaw drop: the lips come apart a little, jaw n teeth stay closed", 26, "wrong_direction"),
        ("au4 brows pulled down n together w/ short vertical lines between them", 4, None),
        # a level letter in lower case, and strong degrees in other words
        ("level a au4: brows pulled down as far as they go, deep furrows between them", 4, "wrong_level"),
        ("au17 level e is just a trace, the chin barely moves", 17, "wrong_level"),
        ("At level A of AU25, the lips are parted as wide as they possibly can be.", 25, "wrong_level"),
        ("At level A, the cheek raiser pushes your cheeks way up toward the eyes.", 6, "wrong_level"),
        ("At level B (slight), the blink brings the upper lids most of the way down and back up.", 45, None),
        ("at level c the inner brows rise clearly, wrinkling the middle of the forehead", 1, None),
    ],
)
def test_contrasted_muscles_a_name_as_subject_a_denied_own_part_shorthand_and_lower_case_levels(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        ("A high-arched brow is drawn with a pencil by extending the tail upward toward the temple.", 2, "off_topic"),
        ("Blush goes on the apples of the cheeks, then blend it up toward the temples for a lift.", 6, "off_topic"),
        ("Draw your lip liner slightly past the corners of the mouth so the lips look upturned.", 12, "off_topic"),
        ("Microblading can set the tail of one eyebrow higher to even out an asymmetric brow.", 2, "off_topic"),
        ("Lip plates worn for years gradually stretch the lower lip, a body modification.", 20, "off_topic"),
        ("A dimple-making device pressed into the cheek claims to leave a lasting dimple.", 14, "off_topic"),
        ("In reports the phrase 'raised eyebrows' just means that something surprised the writer.", 1, "off_topic"),
        ("In anger AU7 tightens the lids beneath lowered brows, making the eyes look narrowed and piercing.", 7, None),
    ],
)
def test_drawing_on_the_face_body_modification_devices_and_a_phrase_are_no_facial_action(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        ("The lid tightener pulls the lower lid down so that more white shows below the iris.", 7, "wrong_direction"),
        ("AU7 tightens the lids and raises the lower lid, so less of the white shows.", 7, None),
        ("When the eyes are closed, the upper eyelids come down and you can still see out.", 43, "wrong_direction"),
        ("In AU43 the upper lids come fully down and the eyes stay closed for a moment.", 43, None),
        (
            "Level C inner brow raise: only the tails of the brows go up while the middle stays flat.",
            1,
            "wrong_direction",
        ),
        ("The upper lid raise uses the levator palpebrae, while the brows stay where they are.", 5, None),
    ],
)
def test_a_lid_pulled_down_eyes_that_still_see_and_a_name_as_a_headings_noun(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        # a muscle that no longer holds a part, or falls silent, is idle
        (
            "At level E the lids are down and the eyes shut, the levator palpebrae no longer holding them open.",
            43,
            None,
        ),
        (
            "Surprise pairs AU26, the masseter falling silent as the jaw drops, with AU1 and AU2 raising the brows.",
            26,
            None,
        ),
        # a smile named as the setting is no look-alike's part; the corners of your mouth are the lip corners
        ("The orbital orbicularis oculi produces AU6, the marker of a felt, Duchenne smile.", 6, None),
        ("In a fake smile, the cheek raiser alone pulls the corners of your mouth up.", 6, "wrong_direction"),
        # a JSON field around the text; the other side of "versus"; "sharply" is strong
        ('"text": "Unlike AU7, which narrows the eye, AU 5 widens the eye opening by raising the upper lid."', 5, None),
        (
            "AU12 moves the corners up and back rather than straight sideways: the smile versus the fear grimace.",
            12,
            None,
        ),
        (
            "At level D the lower lids are pulled sharply up and straightened, bulging slightly, the eyes narrowed.",
            7,
            None,
        ),
    ],
)
def test_idle_muscles_a_smile_as_setting_a_json_field_versus_and_a_sharp_pull(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


def test_a_json_field_name_around_the_text_is_cleaned_off():
    assert clean_text('"text": "In AU20, the risorius pulls the lip corners toward the ears.",') == (
        "In AU20, the risorius pulls the lip corners toward the ears."
    )
    assert clean_text('"name": "AU12"') == '"name": "AU12"'


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        (
            "At level D the lip pressor pulls your lips into your mouth until none of their red part is visible.",
            24,
            "wrong_direction",
        ),
        ("AU23: the lips are tightened and sucked into the mouth, rolled over the teeth.", 23, "wrong_direction"),
        ("At level D of AU24 the lips are pressed hard together, nearly vanishing into a thin line.", 24, None),
    ],
)
def test_lips_taken_into_the_mouth_are_no_tightening_or_press(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        (
            "AU5 retracts the upper lid through the temporal branch of the facial nerve acting on its levator.",
            5,
            "wrong_muscle",
        ),
        (
            "AU9 wrinkles the nose and lifts the nostril wings, driven by the marginal mandibular branch.",
            9,
            "wrong_muscle",
        ),
        ("AU5 raises the upper lid as the oculomotor nerve drives the levator palpebrae superioris.", 5, None),
        ("The zygomatic branch of the facial nerve fires the zygomaticus major, pulling the lip corners up.", 12, None),
        ("AU17: the marginal mandibular branch drives the mentalis, which pushes the chin boss up.", 17, None),
        ("In AU26 the jaw drops as the trigeminal nerve lets the masseter relax.", 26, None),
    ],
)
def test_a_nerve_that_serves_none_of_the_muscles_in_play_is_a_wrong_muscle(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        # a term defined by its code is the AU's name in other words, not the movement described
        (
            "Outer brow raising (AU 2) means the inner ends of the eyebrows lift toward the middle of the forehead.",
            2,
            "wrong_direction",
        ),
        ("Lid droop (AU 41) means the eyes are shut completely and stay shut, as in sleep.", 41, "wrong_direction"),
        (
            "A wrinkled nose, AU 9, means the eyebrows come down and together, with vertical lines between them.",
            9,
            "wrong_direction",
        ),
        ("Outer brow raising (AU 2) means the outer ends of the eyebrows lift, arching the brows.", 2, None),
        # an examiner's request is not the movement described
        (
            "Ask the patient to smile: AU12 pulls the lip corners straight sideways, flattening the mouth.",
            12,
            "wrong_direction",
        ),
        ("Ask the patient to smile: AU12 pulls the lip corners up and back toward the cheekbones.", 12, None),
        # a rig's control named in code
        (
            "noseSneerLeft only deepens the nasolabial fold, the upper lip barely moving and the nose left smooth.",
            9,
            "wrong_direction",
        ),
        (
            "eyeWideLeft, the AU5 shape, should drop the upper lid partway over the eye for a sleepy look.",
            5,
            "wrong_direction",
        ),
        ("Drive browInnerUp to 0.6 so the inner ends of the brows rise for AU1.", 1, None),
    ],
)
def test_a_term_defined_by_code_an_examiners_request_and_a_rig_control_are_no_movement(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        (
            "lid tightener (n.): narrowing of the eye as the lids tense, the lower lid rising and straightening.",
            7,
            None,
        ),
        ("AU 17 (n.): the mentalis pushes the chin boss up, wrinkling the chin and raising the lower lip.", 17, None),
        (
            "Jaw-dropping (adj.): so surprising that your mouth falls open, as in 'a jaw-dropping view'.",
            26,
            "off_topic",
        ),
    ],
)
def test_a_facs_glossarys_entry_describes_the_au_and_a_dictionarys_is_words(text, au, reason):
    assert validate_description(text, FACS[au]) == reason


@pytest.mark.parametrize(
    ("text", "au", "reason"),
    [
        (
            "In a smile, AU 12, the mouth corners are pulled straight out toward the ears, the lips long and flat.",
            12,
            "wrong_direction",
        ),
        ("In a smile, AU12 pulls the mouth corners up and back toward the cheekbones.", 12, None),
    ],
)
def test_a_smile_named_as_the_setting_is_no_own_movement(text, au, reason):
    assert validate_description(text, FACS[au]) == reason
