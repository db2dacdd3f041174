"""Turn an LLM answer into candidate descriptions and decide which ones to keep.

- `parse_response(raw)` extracts the list of strings from a chat answer (JSON, fenced JSON, JSON inside prose,
  or, when there is no JSON at all, numbered/bulleted or plain lines). It raises `ParseError` with a short reason
  code. `parse_response(raw, lenient=True)` also salvages truncated lists and reads prose by sentence (tiny models).
- `clean_text(text)` normalises one candidate (whitespace, list markers, wrapping quotes).
- `validate_description(text, au)` returns None for a usable description or a short reason code.
  The movement rules (`says_change`, `wrong_direction`, `MOVES`, `PARTS`) are in `augtext.movement`.
- `NearDuplicateFilter` rejects exact and near repeats within one AU.

Every reason code a row can be dropped for is in `REJECTION_REASONS` (parse failures, per-text reasons, duplicates),
so that stats can count rejections by a fixed vocabulary.
"""

from __future__ import annotations

import ast
import csv
import functools
import html
import json
import re
import unicodedata

from augtext.emotions import wrong_emotion
from augtext.facs import ActionUnit
from augtext.levels import contradicts_level, stated_levels
from augtext.movement import (
    _AGENT_NAMES,
    _AU_CODE_RE,
    _NAMES,
    NEGATED_RE,
    SELF_REF,
    _lower_name,
    contrasts_itself,
    credits_other_muscle,
    named_aus,
    names_itself,
    names_other_nerve,
    own_clauses,
    says_change,
    states_own_movement,
    states_own_movement_in_words,
    wrong_direction,
)

PARSE_REASONS = ("empty_response", "reasoning_only", "malformed_json", "no_json", "no_list")
"""Why a whole response yielded nothing: blank, or an empty JSON list or object (`[]`: nothing to re-read); only a
reasoning model's thinking (`<think>…`, cut short by
--max-tokens or with nothing after it); JSON that starts but does not parse (e.g. truncated); neither JSON nor list
lines; JSON without any string in a list."""

TEXT_REASONS = (
    "refusal",
    "markup",
    "garbage",
    "not_english",
    "too_short",
    "too_long",
    "wrong_au",
    "off_topic",
    "no_change",
    "wrong_direction",
    "wrong_muscle",
    "wrong_emotion",
    "wrong_level",
    "cut_off",
)
"""Why one description is dropped, in the order `validate_description` checks them. `markup`: code, JSON or markup
fragments (braces, brackets, tags, snake_case identifiers, assignments, URLs). `no_change`: on topic but says
nothing of what the face does (no movement, no visible sign, no muscle: "The nose is in the middle of the face and
is used for breathing."). `wrong_direction`: states the AU's opposite movement and not its own ("the lip corners
are pulled down" sent as AU12, "the lips are pressed together" as AU25; see MOVES), or names only the part of the
face a lookalike moves ("the upper eyelids are raised" sent as AU6; see PARTS). `wrong_muscle`: credits the AU to
muscles FACS does not credit it to and to none of its own ("the corrugator lifts the inner brows" sent as AU1; see
movement.credits_other_muscle). `wrong_emotion`: puts the AU only in the expression of emotions it is no part of
("AU12 pulls the lip corners up, the core of an angry face"; see emotions.wrong_emotion). `wrong_level`: states one
FACS intensity level and describes the other end of the scale ("At level A (trace), the lip corners are pulled up as
far as possible"; see levels.contradicts_level).
`cut_off`: breaks off unfinished, on a word no sentence ends on ("... the inner brows are pulled up by the"), or is
the text an answer cut at --max-tokens ended in (`descriptions.walk_pair`, from the server's finish_reason)."""
GATE_REASONS = ("far_from_au", "other_au", "lookalike")
"""Why the semantic gate (augtext.quality.SemanticGate) drops a description that passed `validate_description`:
too far from its own AU's FACS reference, nearer to other AUs than to its own, or read as another AU by the
discriminator trained on labelled descriptions (augtext.discriminator)."""

DUPLICATE = "duplicate"
REJECTION_REASONS = (*PARSE_REASONS, *TEXT_REASONS, *GATE_REASONS, DUPLICATE)

MIN_WORDS = 6
MAX_WORDS = 60
NEAR_DUPLICATE_THRESHOLD = 0.7
"""Jaccard similarity of character 5-gram shingles (after normalisation) at or above which two texts are near
duplicates. 0.7 catches copies that differ by a word or two, or by punctuation/word order at the edges, while
sentences that share the AU's stock phrase but say something else stay well below it (typically 0.3-0.5)."""
SHINGLE = 5

