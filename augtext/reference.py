"""The project's own reference descriptions: hand-written, FACS-faithful sentences per AU and style (package data).

`augtext/reference/AU<code>.jsonl` holds one JSON object per line with exactly the keys `au` (int), `style` (one of
the package's description styles) and `text`. They are:
- the offline default prior: `augtext generate --backend reference` writes them into a cache like any backend;
- the few-shot examples that the LLM backends can put into their prompts (`--few-shot N`);
- prototypes of the semantic gate (augtext.quality) beside the FACS reference texts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from augtext.errors import UserError
from augtext.facs import FACS, compact_codes

REFERENCE_DIR = Path(__file__).parent / "reference"
REFERENCE_AUS = tuple(sorted(FACS))
"""Every FACS AU (1-46 but 3 and 40): those BP4D, DISFA (all 12 of its coded AUs) or GFT label, the others the SynthAU
renderer labels (16, 18, 22, 27, 28, 43), so that the zero-shot experiment can score them all, and the rest, so that
`augtext generate` is complete offline for any range of AUs and the semantic gate has reference prototypes for every AU
it ranks: the set covers each of them in every package style, 10 descriptions each (tests check this)."""
REFERENCE_KEYS = ("au", "style", "text")


@functools.cache
def reference_set(folder: Path = REFERENCE_DIR) -> dict[tuple[int, str], tuple[str, ...]]:
    """{(au, style): texts in file order} read from every `AU*.jsonl` in `folder` (UserError on a bad line)."""
    out: dict[tuple[int, str], list[str]] = defaultdict(list)
    for path in sorted(folder.glob("AU*.jsonl")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ok = isinstance(row, dict) and set(row) == set(REFERENCE_KEYS)
                au, style, text = (row["au"], row["style"], row["text"]) if ok else (None, None, None)
            except ValueError:
                ok = False
            if (
                not ok
                or not isinstance(au, int)
                or au not in FACS
                or not isinstance(style, str)
                or not isinstance(text, str)
                or not text.strip()
            ):
                raise UserError(
                    f"{path}:{lineno}: not a reference description (want a JSON object with exactly "
                    f"au (a FACS code), style and text)"
                )
            out[(au, style)].append(text.strip())
    return {k: tuple(v) for k, v in sorted(out.items())}


def reference_texts(au: int, style: str | None = None) -> tuple[str, ...]:
    """The reference descriptions of `au` (of one style, or of all styles in style order)."""
    ref = reference_set()
    if style is not None:
        return ref.get((au, style), ())
    return tuple(t for (a, _s), texts in ref.items() if a == au for t in texts)


@functools.cache
def reference_version() -> str:
    """A short content hash of the whole set: recorded as the reference backend's model, so that editing the set
    changes the request keys (and a rerun writes the new texts)."""
    digest = hashlib.sha256(json.dumps(sorted(reference_set().items())).encode("utf-8")).hexdigest()
    return f"reference-{digest[:12]}"


def reference_gaps(aus: Sequence[int], styles: Sequence[str]) -> list[tuple[int, str]]:
    """The (au, style) pairs of `aus` x `styles` that the set has no descriptions for (the reference backend can
    only answer them with empty lists)."""
    ref = reference_set()
    return [(au, style) for au in aus for style in styles if (au, style) not in ref]


LLM_INSTEAD = (
    "an LLM backend: --backend openai --model M --base-url URL (any OpenAI-compatible server) or --backend hf "
    "(a local transformers model); see the README, section Generate"
)


def gaps_message(pairs: Sequence[tuple[int, str]]) -> str:
    """What the set lacks of `pairs` (from `reference_gaps`: styles of the user's own, as the set covers every FACS AU
    in every package style), what it covers, and what to use instead."""
    ref = reference_set()
    styles = sorted({style for _, style in pairs})
    return (
        f"the reference set (--backend reference) has no descriptions in style(s) {', '.join(styles)}: it covers AUs "
        f"{compact_codes(sorted({au for au, _ in ref}))} in the styles {', '.join(sorted({s for _, s in ref}))}. "
        f"Generate those with {LLM_INSTEAD}"
    )


def generate_command(cache_dir: str | Path, aus: Sequence[int]) -> str:
    """The `augtext generate` command that writes descriptions of `aus` into `cache_dir` (the default backend, the
    reference set, has every FACS AU)."""
    return f"`augtext generate --cache {cache_dir} --au {','.join(map(str, aus))}`"


def few_shot_examples(au: int, style: str, n: int) -> list[str]:
    """`n` reference descriptions of (au, style) to show an LLM as examples: a fixed pseudo-random pick, so that the
    prompt (and with it the request key) is the same on every run. Fewer when the set has fewer; none for n <= 0."""
    texts = list(reference_texts(au, style))
    if n <= 0 or not texts:
        return []
    random.Random(f"few-shot:{au}:{style}").shuffle(texts)
    return texts[:n]
