"""FACS knowledge: the action unit (AU) vocabulary, one source of truth for every module.

Each `ActionUnit` holds facts about one FACS action: its name, muscular basis, the visible changes it makes, the face
region it lives in, words a description of it is expected to use, the AUs it typically appears with, and the AUs it
is most easily confused with. The wording is the project's own, summarising the Facial Action Coding System
(Ekman, Friesen & Hager, 2002) and the AU-detection literature.

Which codes are here (the choice, and why):
- Every numbered action from 1 to 46 that FACS 2002 describes with a muscular or anatomical basis and a visible
  change of the face, neck, tongue or jaw: 1, 2, 4-39 and 41-46.
- 8 (lips toward each other), 19 (tongue show) and 21 (neck tightener) are included: they are numbered FACS
  actions with a stated anatomical basis (orbicularis oris, the tongue, platysma; 8 is typically seen with 25 or
  26), exactly like 29-39, which also lie outside the classic 1-28 set. Leaving them out would make `--au 1-26`
  silently skip codes that coders use. Remove them here (one place) if a dataset needs otherwise.
- 3 was never assigned. 40 (sniff) is left out: FACS lists it among gross behaviours, seen in breathing rather
  than as a change of the face's appearance, and no face dataset labels it. 47 and up are not AUs (head and eye
  position, visibility and gross-behaviour codes).
- 41 (lid droop), 42 (slit) and 44 (squint) are kept although FACS 2002 reorganised the eyes' actions (lid droop
  and slit are scored there as intensities of 43, squint as 7): the codes remain in the literature and in older
  data (`SCORED_AS`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from augtext.errors import UserError


@dataclass(frozen=True)
class ActionUnit:
    """Facts about one FACS action unit."""

    code: int
    name: str
    muscles: str
    appearance: tuple[str, ...]
    region: str
    region_keywords: tuple[str, ...]
    cooccurs: tuple[int, ...]
    lookalikes: tuple[int, ...]

    @property
    def label(self) -> str:
        return au_label(self.code)


# Keyword groups shared by several AUs (lower-case; a description must mention at least one of its AU's keywords).
_BROW = ("brow", "eyebrow", "forehead", "glabella", "frown line", "wrinkle")
_EYE = ("eye", "eyelid", "lid", "eyelash", "lash", "orbit", "socket", "palpebral", "orbicularis oculi")
_CHEEK = ("cheek", "cheekbone", "malar", "zygomatic", "zygomaticus")
_NOSE = ("nose", "nostril", "nasal", "nasalis", "ala", "alae", "bridge")
_MOUTH = ("mouth", "lip", "lips", "corner", "oral", "orbicularis oris", "philtrum", "teeth", "smile", "smirk")
_JAW = ("jaw", "mandible", "chin", "teeth", "mouth")
_TONGUE = ("tongue", "mouth", "lip", "teeth")
# Words in the `muscles` strings that say nothing about where on the face a description is.
_GENERIC = frozenset(
    {
        "muscles",
        "relaxed",
        "relaxation",
        "pressure",
        "intrinsic",
        "extrinsic",
        "superioris",
        "inferioris",
        "lateral",
        "medial",
        "transverse",
        "orbital",
        "internal",
        "against",
        "pressing",
        "pushing",
        "forward",
        "acting",
        "closing",
    }
)


def muscle_words(muscles: str) -> tuple[str, ...]:
    """The words of a `muscles` string that name a muscle ("zygomaticus", "frontalis"; not "lateral", "muscles")."""
    return tuple(w for w in re.findall(r"[a-z]+", muscles.lower()) if len(w) >= 6 and w not in _GENERIC)


def _au(
    code: int,
    name: str,
    muscles: str,
    appearance: tuple[str, ...],
    region: str,
    keywords: tuple[str, ...],
    cooccurs: tuple[int, ...],
    lookalikes: tuple[int, ...],
) -> ActionUnit:
    # The muscle names are always acceptable topic words too ("zygomaticus major", "frontalis", ...).
    kws = tuple(dict.fromkeys((*keywords, *muscle_words(muscles))))
    return ActionUnit(code, name, muscles, appearance, region, kws, cooccurs, lookalikes)


_UNITS = (
    # --- upper face: brows -------------------------------------------------------------------------------------
    _au(
        1,
        "Inner Brow Raiser",
        "frontalis, medial part",
        (
            "the inner ends of the eyebrows move upward",
            "the brows take an oblique, slanted shape, higher toward the middle",
            "short horizontal wrinkles may appear across the centre of the forehead",
        ),
        "brows",
        _BROW,
        (2, 4, 5, 15),
        (2, 4),
    ),
    _au(
        2,
        "Outer Brow Raiser",
        "frontalis, lateral part",
        (
            "the outer ends of the eyebrows are lifted",
            "the brows arch, raised most at their outer ends",
            "wrinkles may form above the outer brows on the sides of the forehead",
        ),
        "brows",
        _BROW,
        (1, 5, 26),
        (1, 5),
    ),
    _au(
        4,
        "Brow Lowerer",
        "corrugator supercilii, depressor supercilii and procerus",
        (
            "the eyebrows are pulled down and drawn together",
            "vertical furrows appear between the brows",
            "the skin above the eyes bulges and the eye opening narrows from above",
        ),
        "brows",
        (*_BROW, "furrow", "between the eyes", "above the eyes", "frown"),
        (1, 7, 9, 15, 17, 23),
        (1, 9, 44),
    ),
    # --- upper face: eyes ---------------------------------------------------------------------------------------
    _au(
        5,
        "Upper Lid Raiser",
        "levator palpebrae superioris",
        (
            "the upper eyelid is lifted so more of the eyeball shows",
            "white of the eye may show above the iris",
            "the eyes look wide and staring",
        ),
        "eyes",
        _EYE,
        (1, 2, 26, 20),
        (1, 2),
    ),
    _au(
        6,
        "Cheek Raiser",
        "orbicularis oculi, orbital part",
        (
            "the cheeks are lifted and the skin around the eye socket is drawn in toward the eye",
            "crow's-feet wrinkles fan out from the outer eye corners",
            "bags form under the lower eyelid and the eye opening narrows from below",
        ),
        "cheeks and eyes",
        (*_CHEEK, *_EYE, "crow's feet", "crow's-feet", "crow"),
        (12, 25, 7),
        (7, 12, 44),
    ),
    _au(
        7,
        "Lid Tightener",
        "orbicularis oculi, palpebral part",
        (
            "the eyelids tighten and the eye opening narrows",
            "the lower lid is raised and straightened and may bulge",
            "the eyes look strained or focused without the cheeks lifting",
        ),
        "eyes",
        _EYE,
        (4, 6, 23, 9),
        (6, 44, 42),
    ),
    # --- lower face: lips and mouth -----------------------------------------------------------------------------
    _au(
        8,
        "Lips Toward Each Other",
        "orbicularis oris",
        (
            "the lips move toward each other while the jaw stays lowered",
            "the lips may meet even though the teeth are apart",
            "the lips tense and the mouth opening becomes smaller",
        ),
        "mouth",
        _MOUTH,
        (25, 26),
        (23, 24, 28),
    ),
    _au(
        9,
        "Nose Wrinkler",
        "levator labii superioris alaeque nasi",
        (
            "wrinkles form along the sides and bridge of the nose",
            "the nostril wings and the upper lip are pulled upward",
            "the inner brows may be drawn down and the lower eyelids pushed up",
        ),
        "nose",
        (*_NOSE, "wrinkle", "upper lip"),
        (4, 10, 15, 16, 17),
        (10, 4),
    ),
    _au(
        10,
        "Upper Lip Raiser",
        "levator labii superioris",
        (
            "the centre of the upper lip is drawn straight up",
            "the upper lip takes an arched or angular shape and upper teeth may show",
            "the furrow from the nostril to the lip corner deepens",
        ),
        "mouth",
        (*_MOUTH, "upper lip", "nasolabial", "nostril"),
        (9, 15, 17, 25),
        (9, 11, 13),
    ),
    _au(
        11,
        "Nasolabial Deepener",
        "zygomaticus minor",
        (
            "the skin beside the upper lip is pulled up and outward",
            "the furrow running from the nose to the lip corner deepens, mainly in its upper part",
            "the upper lip may rise slightly near its sides",
        ),
        "mouth and cheeks",
        (*_MOUTH, *_CHEEK, "nasolabial", "furrow", "nose"),
        (1, 12, 15),
        (10, 12, 13),
    ),
    _au(
        12,
        "Lip Corner Puller",
        "zygomaticus major",
        (
            "the lip corners are pulled back and up at an angle toward the cheekbones",
            "the nasolabial furrow deepens and the cheeks are pushed up",
            "the mouth takes the shape of a smile",
        ),
        "mouth",
        (*_MOUTH, *_CHEEK, "nasolabial", "grin"),
        (6, 25, 26),
        (13, 14, 20),
    ),
    _au(
        13,
        "Sharp Lip Puller",
        "levator anguli oris (caninus)",
        (
            "the lip corners are pulled up sharply into a narrow point",
            "the cheeks puff out just above the lip corners",
            "the upper lip near the corners tightens while its centre stays in place",
        ),
        "mouth",
        (*_MOUTH, *_CHEEK, "nasolabial"),
        (6, 12, 25),
        (12, 11, 14),
    ),
    _au(
        14,
        "Dimpler",
        "buccinator",
        (
            "the lip corners are tightened and drawn inward",
            "a dimple or wrinkle forms just beyond the lip corners",
            "the lip corners may bulge slightly; often shown on one side in contempt",
        ),
        "mouth",
        (*_MOUTH, *_CHEEK, "dimple"),
        (12, 17, 23, 24),
        (12, 20, 24),
    ),
    _au(
        15,
        "Lip Corner Depressor",
        "depressor anguli oris (triangularis)",
        (
            "the lip corners are pulled downward",
            "the lips take a downturned, inverted-U shape",
            "the skin below the lip corners may bulge or wrinkle",
        ),
        "mouth",
        (*_MOUTH, "chin", "frown"),
        (1, 4, 17),
        (17, 20, 16),
    ),
    _au(
        16,
        "Lower Lip Depressor",
        "depressor labii inferioris",
        (
            "the lower lip is pulled down and slightly outward",
            "the lower teeth and gums may show",
            "the chin skin is stretched and flattened below the lip",
        ),
        "mouth",
        (*_MOUTH, "lower lip", "chin"),
        (25, 26, 10, 9),
        (15, 25, 26),
    ),
    _au(
        17,
        "Chin Raiser",
        "mentalis",
        (
            "the chin boss is pushed up and the lower lip is pushed upward",
            "the skin of the chin wrinkles and may dimple like an orange peel",
            "the mouth can take a curved, pouting shape",
        ),
        "chin",
        (*_JAW, "lower lip", "lip", "pout"),
        (15, 24, 23, 4, 1),
        (15, 24, 28),
    ),
    _au(
        18,
        "Lip Pucker",
        "incisivii labii superioris and inferioris (orbicularis oris)",
        (
            "the lips are pushed forward and gathered toward the centre",
            "the lip corners move toward the middle so the mouth looks small and round",
            "short wrinkles may appear around the lips",
        ),
        "mouth",
        (*_MOUTH, "pucker", "kiss"),
        (22, 24, 17),
        (22, 23),
    ),
    _au(
        19,
        "Tongue Show",
        "intrinsic and extrinsic tongue muscles",
        (
            "the tongue is pushed forward so that it shows between the lips",
            "the tip of the tongue may rest on or past the lower lip",
            "the lips are parted around the tongue",
        ),
        "mouth",
        _TONGUE,
        (25, 26),
        (36, 37),
    ),
    _au(
        20,
        "Lip Stretcher",
        "risorius, with platysma",
        (
            "the lip corners are pulled sideways, toward the ears",
            "the lips are stretched and flattened horizontally",
            "the skin beyond the lip corners is stretched and the lower face widens",
        ),
        "mouth",
        (*_MOUTH, "platysma", "neck"),
        (1, 2, 4, 5, 25, 26),
        (12, 14, 15),
    ),
    _au(
        21,
        "Neck Tightener",
        "platysma",
        (
            "the skin of the neck tightens and vertical cords or bands stand out",
            "the skin under the jaw and at the lower lip corners is pulled down",
            "the neck looks strained",
        ),
        "neck",
        ("neck", "throat", "platysma", "jaw", "chin", "cord", "band"),
        (20, 25, 31),
        (20, 17),
    ),
    _au(
        22,
        "Lip Funneler",
        "orbicularis oris",
        (
            "the lips are pushed out and turned outward into a funnel",
            "the lips part so that teeth or gums may show",
            "the mouth looks as if saying the sound 'oo'",
        ),
        "mouth",
        (*_MOUTH, "funnel"),
        (18, 25),
        (18, 25),
    ),
    _au(
        23,
        "Lip Tightener",
        "orbicularis oris",
        (
            "the lips are tightened and their red parts narrow",
            "the lip edges roll in slightly and look thin and firm",
            "small bulges may appear above or below the lips",
        ),
        "mouth",
        (*_MOUTH, "thin", "tight"),
        (4, 7, 17, 24),
        (24, 28, 8),
    ),
    _au(
        24,
        "Lip Pressor",
        "orbicularis oris",
        (
            "the lips are pressed firmly together",
            "the red parts of the lips narrow and may bulge at the edges",
            "the skin above and below the lips bunches",
        ),
        "mouth",
        (*_MOUTH, "press"),
        (4, 17, 23),
        (23, 28, 17),
    ),
    _au(
        25,
        "Lips Part",
        "depressor labii inferioris, or relaxation of mentalis or orbicularis oris",
        (
            "the lips separate so that the mouth opens a little",
            "the teeth or the inside of the mouth may show",
            "the jaw may stay closed while the lips part",
        ),
        "mouth",
        (*_MOUTH, "open", "part"),
        (26, 12, 10, 16),
        (26, 27, 16),
    ),
    _au(
        26,
        "Jaw Drop",
        "relaxation of masseter, temporalis and internal pterygoid",
        (
            "the jaw is lowered by relaxing the muscles that hold it closed",
            "the mouth hangs open with a visible gap between the teeth",
            "the face lengthens without the lips being stretched",
        ),
        "jaw",
        (*_JAW, "open", "lips"),
        (25, 1, 2, 5),
        (25, 27),
    ),
    _au(
        27,
        "Mouth Stretch",
        "pterygoids and digastric",
        (
            "the jaw is pulled far down so the mouth opens wide",
            "the lips and the skin around the mouth are stretched",
            "the cheeks flatten and the face lengthens, as in a yawn or a scream",
        ),
        "jaw",
        (*_JAW, "open", "lips", "yawn", "stretch"),
        (25, 1, 2, 5),
        (26, 25),
    ),
    _au(
        28,
        "Lip Suck",
        "orbicularis oris",
        (
            "one or both lips are drawn into the mouth over the teeth",
            "the red part of the sucked lip disappears from view",
            "the skin above or below the mouth is pulled inward",
        ),
        "mouth",
        (*_MOUTH, "suck"),
        (17, 26),
        (23, 24, 32),
    ),
    _au(
        29,
        "Jaw Thrust",
        "lateral pterygoids, pushing the jaw forward",
        ("the lower jaw is pushed forward", "the lower teeth move in front of the upper teeth", "the chin juts out"),
        "jaw",
        _JAW,
        (17, 25),
        (17, 30),
    ),
    _au(
        30,
        "Jaw Sideways",
        "pterygoids, acting on one side",
        (
            "the lower jaw is moved to one side",
            "the chin is off the midline of the face",
            "the mouth and lips look skewed",
        ),
        "jaw",
        (*_JAW, "side"),
        (25, 26),
        (29, 14),
    ),
    _au(
        31,
        "Jaw Clencher",
        "masseter",
        (
            "the jaw muscles tighten as the teeth are clenched",
            "the masseter bulges at the angle of the jaw, below the ear",
            "the lower face looks set and hard",
        ),
        "jaw",
        (*_JAW, "clench", "masseter", "ear"),
        (4, 23, 24),
        (24, 23),
    ),
    _au(
        32,
        "Lip Bite",
        "jaw muscles pressing the teeth onto a lip",
        (
            "the teeth press on the lower or the upper lip",
            "part of the bitten lip is hidden behind the teeth",
            "the skin near the bitten lip may bulge",
        ),
        "mouth",
        (*_MOUTH, "bite"),
        (25, 4),
        (28, 24),
    ),
    _au(
        33,
        "Cheek Blow",
        "air pressure against a relaxed buccinator, orbicularis oris closing the lips",
        (
            "air is blown out through the closed or nearly closed lips, so the cheeks expand",
            "the cheeks bulge outward and may extend above the lips",
            "the lips are closed or nearly closed against the air",
        ),
        "cheeks",
        (*_CHEEK, "mouth", "lip", "air", "blow"),
        (24, 22),
        (34, 36),
    ),
    _au(
        34,
        "Cheek Puff",
        "air pressure against a relaxed buccinator",
        (
            "the cheeks are puffed out by air held in the mouth",
            "the bulge lies lower on the cheeks than in a cheek blow",
            "the lips stay closed",
        ),
        "cheeks",
        (*_CHEEK, "mouth", "lip", "air", "puff"),
        (24, 18),
        (33, 36),
    ),
    _au(
        35,
        "Cheek Suck",
        "buccinator",
        (
            "the cheeks are sucked in between the teeth",
            "hollows appear in the cheeks",
            "the lips may be pushed forward and the mouth looks narrow",
        ),
        "cheeks",
        (*_CHEEK, "mouth", "lip", "suck", "hollow"),
        (18, 22),
        (14, 28),
    ),
    _au(
        36,
        "Tongue Bulge",
        "tongue muscles",
        (
            "the tongue pushes against the inside of a lip or cheek",
            "a bulge appears under the lip or on the cheek",
            "the skin over the bulge is stretched",
        ),
        "mouth",
        (*_TONGUE, "cheek", "bulge"),
        (24, 17),
        (34, 33),
    ),
    _au(
        37,
        "Lip Wipe",
        "tongue muscles",
        (
            "the tongue moves across the lips, wetting them",
            "the tip of the tongue shows between the lips as it passes",
            "the lips may look shiny afterwards",
        ),
        "mouth",
        (*_TONGUE, "wipe", "lick"),
        (19, 25),
        (19, 28),
    ),
    _au(
        38,
        "Nostril Dilator",
        "nasalis, alar part",
        ("the nostrils widen", "the nostril wings flare outward", "the nostril openings become larger and rounder"),
        "nose",
        (*_NOSE, "flare"),
        (4, 5, 9),
        (9, 39),
    ),
    _au(
        39,
        "Nostril Compressor",
        "nasalis, transverse part, and depressor septi",
        (
            "the nostrils narrow",
            "the nostril wings are pulled in toward the nose",
            "the nostril openings look slit-like",
        ),
        "nose",
        (*_NOSE, "narrow"),
        (4, 9),
        (38, 9),
    ),
    # --- eye closure family -------------------------------------------------------------------------------------
    _au(
        41,
        "Lid Droop",
        "relaxation of levator palpebrae superioris",
        (
            "the upper eyelids sag and cover more of the eye",
            "the eyes look heavy, sleepy or half open",
            "the fold of the upper lid is less visible",
        ),
        "eyes",
        (*_EYE, "droop", "sleepy"),
        (1, 15),
        (42, 43, 7),
    ),
    _au(
        42,
        "Slit",
        "orbicularis oculi",
        (
            "the eyelids are lowered until the eye is a narrow slit",
            "the eyes are almost, but not fully, closed",
            "the iris is only partly visible between the lids",
        ),
        "eyes",
        (*_EYE, "slit", "narrow"),
        (6, 7),
        (41, 43, 44),
    ),
    _au(
        43,
        "Eyes Closed",
        "relaxation of levator palpebrae superioris; orbicularis oculi, palpebral part",
        (
            "the eyelids close completely",
            "the eyes stay shut for a moment, longer than a blink",
            "the upper and lower lashes meet",
        ),
        "eyes",
        (*_EYE, "closed", "shut"),
        (6, 12),
        (45, 41, 42, 46),
    ),
    _au(
        44,
        "Squint",
        "orbicularis oculi, palpebral part",
        (
            "the eyelids are pulled together strongly and the eyes narrow",
            "the lower lid rises and bulges more than in lid tightening",
            "the skin around the eye bunches",
        ),
        "eyes",
        (*_EYE, "squint", "narrow"),
        (4, 6, 7),
        (7, 42, 6),
    ),
    _au(
        45,
        "Blink",
        "relaxation of levator palpebrae superioris; orbicularis oculi, palpebral part",
        (
            "both eyes close and reopen quickly",
            "the eyelids meet for only a brief moment",
            "the closure is short and involuntary-looking",
        ),
        "eyes",
        (*_EYE, "blink", "closed"),
        (25,),
        (43, 46, 41),
    ),
    _au(
        46,
        "Wink",
        "orbicularis oculi",
        (
            "one eye closes and reopens while the other stays open",
            "the closure is deliberate and brief",
            "the cheek on the winking side may lift",
        ),
        "eyes",
        (*_EYE, "wink", "one eye"),
        (6, 12, 13),
        (45, 43),
    ),
)

FACS: dict[int, ActionUnit] = {au.code: au for au in _UNITS}
"""Every AU this project knows, by integer FACS code."""

SCORED_AS: dict[int, int] = {41: 43, 42: 43, 44: 7}
"""Codes FACS 2002 scores as another AU: lid droop (41) and slit (42) as intensities of eyes closed (43), squint (44)
as the lid tightener (7, the same palpebral part of the orbicularis oculi). Descriptions of either code of a pair are
descriptions of one action: the semantic gate does not let one outrank the other."""


def scored_as(code: int) -> int:
    """The AU that FACS 2002 scores `code` as (`SCORED_AS`; the code itself for every other AU)."""
    return SCORED_AS.get(code, code)


MUSCLES: dict[str, str] = {
    "frontalis, medial part": r"frontalis pars medialis",
    "frontalis, lateral part": r"frontalis pars lateralis",
    "corrugator supercilii": r"corrugators?(?: supercilii)?",
    "depressor supercilii": r"depressor supercilii",
    "procerus": r"procerus",
    "levator palpebrae superioris": r"levator palpebrae(?: superioris)?",
    "orbicularis oculi, orbital part": r"pars orbitalis",
    "orbicularis oculi, palpebral part": r"pars palpebralis",
    "orbicularis oris": r"orbicularis oris",
    "levator labii superioris alaeque nasi": r"levator labii superioris alaeque nasi|alaeque nasi",
    "levator labii superioris": r"levator labii superioris(?! alaeque)",
    "zygomaticus minor": r"zygomatic(?:us)? minor",
    "zygomaticus major": r"zygomatic(?:us)? major",
    "levator anguli oris": r"levator anguli(?: oris)?|caninus",
    "buccinator": r"buccinators?",
    "depressor anguli oris": r"depressor anguli(?: oris)?|triangularis",
    "depressor labii inferioris": r"depressor labii(?: inferioris)?|quadratus labii inferioris",
    "mentalis": r"mentalis",
    "incisivus": r"incisiv(?:us|ii|i)\b",
    "risorius": r"risorius",
    "platysma": r"platysmas?",
    "masseter": r"masseters?",
    "temporalis": r"temporalis|temporal muscles?",
    "pterygoid": r"pterygoids?",
    "digastric": r"digastrics?",
    "nasalis": r"nasalis",
    "depressor septi": r"depressor septi",
    "sternocleidomastoid": r"sternocleidomastoids?|sternomastoids?",
    "auricularis": r"auricular(?:is|es)(?: (?:anterior|superior|posterior))?|auricular muscles?",
    "mylohyoid": r"mylohyoids?",
    "geniohyoid": r"geniohyoids?",
}
"""The facial and jaw muscles that the AUs' `muscles` strings name, each with the names a description calls it by
(standard, Latin part and older names: "pars orbitalis", "caninus", "triangularis"). An AU's own muscles are those
whose pattern its `muscles` string matches (`own_muscles`); a description that credits the AU to other muscles only
is wrong (validate's `wrong_muscle`). The tongue's and "jaw muscles" are no names: AUs 19, 32, 36 and 37 have none.
The last four make no AU (the neck's sternocleidomastoid, the ears' muscles, two jaw openers under the chin): credited
with an AU's movement, they are always another muscle than its own."""

NERVES: dict[str, str] = {
    "facial nerve": r"facial nerve|(?:cranial nerve|CN)\s?(?:VII|7)\b|seventh cranial nerve",
    "temporal branch": r"temporal (?:branch|division)|frontal branch|temporofrontal branch",
    "zygomatic branch": r"zygomatic (?:branch|division)",
    "buccal branch": r"buccal (?:branch|division)",
    "marginal mandibular branch": r"marginal mandibular|mandibular branch",
    "cervical branch": r"cervical (?:branch|division)",
    "oculomotor nerve": r"oculomotor|(?:cranial nerve|CN)\s?(?:III|3)\b|third cranial nerve",
    "trigeminal nerve": r"trigeminal|(?:cranial nerve|CN)\s?(?:V|5)\b|fifth cranial nerve|mandibular (?:nerve|division)"
    r"|masseteric nerve|V3\b",
}
"""The motor nerves a description may name, each with the names it is called by: the facial nerve and its five
branches, the oculomotor (the upper lid's levator) and the trigeminal (the jaw's muscles)."""
_FACIAL = ("facial nerve",)
_UPPER_FACE = (*_FACIAL, "temporal branch", "zygomatic branch")
_MID_FACE = (*_FACIAL, "zygomatic branch", "buccal branch")
_LOWER_FACE = (*_FACIAL, "buccal branch", "marginal mandibular branch")
INNERVATION: dict[str, tuple[str, ...]] = {
    "frontalis, medial part": (*_FACIAL, "temporal branch"),
    "frontalis, lateral part": (*_FACIAL, "temporal branch"),
    "corrugator supercilii": _UPPER_FACE,
    "depressor supercilii": _UPPER_FACE,
    "procerus": (*_UPPER_FACE, "buccal branch"),
    "levator palpebrae superioris": ("oculomotor nerve",),
    "orbicularis oculi, orbital part": _UPPER_FACE,
    "orbicularis oculi, palpebral part": _UPPER_FACE,
    "orbicularis oris": _LOWER_FACE,
    "levator labii superioris alaeque nasi": _MID_FACE,
    "levator labii superioris": _MID_FACE,
    "zygomaticus minor": _MID_FACE,
    "zygomaticus major": _MID_FACE,
    "levator anguli oris": _MID_FACE,
    "buccinator": (*_FACIAL, "buccal branch"),
    "depressor anguli oris": _LOWER_FACE,
    "depressor labii inferioris": (*_FACIAL, "marginal mandibular branch"),
    "mentalis": (*_FACIAL, "marginal mandibular branch"),
    "incisivus": _LOWER_FACE,
    "risorius": _LOWER_FACE,
    "platysma": (*_FACIAL, "cervical branch"),
    "masseter": ("trigeminal nerve",),
    "temporalis": ("trigeminal nerve",),
    "pterygoid": ("trigeminal nerve",),
    "digastric": ("trigeminal nerve", *_FACIAL),
    "nasalis": _MID_FACE,
    "depressor septi": _MID_FACE,
}
"""Which nerves serve each of `MUSCLES` (the usual textbook account, generous where the branches overlap: the
zygomatic and buccal branches share the mid-face, the temporal and zygomatic the orbicularis oculi; the digastric's
two bellies have two nerves). A description naming only nerves that serve none of an AU's muscles names the wrong
supply ("the levator palpebrae, driven by the temporal branch of the facial nerve": AU5's is the oculomotor)."""
NERVE_RE = re.compile("|".join(f"(?P<n{i}>{p})" for i, p in enumerate(NERVES.values())), re.IGNORECASE)


def nerves_named(text: str) -> set[str]:
    """The `NERVES` a text names."""
    names = list(NERVES)
    return {names[int(m.lastgroup[1:])] for m in NERVE_RE.finditer(text)}


MUSCLE_GROUPS: dict[str, tuple[str, ...]] = {
    r"(?:occipito-?)?frontalis|epicranius": ("frontalis, medial part", "frontalis, lateral part"),
    r"zygomaticus(?! major| minor)|zygomatic muscles?": ("zygomaticus major", "zygomaticus minor"),
    r"quadratus labii superioris": (
        "levator labii superioris alaeque nasi",
        "levator labii superioris",
        "zygomaticus minor",
    ),
    r"levator labii(?! superioris)": ("levator labii superioris alaeque nasi", "levator labii superioris"),
    r"orbicularis oculi": ("orbicularis oculi, orbital part", "orbicularis oculi, palpebral part"),
    r"orbicularis(?! oculi| oris)": (
        "orbicularis oculi, orbital part",
        "orbicularis oculi, palpebral part",
        "orbicularis oris",
    ),
}
"""Names that stand for any of several `MUSCLES`: "the frontalis" for either of its parts (the medial part of AU1, the
lateral part of AU2), "the zygomaticus" for either zygomatic muscle, the old "quadratus labii superioris" for its three
heads (AUs 9, 10 and 11), "the orbicularis oculi" for either of its parts (the orbital ring of AU6, the palpebral part
in the lids of AU7, 43-45), "the orbicularis" for either ring muscle."""

_PART_NOUNS = r"(?:part|portion|fibres|fibers|belly|section|half|ring|division|layer)s?"
_OWNER = r"(?:(?:the|its|your|their|his|her) )?"  # "the palpebral part of your orbicularis oculi"


def _part_res(muscle: str, parts: tuple[tuple[str, str], ...], read_as: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Patterns of a part of `muscle` named in words ("the medial part of the frontalis", "pars lateralis of the
    frontalis", "frontalis, pars lateralis", "orbicularis oculi (palpebral portion)", "the outer frontalis"), each
    with what it is read as: `read_as` filled with the part's Latin word. `parts`: (its words, its Latin word)."""
    return tuple(
        (
            re.compile(
                rf"\b(?:(?:the )?(?:{words}) {_PART_NOUNS} of {_OWNER}{muscle}|pars {latin} of {_OWNER}{muscle}"
                rf"|{muscle},? \(?(?:pars )?(?:{latin}|{words})(?: (?:part|portion|fibres|fibers))?\b"
                rf"(?! (?:to|of)\b)\)?"
                rf"|(?:{words}) {muscle})",
                re.IGNORECASE,
            ),
            read_as.format(latin),
        )
        for words, latin in parts
    )


# A part of the frontalis or of the orbicularis oculi named in words is that part, read as MUSCLES names it: "the
# medial part of the frontalis" as "frontalis pars medialis", "the palpebral orbicularis" as "pars palpebralis".
_PART_RES = (
    *_part_res(
        r"(?:occipito-?)?frontalis",
        (("medial|inner|central|middle", "medialis"), ("lateral|outer", "lateralis")),
        "frontalis pars {}",
    ),
    *_part_res(
        r"orbicularis(?: oculi)?", (("orbital(?:is)?", "orbitalis"), ("palpebral(?:is)?", "palpebralis")), "pars {}"
    ),
)

MUSCLE_RE = re.compile(
    "|".join(
        [rf"(?P<m{i}>\b(?:{pattern}))" for i, pattern in enumerate(MUSCLES.values())]
        + [rf"(?P<g{i}>\b(?:{pattern}))" for i, pattern in enumerate(MUSCLE_GROUPS)]
    ),
    re.IGNORECASE,
)


def muscle_parts_as_named(text: str) -> str:
    """`text` with each part of the frontalis or the orbicularis oculi named in words read as MUSCLES names it ("the
    medial part of the frontalis" as "frontalis pars medialis"), for MUSCLE_RE."""
    for part_re, pars in _PART_RES:
        text = part_re.sub(pars, text)
    return text


def muscles_named(text: str) -> list[frozenset[str]]:
    """The `MUSCLES` a text names, one set per mention (a group name: every muscle it may stand for)."""
    names, groups = list(MUSCLES), list(MUSCLE_GROUPS.values())
    out = []
    for match in MUSCLE_RE.finditer(muscle_parts_as_named(text)):
        key = match.lastgroup or ""
        out.append(frozenset([names[int(key[1:])]] if key[0] == "m" else groups[int(key[1:])]))
    return out


@functools.cache
def own_muscles(code: int) -> frozenset[str]:
    """The `MUSCLES` that FACS credits AU `code` to (those its `muscles` string names; empty where it names none),
    relaxing ones (`relaxed_muscles`) included."""
    return frozenset().union(*muscles_named(FACS[code].muscles)) if code in FACS else frozenset()


@functools.cache
def relaxed_muscles(code: int) -> frozenset[str]:
    """The own muscles whose *relaxation* makes AU `code`, as its `muscles` string says ("relaxation of masseter,
    temporalis and internal pterygoid", "a relaxed buccinator"): a text crediting the AU to one of them contracting
    ("the masseter contracts and pulls the jaw down" as AU26) is wrong."""
    if code not in FACS:
        return frozenset()
    spans = re.findall(r"relaxation of ([^;]*)|relaxed (\w+)", FACS[code].muscles)
    return frozenset().union(*muscles_named(" ".join(a or b for a, b in spans)))


DATASET_AUS: dict[str, list[int]] = {
    "bp4d": [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24],
    "disfa": [1, 2, 4, 6, 9, 12, 25, 26],
    "gft": [1, 2, 4, 6, 10, 12, 14, 15, 23, 24],
}
"""AUs labelled by each public benchmark (the presets of `parse_au_spec`)."""

EXPRESSIONS: dict[str, tuple[int, ...]] = {
    "happiness": (6, 12),
    "sadness": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 7, 20, 26),
    "anger": (4, 5, 7, 23),
    "disgust": (9, 15, 16),
    "contempt": (12, 14),
}
"""Prototypical AU combinations of the basic emotional expressions (as commonly summarised from EMFACS)."""

EMOTION_AUS: dict[str, frozenset[int]] = {
    "happiness": frozenset({6, 7, 12, 13, 25, 26, 27}),
    "sadness": frozenset({1, 4, 6, 11, 15, 17, 25, 26, 41, 42, 43, 54, 64}),
    "surprise": frozenset({1, 2, 5, 25, 26, 27}),
    "fear": frozenset({1, 2, 4, 5, 7, 20, 25, 26, 27}),
    "anger": frozenset({4, 5, 7, 10, 16, 17, 22, 23, 24, 25, 26, 38}),
    "disgust": frozenset({4, 6, 7, 9, 10, 11, 15, 16, 17, 25, 26}),
    "contempt": frozenset({10, 12, 14}),
}
"""Every AU an emotion's expression may hold: the EXPRESSIONS prototypes with EMFACS's variants (sadness's 11, 17 and
6 + 15, anger's 10, 16, 22, 17 + 23/24, disgust's 10, 16, 17, surprise's and fear's open mouths), the eyes and head of
sadness (41-43 lids, 54 head down, 64 eyes down), the nostril flare of anger (38), the narrowed lids of a felt smile
(7) and the brow lowering, cheek raise and lid tightening that come with a strong nose wrinkle (disgust's 4, 6, 7), and
the one-sided lip raise often called contempt's sneer (10). Generous on purpose: `emotions.wrong_emotion` rejects a
text only for an emotion that holds none of this."""

_LABEL_RE = re.compile(r"^\s*au\s*(\d+)\s*$", re.IGNORECASE)


def au_label(code: int) -> str:
    """`12 -> "AU12"`."""
    return f"AU{int(code)}"


def get_au(code: int) -> ActionUnit:
    """The facts for `code`; UserError listing the valid codes if FACS has no such AU."""
    if code not in FACS:
        raise UserError(f"{au_label(code)} is not a FACS action unit. {_valid_codes_hint()}")
    return FACS[code]


def parse_au_label(label: str) -> int:
    """`"AU12"`, `"au12"` or `"12"` -> 12 (a code FACS defines; UserError otherwise)."""
    text = str(label).strip()
    m = _LABEL_RE.match(text)
    digits = m.group(1) if m else text
    if not digits.isdigit():
        raise UserError(f"not an AU label: {label!r} (expected e.g. AU12). {_valid_codes_hint()}")
    return get_au(int(digits)).code


def _valid_codes_hint() -> str:
    return f"Valid codes: {compact_codes(sorted(FACS))}; presets: {'|'.join(DATASET_AUS)}."


def compact_codes(codes: list[int]) -> str:
    """[1, 2, 4, 5, 6] -> "1-2, 4-6"."""
    runs: list[list[int]] = []
    for c in codes:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def parse_au_spec(spec: str) -> list[int]:
    """Expand an AU spec into sorted, unique FACS codes.

    Accepts comma-separated parts, each a code (`12`, `AU12`), a range (`1-26`, `AU1-AU7`: the codes FACS defines
    in it; a range ending past the highest code, 46, is refused as a likely typo) or a dataset preset (`bp4d`,
    `disfa`, `gft`; case-insensitive). Anything else is a UserError that quotes the bad part and lists the valid
    codes.
    """
    if spec is None or not str(spec).strip():
        raise UserError(f"empty AU spec. {_valid_codes_hint()}")
    codes: set[int] = set()
    for raw in str(spec).split(","):
        part = raw.strip()
        codes.update(_parse_part(part, spec))
    return sorted(codes)


def _parse_part(part: str, spec: str) -> list[int]:
    where = f"in AU spec {spec!r}"
    if not part:
        raise UserError(f"empty item {where}. {_valid_codes_hint()}")
    low = part.lower()
    if low in DATASET_AUS:
        return list(DATASET_AUS[low])
    if "-" in part:
        lo_s, _, hi_s = part.partition("-")
        lo, hi = _number(lo_s), _number(hi_s)
        if lo is None or hi is None:
            raise UserError(f"malformed range {part!r} {where} (expected e.g. 1-26). {_valid_codes_hint()}")
        if lo > hi:
            raise UserError(f"empty range {part!r} {where}: {lo} > {hi}. {_valid_codes_hint()}")
        # Codes FACS lacks inside its range are skipped (1-26 has no 3), but an end past the last code is a typo
        # (1-200 for 1-20?), not a wish for every AU: taking it silently would hide the mistake.
        top = max(FACS)
        if hi > top:
            raise UserError(
                f"range {part!r} {where} ends at {hi}, past AU{top}, the highest FACS code augtext knows "
                f"(a typo?); end it at {top} or below. {_valid_codes_hint()}"
            )
        found = [c for c in FACS if lo <= c <= hi]
        if not found:
            raise UserError(f"range {part!r} {where} holds no FACS action unit. {_valid_codes_hint()}")
        return found
    code = _number(part)
    if code is None:
        raise UserError(
            f"malformed AU {part!r} {where} (expected a code like 12 or AU12, a range, "
            f"or a preset). {_valid_codes_hint()}"
        )
    if code not in FACS:
        raise UserError(f"AU{code} {where} is not a FACS action unit. {_valid_codes_hint()}")
    return [code]


def _number(text: str) -> int | None:
    m = _LABEL_RE.match(text) or re.match(r"^\s*(\d+)\s*$", text)
    return int(m.group(1)) if m else None
