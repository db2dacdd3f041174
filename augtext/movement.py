"""What a description says the face *does*: the movement rules of `validate_description`.

- `says_change(text, au)`: a movement, a visible sign or the AU's muscle, outside denied clauses, AU names and
  positions (`no_change` otherwise).
- `wrong_direction(text, au)`: the AU's opposite movement (`MOVES`), only a neighbour's degree of it (`DEGREES`),
  only the part of the face a lookalike moves (`PARTS`) or only its region (`REGIONS`), and none of its own, outside
  negated and contrasting clauses (`NEGATED_RE`) and the FACS names a text calls a movement by (`_CALLED_RE`).
- `credits_other_muscle(text, au)`: the AU's action credited to muscles FACS does not credit it to, and to none of
  its own (`facs.MUSCLES`).

Word rules, because a sentence embedding cannot tell "up" from "down" (the semantic gate lets such texts through).
"""

from __future__ import annotations

import functools
import re

from augtext.facs import (
    FACS,
    INNERVATION,
    MUSCLE_RE,
    ActionUnit,
    muscle_parts_as_named,
    muscle_words,
    muscles_named,
    nerves_named,
    own_muscles,
    relaxed_muscles,
)

# What a description of an action says the face does: a movement (verbs by stem, direction words), a visible sign
# (wrinkles, furrows, bulges, gaps, comparatives such as "higher") or, in the anatomical style, the muscle
# (checked apart, from the AU's `muscles`). A sentence with none of them talks about the face, not an action on it.
# Stems match at a word start; the short ones that are also common nouns or names are spelled out.
_CHANGE_RE = re.compile(
    r"\b(?:rais|lift|hoist|lower(?:s|ed|ing)?\b|pull|draw|drew|drag|tug|push|press|compress|squeez|clench"
    r"|parting\b|part(?:s|ed)?\b(?! of)|apart|open|clos|shut|seal|narrow|widen|wide\b|wider|squint|blink|wrinkl"
    r"|creas|crinkl|furrow|fold|groove|lines?\b|bulg|bunch|puff|swell|deepen|deeper|hollow|dimpl|dent|tighten|tight|tens|firm|stiffen|stretch"
    r"|lengthen|elongat|flatten|thin(?!nest)|shorten|shorter|longer|higher|lower\b|drop|dip|sag|droop|sink|sunk|fall|fell"
    r"|hang|pucker|purs|pout|funnel|protrud|jut|thrust|roll|suck|tuck|curl|evert|invert|flar|dilat|constrict|arch"
    r"|knit|slant|tilt|angl|curv|turn|twist|bow|round|mov|shift|displac|ris|rose|elevat|depress|retract|contract"
    r"|flex|relax|separat|gap|expos|bar(?:e|es|ed|ing)\b|reveal|hid|cover|scrunch|pinch|snarl|sneer|grimac|frown"
    r"|grin|yawn|bite|bitten|lick|wipe|blow|wink"
    r"|form(?:s|ed|ing)?\b(?! the\b| part\b)"  # not "the bone forms the ..."
    # nor "the protuberance shapes the chin" (but "... into") or "gives the chin its shape"
    r"|(?<!its )(?<!their )shap(?:e|es|ed|ing)\b(?! the [\w-]+\b(?! into\b))"
    r"|up\b|upward|upturn|down\b|downward|downturn"
    r"|(?:shows?|appears?) (?:on|in|at|up|as|above|below|between|along|beside|around|across|more|less)\b"
    r"|show(?:s|ing)?(?=\s*(?:[,.;:!?)]|$|through|behind))"
    r"|show(?:s|ing)? (?:the |more |some )?(?:upper |lower |top |bottom )?(?:teeth|gums|whites?|sclera|inside)"
    r"|visible|chang|strain|skew|crooked|lopsided|asymmetr"
    r"|midline|shiny|wet\b|moist|meet|saying|inward|outward|disappear|vanish|larger|smaller|bigger|grip|indent"
    r"|stream|escap|smirk|(?<!to )inflat|gather|taut"
    r"|sideways|forward|backward|together|toward|away)",
    re.IGNORECASE,
)
# Negated or contrasting clauses ("not lowered", "instead of lifting the corners", "unlike AU15, which pulls them
# down"), up to the next punctuation: a direction stated there is not the description's own.
# "not raised", "don't rise", "no gap shows" (not a parting), "nothing escapes"
_NOT = r"\b(?:not|no|nor|never|nothing)\b|n['\u2019]t\b"
# A denial reaches to the clause's end, or to a "but"/"yet" that says what the face does instead ("does not pull the
# corners down but tightens them": the tightening is the text's own).
_DENIAL = rf"(?:{_NOT})(?:(?!\b(?:but|yet)\b)[^.,;:!?])*"
# "unlike AU4 it also wrinkles the nose": a contrast with a code and no comma ends where the own clause's subject starts
_CODE_CONTRAST = (
    r"\b(?:unlike|as opposed to|compared (?:with|to)|in contrast (?:with|to))\s+AU\s?\d{1,2}(?:\s*\([^)]*\))?"
    r"(?=\s+(?:it|this|they|AU\s?\d{1,2})\b)"
)
_CODE_CONTRAST_RE = re.compile(_CODE_CONTRAST, re.IGNORECASE)
NEGATED_RE = re.compile(
    rf"{_DENIAL}|{_CODE_CONTRAST}|\b(?:without|rather than|instead of|unlike|as opposed to|oppos\w*|opposite|counter\w*"
    r"|(?:separat|distinguish|tell|tells|set|sets)\w* (?:it|this|them) (?:apart )?from"
    r"|than (?:in|with|when)|compared (?:with|to)|in contrast (?:with|to)|contrary to|whereas|while in|versus|vs)\b"
    r"[^.,;:!?]*",
    re.IGNORECASE,
)
# Denied clauses only ("the inner brows do not rise"): a movement stated there is not one the face makes. Contrasts
# ("unlike AU2, ...", "compared with AU2 the inner brows rise more") still say what the face does.
_DENIED_RE = re.compile(_DENIAL, re.IGNORECASE)
# Words that name a position, not a movement: "lower" before a part of the face ("the lower lip", "lower lids",
# "the lower and upper lids") is where, not "lowered".
_POSITION_RE = re.compile(
    r"\blower(?=[\s-]+(?:and upper|lips?|lids?|eyelids?|lash(?:es)?|eyelashes|face|teeth|tooth|jaws?|gums?|half"
    r"|parts?|portions?|edges?|borders?|rims?|margins?|sides?|cheeks?|forehead|areas?|regions?|third|(?:eye)?brows?"
    r"|mouth|chin|nose|corners?|eyes?|orbit|red|vermilion|incisors?|row|belly|fibres|fibers)\b)",
    re.IGNORECASE,
)
# the lips part, a parting of the lips; not "the red parts of the lips", "their red parts"
_PART = r"(?:(?<!red )part(?:s|ed)?\b(?! of)|parting\b)"
_RISE = r"ris(?:e|es|en|ing)\b|rose"  # not "ris": "risorius" is the lip stretcher's muscle, no rise
_BROW_RAISE = (
    rf"rais|lift|hoist|up\b|upward|(?<!the )arch|{_RISE}|elevat|high",  # not "flattening the arch"
    r"lower(?:s|ed|ing)?\b|down\b|downward|drop|sink|sank|sunk|knit",
)
# The jaw, cheeks, nostrils and lids of AUs 29-46 (MOVES and PARTS below).
_CLENCH = r"clench|clamp|grit|grind|bit(?:e|es|ing)\b|tight|tens|bulg|hard|firm|contract"
_FILL = r"puff|inflat|balloon|bulg|swell|fill|expand|blow|blew|blown|fuller|fullness"
_HOLLOW = r"suck|hollow|sunk|sink|cave|concave|dent|gaunt|(?:draw\w*|drawn|drew|pull\w*) (?:\w+ ){0,2}in\b|inward"
_FLARE = r"flar|widen|wider|dilat|enlarg|larger|expand|spread|rounder|open(?:s|ed)?\b"
_PINCH = (
    r"narrow|compress|constrict|pinch|squeez|slit|smaller|thinner|shrink|shrank|flatten|inward"
    r"|(?:draw\w*|drawn|drew|pull\w*) (?:\w+ ){0,2}in\b|press\w* (?:\w+ ){0,2}against"
)
_BLOW = (
    r"blow|blew|blown|expel|exhal|escap|outgoing|leav|let\w* (?:\w+ ){0,2}out|out (?:through|of|between)"
    r"|stream|candle|whistl"
)
_HELD = (
    r"(?:air|breath) (?:is |being )?(?:held|trapped|kept)|(?:hold\w*|held|keep\w*|kept|trap\w*) (?:\w+ ){0,2}"
    r"(?:air|breath)|held in|trapped|sealed"
)
_SHUT = (
    r"(?:fully|completely|entirely|tightly) (?:closed|shut)"
    r"|(?:clos\w*|shut\w*) (?:\w+ ){0,2}(?:fully|completely|entirely)"
    r"|(?:stay\w*|remain\w*|kept|keeps?|keeping|held) (?:\w+ )?(?:closed|shut)"
)
_FORWARD = r"forward|thrust|jut|ahead|in front of|underbite|project|protrud"
_ASIDE = (
    r"sideways|to (?:one|the|either) side|left|right|lateral|off (?:the )?(?:centre|center|midline)"
    r"|skew|asymmetr|crooked|lopsided"
)
# A stare is the wide eyes' look; a hard, angry or glaring one narrows them (AU7)
_WIDE_STARE = "".join(rf"(?<!{w} )" for w in ("hard", "angry", "glaring", "cold", "narrow")) + "star(?:e|es|ed|ing)"
# Lips rolled in over the teeth (AU28's suck): the opposite of lips pushed or flared forward (AU18, AU22).
_ROLLED_IN = r"roll\w* (?:\w+ ){0,3}(?:in\b|inward|into|over the teeth)|suck"
_LIDS_DOWN = r"clos|shut|lower|droop|drop|cover|down\b|fall|fell"  # the upper lids coming down (AU43, AU45)
MOVES: dict[int, tuple[str, str]] = {
    # AU: (its own movement, the opposite one), as word stems. Only for AUs whose movement has an opposite that a
    # description of a lookalike or antagonist states: brows up/down, lids open/closed, lip corners up/down/sideways/
    # inward, lips parted/pressed, lips stretched/puckered, chin up/down. A text is wrong_direction when, outside
    # negated clauses, it states the opposite and none of the own movement: the embedding gate cannot tell these apart
    # ("up" and "down" sit close together in a sentence embedding), the words can.
    1: _BROW_RAISE,
    2: _BROW_RAISE,
    4: (
        r"lower|down|together|knit|furrow|frown|scowl|inward|bunch",
        rf"rais|lift|hoist|up\b|upward|arch|elevat|{_RISE}",
    ),
    5: (
        rf"rais|lift|wide|widen|open(?!ing\b)|opening (?:the|them|it|up)\b|retract|up\b|upward|{_WIDE_STARE}",
        r"clos|shut|narrow|droop|sag|heavy|squint|lower(?:s|ed|ing)?\b|down\b|downward|cover"
        r"|drop(?:s|ped|ping)? (?:the|its|their|your) (?:upper )?(?:eye)?lids?",
    ),
    6: (
        rf"rais|lift|{_RISE}|up\b|upward|push|bunch|puff(?!\w* out)|bulg|swell|crinkl|crow|wrinkl|bags?\b|narrow|squint"
        r"|draw|pull|orbicularis|contract|inward|toward the eyes?\b",
        r"lower(?:s|ed|ing)?\b|down\b|downward|drop|sag|droop|sink|sank|sunk|fall|fell|puff\w* out",  # a cheek puff
    ),
    7: (
        r"narrow|tight|squint|rais|tens|straighten|lift",
        r"widen|wide open|relax|sag|droop|larger|bigger|down\b|downward",
    ),
    10: (
        rf"rais|lift|{_RISE}|up\b|upward|elevat|curl|snarl|sneer|expos|bar(?:e|es|ed|ing)\b|show|deepen|arch|levator",
        r"lower(?:s|ed|ing)?\b|down\b|downward|drop|sag|droop|depress",
    ),
    12: (
        rf"up\b|upward|rais|lift|smil|back|{_RISE}\b|obliqu|high\b|higher|zygomatic",
        r"down\b|downward|downturn|depress|droop|frown|sag|sideways|horizontal|flatten|toward the ears|inward|tuck"
        r"|tighten|straight out|to the sides?\b|flat\b",
    ),
    14: (
        r"tight|inward|dimpl|tuck|firm|press|(?:pull|draw|drawn|drew|suck|tug)\w* (?:\w+ )?in\b|buccinator",
        r"sideways|stretch|toward the ears|obliqu|smil|grin|toward the cheekbones?|frown|downturn|turn\w* down"
        r"|(?:pull|draw|drag)\w* (?:\w+ ){0,2}down",
    ),
    15: (
        # not "turn": "turn up" is AU12's; not "sink in": the dimpler's corners sink inward
        r"down\b|downward|downturn|depress|droop|sag|(?:sink|sinks|sinking|sank)\b(?! in\b| into| inward)|frown|lower"
        r"|drop|dip",
        r"up\b|upward|upturn|rais|lift|smil|straight out|toward the ears|to the sides?\b|sideways|laterally|elongat",
    ),
    17: (
        r"push|rais|lift|up\b|upward|wrinkl|dimpl|bulg|pout|protrud|curl|pucker|bunch|tens|mentalis",
        r"lower(?:s|ed|ing)?\b|down\b|downward|drop|sag|hang|slack",
    ),
    18: (
        r"pucker|purs|forward|funnel|protrud|pout|kiss|round|push|medial|toward the (?:midline|middle|cent)"
        r"|(?:to|into) an? (?:small |tight |narrow )?point",
        rf"stretch|sideways|thin|tighten|{_ROLLED_IN}",
    ),
    20: (
        r"stretch|sideways|horizontal|wide|lateral|elongat|flatten|outward|ears",
        r"pucker|funnel|purs|protrud|pout|dimpl|tuck|inward|up\b|upward|smil|forward|down\b|downward|downturn|frown"
        rf"|drop|{_PART}"
        r"|toward the (?:middle|midline|cent)",
    ),
    22: (r"funnel|forward|protrud|pout|flar|round|push|evert|turn", rf"stretch|sideways|{_ROLLED_IN}"),
    23: (
        r"tight|narrow|thin|press|tens|firm|together|roll",
        rf"{_PART}|apart|open|separat|relax|loosen|fuller|thicker|widen|funnel|flar|evert|trumpet|pout|protrud|forward",
    ),
    24: (r"press|together|squeez|compress|firm|tight|shut|clos", rf"{_PART}|apart|open|separat|gap"),
    25: (rf"{_PART}|open|apart|separat|gap|relax", r"press|clos|shut|seal|together|roll|suck"),
    26: (
        r"drop|lower|open|down\b|apart|fall|hang|relax|slack",  # the jaw's movement: the lips parting alone is AU25
        r"clos|shut|press|clench|seal|pucker|purs|roll|suck",
    ),
    27: (r"open|stretch|down\b|wide|drop|apart|gap", r"clos|shut|press|clench|seal"),
    43: (_LIDS_DOWN, r"wide|widen|rais|open|lift"),
    # The rarer AUs' movements and their opposites: the nose wrinkled up vs flattened down (AU9), the furrow deepened
    # vs smoothed (AU11), the corners pulled up sharply vs down (AU13), the lower lip down vs pushed up (AU16), the
    # tongue out vs drawn back in (AU19), the neck tightened vs slack (AU21).
    9: (
        rf"wrinkl|crinkl|scrunch|crumpl|creas|furrow|fold|bunch|rais|lift|up\b|upward|{_RISE}|elevat|snarl|sneer",
        r"flatten|smooth|relax|depress|dilat|flar|(?:nostrils?|wings?) (?:\w+ ){0,3}(?:down\b|downward)",
    ),
    11: (
        rf"deepen|deeper|pronounced|sharper|etched|groove|crease|pull|draw|rais|lift|up\b|upward|{_RISE}",
        r"flatten|smooth|shallow|fade|soften|down\b|downward",
    ),
    13: (
        rf"up\b|upward|upturn|rais|lift|{_RISE}|elevat|smil|grin|puff|caninus|levator",
        r"down\b|downward|downturn|depress|droop|frown|sag",
    ),
    16: (
        r"down\b|downward|lower(?:s|ed|ing)?\b|depress|drop|expos|bar(?:e|es|ed|ing)\b|show|evert|turn\w* out|outward",
        rf"up\b|upward|rais|lift|{_RISE}|elevat|pout",
    ),
    19: (
        r"out\b|outward|forward|protrud|stick|poke|thrust|extend|past|beyond|show|visible|between the (?:lips|teeth)",
        r"back\b|backward|retract|withdr[ae]w|hid|behind the (?:\w+ )?teeth|inside|into the mouth",
    ),
    21: (
        r"tight|tens|taut|cord|band|ridge|stand|strain|stretch|pull|bulg|contract|platysma",
        r"relax|loose|slack|hang|sag|smooth|soft",
    ),
    # AUs 29-46: the jaw clenched vs let drop (AU31); the cheeks filled with air vs sucked in (AU33-35); the nostrils
    # flared vs narrowed (AU38, AU39); the lids lowered vs raised, or closed completely (AU41; that is AU43); the lids
    # closing for a moment vs narrowed by tensing them, the eyes kept open (AU45: "without the eyes closing, the lids
    # tense and the lower lid rises" is AU7's). Reopening is a blink's own, so "open" is no opposite.
    31: (_CLENCH, rf"relax|slack|loose|drop|{_PART}|open|apart|separat|hang|fall"),
    33: (_FILL, _HOLLOW),
    34: (_FILL, _HOLLOW),
    35: (_HOLLOW, _FILL),
    38: (_FLARE, _PINCH),
    39: (_PINCH, _FLARE),
    41: (
        r"droop|sag|lower|heavy|hang|drop|fall|half|partly|partway|cover|relax",
        rf"rais|lift|wide|widen|retract|stare|{_SHUT}",
    ),
    # the lids lowered to a slit (AU42) vs raised, the eye widened
    42: (rf"{_LIDS_DOWN}|narrow|slit|almost|nearly|partly", rf"rais|lift|{_RISE}|wide|widen|retract|up\b|upward"),
    45: (
        rf"{_LIDS_DOWN}|meet|met\b|touch|blink",
        r"narrow|squint|tens|tight|rais|lift|widen|wide\b|retract",
    ),
}
_WHOLE_BROW = r"(?:whole|entire|full) (?:eye)?brows?"  # the inner and outer ends together (AU1+2)
_INNER_BROW = (
    r"inner|medial|cent(?:re|er|ral)|middle|midline|(?:eye)?brow heads?|heads? of the (?:eye)?brows?"
    rf"|(?:near|nearest|by|above) the nose|{_WHOLE_BROW}"
)
_OUTER_BROW = rf"outer|lateral|tails?\b|temple|{_WHOLE_BROW}"
# Where on the face a lookalike's movement shows, as words (matched at a word start, in the text as written: "lower
# lip" is a part here, not a position).
_BROWS = r"(?:eye)?brows?|forehead"
_RAISED_LID = r"upper (?:eye)?lids?|whites?\b|sclera|eyeballs?|iris|levator|palpebrae"
_UPPER_LID = rf"{_RAISED_LID}|{_WIDE_STARE}"
_LOWER_LID = r"lower (?:eye)?lids?"
# "bags below the lower lids" says where the cheek's skin gathers (AU6), not that the lids move (AU7)
_BELOW_LOWER_LID = "".join(rf"(?<!{w} the lower )" for w in ("under", "below", "beneath")) + "".join(
    rf"(?<!{w} lower )"
    for w in ("bagged", "baggy", "puffy")  # "bagged lower lids": the cheek's bags, not the lids
)
_CHEEKS = (
    r"cheeks?\b|cheekbones?|malar|crow|bags?\b|(?:under|below|beneath) the (?:eyes?|lower)|temples?|crinkl"
    r"|(?:outer )?eye corners?|corners? of the eyes|around the eyes?|orbital(?! part| portion)|infraorbital"
)
_LIDS = r"(?:eye)?lids?\b|lid margins?|lashes"
_LIP_CORNERS = r"(?:lip|mouth) corners?|corners? of (?:the|your|his|her|their) (?:lips?|mouth)"
_NOSE = r"nose|nostrils?|nasal|alae?\b|bridge"
_UPPER_LIP = r"upper lip|upper teeth|philtrum"
_LOWER_LIP = r"(?<!upper and )(?<!top and )(?:lower|bottom) (?:front )?(?:lip|teeth)|gums?\b"
_CHIN = r"chin|mentalis"
_JAW = r"jaw|mandible|masseter|temporalis|pterygoid"
_LIPS = r"(?<!upper )(?<!lower )lips?\b"
_OF_CORNERS = r"(?<!corners of the )(?<!corner of the )(?<!corners of your )(?<!corner of your )"
_LIPS_THEMSELVES = rf"{_OF_CORNERS}{_LIPS}(?! corners?)"  # the lips, not their corners (AU12's, AU15's part)
# both lips, not "the lip" (the lower) nor their corners
_BOTH_LIPS = (
    rf"{_OF_CORNERS}(?<!upper )(?<!lower )(?<!bottom )(?<!top )lips\b(?! corners?)"
    r"|(?:upper|top) and (?:lower|bottom) lips?\b"
)
_TEETH_APART = r"teeth (?:\w+ )?apart|(?:between|separat\w*) the (?:upper and lower )?teeth"
_PUCKER = (
    r"pucker|purs|kiss|knot|gather|draw\w* (?:\w+ )?(?:\w+ )?(?:toward|to) the (?:middle|midline|cent)"
    r"|(?:to|into) an? (?:small |tight |narrow )?point"
)
_FUNNEL = r"funnel|flar|evert|turn\w* (?:\w+ )?(?:\w+ )?out|trumpet"
_PRESS = r"press|squeez|compress|clamp|clench"
PARTS: dict[int, tuple[str, str]] = {
    # AU: (where it moves the face, where its lookalikes do), for the lookalikes FACS tells apart by *where* the
    # change shows rather than by its direction: the inner vs the outer brow (AU1, AU2); the upper lid and the white
    # above the iris (AU5) vs the brows (AU1, AU2), the cheeks, crow's feet and bags under the eye (AU6) or the lids
    # themselves, tightened (AU7); the cheeks and eye corners (AU6) vs the lip corners (AU12); the nose (AU9) vs the
    # upper lip (AU10) vs the lower lip (AU16) and back, or the jaw (AU26); the lip corners (AU15) vs the lower lip
    # (AU16) or the chin (AU17); the lips (AU25) vs the jaw (AU26, AU27); the lips (AU20, whose platysma can show in
    # the neck) vs the neck alone (AU21). A text that names a lookalike's part and none of the own counts as
    # wrong_direction: these pairs are each other's nearest AUs in the gate, which keeps either. A text naming both
    # passes (companions, contrasts); parts named as staying still or as where a movement goes do not count.
    1: (_INNER_BROW, _OUTER_BROW),
    2: (_OUTER_BROW, _INNER_BROW),
    5: (rf"{_UPPER_LID}|wide|widen|eyes? (?:\w+ )?(?:\w+ )?open(?:s|ed)?\b", rf"{_BROWS}|{_CHEEKS}|{_LOWER_LID}"),
    6: (_CHEEKS, rf"{_LIDS}|{_UPPER_LID}|{_LIP_CORNERS}|smil|{_BROWS}|{_NOSE}"),
    7: (
        rf"{_BELOW_LOWER_LID}(?<!upper ){_LIDS}|taut|tens|straighten|squint|strain|narrow\w* (?:the )?eyes?\b"
        r"|eyes? (?:\w+ )?narrow|narrow\w* (?:each|both) eyes?\b",
        rf"{_CHEEKS}|{_RAISED_LID}|{_BROWS}",
    ),
    9: (_NOSE, rf"{_UPPER_LIP}|{_LIPS}|{_BROWS}|{_LOWER_LIP}"),
    10: (rf"{_UPPER_LIP}|{_LIPS_THEMSELVES}|nasolabial|fold|furrow", rf"{_NOSE}|{_LOWER_LIP}|{_LIP_CORNERS}"),
    12: (
        rf"{_LIP_CORNERS}|(?<!eye )(?<!at the )corners?\b(?! of the eyes?)|{_LIPS}|mouth|smil|grin|zygomaticus",
        r"crow|(?:eye)?lids?\b|eye corners?",
    ),
    # the dimpler's corners and cheeks vs both lips pressed or tightened (AU24's, AU23's part)
    14: (rf"{_LIP_CORNERS}|corners?\b|dimpl|cheeks?\b|mouth|smirk", rf"{_BOTH_LIPS}|lip red|red parts?|vermilion"),
    15: (
        rf"{_LIP_CORNERS}|corners?\b|frown|inverted|downturn|turn\w* down",
        rf"{_LOWER_LIP}|{_CHIN}",
    ),
    16: (rf"{_LOWER_LIP}|{_CHIN}|depressor labii", rf"{_UPPER_LIP}|{_NOSE}|{_LIP_CORNERS}|{_BOTH_LIPS}|{_JAW}"),
    17: (rf"{_CHIN}|{_LOWER_LIP}|pout", rf"{_LIP_CORNERS}|{_UPPER_LIP}|{_NOSE}|{_BOTH_LIPS}"),
    25: (r"lips?\b", _JAW),
    26: (rf"{_JAW}|{_CHIN}|{_TEETH_APART}|hang|drop|gap(?:e|es|ed|ing)\b", _LIPS_THEMSELVES),
    27: (rf"{_JAW}|{_CHIN}|stretch|wide|yawn|scream|digastric", _LIPS_THEMSELVES),
    # The rarer mouth AUs: the lips moving toward each other from apart (AU8) vs pressed, tightened or sucked in; the
    # nasolabial furrow deepened (AU11) vs the lip corners of a smile; the tongue shown (AU19) vs a mouth merely
    # open; the lips sucked in over the teeth (AU28) vs pressed, tightened or pushed out.
    8: (
        r"(?:towards?|in on) (?:each other|one another)|closer|close in|approach|meet"
        r"|narrow\w* (?:the )?(?:gap|opening|space)|smaller|shrink|less open"
        r"|clos(?:e|es|ing) (?:the )?(?:mouth|lips|gap)"
        r"|(?:draw\w*|drew|pull\w*|br(?:ing|ings|ought)|com(?:e|es|ing)|mov\w*|clos\w*)(?: \w+){0,2} together",
        rf"suck|roll|inward|over the teeth|{_PRESS}|thin\b|tighten|masseter",
    ),
    11: (
        r"nasolabial|furrow|fold|crease|groove|skin (?:beside|next to|above)|sides? of the upper lip|near its sides"
        rf"|zygomaticus minor|{_UPPER_LIP}",
        rf"{_LIP_CORNERS}|smil|grin|zygomaticus major",
    ),
    19: (r"tongue", rf"{_JAW}|{_LIPS}|teeth|mouth"),
    # The sharp lip pull (AU13) vs the smile's broad oblique pull (AU12), told apart by the shape of the corners.
    13: (
        r"sharp|steep|narrow|point|peak|pinch|puff(?!er)|bulg|tight|caninus|levator|straight up|vertical",
        r"obliqu|zygomaticus major|broad|sweeping|gentl|back\b|backward",
    ),
    28: (
        r"suck|roll|inward|in(?:to)? the mouth|inside|(?:over|behind) the (?:\w+ )?teeth|(?:drawn|pulled|tucked) in\b"
        r"|tuck|disappear|vanish|hid|invert",
        rf"{_PRESS}|tight|thin|taut|tens|{_FUNNEL}|outward|protrud|pout|pucker",
    ),
    # Eyes closed and kept closed (AU43) vs a blink (AU45), told apart by how long.
    43: (
        r"stay|remain|held|hold|kept|keep|longer|(?:several|few|many|some|two|three|for) (?:\w+ )?(?:seconds|minutes)"
        r"|sleep|rest\b|restful|relax",
        r"blink|brief|momentar|instant|quick|flutter|flick|(?:fraction|split) of a second|split second|reopen"
        r"|open\w* (?:\w+ )?again",
    ),
    # The jaw pushed forward (AU29) vs moved to one side (AU30) or the chin boss pushed up, wrinkling (AU17).
    29: (_FORWARD, rf"chin boss|wrinkl|dimpl|pout|{_ASIDE}"),
    30: (_ASIDE, _FORWARD),
    # Look-alikes told apart by the shape of the lips rather than where: the pucker's small knot drawn toward the
    # middle vs the funnel's lips flared outward; pressed lips vs lips tightened and thinned without pressing.
    18: (_PUCKER, _FUNNEL),
    20: (
        rf"{_LIP_CORNERS}|{_LIPS}|corners?\b|mouth|risorius",
        rf"neck|throat|cords?\b|tendons?\b|collarbones?|{_LOWER_LIP}",
    ),
    22: (rf"{_FUNNEL}|round|oo\b", _PUCKER),
    23: (
        r"tighten|tighter|tightness|narrow|thin|tens|taut|roll",  # not "closed tight", "tightly" (how hard)
        rf"{_PRESS}|against (?:each other|one another)|{_CHIN}|suck|over the teeth|into the mouth",
    ),
    24: (
        rf"{_PRESS}|together|against (?:each other|one another)|shut|seal|clos",
        rf"tighten|tight\b|taut|tens|thin|roll|{_CHIN}|suck|over (?:the )?teeth"
        r"|in(?:to|side)(?: of)? (?:the )?mouth",
    ),
    # AUs 29-46, told apart from their look-alikes by what the movement does: air blown out through the lips (AU33)
    # vs held behind closed lips (AU34); the tongue pushing a bulge from inside (AU36) vs shown outside the mouth
    # (AU19); the tongue passing along the lips (AU37) vs held out, or the lips bitten or sucked in; the lids almost
    # closed (AU42) vs fully closed and kept so (AU43); a blink's closure of both eyes (AU45) vs one eye (AU46), and
    # back (a blink's brevity against eyes kept closed is in DEGREES).
    33: (_BLOW, _HELD),
    34: (_HELD, r"blow\w* (?:\w+ ){0,2}out|blown out|blew out|expel|exhal|let\w* (?:\w+ ){0,2}out|out through|stream"),
    36: (
        r"bulg|bump|lump|swell|push\w* (?:\w+ ){0,3}(?:against|out)|press\w* (?:\w+ ){0,3}against|from (?:the )?inside"
        r"|inside (?:of )?(?:the|a|one) (?:\w+ )?(?:lip|cheek)"
        r"|(?:under|behind|beneath) (?:the|a|one) (?:\w+ )?(?:lip|cheek)",
        r"protrud|stick\w* out|out of the mouth|outside the mouth|past the lips|between the lips|air\b|inflat|balloon",
    ),
    37: (
        r"wip|lick|sweep|swept|slid|glid|wet|moist|shiny"
        r"|(?:run|runs|ran|mov\w*|pass\w*|travel\w*|trac\w*) (?:\w+ ){0,3}(?:along|across|over)",
        r"held out|stick\w* out|protrud|suck|bit(?:e|es|ing|ten)\b|roll\w* in"
        r"|teeth (?:\w+ ){0,3}(?:press|sink|dig|clamp)",
    ),
    42: (
        r"slit|sliver|narrow|almost|nearly|partly|crack|thin (?:line|band|opening|gap|strip)",
        rf"sag|droop|heavy|blink|flick|reopen|open\w* (?:\w+ )?again|{_SHUT}",
    ),
    45: (
        r"both|two eyes|each eye|symmetr|simultaneous",
        r"(?:only |just )?one (?:eye|lid|eyelid|side)\b|single eye|one-sided|(?:left|right) eye|wink",
    ),
    46: (
        r"one eye|one side|single eye|wink|(?:other|opposite) (?:eye|side)|one-sided",
        r"both (?:\w+ )?(?:eyes|lids|eyelids|sides)|(?:the )?two eyes|symmetr|simultaneous|blink",
    ),
}
_RELAXED = (
    r"passiv|relax|slack|loose|limp|hang|hung|sag|gravity|own weight|let\w* go|let\w* (?:\w+ ){0,2}(?:drop|fall|open)"
)
_FORCED = (
    r"stretch|forc|strain|taut|tension|tense|tensed|active\b|as (?:wide|far) as (?:possible|it can|they can)"
    r"|digastric|pterygoid"
)
DEGREES: dict[int, tuple[str, str]] = {
    # AU: (how far or how hard its movement goes, how a neighbour's same movement goes), for the AUs FACS tells from
    # a neighbour by degree, not direction or place: the eyes closed completely (AU43) vs drooping or narrowed to a
    # slit and still open (AU41, AU42), and back (AU42); the jaw let drop by relaxing (AU26) vs pulled down and the
    # mouth stretched wide (AU27), and back; the eyes shut briefly (AU45) vs kept shut (AU43) or the lids drooping
    # partway (AU41). A text is wrong_direction when it states only the neighbour's degree.
    43: (
        r"clos(?:es|ed|ing|ure)\b|close\b(?! (?:together|to)\b)|shut|meet|meets|met\b|touch|seal",
        r"(?:remain|stay|still|kept|keep)\w* (?:\w+ )?open|half[- ]open|partly|partway|part of the way|partial|slit"
        r"|sliver|narrow|thin (?:line|opening|gap|band)|almost|nearly|droop|sag|heavy|sleepy|drowsy",
    ),
    42: (
        r"slit|sliver|narrow|almost|nearly|partly|partial|crack|thin|short of|peer|squint",
        r"fully|completely|entirely|totally|all the way|shut|sleep|for a long time",
    ),
    45: (
        r"brief|quick|rapid|momentar|instant|flick|flutter|at once|immediately|reopen|open\w* (?:\w+ )?again"
        r"|(?:fraction|split) of a second",  # not "blink": the name says no duration
        rf"{_SHUT}|sustain|prolong|for a while|longer than a blink|sleep|partway|partly|half[- ]?(?:closed|open|way)"
        r"|heavy|(?:stay|remain|kept|keep|held|hold)\w* (?:\w+ )?(?:closed|shut|down|lowered)"
        r"|for (?:several|a few|many|some|two|three) (?:\w+ )?(?:seconds|minutes|moments)",
    ),
    26: (rf"{_RELAXED}|fall|fell|drop", rf"{_FORCED}|actively"),
    # the lips parted, the jaw's opening at most a relaxed one (AU25) vs the mouth stretched open by force (AU27)
    # (the own degree only as the parting's: `states_own_movement` reads it as the own part)
    25: (
        r"a few millimet|slightly (?:apart|parted|open)|(?:small|narrow|slight|little|modest) (?:gap|opening|parting)",
        rf"{_FORCED}|forceful|very wide|yawn|scream",
    ),
    # the lids drooping, still open (AU41) vs shut and kept shut (AU43)
    41: (
        r"droop|sag|heavy|hang|half|partly|partway|part of the way|partial|sleepy|drowsy|still open"
        r"|(?:stay|remain)\w* open|short of",
        _SHUT,
    ),
    # the smile's broad, oblique pull vs the sharp lip puller's steep, narrow one with the cheeks puffed (AU13;
    # PARTS tells AU13 from AU12 the other way)
    12: (
        r"obliqu|back\b|backward|broad|curv|crescent|u-shape|toward the cheekbones?|smil|grin|wide",
        r"steep|into (?:\w+ ){0,2}points?\b|pointed|peaked|into (?:a |an )?(?:\w+ )?peak\b|pinch|puff"
        r"|sharp(?:ly)? (?:up|upward|angle|point)|(?:up|upward) sharply|at a sharp angle",
    ),
    27: (
        rf"{_FORCED}|wide|far\b|maxim|yawn|scream|gap(?:e|es|ed|ing)\b|elongat|actively|strongly",
        rf"{_RELAXED}|simply|gentl|lazi|lazy|moderate",
    ),
}
# The AUs whose neighbour's degree FACS scores as their own lower or higher levels (AU43's lids lowered short of
# closure at A-D, the lips parted as far as they go at E, a jaw drop's or a mouth stretch's degrees): a stated level
# leaves their degree to the level.
_LEVELLED_DEGREES = frozenset({25, 26, 27, 41, 42, 43})
# What a degree is set against or falls short of is not the text's own degree: "well past a relaxed opening", "wider
# than a jaw drop", "the lids almost meet", "stops just short of closing".
_COMPARED_RE = re.compile(
    r"\b(?:past|beyond|than)\b[^.,;:!?]*"
    r"|\b(?:almost|nearly|(?:just )?short of)\s+(?:\w+\s+){0,2}?(?:meet\w*|clos\w*|shut\w*|touch\w*)",
    re.IGNORECASE,
)
# The region a brow raise shows in at all: a text that names the upper lid or the white above the iris and no brow
# ("the outer brow raiser widens the eyes by lifting the upper eyelid") tells the upper lid raiser's movement, whatever
# it calls it. (PARTS tells the inner from the outer brow; a text about the brows and the lids, as in surprise, names
# a brow.)
_LIDS_WIDENED = rf"upper (?:eye)?lids?\b(?! fold)|whites?\b|sclera|iris|{_WIDE_STARE}"  # not the fold AU2 stretches
REGIONS: dict[int, tuple[str, str]] = {
    1: (rf"{_BROWS}|frontalis", _LIDS_WIDENED),
    2: (rf"{_BROWS}|frontalis", _LIDS_WIDENED),
}
# Signs FACS says an AU never shows, whatever else a text says it does: an error of fact beside the AU's own movement,
# which the checks above let pass, since a text may state both directions (a contrast, a companion). The vertical
# furrows between the brows are the brow lowerer's (AU4), not a brow raise's; the cheek raiser lifts the cheeks; the
# nose wrinkler raises no brow; the upper lip raiser, nasolabial deepener and lip corner puller deepen the nasolabial
# furrow; the lip tightener, pressor and suck thin the lips' red parts, and the tightener and pressor keep the lips in
# view (taken into the mouth, they are the suck's); the lid tightener narrows the eye (more white is a widening); a jaw
# drop or mouth stretch lowers the jaw, the lower teeth away from the upper, and neither juts it forward nor shifts it
# sideways; closed eyes see nothing. Read in the own clauses outside denials and contrasts ("unlike AU4, no vertical
# furrows form").
_VERTICAL_FURROWS = r"vertical (?:\w+ )?(?:wrinkles?|furrows?|lines?|creases?|folds?|grooves?)"
_FURROW_SMOOTHED = (
    r"(?:flatten|smooth)\w* (?:\w+ ){0,3}nasolabial|nasolabial (?:\w+ ){0,3}(?:flatten|smooth|fad|disappear|shallow)\w*"
)
_LIPS_FULLER = r"thicker|fuller|plumper"
_JAW_RAISED = (
    r"(?:jaw|mandible) (?:(?:is|are) )?(?:pull|swing|swung|mov|lift|rais|ris|rose|clos|snap|drawn|draw)\w* (?:\w+ )?"
    r"(?:up\b|upward)|(?:lift|rais)\w* (?:the )?(?:jaw|mandible|it) (?:\w+ )?upward|clamp\w*"
    r"|teeth (?:\w+ ){0,2}(?:shut|together)|(?:mouth|lips) (?:stays?|remains?) (?:\w+ )?(?:closed|shut)"
    r"|(?:jaw|mandible) (?:\w+ ){0,3}(?:forward|sideways)"
)
# the lips taken into the mouth, out of sight: the lip suck (AU28), not a tightening or a press
_LIPS_SUCKED_IN = (
    r"(?:suck|pull|drawn|draw|roll|tuck)\w* (?:\w+ ){0,3}(?:into|inside) (?:the|your|his|her|their) mouth"
    r"|none of (?:the|their) red"
)
WRONG_SIGNS: dict[int, str] = {
    1: _VERTICAL_FURROWS,
    2: _VERTICAL_FURROWS,
    6: r"cheeks? (?:(?:are|is|get|gets|go|goes) )?(?:\w+ ){0,2}(?:down\b|downward|lowered|drop\w*|sag\w*|sink\w*)",
    7: r"more (?:of the )?(?:whites?|sclera)\b",  # the lids narrow the eye; more white is a widening (AU5)
    9: r"(?:rais|lift)\w* (?:the )?(?:inner )?(?:eye)?brows?|brows? (?:\w+ ){0,2}(?:rais|lift|up\b|upward)",
    10: _FURROW_SMOOTHED,
    11: _FURROW_SMOOTHED,
    12: _FURROW_SMOOTHED,
    23: rf"{_LIPS_FULLER}|{_LIPS_SUCKED_IN}",
    24: rf"{_LIPS_FULLER}|{_LIPS_SUCKED_IN}",
    28: _LIPS_FULLER,
    26: _JAW_RAISED,
    27: _JAW_RAISED,
    43: r"(?:can|could) still see|see (?:out|through)\b",  # closed eyes see nothing
}
_WRONG_SIGNS_RE = {au: re.compile(rf"\b(?:{words})", re.IGNORECASE) for au, words in WRONG_SIGNS.items()}
_MOVES_RE, _PARTS_RE, _DEGREES_RE, _REGIONS_RE = (
    {au: tuple(re.compile(rf"\b(?:{words})", re.IGNORECASE) for words in pair) for au, pair in table.items()}
    for table in (MOVES, PARTS, DEGREES, REGIONS)
)
# Parts named as staying still ("while the inner ends stay flat", "with the cheeks staying down", "and the cheeks do
# not move", "leaving the outer tails where they were", "keeps the cheeks smooth"; not "a smooth line") or as where a
# movement goes ("toward the cheekbones", "toward the eyes", a lid "covering part of the iris"): not the part that
# moves. Two parts can stay still together ("but the
# chin and mandible remain at rest"): the "and" between them opens no clause.
_DET = r"(?:the|its|their|his|her|your)"
_OPENER = (
    r"\b(?:while|whereas|with|and|but|yet|though|which|leaving|keeping|keeps?"
    rf"|so(?= (?:that )?{_DET}\b))\b"  # "so the jaw stays", not "so far that"
)
_STILL_PART = (
    rf"(?:\s+{_DET}\b)?(?:\s+(?:upper|lower|inner|outer|nasal))?\s+(?:chin|jaw|mandible|teeth|lips?"
    r"|brows?|eyebrows?|cheeks?|lids?|eyelids?|eyes?|nose|nostrils?|forehead|mouth|corners?|skin|root|bridge|wings?"
    r"|neck)\s+and\b"
)
_UNMOVED = (
    r"unmoved|unchanged|unraised|untouched|unaffected|unwrinkled|uncreased|unlined|motionless"
    r"|in (?:its |their |a |the )?(?:resting|rest|neutral) positions?"
)
# The rest of a still clause, up to what else it says: "keeps the cheek still and only tautens the lids" (the lids
# move), "the lips stay in view and move toward each other".
_REST = r"(?:(?!\b(?:and|but|yet|while|whereas)\b)[^.,;:!?])*"
_STILL_RE = re.compile(
    rf"{_OPENER}(?:{_STILL_PART})?(?:(?!{_OPENER})[^.,;:!?])*?(?:\b(?:"
    # staying put, not staying somewhere: "the wrinkles stay in the central forehead" is where they show
    r"(?:stays?|stayed|staying|remains?|remained|remaining)(?! (?:in|on|at|within|along|across) the\b)"
    rf"|{_UNMOVED}|at rest|in place|still|free of|level(?! [A-E]\b)"
    r"|little (?:or no )?(?:change|movement|motion)|(?:hardly|barely) (?:any )?(?:chang|mov)\w*"
    r"|(?<!\ba )smooth"
    rf"|(?:where|as) (?:they|it) (?:are|is|were|was))\b|{_NOT}){_REST}"
    # a part and its stillness after a comma, with no verb: ", the mouth itself unchanged", ", the jaw not moving",
    # ", outer brow unchanged", ", nose itself smooth"
    rf"|,\s+(?:{_DET}\s+)?(?:(?!(?:they|it|AU\d*|is|are|stays?|remains?)\b)[\w-]+\s+){{0,3}}?"
    rf"(?:{_UNMOVED}|at rest|in place|still\b|not moving"
    rf"|not \w+ed\b|smooth\b){_REST}"
    # a part called still: "above an unlined nose", "the unmoved brows"
    rf"|\b(?:an?|the|its|their)\s+(?:{_UNMOVED})\s+[\w-]+"
    # a part that does not move, after a comma: ", cheeks do not move", ", the brows don't rise"
    rf"|,\s+(?:{_DET}\s+)?(?:[\w-]+\s+){{0,2}}?(?:do|does|did)(?:\s+not\b|n['\u2019]t\b){_REST}"
    # a part that stays, after a comma or semicolon, up to what else the clause says: "; the cheek stays flat", ", the
    # jaw remaining in place", ", jaw and teeth stay closed"; not "; the lips stay in view and move toward each other"
    rf"|[,;]\s+(?:{_DET}\s+)?(?:[\w-]+\s+and\s+)?(?:[\w-]+\s+){{0,2}}?(?:stays?|stayed|staying|remains?|remained"
    rf"|remaining)\b(?! (?:in|on|at|within|along|across) the\b){_REST}",
    re.IGNORECASE,
)
_TOWARD_RE = re.compile(
    r"\btowards? (?:the )?(?:\w+ )?(?:cheek\w*|ears?|eyes?|nose|temples?)\b"
    rf"|\b(?:to|towards?|beside|by|near) (?:the |each |one )?(?:{_LIP_CORNERS})\b"
    r"|\b(?:beside|next to|alongside) (?:the )?nose\b"  # the furrow beside the nose (AU10, AU11), not the nose
    r"|\bcover\w* (?:\w+ ){0,3}(?:the )?(?:lower |bottom |upper |top )?(?:iris|pupil)"
    r"|\b(?:against|into) the (?:lower |upper )?(?:eye)?lids?\b",  # the cheek's skin pushed against the lower lid
    re.IGNORECASE,
)
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
# A name that ends in an agent noun is a name in any case, head words and all: "the lower lip depressor stretches the
# lips sideways" moves no lower lip.
_BY_LENGTH = sorted(FACS.values(), key=lambda a: -len(a.name))  # longest first: "lip corner puller" before "lip"