_TEXT_KEYS = ("text", "description", "sentence", "desc", "content")  # compared lower-case
_LIST_KEYS = ("descriptions", "sentences", "items", "texts", "results", "data", "answer", "output")
_FENCE_RE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
# List markers: bullets ("-", "*", "+", "•", "–", "—", "·", "‣", "◦", "▪", "●", ...), numbers ("1.", "1)", "(1)",
# "1:", "1 -", "1" before a tab), bold numbers ("**1.**") and lower-case letters ("a)"). Not capitals: "(A)" is an
# intensity level, part of the text. A number needs no space before a capital ("1.The ...").
_BULLETS = "-*+\u2022\u2013\u2014\u00b7\u2023\u2043\u2219\u25aa\u25ab\u25a0\u25a1\u25cf\u25cb\u25e6\u27a4\u2192"
_NUMBER = r"(?:\(?\d{1,3}[.):]|\d{1,3}\s+[-\u2013\u2014](?=\s)|\d{1,3}(?=\t)|[a-z]\))"
_MARKER = rf"(?:[{_BULLETS}]|{_NUMBER}|\*\*{_NUMBER}\*\*|__{_NUMBER}__)"
_LIST_LINE_RE = re.compile(rf"^\s*{_MARKER}(?:\s+|(?<=[.):])(?=[A-Z]))(\S.*)$")
_MARKER_RE = re.compile(rf"^\s*{_MARKER}(?:\s+|(?<=[.):])(?=[A-Z]))")
_YAML_BLOCK_RE = re.compile(r"^[>|][-+]?(?:\s+|$)")  # "- >-" then the text on the lines below: a YAML folded block
# Another field of a YAML item ("- text: The brows rise." then "    words: 4"): no continuation of the text
_YAML_FIELD_RE = re.compile(r"^\s+[a-z_]{2,20}:\s+\S+(?:\s+\S+){0,2}\s*$")
_HTML_ITEM_RE = re.compile(r"<li\b[^>]*>(.*?)(?:</li\s*>|(?=<li\b)|(?=</[ou]l\s*>)|\Z)", re.IGNORECASE | re.DOTALL)
_HTML_TAG_RE = re.compile(r"<[^>]{0,200}>")
# A // comment in JSON: a line of its own, or after a value (`"...", // 1`) up to the line's end, no quote in it
_COMMENT_RE = re.compile(r"^[ \t]*//[^\n]*$|(?<=[,\[{\]}\"\d])[ \t]*//[^\n\"]*$", re.MULTILINE)
_LABEL_LINE_RE = re.compile(
    r"^\s*(?:\*\*)?(?:description|sentence|item|example|option)\s*#?\d{1,3}(?:\*\*)?\s*[:.)\-\u2013\u2014]\s*(\S.*)$",
    re.IGNORECASE,
)  # "Description 1: The lip corners ...": a numbered item
# A heading over its item's lines: "### Description 1", or a line that is only a short bold label ("**1. Smile
# shape**", "__Anatomy:__"; at most 5 words, shorter than any description).
_MD_HEADING_RE = re.compile(r"^\s*(?:#{1,6}\s+\S|(\*\*|__)(?:[^*_\s]+[ \t]*){1,5}:?\1:?\s*$)")
_QUOTED_LINE_RE = re.compile(r'^\s*(["\u201c].*["\u201d])\s*,?\s*$')  # "The brows rise.",
_TABLE_ROW_RE = re.compile(r"^\s*\|(.*)\|\s*$")  # | 1 | The brows rise. |  (a markdown table's row)
# A complete JSON string literal used as a value: followed by a comma, a closing bracket/brace or the end.
_JSON_STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)"(?=\s*(?:[,\]}]|$))')
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])")
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_DIGIT_RE = re.compile(r"\d")
_CURLY_QUOTES = str.maketrans("\u201c\u201d", '""')
# Markdown emphasis around words ("**The brows rise**, ...", "*slightly*"): formatting, not part of the text.
_EMPHASIS_RE = re.compile(r"(\*\*|__|\*)(?=\S)(.+?)(?<=\S)\1")
# A bold label that heads an item ("**Appearance:** The brows rise", "**Anatomy**: ...", "**Smile shape** – ..."): a
# heading, not the text.
_HEADING_RE = re.compile(
    r"^(\*\*|__)[^*_\n]{1,40}?(?::\1|\1\s*(?::|[-\u2013\u2014](?=\s))|[.:]?\1\s+(?=[A-Z]))\s*"
)  # also a bold label before a new sentence ("**Smile shape** The lip corners ...": a heading joined to its text)
# A label before the text: the AU's code ("AU12: ...", "AU12 (Lip Corner Puller) - ...") or the item's name
# ("Description 1: ...", "Sentence 2 - ..."). A code followed by words ("AU12 pulls ...") is the text itself.
_LABEL_RE = re.compile(
    r"^(?:(?:AU|action\s+unit)\s*-?\s*\d{1,2}(?:\s*\([^)]{1,40}\))?"
    r"|(?:description|sentence|text|item|example|option|answer|output)(?:\s*#?\d{1,3})?)"
    r"\s*(?::|[-\u2013\u2014](?=\s))\s*(?=\S)",
    re.IGNORECASE,
)
# An intensity level heading a line ("(A) the lip corners lift only barely"): an item, the level kept in its text.
_LEVEL_LINE_RE = re.compile(r"^\s*(\([A-E]\)\s+\S.*)$")
_AU_LIST = r"(?:AU|action\s+units?)\s*-?\s*\d{1,2}(?:\s*(?:,|\+|&|and|or)\s*(?:AU|action\s+unit)?\s*-?\s*\d{1,2}\b)*"
_COMPANION_RE = re.compile(
    rf"(?:\b(?:with|plus|alongside|accompanied by|and)(?:\s+(?!(?:while|whereas|but|which)\b)[\w-]+){{0,6}}?|\+)"
    rf"\s*\(?{_AU_LIST}|\bby\s+{_AU_LIST}",
    re.IGNORECASE,
)
# A contrast whose own clause calls the AU "this AU" ("AU1 tilts the inner ends up, whereas this AU raises the outer
# portions", "This AU differs from AU4: ..."): the code it names is the look-alike's.
_THIS_AU_CONTRAST_RE = re.compile(
    rf"\b(?:whereas|while|but|yet)\s+(?:in\s+)?{SELF_REF}"
    rf"|^(?:where|whereas|while)\s+(?:AU|action\s+unit)\s*\d+[^,;]*[,;]\s*{SELF_REF}"
    rf"|{SELF_REF}\s+(?:differs?|is\s+(?:different|distinct)|(?:can\s+be\s+)?(?:told|set)\s+apart|is\s+distinguished)"
    r"\s+from\b",
    re.IGNORECASE,
)
# A code in parentheses after what it names: "brows drawn together (AU4)", "(AU1, AU2, AU4)", "(AU1+2)".
_LABEL_CODES_RE = re.compile(rf"\(\s*{_AU_LIST}\s*\)", re.IGNORECASE)
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['\u2019-][A-Za-z0-9]+)*")
_REFUSAL_RE = re.compile(
    r"\b(?:i['\u2019]?m sorry|i am sorry|sorry, but|as an ai|as a language model|i cannot|i can['\u2019]?t|"
    r"i can not|i['\u2019]?m (?:not able|unable)|i am (?:not able|unable)|"
    r"i (?:won['\u2019]?t|will not) (?:be able|provide|write)|unable to (?:provide|help|comply)|i apologi[sz]e"
    r"|i (?:must|have to|will have to|need to) decline|not something i can)\b",
    re.IGNORECASE,
)
# Talk about the answer instead of an answer ("Here's a JSON list of strings that ..."): small models echo the format.
_META_RE = re.compile(
    r"\bjson\b|^(?:here(?:['\u2019]s| is| are)|sure\b|certainly\b)|\blist of (?:strings|sentences|descriptions)\b"
    r"|^\W*(?:text|sentence|description|answer|output|example|name)\s*\d*\W{0,2}\s*:",  # "Sentence 1: ...", "Text: ..."
    re.IGNORECASE,
)
# Code, JSON and markup: braces, square brackets, angle-bracket tags, backticks, pipes, backslashes, snake_case or
# dotted identifiers, assignments, URLs and call syntax. A description of a face has none of these.
_MARKUP_RE = re.compile(
    r"[{}\[\]<>`|\\]|[A-Za-z0-9]_[A-Za-z0-9]|[A-Za-z]\.[a-z]{2,}\(|://|\b[a-z]+\(\)"
    r"|\s=(?!\s?[A-Za-z][\w'-]*\s+[A-Za-z])\s?"  # an assignment; not "AU9 = nose wrinkle", an equation in words
    r"|[\"\u201d]\s*:\s*[\"\u201c]"  # a JSON key-value pair: "name": "..."
)
# A face tracker's or rig's name for an AU in snake_case, given with the AU's code ("brow_down (AU 4) lowers the
# brows", "eye_wide (AU5)"): a name, as camelCase controls are (movement._DEFINED_TERM_RE), not code.
_TRACKED_NAME_RE = re.compile(r"\b[a-z]+(?:_[a-z]+)+(?=\s*\(\s*AU\s?-?\d)", re.IGNORECASE)
_NAME_STOPWORDS = frozenset({"toward", "each", "other", "part"})
# Function words: an English description has more English ones than French/Spanish/German/Italian/Portuguese
# ones (which are kept to words that are rare in English, and never single letters).
_ENGLISH_WORDS = frozenset(
    "the an of and or but is are was were be been it its this that these those their they them there to in on at "
    "by for from with into over under up down out off as than then so while when where which who what how not no "
    "can may will would has have had does more very both each one two his her he she we you your upward toward "
    "towards between across around above below".split()
)
_FOREIGN_WORDS = frozenset(
    "le la les des du et est sont une dans sur avec pour vers el los las es una del con por para hacia der das "
    "und ist sind nach mit werden wird ein eine dem zum zur il di della che sono nel gli em os uma".split()
)


class ParseError(ValueError):
    """A response that yields no descriptions; `str(exc)` is one of PARSE_REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------------- parsing ---


def parse_response(raw: str, lenient: bool = False, cut: bool = False) -> list[str]:
    """Extract the descriptions from one LLM answer (cleaned with `clean_text`, empty ones dropped).

    A reasoning model's thinking (`<think>…</think>`, also `<thinking>`, `<reasoning>`; or only the closing tag, when
    the chat template opened it) is not the answer: what follows it is parsed. Accepted, in this order: JSON inside a
    ``` fence, the first JSON value in the text (a list of strings, a list of
    objects with a "text"/"description" field, an object holding such lists, a lone string; single-quoted Python
    lists too), then numbered/bulleted lines, then (in an answer without any JSON) lines that are each one quoted
    text, a markdown table's rows, and at last (strict only) plain lines or paragraphs, two or more. Anything else
    (one paragraph of prose) raises ParseError.

    `lenient=True` salvages more from answers that ignore the format, as tiny models often do: the complete strings
    of a truncated JSON list, or else the sentences of a prose answer, plain lines included (a tiny model's line is
    seldom one clean description; its sentences often are). Every salvaged text still has to pass
    `validate_description`, so this trades precision of the parse for yield.

    `cut=True` says the answer stopped at its token limit (the server's finish_reason "length"): a JSON list it
    breaks off gives its complete strings even when strict, then the unfinished one, so that the caller can reject it
    (`ends_at_cut`).
    """
    if raw is None or not raw.strip():
        raise ParseError("empty_response")
    raw = _answer_after_reasoning(raw)
    fenced = [m.group(1) for m in _FENCE_RE.finditer(raw)]
    failure = "no_json"
    curly = raw.translate(_CURLY_QUOTES)  # a list quoted with typographic quotes: [“The brows rise.”, ...]
    for chunk in (*fenced, raw, *((curly,) if curly != raw else ())):
        texts, status = _json_texts(chunk)
        if texts:
            return texts
        if status == "empty" and chunk is raw:
            raise ParseError("empty_response")  # well-formed and empty (`[]`): no format to blame, nothing to salvage
        if status == "no_list" or (status == "malformed_json" and failure == "no_json"):
            failure = status
    lines = _list_items(raw)
    if not lines and failure == "no_json":  # no JSON at all: other shapes of a list
        plain = () if lenient else (_plain_lines,)  # a small model's lines ramble: --lenient reads their sentences
        for shape in (_html_items, _quoted_lines, _table_rows, _csv_rows, _heading_sections, *plain):
            if lines := [t for t in map(clean_text, shape(raw)) if t]:
                break
    lines = [t for t in lines if t]
    if lines:
        return lines
    broken = failure == "malformed_json"
    if lenient or (cut and broken):
        salvaged = _complete_strings(raw) if broken else []
        if cut and broken and (salvaged or not lenient):  # else lenient reads the sentences, as without the cut
            salvaged += _unfinished_string(raw)
        salvaged = salvaged or (_sentences(raw) if lenient else [])
        if salvaged:
            return salvaged
    raise ParseError(failure)


def _hollow(value: object) -> bool:
    """A JSON list or object with nothing in it but empty lists and objects (`[]`, `{"descriptions": []}`)."""
    if isinstance(value, dict):
        return all(_hollow(v) for v in value.values())
    return isinstance(value, list) and all(_hollow(v) for v in value)


_REASONING_TAGS = r"think|thinking|reasoning"
_REASONING_END_RE = re.compile(rf"</(?:{_REASONING_TAGS})\s*>", re.IGNORECASE)
_REASONING_START_RE = re.compile(rf"<(?:{_REASONING_TAGS})\s*>", re.IGNORECASE)


def _list_items(raw: str) -> list[str]:
    """The items of a numbered or bulleted list, each with its continuation lines: the lines under an item that are
    indented or go on in lower case ("1. The lip corners are pulled up\n   and back ..."), up to a blank line, the
    next item or any other line. A YAML folded block ("- >-" with the text below) reads the same way."""
    items: list[str] = []
    current: list[str] | None = None
    for line in raw.splitlines():
        if m := _LIST_LINE_RE.match(line) or _LEVEL_LINE_RE.match(line) or _LABEL_LINE_RE.match(line):
            if current is not None:
                items.append(" ".join(current))
            current = [_YAML_BLOCK_RE.sub("", m.group(1))]
        elif (
            current is not None
            and line.strip()
            and (line[:1].isspace() or line.lstrip()[:1].islower())
            and not _YAML_FIELD_RE.match(line)
        ):
            current.append(line.strip())
        elif current is not None:
            items.append(" ".join(current))
            current = None
    if current is not None:
        items.append(" ".join(current))
    return [t for t in map(clean_text, items) if t]


def _html_items(raw: str) -> list[str]:
    """The <li> items of an HTML list, their tags removed."""
    return [_HTML_TAG_RE.sub(" ", m.group(1)) for m in _HTML_ITEM_RE.finditer(raw)]


def _quoted_lines(raw: str) -> list[str]:
    """One quoted description per line ("The brows rise.",)."""
    return [m.group(1) for line in raw.splitlines() if (m := _QUOTED_LINE_RE.match(line))]


def _table_rows(raw: str) -> list[str]:
    """A markdown table: each body row's longest cell."""
    rows = [m.group(1).split("|") for line in raw.splitlines() if (m := _TABLE_ROW_RE.match(line))]
    rule = [set("".join(cells)) <= set(" -:") for cells in rows]  # |---|---| under the header row
    body = rows[rule.index(True) + 1 :] if True in rule else rows
    return [max(cells, key=len) for cells in body]


def _csv_rows(raw: str) -> list[str]:
    """CSV (or tab-separated) rows under a header that names a text column ("id,description")."""
    lines = [line for line in raw.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    delimiter = "\t" if "\t" in lines[0] else ","
    header = [cell.strip().lower() for cell in next(csv.reader([lines[0]], delimiter=delimiter))]
    column = next((header.index(key) for key in _TEXT_KEYS if key in header), None)
    if column is None:
        return []
    rows = csv.reader(lines[1:], delimiter=delimiter)
    return [row[column] for row in rows if len(row) > column]


def _plain_lines(raw: str) -> list[str]:
    """Descriptions one per line, or one per paragraph, without any marker: each line but those that introduce or
    head the list (ending in ':', or a short bold label); a line joined to the one above it when that one plainly
    breaks off (after a comma, a dash or a word no sentence ends on: "pulled upward by the") or this one goes on in
    lower case (text wrapped by hand). A line without a full stop is still an item of its own ("The brows lower" over
    "The eyes narrow"). Two such items at least: a single line or paragraph is prose, whose sentences only --lenient
    reads."""
    items: list[str] = []
    joinable = False
    for line in raw.splitlines():
        text = line.strip()
        if not text or text.endswith(":") or _MD_HEADING_RE.match(text):
            joinable = False
        elif joinable and (text[0].islower() or _ENDS_MID_RE.search(items[-1])):
            items[-1] += " " + text
        else:
            items.append(text)
            joinable = True
    return items if len(items) >= 2 else []


_SENTENCE_DONE_RE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
# A line that breaks off mid-sentence: it ends on a comma, an opening bracket or dash, or a word no sentence ends on.
_ENDS_MID_RE = re.compile(
    r"(?:[,(\[\-\u2013\u2014]|\b(?:the|a|an|of|to|by|and|or|nor|with|from|in|into|onto|on|at|toward|towards|for|as"
    r"|than|that|which|whose|its|their|his|her|is|are|was|were|be|being|so|but|while|whereas|under|over|above|below"
    r"|between|beneath|near|around|across|along|against|both|each|this|these|those|more|less|very))\s*$",
    re.IGNORECASE,
)


def _heading_sections(raw: str) -> list[str]:
    """Markdown headings, each over its item ("### Description 1" then the text): the lines under every heading."""
    items: list[str] = []
    current: list[str] | None = None
    for line in raw.splitlines():
        if _MD_HEADING_RE.match(line):
            if current:
                items.append(" ".join(current))
            current = []
        elif current is not None and line.strip():
            current.append(line.strip())
        elif current:  # a blank line ends the item's paragraph
            items.append(" ".join(current))
            current = None
    if current:
        items.append(" ".join(current))
    return items if len(items) >= 2 else []


def _answer_after_reasoning(raw: str) -> str:
    """`raw` after its last closing reasoning tag; the part before an opening tag that never closes (thinking cut
    short by the token limit). ParseError("reasoning_only") when no answer is left."""
    ends = list(_REASONING_END_RE.finditer(raw))
    if ends:
        answer = raw[ends[-1].end() :]
    elif start := _REASONING_START_RE.search(raw):
        answer = raw[: start.start()]
    else:
        return raw
    if not answer.strip():
        raise ParseError("reasoning_only")
    return answer


def _complete_strings(raw: str) -> list[str]:
    """The finished string values of a JSON list cut short ('["a", "b", "c' -> a, b)."""
    return [text for m in _JSON_STRING_RE.finditer(raw, _json_start(raw)) if (text := _json_string(m.group(1)))]


def _unfinished_string(raw: str) -> list[str]:
    """The string a JSON list cut short breaks off in ('["a", "b", "c' -> c), if it has begun."""
    end = max((m.end() for m in _JSON_STRING_RE.finditer(raw, _json_start(raw))), default=_json_start(raw))
    m = _UNFINISHED_STRING_RE.search(raw, end)
    return [text] if m and (text := _json_string(m.group(1))) else []


def _json_start(raw: str) -> int:
    return min((i for i in (raw.find("["), raw.find("{")) if i >= 0), default=0)


_UNFINISHED_STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)\\?$')


def _json_string(body: str) -> str:
    """A JSON string's body, decoded and cleaned; "" where it does not decode."""
    try:
        return clean_text(json.loads(f'"{body}"'))
    except ValueError:
        return ""


def _sentences(raw: str) -> list[str]:
    """The sentences of a prose answer, one per line or split at sentence ends; a line that goes on in lower case
    after one ending mid-sentence is its rest (text wrapped by hand), not a sentence of its own."""
    lines: list[str] = []
    for line in raw.splitlines():
        text = line.strip()
        if lines and lines[-1] and text[:1].islower() and not _SENTENCE_DONE_RE.search(lines[-1]):
            lines[-1] += " " + text
        else:
            lines.append(text)
    out = []
    for line in lines:
        for sentence in _SENTENCE_END_RE.split(line):
            text = clean_text(sentence)
            if text and any(c.isalpha() for c in text):
                out.append(text)
    return out


def _json_texts(text: str) -> tuple[list[str], str]:
    """The cleaned strings of the first JSON (or Python-literal) value in `text` that holds any, else ([], status):
    "empty" if `text` is one JSON list or object with nothing in it (`[]`, `{"descriptions": []}`), "no_list" if JSON
    was decoded but held no text, "malformed_json" if a '[' or '{' never decoded, "no_json"."""
    status = "no_json"
    candidates: list[object] = []
    try:
        candidates.append(json.loads(text, strict=False))  # strict=False: a line break inside a string, as LLMs write
    except (ValueError, RecursionError):  # RecursionError: brackets nested past the decoder's depth ("[[[[...")
        pass
    if candidates and isinstance(candidates[0], (list, dict)) and _hollow(candidates[0]):
        return [], "empty"
    if not (candidates and isinstance(candidates[0], str)):
        decoder = json.JSONDecoder(strict=False)
        end = len(text.rstrip())
        for m in re.finditer(r"[\[{]", text):
            try:
                candidates.append(decoder.raw_decode(text, m.start())[0])
            except RecursionError:
                candidates.append(None)
                break  # nested past any sensible depth: what follows is inside it, not a value of its own
            except json.JSONDecodeError as exc:
                candidates.append(_literal(text, m.start()))
                cut_short = exc.pos >= end or exc.msg.startswith("Unterminated string")
                if cut_short and candidates[-1] is None:
                    break  # cut short: everything after this bracket is inside the broken value, not a value of its own
    best: list[str] = []
    for value in candidates:
        if value is None:
            status = "malformed_json" if status == "no_json" else status
            continue
        texts = [t for t in (clean_text(s) for s in _strings(value)) if t]
        if texts and len(texts) >= len(best):  # the largest (of equals the last): not a prompt's example echoed first
            best = texts
        status = "ok" if best else "no_list"
    if not best and status == "malformed_json" and _COMMENT_RE.search(text):  # JSON with // comments
        return _json_texts(_COMMENT_RE.sub("", text))
    return best, status


def _literal(text: str, start: int) -> object:
    """Python-literal fallback for single-quoted lists (['a', 'b']) that small models write; None if it fails."""
    close = "]" if text[start] == "[" else "}"
    if text.count(close, start) > 50:  # pathological input: not worth quadratic retries
        return None
    end = text.rfind(close)
    while end > start:
        try:
            return ast.literal_eval(text[start : end + 1])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # TypeError: {{...}} (a set of dicts)
            end = text.rfind(close, start, end)
    return None


def _strings(value: object) -> list[str]:
    """The description strings held by a decoded JSON value (see parse_response for the accepted shapes)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                out.extend(_dict_text(item, any_field=True))
            elif isinstance(item, list):  # [["..."], ["..."]]: one list per description
                out.extend(_strings(item))
        return out
    if isinstance(value, dict):
        lower = {str(k).lower(): v for k, v in value.items()}
        for key in _LIST_KEYS:
            if isinstance(lower.get(key), list) and (found := _strings(lower[key])):
                return found
            if isinstance(lower.get(key), str) and len(found := _list_items(lower[key])) >= 2:
                return found  # {"descriptions": "1. ...\n2. ..."}: the list written as one string
        # lists under other keys: all of them ({"appearance": [...], "anatomical": [...]}, {"AU1": [...]})
        lists = [found for v in value.values() if isinstance(v, list) and (found := _strings(v))]
        if lists:
            return [t for found in lists for t in found]
        if len(value) >= 2 and all(isinstance(v, str) and _DIGIT_RE.search(str(k)) for k, v in value.items()):
            return list(value.values())  # numbered descriptions: {"1": "...", "2": "..."}, {"sentence_1": "..."}
        if found := _dict_text(value):
            return found
        if len(value) >= 2 and all(isinstance(v, str) for v in value.values()):
            return [v for v in value.values() if len(v.split()) >= 3]  # {"appearance": "...", "anatomical": "..."}
        return []
    return []


def _dict_text(item: dict, any_field: bool = False) -> list[str]:
    """The text of one description object: its "text"/"description"/... field in any case; with `any_field` (an
    object in a list of them) else its one string value of several words ({"index": 0, "sentence_text": "..."}), so
    that an answer that is one object of another kind ({"error": "..."}) is not taken for a description."""
    lower = {str(k).lower(): v for k, v in item.items()}
    for key in _TEXT_KEYS:
        if isinstance(lower.get(key), str):
            return [lower[key]]
    wordy = [v for v in item.values() if isinstance(v, str) and len(v.split()) >= 3]
    return wordy if any_field and len(wordy) == 1 else []


# ---------------------------------------------------------------------------------------------- validation ---


def clean_text(text: str) -> str:
    """One line, single spaces, a table's row as its cells (`_cells`), no list marker ("1.", "-", "*"), no bold heading
    ("**Appearance:**"), no label ("AU12:", "Description 1:"), no JSON field name ("\"text\": \"...\""), no markdown
    emphasis ("**", "*") and no wrapping quotes or trailing comma; HTML entities decoded, control and invisible format
    characters removed."""
    text = _ENTITY_RE.sub(lambda m: html.unescape(m.group()), str(text))  # "&amp;", "&#39;": escaped, not text
    text = unicodedata.normalize("NFKC", text).replace("\u200b", " ")  # a zero-width space still parts two words
    text = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in _INVISIBLE)
    text = " ".join(text.split())
    previous = None
    while text != previous:
        previous = text
        text = _HEADING_RE.sub("", _MARKER_RE.sub("", _cells(text)))
        text = _EMPHASIS_RE.sub(r"\2", _LABEL_RE.sub("", text)).strip().rstrip(",").strip()
        text = _WORD_COUNT_RE.sub("", text)
        text = _TAG_RE.sub(_tag, _PLAIN_LABEL_RE.sub("", text)).strip()
        if (unfilled := _FILLER_RE.sub("", text, count=1)) != text:
            text = unfilled[:1].upper() + unfilled[1:]
        if m := _QUOTED_COMMENT_RE.match(text) or _JSON_FIELD_RE.match(text):
            text = m.group(2)
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES and not _has_quote(text[1:-1], text[0]):
            text = text[1:-1].strip()
    return text


def _cells(text: str) -> str:
    """A markdown table's row or a record whose fields are parted by pipes ("| AU 2 | Outer Brow Raiser | lateral brow
    pulled upward |", "AU: 5 | name: Upper Lid Raiser | look: eye widened"), read as its cells joined by "; "; a rule
    row ("|---|:---:|") leaves nothing. A text with fewer than two pipes is left as it is (one pipe is `markup`)."""
    if text.count("|") < 2 or "||" in text:
        return text
    cells = [c.strip() for c in text.strip().strip("|").split("|")]
    return "; ".join(c for c in cells if c.strip("-:= "))


# A plain label before the text ("Visible change: The lip corners ..."): one to three words, the first capitalised,
# before a capitalised sentence; not an intensity level, which the intensity style asks the text to start with.
_PLAIN_LABEL_RE = re.compile(
    r"^(?!(?i:trace|slight|marked|pronounced|severe|extreme|maximum|level|intensity|mild|moderate|strong|weak|subtle)\b)"
    r"[A-Z][a-z]+(?: [a-z]+){0,2}:\s+(?=[A-Z])"
)
# A chatty opener before the text ("Sure, so AU15 comes from ...", "Honestly, the easiest tell is ...", "Great
# question! The brows ..."): no part of the description. What is left is judged as it stands: "Sure, here are five
# sentences" leaves talk about the answer (`_META_RE`).
_FILLER_RE = re.compile(
    r"^(?:sure|certainly|of course|absolutely|okay|ok|well|honestly|oh|so|now|alright|all right|basically"
    r"|(?:great|good|nice) question)\s*[,!]\s+(?=\S)",
    re.IGNORECASE,
)
# A tag after the text: the AU's code or a short name in brackets ("... U (AU15).", "... downward [AU15].",
# "... disappointed. (Lip Corner Depressor)").
_TAG_RE = re.compile(
    r"\s*[(\[]\s*AU\s?\d{1,2}[A-E]?\s*[)\]](?=\s*[.!?]?\s*$)|(?<=[.!?])\s*[(\[][A-Za-z][A-Za-z ,'-]{0,40}[)\]]$"
)
_CODE_LABEL_RE = re.compile(r"[(\[]\s*AU\s?\d", re.IGNORECASE)


def _tag(m: re.Match[str]) -> str:
    """What is left of a tag after the text (`_TAG_RE`): nothing, unless earlier brackets label parts with codes too
    ("... widened eyes (AU5) and a dropped jaw (AU26)."): then the last code labels the last part, as they do."""
    return m[0] if _CODE_LABEL_RE.match(m[0].lstrip()) and _CODE_LABEL_RE.search(m.string[: m.start()]) else ""


# A JSON field left around the text ("\"text\": \"The lip corners ...\""): the text.
_JSON_FIELD_RE = re.compile(
    r'^(["\']?)(?:text|description|sentence|output|answer|content)\1\s*:\s*"(.+?)"?\s*,?$', re.IGNORECASE
)
# A quoted text and a comment after it ("\"The lip corners are pulled down.\" - the visible change"): the quoted text.
_QUOTED_COMMENT_RE = re.compile(r'^(["\u201c])([^"\u201c\u201d]{12,})["\u201d]\s*(?:[-\u2013\u2014:]\s+|\()\S.*$')


_ENTITY_RE = re.compile(r"&(?:[A-Za-z]{2,8}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
# A length the model notes after its text, as a prompt's word limit invites: "(14 words)", "[15 words]", "- 12 words".
_WORD_COUNT_RE = re.compile(
    r"\s*(?:\(\s*\d{1,3}\s+words?\s*\)|\[\s*\d{1,3}\s+words?\s*\]|[-\u2013\u2014]\s*\d{1,3}\s+words?)\.?$", re.I
)
# Unicode categories of characters no description holds: control (NUL, ESC), format (soft hyphen, BOM, zero-width
# joiners) and lone surrogates (half of an emoji's JSON escape pair, which cannot even be written as UTF-8).
_INVISIBLE = frozenset({"Cc", "Cf", "Cs"})


def _has_quote(inner: str, opening: str) -> bool:
    """Whether `inner` holds a quote of the kind `opening` starts (then the outer pair is not a wrapping pair)."""
    kinds = "\u201c\u201d" if opening in "\u201c\u201d" else "\u2018\u2019" if opening in "\u2018\u2019" else opening
    return any(c in inner for c in kinds)


def word_count(text: str) -> int:
    return len(_WORD_RE.findall(text))


def topic_words(au: ActionUnit) -> tuple[str, ...]:
    """Words/phrases one of which a description of `au` must mention: its region keywords and name words."""
    name_words = [w for w in re.findall(r"[a-z]+", au.name.lower()) if len(w) >= 3 and w not in _NAME_STOPWORDS]
    return tuple(dict.fromkeys((*au.region_keywords, *name_words)))


# Inflections a topic word may take, listed explicitly (plural nouns, verb forms). The match is on whole words, so
# "chin" matches "chin" and "chins" but not "chinese", and "lid" does not match "valid".
_IRREGULAR = {
    "tooth": ("teeth",),
    "teeth": ("tooth",),
    "crow's feet": ("crows feet", "crow's-feet"),
    "ala": ("alae",),
    "mouth": ("mouths",),
    "press": ("pressed", "presses", "pressing"),
    "stretch": ("stretched", "stretches", "stretching"),
    "open": ("opened", "opens", "opening"),
    "part": ("parted", "parts", "parting"),
    "pucker": ("puckered", "puckers", "puckering"),
    "smile": ("smiles", "smiled", "smiling"),
    "smirk": ("smirks", "smirked", "smirking"),
    "lip": ("lipped",),  # "tight-lipped", "thin-lipped"
    "frown": ("frowns", "frowned", "frowning"),
    "wrinkle": ("wrinkles", "wrinkled", "wrinkling"),
    "furrow": ("furrows", "furrowed"),
    "suck": ("sucked", "sucks", "sucking"),
    "bite": ("bites", "biting", "bitten"),
    "puff": ("puffed", "puffs", "puffing"),
    "blow": ("blows", "blowing", "blown", "blew"),
    "clench": ("clenched", "clenches", "clenching"),
    "flare": ("flared", "flares", "flaring"),
    "lick": ("licked", "licks", "licking"),
    "wipe": ("wiped", "wipes", "wiping"),
    "bulge": ("bulges", "bulged", "bulging"),
    "pout": ("pouts", "pouted", "pouting"),
    "grin": ("grins", "grinned", "grinning"),
    "yawn": ("yawns", "yawned", "yawning"),
    "kiss": ("kisses", "kissing"),
    "funnel": ("funnels", "funnelled", "funneled"),
    "dimple": ("dimples", "dimpled", "dimpling"),
    "hollow": ("hollows", "hollowed"),
    "tight": ("tighter", "tightly", "tightened", "tightens", "tightening"),
    "thin": ("thinner", "thinned", "thins"),
    "side": ("sides",),
    "cord": ("cords",),
    "band": ("bands",),
}


def topic_forms(word: str) -> tuple[str, ...]:
    """The word and its accepted inflections: a plural (s/es) for every topic noun, plus the listed irregular and
    verb forms in `_IRREGULAR`. Phrases inflect their last word ("frown line" -> "frown lines")."""
    head, _, last = word.rpartition(" ")
    prefix = f"{head} " if head else ""
    plural = last + ("es" if last.endswith(("s", "x", "ch", "sh")) else "s")
    forms = (word, prefix + plural, *_IRREGULAR.get(word, ()), *(prefix + f for f in _IRREGULAR.get(last, ())))
    return tuple(dict.fromkeys(forms))


# What is done TO a face (cosmetics, surgery, injections, grooming, dentistry, products) or worn on it (glasses),
# what befalls it (ageing, illness, injury) or what is said of its looks (inherited traits, fashion) is no account of
# what the face does, however it names the part and a change ("Brow lifts are a cosmetic procedure that raises
# sagging eyebrows", "Botox relaxes the frown lines"). No correct description of the answer sets in bench/data names
# any of these ("a by-product of wrinkling the nose" names no product).
_DONE_TO_FACE_RE = re.compile(
    r"\b(?:cosmetic\w*|surg(?:ery|eries|ical|ically|eon|eons)|\w+plast(?:y|ies)|botox|botulinum|fillers?|"
    r"inject(?:s|ed|ing|ions?)?|implants?|(?<!ice )creams?|serums?|lotions?|retinol|moisturi[sz]\w*|make-?up|mascara|"
    r"eyeliner|lipsticks?|lip gloss|concealer|pluck\w*|tweez\w*|waxing|tape|sleep mask|dermal|procedures?|"
    r"inherited|genetic\w*|attractive|fashion\w*|trend(?:s|y)?|salons?|whiten\w*|brands?|(?<!by-)(?<!by )products?"
    r"|with age|as (?:we|people|you|they|one) (?:get older|age)|(?:ageing|aging|older) skin|collagen|elastin"
    r"|disorders?|syndromes?|diseases?|infections?|virus\w*|dislocat\w*|fractur\w*|injur\w*|palsy|paraly\w*"
    r"|massag\w*|(?:brow|eyebrow|eye|lip|kohl) pencils?|(?:eye)?brow threading|hair removal|exercises?|workouts?"
    r"|(?:chin|pull|push)-?ups?|dentures?|orthodont\w*|veneers?"
    r"|dental (?:impressions?|work|chairs?|visits?|photograph\w*)"
    r"|shav(?:e|es|ed|ing)|razors?|contouring|highlighters?|bronzers?|blushers?|powders?"
    r"|(?:eye|sun)?glasses|spectacles|eyewear|goggles|nose pads?|contact lens\w*"
    r"|pencil(?:s|led|ed|ing)?\b(?![- ]thin)|(?:lip )?liners?|blush (?:goes|on|onto|along|brush\w*)|tattoo\w*"
    r"|microblad\w*|lip plates?|body modification\w*"
    r"|(?:tongue|lip|nose|ear|eyebrow|brow|septum) piercings?|piercings|devices?)\b",
    re.IGNORECASE,
)
# A picture of a face or the taking of one, not a face: an emoji's mouth, a photographer's advice on blinks in group
# photos ("In the photo the inner brows are lifted" describes the face in it).
_PICTURE_RE = re.compile(
    r"\b(?:emoji\w*|emoticons?|photographers?|burst mode|retak(?:e|es|ing)|group (?:photos?|shots?|pictures?))\b",
    re.IGNORECASE,
)
# A muscle's history rather than its action: its embryology, the origin of its name, what pierces it; the face's
# evolution and inheritance, how its bones meet, a muscle's strength, how often a movement is made and what it does
# for the eye. Off topic unless the text also states the AU's own movement ("the zygomaticus major, which takes its
# name from the cheekbone, pulls the lip corners up" is a description).
_TRIVIA_RE = re.compile(
    r"\b(?:embryo\w*|mesoderm\w*|pharyngeal|branchial|etymolog\w*|(?:from|in) (?:the )?(?:greek|latin)\b"
    r"|(?:takes?|took|gets?|got|derives?|derived) (?:its|their) names?|named from|pierced by"
    r"|evolution\w*|evolved|unique to|primates?|heritab\w*|cleft chin|strongest muscle|grinding|bruxism"
    r"|per (?:minute|hour|day)|times (?:a|per|each) (?:minute|hour|day)|tear film|cornea\w*"
    r"|articulat\w*|foramen|foramina|sutures?|bones? (?:meet|join|fuse)\w*)",
    re.IGNORECASE,
)
# A text whose subject is an animal ("A snake can open its mouth extremely wide ...", "Chipmunks stretch their cheek
# pouches ...") is about no human face, whatever it moves; a simile ("like a dog baring its teeth") is not a subject.
_ANIMALS = (
    r"(?:snake|serpent|dog|pupp(?:y|ie)|cat|kitten|horse"
    r"|cow|sheep|goat|pig|monkey|ape|chimpanzee|chimp|gorilla|orangutan|baboon|giraffe|chipmunk|hamster|squirrel"
    r"|rabbit|mouse|mice|rat|bird|parrot|owl|fish|frog|toad|lion|tiger|wol(?:f|ve)|bear|fox|crocodile|alligator"
    r"|shark|whale|dolphin|camel|elephant|animal|mammal|primate|pet)"
)
# ... or, after an opening phrase, whose subject is an animal's part ("In bright light a cat's pupils narrow ..."),
# not in a simile ("like a dog's snarl", "as a cat's would").
_ANIMAL_RE = re.compile(
    rf"^(?:(?:a|an|the|most|many|some|all|every)\s+)?(?:[a-z]+\s+)?{_ANIMALS}(?:e?s|'s|s')?\b"
    rf"|(?<!like )(?<!as )\b(?:a|an|the|their|his|her|your|my|our)\s+{_ANIMALS}(?:'s|s')\s"
    r"|\b(?:snouts?|muzzles?|whiskers|paws?|beaks?)\b",  # an animal's parts
    re.IGNORECASE,
)
# An idiom explained ("Hold your tongue means to stop yourself from saying something", "Keep a stiff upper lip is a
# British idiom ...") is about words, not a face; "as if saying 'oo'" is no idiom.
_IDIOM_RE = re.compile(
    r"\b(?:idioms?|idiomatic|proverbs?|figures? of speech|(?:the|a|an old|common) saying|clich(?:e|\u00e9)s?"
    r"|way of (?:saying|asking|telling)|also (?:a|an) (?:\w+ )?(?:term|word|name)|see also)\b",
    re.IGNORECASE,
)
# A dictionary's entry ("Jaw-dropping (adj.): ..."): words, unless its headword is an AU's code or FACS name, a FACS
# glossary's entry ("lid tightener (n.): narrowing of the eye opening as the lids tense ...").
_DICTIONARY_RE = re.compile(r"\((?:adj|adv|n|vb?|noun|verb|adjective|adverb)\.?\)", re.IGNORECASE)
_AU_TERM_RE = re.compile(rf"{_AU_CODE_RE.pattern}|\b(?:{_NAMES}|{'|'.join(_AGENT_NAMES)})\b", re.IGNORECASE)
# What a phrase means ("Hold your tongue means to stop ..."): an idiom's meaning, unless the phrase is the AU ("mouth
# stretch means you're actively yanking your jaw down", "AU27 means ...").
_MEANS_RE = re.compile(
    r"\bmeans? (?:to|you|someone|somebody|treating|watching|being|doing|keeping|staying|that)\b", re.IGNORECASE
)


@functools.cache
def _defined_re(au: ActionUnit) -> re.Pattern[str]:
    """`au` named just before what it means: its name in any case, its code or "this AU" (a label in brackets
    after it)."""
    return re.compile(rf"(?:\b{_lower_name(au)}|\bAU\s?{au.code}|{SELF_REF})\s*(?:\([^)]*\)\s*)?$", re.IGNORECASE)


def _not_an_action(text: str, au: ActionUnit) -> bool:
    """Whether `text` names a face part and even a change without describing a facial action of a person: what is
    done to a face, an animal's, an idiom explained."""
    if any(r.search(text) for r in (_DONE_TO_FACE_RE, _PICTURE_RE, _ANIMAL_RE, _IDIOM_RE)):
        return True
    if (entry := _DICTIONARY_RE.search(text)) and not _AU_TERM_RE.search(text[: entry.start()]):
        return True
    means = _MEANS_RE.search(text)
    return bool(means) and not _defined_re(au).search(text[: means.start()])


@functools.cache
def _topic_re(au: ActionUnit) -> re.Pattern[str]:
    words = sorted({f for w in topic_words(au) for f in topic_forms(w)}, key=len, reverse=True)
    pattern = "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in words)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{pattern})(?![A-Za-z0-9])", re.IGNORECASE)


def names_other_au(text: str, au: ActionUnit) -> bool:
    """Whether `text` says by code that it describes another AU: it names codes, none of them `au`'s, does not name
    `au` by its FACS name either ("AU43 keeps the eyes shut; a wink closes one eye briefly" sent as AU46: see
    `names_itself`) nor as "this AU" in a contrast, and names them not only in contrasts ("unlike AU4, ...") or as
    companions ("together with AU6, ...", "combined with AU1 and AU4", "with a trace of AU12", "combine with pressed
    lips (AU24)", "the lips pressed together by AU24"), which the contrast and context styles ask for."""
    codes = named_aus(text)
    if not codes or au.code in codes or names_itself(text, au):
        return False
    rest = _COMPANION_RE.sub(" ", NEGATED_RE.sub(" ", text))
    if not _AU_CODE_RE.search(rest) or _THIS_AU_CONTRAST_RE.search(text):
        return False
    # codes only as the labels of companions' clauses ("Sadness: inner brows up (AU1), brows knit (AU4) and the mouth
    # corners pulled down", AU15), beside a clause that states the own AU's movement
    labels_only = not _AU_CODE_RE.search(_LABEL_CODES_RE.sub(" ", rest))
    return not (labels_only and states_own_movement(own_clauses(text, au), au))


# Shorthand of a texting voice, read as the words it stands for ("jaw n teeth stay closed", "brows up w/ wrinkles"):
# the rules read "and" as what opens a clause and "without" as a denial.
_SHORTHAND = {"n": "and", "&": "and", "w/": "with", "w/o": "without", "b/c": "because", "u": "you", "ur": "your"}
_SHORTHAND_RE = re.compile(r"(?<![\w/&(-])(?:n|&|w/o|w/|b/c|u|ur)(?![\w/&.-])")  # not "(n.)", a noun's mark


def validate_description(text: str, au: ActionUnit) -> str | None:
    """None if `text` is a usable description of `au`, else a reason code from TEXT_REASONS."""
    text = clean_text(text)
    if _REFUSAL_RE.search(text):
        return "refusal"
    visible = [c for c in text if not c.isspace()]
    letters = [c for c in visible if c.isalpha()]
    if _MARKUP_RE.search(_TRACKED_NAME_RE.sub("name", text)):
        return "markup"
    if not visible or len(letters) < 0.6 * len(visible) or _META_RE.search(text):
        return "garbage"
    if sum(c.isascii() for c in letters) < 0.9 * len(letters):
        return "not_english"
    words = word_count(text)
    low = text.lower()
    tokens = re.findall(r"[a-z]+", low)
    foreign = sum(t in _FOREIGN_WORDS for t in tokens)
    if foreign >= 2 and foreign > sum(t in _ENGLISH_WORDS for t in tokens):
        return "not_english"
    if words < MIN_WORDS:
        return "too_short"
    if words > MAX_WORDS:
        return "too_long"
    text = _SHORTHAND_RE.sub(lambda m: _SHORTHAND[m[0]], text)
    if names_other_au(text, au) or contrasts_itself(text, au):
        return "wrong_au"
    if not _topic_re(au).search(text) or _not_an_action(text, au):
        return "off_topic"
    if _TRIVIA_RE.search(text) and not states_own_movement_in_words(text, au):
        return "off_topic"
    if not says_change(own_clauses(text, au), au):  # not only in clauses about another AU it names
        return "no_change"
    if wrong_direction(text, au, by_degree=not stated_levels(text)):
        return "wrong_direction"
    if credits_other_muscle(text, au) or names_other_nerve(text, au):
        return "wrong_muscle"
    if wrong_emotion(text, au):
        return "wrong_emotion"
    if contradicts_level(text):
        return "wrong_level"
    if breaks_off(text):
        return "cut_off"
    return None


# A word no sentence ends on, in lower case (an article, a preposition that needs its object, a conjunction, a
# modal): a text that stops on one was cut short. Stricter than _ENDS_MID_RE, which only joins a line to the next
# one: words a description may end on ("drawn in", "pulled over", "than that", "more") are not here.
_BREAKS_OFF_RE = re.compile(
    r"(?:[;(\[{/&\-\u2013\u2014]|\b(?:the|a|an|of|to|by|and|or|nor|with|from|into|onto|toward|towards|for|as|than"
    r"|at|which|whose|its|their|his|your|our|my|but|while|whereas|because|although|if|whether|between|beneath"
    r"|against|each|very|may|might|can|could|will|would|should|must))\s*$"
)


def breaks_off(text: str) -> bool:
    """Whether a (cleaned) text stops mid-sentence: no closing full stop, and its last word or mark is one no
    sentence ends on ("... as the inner brows are raised by the", "... the skin below the lips may")."""
    return not _SENTENCE_DONE_RE.search(text) and bool(_BREAKS_OFF_RE.search(text))


def ends_at_cut(raw: str, text: str) -> bool:
    """Whether `text`, parsed from the answer `raw`, runs to the very end of it and does not end a sentence: the
    text an answer cut at its token limit broke off in. Compared by the last three words (cleaning may drop marks)."""
    if _SENTENCE_DONE_RE.search(text):
        return False
    tail = re.findall(r"\w+", text)[-3:]
    return bool(tail) and re.findall(r"\w+", raw)[-len(tail) :] == tail


# --------------------------------------------------------------------------------------------- duplicates ---


def normalize_for_dedup(text: str) -> str:
    """Lower case, letters/digits only, single spaces: the form two texts are compared in."""
    return " ".join(re.findall(r"[a-z0-9]+", clean_text(text).lower()))


def _shingles(norm: str) -> frozenset[str]:
    if len(norm) <= SHINGLE:
        return frozenset({norm})
    return frozenset(norm[i : i + SHINGLE] for i in range(len(norm) - SHINGLE + 1))


class NearDuplicateFilter:
    """Remembers the texts kept for one AU and flags exact or near repeats of them.

    Exact: equal after `normalize_for_dedup`. Near: Jaccard similarity of character 5-gram shingles
    >= `threshold` (default NEAR_DUPLICATE_THRESHOLD).
    """

    def __init__(self, texts: list[str] | tuple[str, ...] = (), threshold: float = NEAR_DUPLICATE_THRESHOLD) -> None:
        self.threshold = threshold
        self._exact: set[str] = set()
        self._shingles: list[frozenset[str]] = []
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self._exact)

    def similarity(self, text: str) -> float:
        """The highest Jaccard similarity of `text` to a remembered text (0.0 when there is none)."""
        grams = _shingles(normalize_for_dedup(text))
        best = 0.0
        for other in self._shingles:
            union = len(grams | other)
            if union:
                best = max(best, len(grams & other) / union)
        return best

    def is_duplicate(self, text: str) -> bool:
        norm = normalize_for_dedup(text)
        return norm in self._exact or self.similarity(text) >= self.threshold

    def add(self, text: str) -> None:
        norm = normalize_for_dedup(text)
        if norm not in self._exact:
            self._exact.add(norm)
            self._shingles.append(_shingles(norm))
