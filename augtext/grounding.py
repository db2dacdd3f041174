"""What an AU's descriptions say the face's geometry does: signed weights over named measures (`GEOMETRY`).

For zero-shot AU scoring "from descriptions alone": a model predicts, for a face, how its geometry differs from the
same person's neutral face as one value per measure in `GEOMETRY`; an AU it was never trained on is scored by reading,
from the AU's descriptions, which measures change and in which direction (`ground`).

The reader is a hand-written lexicon of face PARTS ("the lower lip", "the brows", "the jaw") and MOVEMENTS ("pulled
down", "knitted", "parted"): a part and a movement named in the same clause map to (measure, sign) through `RULES`,
and a few words carry both ("squint", "pucker", "smile", `PHRASES`). It is general, for any FACS-style description,
hand-written or LLM-written, of any AU: it never looks at an AU code, only at the words. Like augtext.movement, and
for the same reason (a sentence embedding cannot tell "up" from "down"), it works on words:
- negated and contrasting clauses are dropped ("not raised", "unlike AU15, which pulls them down", "without ...");
  the parts they name stay, so that "they are pulled down" after them still has a subject;
- a clause without a part refers to the last part named ("the brows are pulled down and drawn together");
- AU names ("Brow Lowerer") and positions ("the lower lip") are not movements (movement._NAME_RE, _POSITION_RE);
- a part said to stay or remain where it is does not move ("while the cheeks stay down").
- a clause about a part the measures leave out ("the neck tightens") is not about the part named before it;
- an opening said to become smaller ("narrows the gap between the lips") is the lips closing.
Each (measure, sign) counts once per description; measures below a quarter of the strongest are stray mentions
(companion AUs, "in a smile the cheeks rise too") and are dropped, and descriptions whose strongest measure has the
net votes of fewer than a fifth of them ground nothing (AU21's: the neck, which no measure sees).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from augtext.movement import _NAME_RE, _PART, _POSITION_RE, NEGATED_RE

GEOMETRY: tuple[str, ...] = (
    "inner_brow_height",
    "outer_brow_height",
    "brow_gap",
    "eye_opening",
    "nose_lip_distance",
    "mouth_width",
    "corner_height",
    "lip_opening",
    "jaw_drop",
    "lip_thickness",
    "chin_lip_distance",
)
_STRAY = 0.25  # a measure weaker than this share of the strongest one is a stray mention
# The strongest measure needs the net votes of this share of the descriptions, or they ground nothing: an AU whose
# descriptions mostly name what the measures leave out (AU21, the neck) is not read from the mentions of its companions
# in a few of them ("in terror the lips part and the neck tightens").
_SUPPORT = 0.2

# Parts, most specific first: at each place the first that matches wins ("lip corners" is not "lips"). `None` names
# words that must not be read as a part they contain ("eye corners" are not lip corners).
_PARTS = (
    ("upper_lid", r"upper (?:eye)?lids?"),
    ("lower_lid", r"lower (?:eye)?lids?"),
    ("lids", r"(?:eye)?lids?|lid margins?|(?:eye)?lashes"),
    (None, r"(?:inner |outer )?eye corners?|corners? of the eyes?|eye sockets?"),
    ("lip_corners", r"(?:lip|mouth) corners?|corners? of (?:the |each )?(?:lips?|mouth)|corners?"),
    ("upper_lip", r"upper lip|top lip"),
    ("lower_lip", r"lower lip|bottom lip"),
    ("lips", r"lip line|mouth line|lips?|red (?:parts?|margins?)|vermilion"),
    ("mouth", r"mouths?"),
    ("teeth", r"teeth|tooth|gums?|incisors?"),
    # the neck and the skin under the jaw are not the jaw (the neck tightener pulls them down, the jaw stays)
    (None, r"(?:skin |area )?(?:under|below|beneath) (?:the |its )?(?:jaw|chin)(?: line)?|necks?|throat|collarbones?"),
    ("jaw", r"(?:lower )?jaws?|mandible"),
    ("chin", r"chin(?: boss)?"),
    ("nose", r"nose|nostrils?|nasal|alae?"),
    ("cheeks", r"cheeks?"),
    ("eyes", r"eye opening|whites? of the eyes?|eyes?|eyeballs?|whites?|sclera|iris"),
    ("brows", r"(?:(?:inner |outer )?(?:ends?|corners?|heads?|tails?) of (?:the |each )?)?(?:eye)?brows?"),
    ("glabella", r"glabella"),
    ("face", r"face"),
)
_PART_RE = re.compile("|".join(rf"(?P<p{i}>\b(?:{words})\b)" for i, (_, words) in enumerate(_PARTS)), re.IGNORECASE)
_WHERE_TO_RE = re.compile(r"\b(?:towards?|into|onto) (?:the |each |its |their )?$", re.IGNORECASE)
# Which end of the brows a clause is about; a brow named with neither is the whole brow.
_INNER_RE = re.compile(r"\b(?:inner|medial|heads?\b|cent(?:re|er|ral)|middle|midline)", re.IGNORECASE)
_OUTER_RE = re.compile(r"\b(?:outer|lateral|tails?\b|temples?)", re.IGNORECASE)

_UP = r"rais|lift|up\b|upward|upturn|ris(?:e|es|en|ing)\b|rose\b|elevat|climb|hike|high\b|higher|highest|hoist"
_DOWN = r"lower(?:s|ed|ing)?\b|low\b|down|drop|sag|droop|fall|fell|hang|depress|dip\b|descend"
_APART = rf"{_PART}|apart(?! from)|separat|gap\b"
_CLOSE = r"clos(?:e|es|ed|ing|ure)\b|shut|seal"
_TIGHT = r"tight|tens(?:e|ed|es|ing|ion)\b|taut|firm|strain|stiff|straighten"
_MIDDLE = r"toward (?:the )?(?:midline|middle|cent(?:re|er))|medial"
_INTO_MOUTH = (
    r"suck|(?:roll|drawn|pulled)\w* in\b|inward|into the mouth|tuck|vanish|disappear|hidden|out of sight|lipless"
)
_OUT = r"protrud|evert|outward|(?:push|stick|pout|turn)\w* out\b|jut|flar|thrust"
_SIDEWAYS = r"sideways|horizontal|lateral|toward the ears|elongat|widen|wider|to the sides"
_BROW_IN = r"together|knit|toward each other|closer|inward|furrow|vertical"
_EYE_WIDE = r"wide|widen|stare|staring|bulg|larger|taller|grow|open(?:s|ed)?\b|show|expos|uncover|visible"
_GAPE = r"gap(?:e|es|ed|ing)\b|hang|fall|wide open|open\w* wide|stretch\w* (?:wide|open)|slack"
_LIPS = ("lips", "mouth")
RULES: tuple[tuple[tuple[str, ...], str, str, int], ...] = (
    # (parts, movement words, measure, sign): the part, so moved, changes the measure in that direction.
    (("inner_brow",), rf"{_UP}|oblique", "inner_brow_height", 1),
    (("outer_brow",), rf"{_UP}|arch", "outer_brow_height", 1),
    (("inner_brow",), _DOWN, "inner_brow_height", -1),
    (("outer_brow",), _DOWN, "outer_brow_height", -1),
    (("inner_brow", "outer_brow", "glabella"), _BROW_IN, "brow_gap", -1),
    (("inner_brow", "outer_brow"), r"apart(?! from)|spread", "brow_gap", 1),
    (("upper_lid",), rf"{_UP}|retract", "eye_opening", 1),
    (("upper_lid",), rf"{_DOWN}|{_CLOSE}|cover", "eye_opening", -1),
    (("lower_lid",), rf"{_UP}|{_TIGHT}|push|ride|rode", "eye_opening", -1),
    (("lids",), rf"{_TIGHT}|{_DOWN}|{_CLOSE}|narrow|meet|squeez|cover", "eye_opening", -1),
    (("lids",), r"retract|wide|widen|open(?:s|ed)?\b", "eye_opening", 1),
    (("eyes",), _EYE_WIDE, "eye_opening", 1),
    (("eyes",), rf"{_CLOSE}|narrow|squint|slit|squeez|reduc|smaller|crescent", "eye_opening", -1),
    (("cheeks",), rf"{_UP}|bunch|bulg|puff|mound|toward the eyes?", "eye_opening", -1),  # they push the lower lid up
    (("nose",), rf"{_UP}|wrinkl|crinkl|scrunch|crumpl|creas|bunch|fold|shorten", "nose_lip_distance", -1),
    (("upper_lip",), _UP, "nose_lip_distance", -1),
    (("lip_corners",), rf"{_UP}|smil", "corner_height", 1),
    (("lip_corners",), rf"{_DOWN}|inverted", "corner_height", -1),
    (("lip_corners",), rf"{_SIDEWAYS}|back\b|outward|out\b(?! of)|apart(?! from)|stretch", "mouth_width", 1),
    (("lip_corners",), rf"{_MIDDLE}|toward each other|closer|together", "mouth_width", -1),
    (("lip_corners",), r"tight|tens|firm|tuck|inward|pinch|dimpl|press", "lip_thickness", -1),
    (_LIPS, _SIDEWAYS, "mouth_width", 1),
    (_LIPS, rf"pucker|purs|funnel|round|kiss|forward|{_MIDDLE}", "mouth_width", -1),
    (("mouth",), r"narrow|small|shorter", "mouth_width", -1),
    (_LIPS, r"upturn|turn\w* up|curv\w* up", "corner_height", 1),
    (_LIPS, r"downturn|inverted|turn\w* down|curv\w* down|bend\w* down", "corner_height", -1),
    (_LIPS, rf"{_APART}|open", "lip_opening", 1),
    (_LIPS, rf"{_CLOSE}|toward each other|close in|closer", "lip_opening", -1),
    (("lower_lip",), _DOWN, "lip_opening", 1),
    (("teeth",), r"show|expos|bar(?:e|es|ed|ing)\b|uncover|visible|in view|reveal|glimpse", "lip_opening", 1),
    (("jaw",), rf"{_DOWN}|open|slack|loose|apart", "jaw_drop", 1),
    (("jaw",), rf"{_UP}|{_CLOSE}|clench", "jaw_drop", -1),
    (("chin",), _DOWN, "jaw_drop", 1),
    (("mouth",), _GAPE, "jaw_drop", 1),
    (("teeth",), _APART, "jaw_drop", 1),
    (("face",), r"lengthen|longer|elongat", "jaw_drop", 1),
    (("lips",), r"tight|tens|taut|firm|thin|narrow|press|squeez|compress|together|stiff", "lip_thickness", -1),
    (("lips", "upper_lip", "lower_lip", "mouth"), _INTO_MOUTH, "lip_thickness", -1),
    (("lips",), _OUT, "lip_thickness", 1),
    (("chin",), rf"{_UP}|push|bunch|wrinkl|dimpl|pucker|bulg|tens|tight|knot", "chin_lip_distance", -1),
    (("lower_lip",), _UP, "chin_lip_distance", -1),
)
PHRASES: tuple[tuple[str, str, int], ...] = (
    # Words that name a part and its movement at once ("frown" and "scowl" do not say which part: left out).
    (r"smil|grin", "corner_height", 1),
    (r"pucker|purs(?:e|ed|es|ing)\b|funnel", "mouth_width", -1),
    (r"yawn|gap(?:e|es|ed|ing)\b|agape|scream", "jaw_drop", 1),
    (r"squint", "eye_opening", -1),
    (r"stare|staring|wide-eyed", "eye_opening", 1),
    (r"sneer|snarl", "nose_lip_distance", -1),
    (r"knit", "brow_gap", -1),
)
_RULES = tuple((set(parts), re.compile(rf"\b(?:{words})", re.I), GEOMETRY.index(m), s) for parts, words, m, s in RULES)
_PHRASES = tuple((re.compile(rf"\b(?:{words})", re.I), GEOMETRY.index(m), s) for words, m, s in PHRASES)

# A negated or contrasting clause (movement.NEGATED_RE, and "no ...", "as in ..."), with the relative clauses that
# hang on it ("unlike AU15, which pulls them down").
_CONTRAST_RE = re.compile(
    rf"(?:{NEGATED_RE.pattern}|\b(?:no|nor|neither)\b[^.,;:!?]*|\bas (?:in|with|does|do|when)\b[^.,;:!?]*)"
    r"(?:,\s*(?:which|where|who|whose|that)\b[^.,;:!?]*)*",
    re.IGNORECASE,
)
# A part said to stay where it is does not move; "stay closed" still says how it is held.
_STILL_RE = re.compile(
    r"\b(?:stay(?:s|ed|ing)?|remain(?:s|ed|ing)?|unmoved|unchanged|at rest|in place)\b(?! (?:closed|shut|open|apart))",
    re.I,
)
# The opening between the lips said to become smaller ("narrows the gap between the lips", "the mouth opening gets
# smaller"): the lips close, whatever "opening" and "gap" would say alone.
_OPENING = r"(?:(?:the|its|their|a) )?(?:mouth )?(?:opening|gap)(?: between (?:them|(?:the |its |their )?lips))?"
_SMALLER = r"(?:smaller|narrow(?:s|ed|ing)?|shrink(?:s|ing)?|shrank|reduc(?:e|es|ed|ing)|clos(?:e|es|ed|ing))\b"
_NARROWED_RE = re.compile(
    rf"\b(?:{_SMALLER} {_OPENING}\b|{_OPENING} (?:(?!and\b|while\b|but\b)\w+ ){{0,3}}{_SMALLER})", re.IGNORECASE
)
_FILLED_RE = re.compile(r"\b(?:air|breath|blow|blew|blown|inflat\w*|balloon\w*|tongue)\b", re.IGNORECASE)
_THRUST_RE = re.compile(
    r"\b(?:jaw|mandible|chin)(?: \w+){0,3} (?:forward|thrust\w*|jut\w*|ahead|sideways|to (?:one|either) side"
    r"|off (?:the )?(?:midline|centre|center)|skew\w*)\b",
    re.IGNORECASE,
)
_CLAUSE_RE = re.compile(r"[.;:,!?()]+|\b(?:and|while|as|with|but|whereas|yet|then)\b", re.IGNORECASE)
_SUBJECT_RE = re.compile(rf"{_PART_RE.pattern}|{_INNER_RE.pattern}|{_OUTER_RE.pattern}", re.IGNORECASE)


def _keep_parts(match: re.Match[str]) -> str:
    """A dropped clause reduced to the parts it names, as a clause of its own (the subject of what follows)."""
    return f" , {' '.join(m.group(0) for m in _SUBJECT_RE.finditer(match.group(0)))} , "


def _part_matches(clause: str) -> list[re.Match[str]]:
    """The parts a clause names, less those named as where a movement goes ("up toward the nose")."""
    return [m for m in _PART_RE.finditer(clause) if not _WHERE_TO_RE.search(clause, 0, m.start())]


def _parts(clause: str) -> set[str]:
    """The parts a clause names; "brows" become inner_brow and/or outer_brow (see `_sides`)."""
    found = {_PARTS[int(m.lastgroup[1:])][0] for m in _part_matches(clause)} - {None}
    if "brows" in found:
        found = (found - {"brows"}) | {"inner_brow", "outer_brow"}
    return found


def _sides(parts: set[str], clause: str) -> set[str]:
    """Keep only the end of the brows the clause is about ("the inner ends rise"), when it says so."""
    inner, outer = bool(_INNER_RE.search(clause)), bool(_OUTER_RE.search(clause))
    if inner != outer:
        parts = parts - {"outer_brow" if inner else "inner_brow"}
    return parts


def _votes(text: str) -> set[tuple[int, int]]:
    """{(measure index, sign)} that one description supports."""
    text = re.sub(r"\b(?:upper and lower|lower and upper)\b", " ", _NAME_RE.sub(" ", text), flags=re.I)
    text = _CONTRAST_RE.sub(_keep_parts, re.sub(r"upside[- ]down", "inverted", text, flags=re.I))
    text = _NARROWED_RE.sub(" the lips close ", text)
    votes: set[tuple[int, int]] = set()
    previous: set[str] = set()
    # cheeks pushed out by air or the tongue (not raised), the jaw pushed forward or to one side (not dropped or
    # raised): no measure sees them
    unseen = ({"cheeks"} if _FILLED_RE.search(text) else set()) | (
        {"jaw", "chin"} if _THRUST_RE.search(text) else set()
    )
    for clause in _CLAUSE_RE.split(text):
        own = _sides(_parts(clause), clause) - unseen
        # a clause about a part the measures leave out ("the neck tightens") is not about the part named before it
        elsewhere = not own and bool(_part_matches(clause))
        if not _STILL_RE.search(clause):
            moves = _moves(clause)
            # the movement goes with the clause's own parts or, when none fits, with the last part named before
            votes |= _rule_votes(own, moves) or (set() if elsewhere else _rule_votes(_sides(previous, clause), moves))
            votes |= {(m, s) for words, m, s in _PHRASES if words.search(moves)}
        previous = set() if elsewhere else own or previous
    return votes


def _moves(clause: str) -> str:
    """The clause without its parts and positions ("the lower teeth"): what is left to say how they move."""
    moves = _POSITION_RE.sub(lambda m: " " * len(m.group(0)), clause)  # same length: the parts' places hold
    for m in reversed(_part_matches(clause)):
        moves = f"{moves[: m.start()]} {moves[m.end() :]}"
    return moves


def _rule_votes(parts: set[str], moves: str) -> set[tuple[int, int]]:
    return {(m, s) for need, words, m, s in _RULES if need & parts and words.search(moves)}


def ground(texts: Sequence[str]) -> np.ndarray:
    """Signed weights over `GEOMETRY` (float64, sum of |w| is 1) that the descriptions `texts` of one AU support;
    all zeros when they name no part moving in a known way, or when no measure has the net votes of a fifth of them.
    Each description votes once per (measure, sign); a measure's weight is its net vote share, measures under a
    quarter of the strongest are dropped."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("ground() takes a sequence of description strings (a list of str, not one str)")
    net = np.zeros(len(GEOMETRY), dtype=np.int64)  # integer votes: the result cannot depend on the order
    for text in texts:
        for m, s in _votes(text):
            net[m] += s
    weights = net.astype(np.float64) / max(len(texts), 1)
    peak = np.abs(weights).max(initial=0.0)
    if peak < _SUPPORT:
        return np.zeros(len(GEOMETRY))
    weights[np.abs(weights) < _STRAY * peak] = 0.0
    return weights / np.abs(weights).sum()


def describe(weights: np.ndarray, top: int = 3) -> str:
    """The `top` strongest weights as "lip_opening +0.55, jaw_drop +0.45" ("nothing" when all are zero)."""
    order = sorted((i for i in range(len(GEOMETRY)) if weights[i] != 0), key=lambda i: (-abs(weights[i]), i))
    return ", ".join(f"{GEOMETRY[i]} {weights[i]:+.2f}" for i in order[:top]) or "nothing"