def _lower_name(au: ActionUnit) -> str:
    """`au`'s FACS name in lower case as a pattern, its words apart by spaces or hyphens ("lip[\\s-]+corner ...")."""
    return re.escape(au.name.lower()).replace(r"\ ", r"[\s-]+")


def _either_agent(pattern: str) -> str:
    """A pattern ending in an agent noun with either ending: "lip pressor" or "lip presser"."""
    return rf"{pattern[:-2]}(?:er|or)"


_AGENT_NAMES = [
    _either_agent(_lower_name(au))
    for au in _BY_LENGTH
    if " " in au.name and au.name.split()[-1].lower() in _AGENT_NOUNS
]
_ACTION_NOUNS = [
    _lower_name(au)[: -len(ending)] + noun
    for au in _BY_LENGTH
    for ending, noun in (("raiser", "raise"), ("puller", "pull"))
    if " " in au.name and au.name.lower().endswith(ending)
]
_NAME_RE = re.compile(
    "|".join(
        [rf"\b{re.escape(au.name)}\b" for au in _BY_LENGTH if " " in au.name]
        + [
            rf"(?i:\b(?:{'|'.join(_AGENT_NAMES)})s?\b)",
            rf"(?i:\b(?:{'|'.join(map(_either_agent, _AGENT_NOUNS))})s?\b)",
            # a name as the noun of its action in a heading: "Level C inner brow raise: ...", "lip corner pull - ..."
            # (not "the upper lid raise uses the levator", which names the movement)
            rf"(?i:\b(?:{'|'.join(_ACTION_NOUNS)})(?=\s*[:\u2013\u2014]|\s+-\s))",
        ]
    )
)
# A FACS name in lower case where the text calls its movement by it ("...; this is the cheek blow", "the jaw drop
# action"), or a one-word name as written ("In Blink, the lids ...", "Slit: the eyes ..."): a name, not a movement or
# a part. A confused answer describes one AU and calls it its neighbour's name; read as words, the name's "blow",
# "drop" or "inner brow" would pass the description as the neighbour's own movement.
_NAMES = "|".join(_lower_name(au) for au in _BY_LENGTH)
# A two-word name as the subject of a verb ("the jaw drop stretches the mouth open"): a noun, not the jaw dropping.
# Not the names a plural starts ("the lips part"), nor the agent names (`_AGENT_NAMES`, names in any case). Any name
# as a heading ("With lips part, the jaw ...", "Jaw drop: ...", "Level C of jaw drop: ...") is a name too, and a name
# a plural starts before a singular verb ("lips part is the mandible pulled down").
_NOUN_NAMES = "|".join(
    _lower_name(au)
    for au in FACS.values()
    if len(words := au.name.lower().split()) == 2 and not words[0].endswith("s") and words[1] not in _AGENT_NOUNS
)
_PLURAL_NAMES = "|".join(_lower_name(au) for au in FACS.values() if au.name.split()[0].endswith("s"))
_CALLED_RE = re.compile(
    rf"\b(?:(?:this|that|it|which) is|is called|called|known as|termed|named|scored as|coded as|label+ed as)\s+"
    rf"(?:the\s+|an?\s+)?(?:{_NAMES})\b(?:\s+(?:action|movement|unit))?"
    rf"|\b(?:the\s+|an?\s+)?(?:{_NAMES})\s+(?:action|movement|unit)\b"
    rf"|\b(?:the|a|an|this|that)\s+(?:{_NOUN_NAMES})(?=\s+\w+[^s\W]s\b)"
    rf"|\b(?:with|in|for|during|of)\s+(?:the\s+)?(?:{_NAMES})(?=\s*[,:])|\b(?:{_NAMES})(?=\s*:)"
    rf"|\b(?:{_PLURAL_NAMES})(?=\s+(?:is|was|means|refers)\b)"
    # the name the text or a clause opens with as its subject ("Jaw drop is just ...", "Unlike the mouth stretch, the
    # jaw drop is an active ..."), beside its code ("Lips part AU25 ..."; not "your lips part (AU25)", a movement and
    # its label), or a level's ("At level E of jaw drop the jaw ...")
    rf"|(?:^|(?<=[,;:] ))\s*(?:the\s+)?(?:{_NAMES})(?=\s+(?:is|was|means|refers)\b)"
    # or a two-word name before its verb with no article ("Try it: lid droop raises your upper lids")
    rf"|(?:^|(?<=[,;:] ))\s*(?:{_NOUN_NAMES})(?=\s+\w+[^s\W]s\b)"
    rf"|\b(?:{_NAMES})(?=\s*(?:AU|action\s+unit)\s*-?\s*\d)"
    # a heading: the name and its code in brackets before a comma or colon ("Jaw drop (AU26), level A: ...")
    rf"|^\s*(?:{_NAMES})(?=\s*\(\s*(?:AU|action\s+unit)\s*-?\s*\d{{1,2}}\s*\)\s*[,:])"
    rf"|\b(?:level|intensity)\s+[A-E]\s+(?:of|for|in)\s+(?:the\s+)?(?:{_NAMES})\b"
    rf"|\b(?:in|with|during)\s+(?:{_NAMES})(?=\s+(?:the|a|an|your|his|her|their)\b)"
    rf"|(?-i:\b(?:{'|'.join(au.name for au in FACS.values() if ' ' not in au.name)})\b)",
    re.IGNORECASE,
)


