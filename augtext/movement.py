"""What a description says the face *does*: the movement rules of `validate_description`.

- `says_change(text, au)`: a movement, a visible sign or the AU's muscle, outside denied clauses, AU names and
  positions (`no_change` otherwise).
- `wrong_direction(text, au)`: the AU's opposite movement (`MOVES`) or only the other part of the feature (`SIDES`),
  and none of its own, outside negated and contrasting clauses (`NEGATED_RE`).

Word rules, because a sentence embedding cannot tell "up" from "down" (the semantic gate lets such texts through).
"""

from __future__ import annotations

import functools
import re

from augtext.facs import FACS, ActionUnit, muscle_words

# What a description of an action says the face does: a movement (verbs by stem, direction words), a visible sign
# (wrinkles, furrows, bulges, gaps, comparatives such as "higher") or, in the anatomical style, the muscle
# (checked apart, from the AU's `muscles`). A sentence with none of them talks about the face, not an action on it.
# Stems match at a word start; the short ones that are also common nouns or names are spelled out.
_CHANGE_RE = re.compile(
    r"\b(?:rais|lift|lower(?:s|ed|ing)?\b|pull|draw|drew|drag|tug|push|press|compress|squeez|clench|part(?:s|ed|ing)?"
    r"\b(?! of)|apart|open|clos|shut|seal|narrow|widen|wide\b|wider|squint|blink|wrinkl|creas|crinkl|furrow|fold"
    r"|groove|lines?\b|bulg|bunch|puff|swell|deepen|deeper|hollow|dimpl|dent|tighten|tight|tens|firm|stiffen|stretch"
    r"|lengthen|elongat|flatten|thin|shorten|shorter|longer|higher|lower\b|drop|dip|sag|droop|sink|sunk|fall|fell"
    r"|hang|pucker|purs|pout|funnel|protrud|jut|thrust|roll|suck|tuck|curl|evert|invert|flar|dilat|constrict|arch"
    r"|knit|slant|tilt|angl|curv|turn|twist|bow|round|mov|shift|displac|ris|rose|elevat|depress|retract|contract"
    r"|flex|relax|separat|gap|expos|bar(?:e|es|ed|ing)\b|reveal|hid|cover|scrunch|pinch|snarl|sneer|grimac|frown"
    r"|grin|yawn|bite|bitten|lick|wipe|blow|wink|form(?:s|ed|ing)?\b|up\b|upward|upturn|down\b|downward|downturn"
    r"|(?:shows?|appears?) (?:on|in|at|up|as|above|below|between|along|beside|around|across|more|less)\b"
    r"|show(?:s|ing)?(?=\s*(?:[,.;:!?)]|$|through|behind))"
    r"|show(?:s|ing)? (?:the |more |some )?(?:upper |lower |top |bottom )?(?:teeth|gums|whites?|sclera|inside)"
    r"|visible|shape|chang|strain|skew|crooked|lopsided|asymmetr"
    r"|midline|shiny|wet\b|moist|meet|saying|inward|outward"
    r"|sideways|forward|backward|together|toward|away)",
    re.IGNORECASE,
)
# Negated or contrasting clauses ("not lowered", "instead of lifting the corners", "unlike AU15, which pulls them
# down"), up to the next punctuation: a direction stated there is not the description's own.
_NOT = r"\b(?:not|no longer|never)\b|n['\u2019]t\b"  # "not raised", "don't rise"
NEGATED_RE = re.compile(
    rf"(?:{_NOT}|\b(?:without|rather than|instead of|unlike|as opposed to|oppos\w*|opposite|counter\w*"
    r"|than (?:in|with|when)|compared (?:with|to)|in contrast (?:with|to)|contrary to|whereas|while in)\b)[^.,;:!?]*",
    re.IGNORECASE,
)
# Denied clauses only ("the inner brows do not rise"): a movement stated there is not one the face makes. Contrasts
# ("unlike AU2, ...", "compared with AU2 the inner brows rise more") still say what the face does.
_DENIED_RE = re.compile(rf"(?:{_NOT})[^.,;:!?]*", re.IGNORECASE)
# Words that name a position, not a movement: "lower" before a part of the face ("the lower lip", "lower lids",
# "the lower and upper lids") is where, not "lowered".
_POSITION_RE = re.compile(
    r"\blower(?=[\s-]+(?:and upper|lips?|lids?|eyelids?|lash(?:es)?|eyelashes|face|teeth|tooth|jaws?|gums?|half"
    r"|parts?|portions?|edges?|borders?|rims?|margins?|sides?|cheeks?|forehead|areas?|regions?|third|(?:eye)?brows?"
    r"|mouth|chin|nose|corners?|eyes?|orbit|red|vermilion|incisors?|row|belly|fibres|fibers)\b)",
    re.IGNORECASE,
)
_PART = r"(?<!red )part(?:s|ed|ing)?\b(?! of)"  # the lips part; not "the red parts of the lips", "their red parts"
_BROW_RAISE = (
    r"rais|lift|up\b|upward|arch|ris|rose|elevat|high",
    r"lower(?:s|ed|ing)?\b|down\b|downward|drop|sink|sank|sunk|knit",
)
MOVES: dict[int, tuple[str, str]] = {
    # AU: (its own movement, the opposite one), as word stems. Only for AUs whose movement has an opposite that a
    # description of a lookalike or antagonist states: brows up/down, lids open/closed, lip corners up/down/sideways/
    # inward, lips parted/pressed, lips stretched/puckered, chin up/down. A text is wrong_direction when, outside
    # negated clauses, it states the opposite and none of the own movement: the embedding gate cannot tell these apart
    # ("up" and "down" sit close together in a sentence embedding), the words can.
    1: _BROW_RAISE,
    2: _BROW_RAISE,
    4: (r"lower|down|together|knit|furrow|frown|scowl|inward|bunch", r"rais|lift|up\b|upward|arch|elevat|ris|rose"),
    5: (r"rais|lift|wide|widen|open|retract|up\b|upward|stare|staring", r"clos|shut|narrow|droop|squint"),
    7: (r"narrow|tight|squint|rais|tens|straighten|lift", r"widen|wide open"),
    12: (
        r"up\b|upward|rais|lift|smil|back|ris|obliqu|zygomatic",
        r"down\b|downward|downturn|depress|droop|frown|sag|sideways|horizontal|flatten|toward the ears",
    ),
    14: (r"tight|inward|dimpl|tuck|firm|press|in\b|buccinator", r"sideways|stretch|toward the ears"),
    15: (
        r"down\b|downward|downturn|depress|droop|sag|frown|lower",  # not "turn": "turn up" is AU12's
        r"up\b|upward|upturn|rais|lift|smil",
    ),
    17: (
        r"push|rais|lift|up\b|upward|wrinkl|dimpl|bulg|pout|protrud|curl|pucker|bunch|tens|mentalis",
        r"lower(?:s|ed|ing)?\b|down\b|downward|drop|sag|hang|slack",
    ),
    18: (r"pucker|purs|forward|funnel|protrud|pout|kiss|round|push|narrow", r"stretch|sideways"),
    20: (
        r"stretch|sideways|horizontal|wide|lateral|elongat|flatten|outward|ears",
        r"pucker|funnel|purs|protrud|pout|dimpl|tuck|inward|up\b|upward|smil",
    ),
    22: (r"funnel|forward|protrud|pout|flar|round|push|evert|turn", r"stretch|sideways"),
    23: (r"tight|narrow|thin|press|tens|firm|together|roll", rf"{_PART}|apart|open|separat"),
    24: (r"press|together|squeez|compress|firm|tight|shut|clos", rf"{_PART}|apart|open|separat|gap"),
    25: (rf"{_PART}|open|apart|separat|gap|relax", r"press|clos|shut|seal|together|roll|suck"),
    26: (
        r"drop|lower|open|down\b|apart|fall|hang|relax|slack",  # the jaw's movement: the lips parting alone is AU25
        r"clos|shut|press|clench|seal|pucker|purs|roll|suck",
    ),
    27: (r"open|stretch|down\b|wide|drop|apart|gap", r"clos|shut|press|clench|seal"),
    43: (r"clos|shut|lower|droop|drop|cover|down\b|fall|fell", r"wide|widen|rais|open|lift"),
}
_INNER_BROW = r"inner|medial|cent(?:re|er|ral)|middle|midline|(?:eye)?brow heads?|heads? of the (?:eye)?brows?"
_OUTER_BROW = r"outer|lateral|tails?\b|temple"
SIDES: dict[int, tuple[str, str]] = {
    # AU: (the part of the feature it moves, the part its lookalike moves), for AUs that FACS tells apart by where
    # the same movement happens: AU1 lifts the inner ends of the brows, AU2 the outer ends. Naming only the other
    # part counts as wrong_direction too: the two are each other's nearest AU in the gate, so it keeps either.
    1: (_INNER_BROW, _OUTER_BROW),
    2: (_OUTER_BROW, _INNER_BROW),
}
_MOVES_RE = {
    au: [
        tuple(re.compile(rf"\b(?:{stems})", re.IGNORECASE) for stems in table[au])
        for table in (MOVES, SIDES)
        if au in table
    ]
    for au in {*MOVES, *SIDES}
}
# The AUs' names are names, not movements: "AU12 is the Lip Corner Puller" says nothing the face does. Before the
# change and direction checks, every multi-word FACS name written as a name ("Lips Part", "Jaw Drop") is taken out,
# and in any case the agent noun that ends a name ("raiser", "puller", "depressor": a movement's stem + er/or, what
# the muscle is called; "pucker" is a movement, not an agent).
_AGENT_NOUNS = sorted(
    {
        w
        for w in (au.name.split()[-1].lower() for au in FACS.values())
        if w[-2:] in ("er", "or") and _CHANGE_RE.match(w[:-2])
    }
)
_NAME_RE = re.compile(
    "|".join(
        [rf"\b{re.escape(au.name)}\b" for au in sorted(FACS.values(), key=lambda a: -len(a.name)) if " " in au.name]
        + [rf"(?i:\b(?:{'|'.join(_AGENT_NOUNS)})s?\b)"]
    )
)


