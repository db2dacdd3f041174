"""`augtext stats`: what the cache holds per AU (and per style), what was rejected and why, and how diverse it is.

Diversity per AU, two numbers:
- distinct-2: distinct word 2-grams / all word 2-grams over the AU's texts (1.0 = no pair of words ever repeats);
- mean pairwise cosine similarity of the texts (lower = more varied): of their sentence embeddings when the cache is
  embedded (the table manifest.json lists first, the one `augtext.prior.load_text_prior` takes by default), else of
  TF-IDF vectors (scikit-learn).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augtext.errors import UserError

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def distinct_bigram_ratio(texts: list[str]) -> float:
    """Distinct word 2-grams over all word 2-grams (lower-cased words); 0.0 when there is no 2-gram."""
    grams: list[tuple[str, str]] = []
    for text in texts:
        words = _WORD_RE.findall(text.lower())
        grams.extend(zip(words, words[1:], strict=False))
    return len(set(grams)) / len(grams) if grams else 0.0


def mean_pairwise_cosine(vectors: np.ndarray) -> float | None:
    """Mean cosine similarity over all distinct pairs of rows; None with fewer than two rows."""
    n = len(vectors)
    if n < 2:
        return None
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1.0, norms)
    sims = v @ v.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def tfidf_vectors(texts: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer().fit_transform(texts).toarray()
    except ValueError:  # only stop words / empty vocabulary
        return np.zeros((len(texts), 1))


@dataclass
class AUStats:
    au: int
    kept: int = 0
    by_style: dict[str, int] = field(default_factory=dict)
    rejected: Counter = field(default_factory=Counter)
    distinct_2: float = 0.0
    mean_cosine: float | None = None
    samples: list[str] = field(default_factory=list)


def _read_embeddings(path: Path) -> Any:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise UserError(f"{path} not found: run `augtext embed` first (or pass --cache DIR)")
    try:
        return pq.read_table(path).to_pandas()
    except Exception as exc:
        raise UserError(
            f"{path} is not a readable embeddings table ({exc}); delete it and rerun `augtext embed` (it is re-encoded)"
        ) from None


def read_rejections(cache: Path) -> dict[str, Any] | None:
    """The cache's rejections.json with each pair's `au`, `kept`, `surplus` and `rejected` counts as ints (None
    when there is none; UserError when it is corrupt). Shared by `augtext stats` and `augtext score`."""
    path = cache / "rejections.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pairs = data["pairs"]
        for p in pairs:
            p["au"], p["rejected"] = int(p["au"]), {str(k): int(v) for k, v in dict(p["rejected"]).items()}
            p["kept"], p["surplus"] = int(p.get("kept", 0)), int(p.get("surplus", 0))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is corrupt ({exc}); rerun `augtext generate --cache {cache}` to rewrite it") from None
    return data


def rejected_samples(cache: Path, per_reason: int) -> list[dict[str, Any]]:
    """Up to `per_reason` rows of the cache's rejected.parquet for each reason, the most frequent reason first and
    each reason's rows taken evenly through the file: `au`, `style`, `reason`, `similarity` (the gate's; None for
    other reasons), `rival` (for `lookalike`, the AU the discriminator read it as; None for other reasons and in a
    file from before the column) and `text`. [] when the cache has no such file (one from before it); UserError when
    it is corrupt."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from augtext.descriptions import REJECTED_NAME

    path = cache / REJECTED_NAME
    if per_reason < 1 or not path.is_file():
        return []
    columns = ["au", "style", "reason", "similarity", "text"]
    try:
        names = pq.read_schema(path).names
        df = pq.read_table(path, columns=columns + ["rival"] * ("rival" in names)).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path} is corrupt ({exc}); rerun `augtext generate --cache {cache}` to rewrite it") from None
    if "rival" not in df:
        df["rival"] = None
    out = []
    for reason in df["reason"].value_counts(sort=True).index:
        group = df[df["reason"] == reason]
        for row in group.iloc[:: max(1, len(group) // per_reason)][:per_reason].itertuples():
            similarity = None if pd.isna(row.similarity) else float(row.similarity)
            rival = None if pd.isna(row.rival) else int(row.rival)
            out.append(
                {
                    "au": int(row.au),
                    "style": row.style,
                    "reason": reason,
                    "similarity": similarity,
                    "rival": rival,
                    "text": row.text,
                }
            )
    return out


def _embeddings(cache: Path) -> tuple[str, dict[tuple[int, str], np.ndarray]] | None:
    """(table file name, {(au, text_sha256): vector}) from the embeddings table the manifest lists first; None
    before `augtext embed` (no manifest.json, or one without tables). A corrupt manifest is a UserError."""
    from augtext.prior import MANIFEST, read_manifest, select_table

    if not (cache / MANIFEST).is_file():
        return None
    manifest = read_manifest(cache)
    if not manifest.get("embeddings"):
        return None
    _, _, path = select_table(cache, manifest, warn=False)  # the caption names the table it took
    df = _read_embeddings(path)
    if not {"au", "text_sha256", "embedding"} <= set(df.columns):
        raise UserError(f"{path} lacks the columns au, text_sha256, embedding; rerun `augtext embed`")
    return path.name, {
        (int(a), s): np.asarray(e, dtype=np.float32)
        for a, s, e in zip(df["au"], df["text_sha256"], df["embedding"], strict=True)
    }


def compute_stats(cache: Path, samples: int = 2) -> tuple[list[AUStats], str]:
    """Per-AU statistics of the cache, and the name of what the cosine was computed on."""
    from augtext.prior import cache_folder, read_descriptions

    cache = cache_folder(cache)
    df = read_descriptions(cache).to_pandas()
    missing = {"au", "text", "text_sha256", "style"} - set(df.columns)
    if missing:
        raise UserError(
            f"{cache / 'descriptions.parquet'} lacks the column(s) {', '.join(sorted(missing))}; "
            "rerun `augtext generate`"
        )
    rejections = read_rejections(cache)
    emb = _embeddings(cache)
    source = f"embeddings ({emb[0]})" if emb else "TF-IDF"
    stats: dict[int, AUStats] = {}
    for au, group in df.groupby("au", sort=True):
        s = stats.setdefault(int(au), AUStats(au=int(au)))
        texts = group["text"].tolist()
        s.kept = len(texts)
        s.by_style = {str(k): int(v) for k, v in group["style"].value_counts().sort_index().items()}
        s.distinct_2 = distinct_bigram_ratio(texts)
        vectors = None
        if emb is not None:
            vecs = [emb[1].get((int(au), sha)) for sha in group["text_sha256"]]
            if all(v is not None for v in vecs) and vecs:
                vectors = np.stack(vecs)
        if vectors is None:
            vectors = tfidf_vectors(texts)
        s.mean_cosine = mean_pairwise_cosine(vectors)
        s.samples = texts[:: max(1, len(texts) // max(samples, 1))][:samples] if samples > 0 else []
    for pair in (rejections or {}).get("pairs", []):
        s = stats.setdefault(int(pair["au"]), AUStats(au=int(pair["au"])))
        s.rejected.update({str(k): int(v) for k, v in pair["rejected"].items()})
    return [stats[k] for k in sorted(stats)], source