# What a text defines by its code before saying what it is ("Outer brow raising (AU 2) means ...", "A wrinkled nose,
# AU 9, means ...", "Tightening the eyelids (AU 7) is different from ..."): the term, whose words are the AU's name in
# other words, not the movement the text describes; an examiner's request ("Ask the patient to smile: ..."); a rig's
# control.
_DEFINED_TERM_RE = re.compile(
    r"^[^,;:()]{3,40}?(?:\(\s*(?:AU|action\s+unit)\s*-?\s*\d{1,2}\s*\)|,\s*(?:AU|action\s+unit)\s*-?\s*\d{1,2}\s*,)"
    r"(?=\s*(?:means|is|was|refers|describes|differs)\b)"
    r"|^(?:ask|tell|have|instruct)\s+(?:the\s+)?(?:patient|subject|person|participant|them|him|her)\s+to\s+[^,;:]*[:;]"
    # a rig's control or blendshape, named in code ("eyeSquintLeft", "browInnerUp", "mouthFunnel")
    r"|(?-i:\b[a-z]+(?:[A-Z][a-z]+)+\b)",
    re.IGNORECASE,
)


def strip_names(text: str) -> str:
    """`text` without the AUs' FACS names: as written (multi-word), agent nouns ("raiser", "depressor") and any name
    where the text calls its movement by it (`_CALLED_RE`), nor a term it defines by code or an examiner's request
    (`_DEFINED_TERM_RE`)."""
    return _NAME_RE.sub(" ", _CALLED_RE.sub(" ", _DEFINED_TERM_RE.sub(" ", text)))