def _movement_text(text: str) -> str:
    """`text` without the words that look like a movement but name something: AU names and positions."""
    return _POSITION_RE.sub(" ", _NAME_RE.sub(" ", text))


@functools.cache
def _muscle_re(au: ActionUnit) -> re.Pattern[str] | None:
    words = muscle_words(au.muscles)
    return re.compile(rf"\b(?:{'|'.join(map(re.escape, words))})", re.IGNORECASE) if words else None


def says_change(text: str, au: ActionUnit) -> bool:
    """Whether `text` says what the face does: a movement or visible sign (_CHANGE_RE), or the AU's muscle, outside
    denied clauses ("the brows do not rise") and not as part of a name ("the Inner Brow Raiser") or a position
    ("the lower lip")."""
    plain = _DENIED_RE.sub(" ", _movement_text(text))
    muscle = _muscle_re(au)
    return bool(_CHANGE_RE.search(plain)) or (muscle is not None and bool(muscle.search(plain)))


def wrong_direction(text: str, au: ActionUnit) -> bool:
    """Whether `text`, outside its negated clauses, states the opposite of `au`'s movement (MOVES) or only the other
    part of the feature (SIDES), and none of its own."""
    plain = NEGATED_RE.sub(" ", _movement_text(text))
    return any(opposite.search(plain) and not own.search(plain) for own, opposite in _MOVES_RE.get(au.code, ()))
