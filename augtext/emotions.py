"""Emotions in a description: whether it puts the AU in the expression of an emotion the AU is no part of.

The context prompt asks an LLM for the AU together with the expressions it is part of, and a small model often
names the wrong one: "AU12 pulls the lip corners up, the core of an angry face", "the nose wrinkles (AU9), the
hallmark of surprise". The movement is the AU's, so neither the movement rules nor the gate see it (an emotion's name
moves a sentence's embedding little), but the text teaches the prior a false pairing.
"""

from __future__ import annotations

import re

from augtext.facs import EMOTION_AUS, ActionUnit
from augtext.movement import NEGATED_RE, own_clauses

EMOTION_WORDS: dict[str, str] = {
    "happiness": r"happ(?:y|ier|iest|ily|iness)|joy(?:s|ful|fully|ous)?|enjoy(?:ment|ing)|delight(?:ed|s)?"
    r"|amuse(?:d|ment)|pleasure|pleased|cheer(?:ful|fulness)|glee(?:ful)?|elat(?:ed|ion)|content(?:ed|ment)",
    "sadness": r"sad(?:ly|ness|der|dest)?|sorrow(?:s|ful)?|grie(?:f|fs|ve|ves|ved|ving)|unhapp(?:y|iness)"
    r"|melanchol(?:y|ic)|deject(?:ed|ion)|despair(?:ing)?|mis(?:ery|erable)|mourn(?:ful|ing)",
    "surprise": r"surpris(?:e|es|ed)|astonish(?:ed|ment)|amaze(?:d|ment)",
    "fear": r"fear(?:s|ful|fully|fulness)?|afraid|scared|fright(?:ened)?|terror|terrified|dread",
    "anger": r"anger(?:ed)?|angr(?:y|ily|ier)|rage|enraged|fury|furious|irate|wrath",
    "disgust": r"disgust(?:s|ed)?|revulsion|revolted|repuls(?:ed|ion)|distaste|loathing",
    "contempt": r"contempt(?:uous|uously)?|scorn(?:s|ful)?|disdain(?:s|ful)?",
}
"""The words that name each basic emotion, in a regular expression (adjectives, nouns and adverbs; "unhappy" is
sadness, not happiness)."""

JUDGED = frozenset({1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26})
"""The AUs whose place among the basic emotions EMFACS settles. The lips' parting and the jaw's drop (25, 26) come with
every emotion but contempt (EMOTION_AUS), so only contempt is wrong for them. The others are not judged: the mouth
stretched open (27) and the lids' closing (43, 45) come with many expressions outside the prototypes (a roar of
rage, eyes shut in a laugh), and the rarer AUs (the neck's 21 in fear or effort, the jaw's 29 and 31 in anger, the
tongue's 19 in disgust) with whichever a text sets them in."""

_EMOTION_RES = {emotion: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for emotion, words in EMOTION_WORDS.items()}

# A text whose face hides, fakes or is mistaken for an emotion ("a polite smile that can mask sadness", "often misread
# as anger"): which emotion the AU shows is not what its emotion words say, so it is not judged.
_NOT_SHOWN_RE = re.compile(
    r"\b(?:mask\w*|hid(?:e|es|ing|den)|conceal\w*|cover(?:s|ing)? up|suppress\w*|disguis\w*|feign\w*|fak(?:e|es|ed|ing)"
    r"|pretend\w*|pos(?:e|ed|ing) as|mistak\w*|misread\w*|misinterpret\w*|confus\w*|read as|taken for)\b",
    re.IGNORECASE,
)
_CLAUSE_RE = re.compile(r"[.;:!?]+|,\s+|\s+(?=(?:whereas|while|but|yet|although|though)\b)", re.IGNORECASE)


def emotions_claimed(text: str, au: ActionUnit) -> set[str]:
    """The emotions `text` puts `au` in: those it names outside its negated and contrasting clauses ("unlike a happy
    face", "not a sign of joy", "rather than anger"), outside clauses about another AU it names by code (`own_clauses`)
    and outside clauses where the face hides, fakes or is mistaken for the emotion; none it also sets aside."""
    own, found = own_clauses(text, au), set()
    if _NOT_SHOWN_RE.search(own):
        return found
    for clause in _CLAUSE_RE.split(own):
        plain = NEGATED_RE.sub(" ", clause)
        found |= {emotion for emotion, pattern in _EMOTION_RES.items() if pattern.search(plain)}
    # an emotion the text sets aside is the contrast's other side wherever it comes back ("A frown is not the same as
    # a surprised face: ... the brows go down, but in surprise they go up")
    aside = " ".join(NEGATED_RE.findall(own))
    return {emotion for emotion in found if not _EMOTION_RES[emotion].search(aside)}


def wrong_emotion(text: str, au: ActionUnit) -> bool:
    """Whether `text` puts `au` only in expressions of emotions it is no part of (EMOTION_AUS): "AU12 pulls the lip
    corners up, the core of an angry face", "AU1 and AU2 lift the brows, typical of disgust". A text that names
    several emotions is judged wrong only when none of them holds the AU ("seen in disgust and in anger" passes for
    AU9); AUs outside JUDGED are not judged."""
    if au.code not in JUDGED:
        return False
    claimed = emotions_claimed(text, au)
    return bool(claimed) and all(au.code not in EMOTION_AUS[emotion] for emotion in claimed)