_AU_CODE_RE = re.compile(r"\b(?:AU|action\s+unit)\s*-?\s*(\d{1,2})\b", re.IGNORECASE)


def named_aus(text: str) -> set[int]:
    """The AU codes a text names ("AU4", "action unit 12")."""
    return {int(code) for code in _AU_CODE_RE.findall(text)}


# Clauses: split at punctuation and dashes, before the words that open a contrast or a second clause, after a code's
# label ("brows knit (AU4) and the corners pulled down") and before "and in AU26 ...".
_CLAUSE_RE = re.compile(
    r"\s*[,;:\u2014]\s*|\s+\u2013\s+|\s+-{1,2}\s+|\s+(?=(?:whereas|while|but|yet)\b)|(?<=\))\s+(?=and\b)"
    r"|\s+(?=and\s+(?:in|with|for|during)\s+(?:AU|action\s+unit)\s*-?\s*\d)",  # "... and in AU26 only the lips open"
    re.IGNORECASE,
)
_RELATIVE_RE = re.compile(r"(?:which|that|where|who|whose|when)\b", re.IGNORECASE)
_CONTRAST_OPENER_RE = re.compile(
    r"^(?:whereas|while in|while|but|yet|unlike|in contrast(?: to| with)?)\b", re.IGNORECASE
)


