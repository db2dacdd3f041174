"""FACS intensity levels in a description: which level it states, and whether what it describes contradicts it.

FACS scores an AU's intensity in five levels, A (trace) to E (maximum). The intensity prompt asks an LLM to start each
sentence with its level, and a small model often states one level and describes another: "At level A (trace), the
lip corners are pulled up as far as possible", "Level E: the brows barely move". The movement is the AU's, so no
other rule sees it, but the sentence says something false about the scale.
"""

from __future__ import annotations

import re

from augtext.movement import NEGATED_RE

LEVELS = {"A": "trace", "B": "slight", "C": "marked", "D": "severe", "E": "maximum"}
"""FACS's intensity levels and the word each is named by (Ekman, Friesen & Hager 2002)."""

LEVEL_WORD = r"(?:trace|slight|marked|pronounced|severe|extreme|maximum|maximal)"
"""A word that names an intensity level ("at trace intensity", "B (slight)"), in a regular expression."""

LEVEL_LEAD_RE = re.compile(
    rf"^(?:(?:scored\s+)?at\s+|with\s+|for\s+)?(?:the\s+)?(?:{LEVEL_WORD}\s+)?"
    rf"(?:(?:(?:intensity|level)\s+\(?[A-E]\)?|\([A-E]\)|[A-E](?=\s*[(:,\u2013\u2014-]))|(?<=at\s)[A-E]\b)"
    rf"(?:\s*\({LEVEL_WORD}[^)]{{0,20}}\))?(?:\s*[,\u2013\u2014-]?\s*{LEVEL_WORD})?(?:\s+(?:intensity|level))?"
    rf"(?:\s+of\b)?\s*[,:;\u2013\u2014-]?\s*",
    re.IGNORECASE,
)
"""The intensity level a text starts with, as the intensity prompt asks ("At level B (slight) of AU4,", "Level C:",
"A (trace):", "At trace intensity (A),", "Scored at E,", "E - maximum:"): a letter only with a level's context. The
gate judges a text without it (quality.strip_labels)."""

_WORD_LEVEL = {"pronounced": "C", "extreme": "D", "maximal": "E", **{word: level for level, word in LEVELS.items()}}
_NAME_FITS = {**{word: {level} for word, level in _WORD_LEVEL.items()}, "extreme": {"D", "E"}}  # "E (extreme)" is loose

# A letter paired with a level's name: after "level"/"at" ("level B (slight)", "at D - severe"), as a heading ("B
# (slight):", "E - maximum,"), or the name first ("maximum (E)", "a severe, D-level"); not "A (slight) pull ...".
_SEP = r"\s*(?:\(\s*|[-\u2013\u2014,]\s*)"
_PAIRED_RE = re.compile(
    rf"\b(?i:level|intensity|at)\s+\(?([A-E])\)?{_SEP}(?i:{LEVEL_WORD})\b"
    rf"|(?<![\w'])([A-E]){_SEP}(?i:{LEVEL_WORD})\b[^):,;.]{{0,20}}\)?(?=\s*(?:[:,;\u2013\u2014-]|$))"
    rf"|\b(?i:{LEVEL_WORD})\s*(?:\(\s*([A-E])\s*\)|[-\u2013\u2014,]\s*([A-E])[\s-]+(?i:level|intensity)\b)"
)