_SELF_CONTRAST = (
    r"\b(?:unlike|rather than|as opposed to|in contrast (?:to|with)|instead of|not to be confused with|"
    r"compared (?:to|with)|differs? from)\s+(?:the\s+)?(?:{au}|{name})(?:\s*\([^)]*\))?\s*(?:[,;:]|which\b|that\b)"
)


@functools.cache
def _self_contrast_re(au: ActionUnit) -> re.Pattern[str]:
    name = re.escape(au.name).replace(r"\ ", r"[\s-]+")
    return re.compile(_SELF_CONTRAST.format(au=rf"AU\s?{au.code}\b", name=rf"{name}\b"), re.IGNORECASE)


@functools.cache
def _own_name_re(au: ActionUnit) -> re.Pattern[str]:
    """`au`'s FACS name as a text names the AU: as written ("Cheek Blow", "Jaw Clencher", "Slit"), or in lower case
    as a noun: after an article ("the cheek blow", "a blink", "the lip wipe") or, for a name ending in an agent noun,
    as that action's noun ("nostril dilation", "the nostril compressor"). Names that read as a clause in lower case
    ("the lips part", "with the eyes closed") count only as written."""
    words = au.name.split()
    *head, last = (re.escape(w) for w in words)
    agent = words[-1].lower() in _AGENT_NOUNS
    noun = rf"{last[:-2]}(?:ion|ions|ers?|ors?)" if agent else rf"{last}s?"
    gap = r"[\s-]+"
    lower = gap.join([*head, noun])
    forms = [rf"(?-i:{gap.join([*head, last])})\b"]  # as written
    if not words[0].endswith("s"):
        forms.append(rf"\b(?:a|an|the|this|that|its|each|every)\s+{lower}\b")
        if agent:
            forms.append(rf"{lower}\b")
    return re.compile(rf"\b(?:{'|'.join(forms)})", re.IGNORECASE)


def names_itself(text: str, au: ActionUnit) -> bool:
    """Whether `text`, outside its negated and contrasting clauses, names `au` by code or by its FACS name
    (`_own_name_re`): "AU36 raises a small bump; the cheek blow instead inflates the whole cheek" names AU33, and so
    does "AU34 holds the air in, whereas the cheek blow lets it out" (a "whereas" clause states the text's own)."""
    plain = NEGATED_RE.sub(" ", re.sub(r"\b(?:whereas|while in)\b", ",", text, flags=re.IGNORECASE))
    return au.code in named_aus(plain) or bool(_own_name_re(au).search(plain))


def contrasts_itself(text: str, au: ActionUnit) -> bool:
    """Whether `text` sets itself against the AU it is sent as ("Unlike AU12, which pulls the corners up, this
    movement pulls them down", "unlike the Lip Corner Puller, ...", "Unlike AU16, which bares the lower teeth, AU15
    pulls the corners down"): what it describes is another movement, named or not. The contrast style sets the AU
    against a look-alike, not against itself ("Unlike AU12, which draws the corners up, AU20 stretches them" is AU20's
    text); nor is a comparison of the AU with itself at another level one ("unlike AU12 at trace level, ...")."""
    return bool(_self_contrast_re(au).search(text))


def own_clauses(text: str, au: ActionUnit) -> str:
    """`text` without the clauses about another AU it names by code: a clause that names another AU and not `au`
    ("AU16 pulls the lower lip down", "unlike AU12"), with the relative clause that follows it ("which pulls the
    lip corners up"). A clause that names `au`, or names no AU but `au`'s own muscle at work, loses its contrast
    opener: in "AU16 pulls the lower lip down, whereas AU17 pushes it up" the "whereas" clause is the text's own, as
    in "AU15 and AU17 co-occur, but the mentalis pushes the chin up, whereas the triangularis pulls the corners down".
    Unchanged when the text names no other AU."""
    others = named_aus(text) - {au.code}
    if not others:
        return text
    kept, foreign = [], False
    own = own_muscles(au.code)
    for clause in _CLAUSE_RE.split(text):
        codes = named_aus(_CODE_CONTRAST_RE.sub(" ", clause))  # "but unlike AU4 it wrinkles the nose" is the own AU's
        # the own AU by name ("the lid tightener appears with AU4", "..., the Lip Tightener presses the lips") is the
        # own AU's clause, whatever else it names or states
        by_name = bool(_own_name_re(au).search(clause) or _SELF_RE.search(clause))
        about_another = not by_name and (
            codes and au.code not in codes or not codes and _companions(clause, others, au)
        )
        if about_another or foreign and _RELATIVE_RE.match(clause):
            foreign = True
            continue
        foreign = False
        mine = au.code in codes or by_name or not codes and any(m & own for m in muscles_named(clause))
        kept.append(_CONTRAST_OPENER_RE.sub("", clause).strip() if mine else clause)
    return ", ".join(c for c in kept if c)