# A level letter only in a level's context, upper case: "level B", "intensity (D)", "a C-level", "(E)", "scored as an
# A", "B:" or "At E," at the start, "at D"; lower case after "level" where no noun follows.
_LETTER_RES = (
    re.compile(r"\b[Ll]evel\s+\(?([A-E])\)?(?![\w'])"),
    re.compile(r"\b[Ii]ntensity\s+\(?([A-E])\)?(?![\w'])"),
    re.compile(r"(?<![\w'])(?:([B-E])[\s-]|(A)-|(?<=\ban )(A) )(?:level|intensity)\b"),  # not "A level gaze"
    re.compile(r"\(([A-E])\)"),
    re.compile(r"\b(?:[Ss]cor|[Cc]od|[Rr]at)(?:ed|es?|ing)\s+(?:(?:as|at|an?)\s+)*([A-E])(?![\w'])"),
    re.compile(r"^\s*(?:[Aa]t\s+)?([A-E])\s*(?=[(:,\u2013\u2014-])"),
    re.compile(r"\b[Aa]t\s+([A-E])(?![\w'\u2019])"),  # a capital A mid-sentence is no article
    # a texting voice's lower-case letter after "level", where no noun follows ("level a au4:", "level e is just")
    re.compile(
        r"\b[Ll]evel\s+([a-e])(?=\s*[,:;)\u2013\u2014]|\s*$"
        r"|\s+(?:au\s?\d|AU\s?\d|of|is|means|for|in|on|the|there|you|it|this|at)\b)"
    ),
)
# A level named in words only: "at trace intensity", "at the maximum level", "at its maximum".
_NAMED_LEVEL_RE = re.compile(
    rf"\b(?:at|with|for)\s+(?:(?:the|its|their|a|an)\s+)?({LEVEL_WORD})\s+(?:level|intensity)\b"
    r"|\bat\s+(?:its|their)\s+(maximum|maximal)\b",
    re.IGNORECASE,
)
# The level phrase itself, whose words say the level, not the degree described: "(trace)", "(D - severe)", "at
# maximum intensity", "level E".
_LEVEL_PHRASE_RE = re.compile(
    rf"\((?:[A-E]\b[^)]*|{LEVEL_WORD}[^)]*)\)|\b{LEVEL_WORD}\s+(?:level|intensity)\b"
    rf"|\b(?:level|intensity)\s+\(?[A-E]\)?(?:\s*[,\u2013\u2014-]\s*{LEVEL_WORD}\b)?"  # "level E, maximum,"
    rf"|\b{LEVEL_WORD}[\s,]*(?=\(?[A-E]\b)|\b(?:at|with|for)\s+(?:its|their)\s+(?:maximum|maximal)\b",
    re.IGNORECASE,
)
# A part hidden by a strong action ("the eyes nearly closed, the iris barely visible"): not a faint change.
_HIDDEN_PART_RE = re.compile(
    r"\b(?:iris(?:es)?|pupils?|whites?|sclera|eyes?|eyeballs?|(?:upper |lower )?(?:eye)?lids?|teeth|lips?|red)\b"
    r"[^.,;:]{0,20}?\b(?:barely|hardly|scarcely) (?:visible|seen|shows?|showing)\b",
    re.IGNORECASE,
)
_HARD_TO_SEE = r"hard to (?:see|spot|notice|detect|tell|make out)"  # a weak degree, the faintest ones among them
_WEAK_RE = re.compile(
    r"\b(?:traces?|barely|hardly|scarcely|faint\w*|slight\w*|subtle|subtly|minimal\w*|a little|a bit|hint|mild\w*"
    r"|weak\w*|gentle|gently|lightly|imperceptibl\w*|almost invisible|only just"
    rf"|just (?:visible|perceptible|noticeable|detectable)|{_HARD_TO_SEE})\b",
    re.IGNORECASE,
)
# The faintest degrees, below what a marked (C) level shows: "only a trace", "barely visible", "almost invisible"; not
# "slight", "a little" or "the jaw barely moves", which a marked level's secondary signs may show.
_FAINT_RE = re.compile(
    r"\b(?:(?:only|just|merely) a (?:faint |slight )?trace|a mere trace|imperceptibl\w*|almost invisible"
    r"|(?:barely|hardly|scarcely|only just|just) (?:visible|perceptible|noticeable|detectable|detect|see|notice|seen)"
    rf"|{_HARD_TO_SEE})\b",
    re.IGNORECASE,
)
# Strong degree words; a comparative or a verb ("a deeper fold", "deepens": than at rest) says no degree, nor "hard to
# see" (a weak one).
_STRONG_RE = re.compile(
    r"\b(?:maxim\w+|extreme\w*|fully|strongest|strong|strongly|severe\w*|intense\w*|dramatic\w*|forceful\w*|sharply"
    r"|deep|deeply|deepest|pronounced|marked\w*|(?<!the )very|greatly|far|powerful\w*|hard(?! to)|firm|firmly|tightly"
    r"|heavy|heavily|massive\w*|exaggerated|utmost|highest|greatest|fullest|widest|largest"
    r"|as (?:far|much|hard|high|wide|tightly) as (?:possible|(?:it|they) (?:possibly )?can|it will|they will"
    r"|the \w+ allows?)|to the max|(?<!the )way (?:up|down|open|out|back)"
    r"|as (?:far|much|high|wide) as (?:it|they)(?:['\u2019]ll| will| can)? go)\b",
    re.IGNORECASE,
)


def stated_levels(text: str) -> set[str]:
    """The intensity levels `text` states ("At level B (slight) ...": {"B"}), by letter in a level's context, else by a
    level's name ("at trace intensity": {"A"})."""
    found = {m.group(m.lastindex).upper() for pattern in _LETTER_RES for m in pattern.finditer(text)}
    return found or {_WORD_LEVEL[(m.group(1) or m.group(2)).lower()] for m in _NAMED_LEVEL_RE.finditer(text)}


def contradicts_level(text: str) -> bool:
    """Whether `text` states one intensity level and describes the other end of the scale: a trace or slight level
    (A, B) with only strong degree words ("as far as possible", "deep", "fully", "the strongest"), a severe or
    maximum one (D, E) with only weak ones ("barely", "faint", "a trace"), or a marked one (C) with only the faintest
    ("only a trace", "barely visible"; not "slight"). Words in negated and contrasting clauses
    do not count ("unlike the faint trace of level A, ..."), nor the level phrase's own; a text naming several levels
    (a range, a comparison) or a degree of both kinds ("pressed hard; only a faint line remains") is not judged. A
    letter paired with another level's name ("At level B (marked), ...") misstates the scale itself."""
    for m in _PAIRED_RE.finditer(text):  # the scale itself misstated: "level B (marked)", "D (maximum)"
        letter = m.group(m.lastindex)
        name = re.search(LEVEL_WORD, m.group(0), re.IGNORECASE).group(0).lower()
        if letter not in _NAME_FITS[name]:
            return True
    levels = stated_levels(text)
    if len(levels) != 1:
        return False
    body = NEGATED_RE.sub(" ", _HIDDEN_PART_RE.sub(" ", _LEVEL_PHRASE_RE.sub(" ", text)))
    weak, strong = bool(_WEAK_RE.search(body)), bool(_STRONG_RE.search(body))
    level = next(iter(levels))
    if level in "AB":
        return strong and not weak
    if level == "C":  # marked: only the faintest degrees contradict it ("only a trace, barely visible")
        return bool(_FAINT_RE.search(body)) and not strong
    return weak and not strong