# The AU a text is about, referred to as such ("whereas this AU raises the outer portions")
SELF_REF = r"\bthis\s+(?:AU|action\s+unit|unit|action|movement)\b"
_SELF_RE = re.compile(SELF_REF, re.IGNORECASE)


def _companions(clause: str, others: set[int], au: ActionUnit) -> bool:
    """Whether `clause`, which names no AU, states the movement of one the text names by code (`others`) and not
    `au`'s: "Paired with AU4 and AU9, the cheek raiser squeezes the eyes while the brows lower" tells AU4's lowering
    in a clause of its own."""
    said = any(c in FACS and states_own_movement(clause, FACS[c]) for c in others)
    return said and not states_own_movement(clause, au)


# "a dimple pops up beside each corner": it appears, nothing is raised
_APPEARS_RE = re.compile(
    r"\b(?:pops?|popping|popped|crops?|cropping|cropped|shows?|showing|showed)\s+up\b", re.IGNORECASE
)
# "up" after a verb it only completes ("bunching up the skin", "scrunches up", "tightens up"): no direction. The verb
# stays and says what it says.
_PARTICLE_UP_RE = re.compile(
    r"\b((?:bunch|scrunch|screw|crumpl|crinkl|ball|bundl|end|light|tens|firm|tight|pucker|gather|wrinkl|creas)\w*)"
    r"\s+up\b",
    re.IGNORECASE,
)


def _without_muscles(text: str) -> str:
    """`text` without the muscles it names ("the medial part of the frontalis", "the orbital orbicularis oculi")."""
    return MUSCLE_RE.sub(" ", muscle_parts_as_named(text))


def _movement_text(text: str) -> str:
    """`text` without the words that look like a movement but name something: AU names and positions; a sign that
    "pops up" appears; a verb's particle "up" (`_PARTICLE_UP_RE`)."""
    text = _APPEARS_RE.sub(" appears", _POSITION_RE.sub(" ", strip_names(text)))
    return _PARTICLE_UP_RE.sub(r"\1", text)


@functools.cache
def _muscle_re(au: ActionUnit) -> re.Pattern[str] | None:
    words = muscle_words(au.muscles)
    return re.compile(rf"\b(?:{'|'.join(map(re.escape, words))})", re.IGNORECASE) if words else None


# A muscle's nerve or blood supply, where it arises and inserts, what it was once called or what kind of organ it is:
# a text about these ("the mentalis is innervated by the marginal mandibular nerve", "the levator anguli oris was
# once called caninus", "the tongue is a muscular organ") names the muscle without saying what it does.
_SUPPLY_RE = re.compile(
    r"\b(?:innervat\w*|nerves?|supplied by|(?:blood|nerve) supply|arter(?:y|ies)|veins?"
    r"|aris\w* from|originat\w*|inserts? (?:into|on)|(?:once|also|formerly|sometimes) (?:called|known as)"
    r"|named (?:after|for)|its name|(?:is|are) (?:a|an) (?:\w+ ){0,2}(?:organ|muscle)s?)\b",
    re.IGNORECASE,
)


def says_change(text: str, au: ActionUnit) -> bool:
    """Whether `text` says what the face does: a movement or visible sign (_CHANGE_RE), or the AU's muscle (not in a
    text about its nerve or blood supply), outside denied clauses ("the brows do not rise") and not as part of a name
    ("the Inner Brow Raiser") or a position ("the lower lip")."""
    plain = _DENIED_RE.sub(" ", _movement_text(text))
    if _CHANGE_RE.search(plain):
        return True
    muscle = _muscle_re(au)
    return muscle is not None and bool(muscle.search(plain)) and not _SUPPLY_RE.search(plain)


def _parts_text(text: str) -> str:
    """`text` without names, negated clauses, parts that stay still and where a movement goes (see PARTS)."""
    # a still clause after a comma leaves the comma: it ends a contrast before it ("Unlike AU7, the cheek stays ...")
    still = _STILL_RE.sub(lambda m: f"{m[0][0]} " if m[0][0] in ",;" else " ", strip_names(text))
    return _TOWARD_RE.sub(" ", NEGATED_RE.sub(" ", still))


def _own_reading(text: str, au: ActionUnit) -> tuple[str, str]:
    """`text`'s own clauses (`own_clauses`) as MOVES reads them (without names, positions and negated clauses) and
    as PARTS reads them (`_parts_text`)."""
    return _reading(own_clauses(text, au))


@functools.lru_cache(maxsize=4096)
def _reading(text: str) -> tuple[str, str]:
    # one reading per text, whichever AU asks (the gate asks for every AU with movement words: `has_movement_words`)
    return NEGATED_RE.sub(" ", _movement_text(text)), _parts_text(text)


# Own movement words that say no direction: a muscle's name, pulling, drawing, contracting, stretching. They count
# toward `states_own_movement`, but a text that states the opposite direction is not saved by them ("the zygomaticus
# major pulls the lip corners down" as AU12, "the lip corners are pulled downward and the lower lip stretches" as
# AU20).
_UNDIRECTED_RE = re.compile(rf"{MUSCLE_RE.pattern}|\b(?:pull|draw|drew|drag|tug|contract|stretch)\w*", re.IGNORECASE)
# Where a muscle runs ("which runs from the cheekbone down to the corner of the mouth") is anatomy, not a direction.
_COURSE_RE = re.compile(
    r"\b(?:runs?|running|ran|extends?|extending|passes|passing|courses?|coursing|descends?|descending|spans?|spanning"
    r"|fans?|fanning)\b(?! (?:up|down|out))(?:(?!\b(?:as|and|while|when|so|but|whereas)\b)[^.,;:!?])*",
    re.IGNORECASE,
)


# An object pronoun for a part the text names in a clause about another AU: in "Unlike AU12, which lifts the lip
# corners, AU15 pulls them down" the own clause names its part as "them".
_PRONOUN_RE = re.compile(r"\b(?:them|it)\b", re.IGNORECASE)


def _own_part(where: str, text: str, au: ActionUnit, own: re.Pattern[str]) -> bool:
    """Whether the own clauses' parts reading `where` names the AU's own part (`own`, PARTS' first pattern), or refers
    to it by an object pronoun where the part is named in a clause about another AU the text names by code (one
    `own_clauses` leaves out) and the own clauses name `au` by code: the text sets the two AUs side by side."""
    if own.search(where):
        return True
    if not _PRONOUN_RE.search(where):
        return False
    own_text = own_clauses(text, au)
    return own_text != text and au.code in named_aus(own_text) and bool(own.search(_parts_text(text)))


def wrong_direction(text: str, au: ActionUnit, by_degree: bool = True) -> bool:
    """Whether `text`, outside its negated clauses and its clauses about other AUs it names (`own_clauses`), states
    the opposite of `au`'s movement and none of its own (MOVES; own words that say no direction, `_UNDIRECTED_RE`,
    do not save a stated opposite, and where a muscle runs, `_COURSE_RE`, is no opposite), states only a neighbour's
    degree of it (DEGREES), names only the part of the face a lookalike of `au` moves and none of `au`'s own part
    (PARTS), names a lookalike's region and not `au`'s at all (REGIONS), or states a sign `au` never shows, whatever
    else it states (WRONG_SIGNS: "the cheeks are pulled downward" for AU6), or names `au`'s own part only where it
    says it does not move (`_denies_own_part`). `by_degree=False` leaves DEGREES out for
    the AUs whose neighbour's degree FACS scores as their own levels (`_LEVELLED_DEGREES`), for a text that states an
    intensity level: FACS 2002 scores AU43's lower levels as the lids lowered short of closure ("At level A, the upper
    lids sit just lower, the eyes still open"); a smile's shape (AU12 against AU13's sharp pull) is no level."""
    plain, where = _own_reading(text, au)
    if (signs := _WRONG_SIGNS_RE.get(au.code)) and signs.search(plain):
        return True
    moves, parts, degrees = _MOVES_RE.get(au.code), _PARTS_RE.get(au.code), _DEGREES_RE.get(au.code)
    # an expression the text opens with as its setting ("In a smile, AU 12, the corners are pulled straight out") is
    # no own movement; one it ends on is what the movement makes ("the chin rises ... in a sulky pout")
    own_moves = _UNDIRECTED_RE.sub(" ", _OPENING_SETTING_RE.sub(" ", plain))
    if moves and moves[1].search(_COURSE_RE.sub(" ", plain)) and not moves[0].search(own_moves):
        return True
    if degrees and (by_degree or au.code not in _LEVELLED_DEGREES):
        said = _COMPARED_RE.sub(" ", plain)
        if degrees[1].search(said) and not degrees[0].search(said):
            return True
    region = _REGIONS_RE.get(au.code)
    if region and region[1].search(where) and not region[0].search(where):
        return True
    # where the own clauses name a look-alike's part, a pronoun there refers to it ("AU14 presses the lips together,
    # making them thin"), not to an own part named in another AU's clause; an expression named as the setting ("in a
    # smile, AU12 raises the cheeks") is not the own part moving
    # a muscle's name is no part that moves: "produced by the medial frontalis, lifts the outer ends" (AU1) names no
    # inner brow
    if parts and _denies_own_part(text, au, where, parts[0]):
        return True
    setting_apart = _SETTING_RE.sub(" ", where)
    return bool(parts) and bool(parts[1].search(setting_apart)) and not parts[0].search(_without_muscles(setting_apart))


# What a text says does not move: a denied clause ("the nose does not wrinkle", "with no creasing on the nose") and one
# opened by "without" ("without lifting the cheek"); not a part that stays in a state ("the lids stay tense").
_WITHOUT_RE = re.compile(r"\bwithout\b[^.,;:!?]*", re.IGNORECASE)


def _denies_own_part(text: str, au: ActionUnit, where: str, own: re.Pattern[str]) -> bool:
    """Whether `text`'s own clauses name `au`'s own part (`own`, PARTS' first pattern) only where they say it does not
    move, and state no own movement elsewhere: "AU9 lifts the cheeks and gathers crow's-feet, with no creasing on the
    nose" describes the cheek raiser."""
    if _own_part(where, text, au, own) or states_own_movement(text, au):
        return False
    said = _without_muscles(strip_names(own_clauses(text, au)))
    still = " ".join(m[0] for r in (_DENIED_RE, _WITHOUT_RE) for m in r.finditer(said))
    return bool(own.search(still))


def has_movement_words(au: ActionUnit) -> bool:
    """Whether `au` has a word table (MOVES or PARTS): whether `states_own_movement` can say it is not stated."""
    return au.code in MOVES or au.code in PARTS


def states_own_movement(text: str, au: ActionUnit) -> bool:
    """Whether `text`, outside its negated clauses and its clauses about other AUs it names, states `au`'s own
    movement (MOVES) and names its own part (PARTS) or its own degree (DEGREES: "the lids close and reopen quickly" is
    a blink's, whichever eyes it names), for an AU that has either table (False for one that has none)."""
    moves, parts, degrees = _MOVES_RE.get(au.code), _PARTS_RE.get(au.code), _DEGREES_RE.get(au.code)
    if not moves and not parts:
        return False
    plain, where = _own_reading(text, au)
    own_part = not parts or _own_part(where, text, au, parts[0]) or bool(degrees and degrees[0].search(plain))
    return (not moves or bool(moves[0].search(plain))) and own_part


def states_own_movement_in_words(text: str, au: ActionUnit) -> bool:
    """`states_own_movement` without the words that say no direction (`_UNDIRECTED_RE`: a muscle's name, a pull):
    "the zygomaticus major takes its name from the zygomatic bone" names AU12's muscle and states no movement."""
    return states_own_movement(_UNDIRECTED_RE.sub(" ", text), au)


# A muscle said to relax, rest, hold a part where it is or oppose ("the frontalis relaxes", "the orbicularis oris
# keeps the lips shut", "its antagonist, the levator palpebrae") is not what the text credits the action to.
_IDLE_RE = re.compile(
    r"\b(?:relax\w*|slack\w*|loosen\w*|releas\w*|eas(?:e|es|ed|ing)\b|let\w* go|(?:go|goes|went) limp|gives? way"
    r"|at rest|inactive|passive\w*|antagonis\w*|oppos\w*|los(?:e|es|ing) (?:\w+ ){0,3}tone|less (?:pull|tone)"
    r"|stops? \w+ing|ceas\w*|no longer|keeps?|keeping|kept|holds?|holding|held|silen\w*|quiet\w*)\b",
    re.IGNORECASE,
)
# A muscle that "no longer" holds a part stops working (`_IDLE_RE`): not a denied clause to leave out.
_NO_LONGER_RE = re.compile(r"\bno longer\b", re.IGNORECASE)
# A clause of its own: what one muscle does ("the lids close as the levator relaxes"); an appositive ("its lifting
# muscle, the levator palpebrae superioris, relaxes") stays in its clause.
_PIECE_RE = re.compile(r"[.;:!?()]+|\b(?:and|while|whereas|but|yet|so|as|when|whilst)\b", re.IGNORECASE)


def _named_outside_contrasts(text: str) -> set[int]:
    """The AUs `text` names by code or FACS name outside its negated and contrasting clauses: companions whose muscles
    (and nerves) it may credit. An AU named only to be set aside ("unlike AU27, the jaw drop stretches the mouth
    through the pterygoids") lends none: they are credited with the action the text says is not this one."""
    said = NEGATED_RE.sub(" ", text)
    return named_aus(said) | {code for code, other in FACS.items() if _own_name_re(other).search(said)}


def credits_other_muscle(text: str, au: ActionUnit) -> bool:
    """Whether `text` credits `au`'s action to muscles FACS credits it not to: outside its negated and contrasting
    clauses, its clauses about other AUs it names (`own_clauses`) and its clauses where a muscle relaxes, holds a part
    or opposes (`_IDLE_RE`), it names muscles (`facs.MUSCLES`), none of them `au`'s own (`own_muscles`) or those of an
    AU it names by code or FACS name ("together with the Cheek Raiser's orbicularis oculi, ..."), nor, in a text that
    states `au`'s movement, one at its own AU's work in a clause of its own (`_companions_work`), and no own muscle
    relaxes. "AU12: the risorius pulls the lip corners up" and "the corrugator lifts the inner brows" (AU1) do;
    "unlike the zygomaticus major, which pulls the corners up, the triangularis pulls them down" (AU15) does not.
    A muscle whose relaxation makes the AU (`facs.relaxed_muscles`) is its own only where the text says something
    relaxes: "the masseter contracts and pulls the jaw down" (AU26) credits the wrong action. False for an AU whose
    muscles have no name here (the tongue's)."""
    own = own_muscles(au.code)
    if not own:
        return False
    plain = NEGATED_RE.sub(" ", _NO_LONGER_RE.sub("ceases", own_clauses(text, au)))
    acting, idle = [], []
    says_own = states_own_movement_in_words(plain, au)
    for piece in _PIECE_RE.split(plain):
        if _IDLE_RE.search(piece):
            idle.extend(muscles_named(piece))
        else:  # a companion's work is told in a clause of its own, commas included ("with the mentalis pushing the
            # chin up, the lip corners are pulled down": AU15)
            for part in piece.split(","):
                acting.extend(m for m in muscles_named(part) if not (says_own and _companions_work(part, m, au)))
    if not acting:
        return False
    named = _named_outside_contrasts(text) - {au.code}
    # a muscle whose relaxation makes the AU is its own where the text says something relaxes, not contracting alone
    relaxed = frozenset() if _IDLE_RE.search(plain) else relaxed_muscles(au.code)
    allowed = (own - relaxed).union(*(own_muscles(code) for code in named))
    return not any(m & allowed for m in acting) and not any(m & own for m in idle)


def names_other_nerve(text: str, au: ActionUnit) -> bool:
    """Whether `text`'s own clauses, outside negated and contrasting clauses, name the nerve that drives the movement
    and it serves none of the muscles in play (`facs.INNERVATION`): `au`'s own, those of an AU it names outside a
    contrast, and those its own clauses name. A branch of the facial nerve is the claim, not the facial nerve it
    belongs to: "AU9 ..., driven by the marginal mandibular branch to levator labii superioris alaeque nasi" and "AU5
    ... through the temporal branch of the facial nerve acting on levator palpebrae superioris" (the oculomotor's)
    are wrong; "the zygomatic branch of the facial nerve fires the zygomaticus major" (AU12) is not."""
    plain = NEGATED_RE.sub(" ", own_clauses(text, au))
    named = nerves_named(plain)
    if len(named) > 1:
        named.discard("facial nerve")
    if not named:
        return False
    codes = {au.code} | _named_outside_contrasts(text)
    muscles = set().union(*(own_muscles(code) for code in codes), *muscles_named(plain))
    served = {nerve for muscle in muscles for nerve in INNERVATION.get(muscle, ())}
    return bool(served) and not named & served


# An expression named as the setting ("in a Duchenne smile", "during a frown"): where, not what its muscle does.
_SETTING_RE = re.compile(
    r"\b(?:in|during|with|within|for|of)\s+(?:(?:a|an|the|this|that|such|his|her|their|its)\s+)?(?:[\w-]+,?\s+){0,2}?"
    r"(?:smile|grin|laugh|frown|scowl|pout|sneer|grimace|expression|display)s?\b",
    re.IGNORECASE,
)

# ... and one the text opens with ("In a smile, AU 12, ..."): the frame, not a movement the text states.
_OPENING_SETTING_RE = re.compile(rf"^\s*(?:{_SETTING_RE.pattern})\s*,", re.IGNORECASE)


def _companions_work(piece: str, muscles: frozenset[str], au: ActionUnit) -> bool:
    """Whether `piece` has `muscles` make another AU's movement and states none of `au`'s: in "the lip corners are
    pulled up while the orbicularis oculi lifts the cheeks" (AU12) the "while" clause is the companion AU6 at work,
    not a claim about what makes AU12 (the text must state AU12's movement elsewhere: `credits_other_muscle`). An
    expression named as the clause's setting ("in a Duchenne smile the orbicularis oculi crinkles the eyes") is not
    `au`'s movement stated there."""
    if states_own_movement_in_words(_SETTING_RE.sub(" ", piece), au):
        return False
    return any(
        code != au.code and muscles & own_muscles(code) and _moves_in_words(piece, other)
        for code, other in FACS.items()
    )


def _moves_in_words(text: str, au: ActionUnit) -> bool:
    """Whether `text` states `au`'s movement (MOVES, for an AU without one: `states_own_movement`), not counting the
    words that say no direction, whatever part it names: "the frontalis raises the brows" is AU1's or AU2's work."""
    moves = _MOVES_RE.get(au.code)
    if not moves:
        return states_own_movement_in_words(text, au)
    return bool(moves[0].search(_own_reading(_UNDIRECTED_RE.sub(" ", text), au)[0]))


def contrasted_aus(text: str) -> set[int]:
    """The AUs whose muscles `text` names only to set them aside, in a negated or contrasting clause ("unlike a frown
    made by the corrugator, ...": AU4): a contrast by muscle, as "unlike AU4, ..." is one by code."""
    return {
        code
        for span in NEGATED_RE.findall(text)
        for muscles in muscles_named(span)
        for code in FACS
        if muscles & own_muscles(code)
    }
