"""Reading an embedded augtext cache into a `TextPrior` (the contract itself is `augtext.textprior`).

A cache holds `descriptions.parquet` (what `augtext generate` kept), one `embeddings/<model-slug>.parquet` per
embedding model (what `augtext embed` wrote) and `manifest.json` tying them together. `load_text_prior` turns that
into dense arrays, one row per AU and up to K descriptions each, and refuses anything it cannot trust: a missing or
corrupt file, an AU without descriptions, a table whose dim disagrees with its metadata, or embeddings made from an
older set of descriptions (a stale manifest). `TextPrior`, `save_text_prior` and `read_text_prior` (a prior inside a
checkpoint, so that prediction needs no cache) live in `augtext.textprior`, which needs no pyarrow; they are
importable from here too.

The helpers that read the cache layout (`descriptions_fingerprint`, `read_parquet`, `read_manifest`, `model_slug`)
live here and are shared with `augtext.embed`, the writer of the same layout.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from augtext.errors import UserError
from augtext.errors import short_error as short_error  # re-exported: augtext.embed uses it
from augtext.textprior import TextPrior
from augtext.textprior import read_text_prior as read_text_prior  # re-exported: the contract's old home
from augtext.textprior import save_text_prior as save_text_prior

DESCRIPTIONS = "descriptions.parquet"
MANIFEST = "manifest.json"
EMBEDDINGS_DIR = "embeddings"
MANIFEST_VERSION = 1
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Schema metadata keys every embeddings table carries (docs/INTERFACES.md, "augtext cache layout").
TABLE_METADATA_KEYS = (
    "embed_model",
    "embed_revision",
    "dim",
    "normalized",
    "library_versions",
    "created_utc",
    "descriptions_fingerprint",
)


def descriptions_fingerprint(text_sha256: Iterable[str]) -> str:
    """sha256 over the sorted `text_sha256` values joined with newlines: changes whenever a description is added,
    removed or edited, and not when rows are merely reordered."""
    return hashlib.sha256("\n".join(sorted(text_sha256)).encode("utf-8")).hexdigest()


def model_slug(model: str) -> str:
    """A file-name-safe short name for an embedding model: the last part of a hub id or path, [A-Za-z0-9._-] only.

    'sentence-transformers/all-MiniLM-L6-v2' -> 'all-MiniLM-L6-v2'; '/models/bge-small/' -> 'bge-small'.
    """
    tail = model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-")
    return slug or "model-" + hashlib.sha256(model.encode("utf-8")).hexdigest()[:8]


def cache_folder(cache_dir: str | Path) -> Path:
    """`cache_dir` as a Path; a UserError when it is a file, or lies under one: `--cache FILE` / `--text-cache FILE`
    would otherwise read as "<file>/descriptions.parquet not found". Every reader of a cache calls it first; a folder
    that does not exist is left to the caller, whose message says which command makes what it reads."""
    cache_dir = Path(cache_dir)
    existing = next((p for p in (cache_dir, *cache_dir.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is a file" if existing == cache_dir else f"lies under {existing}, a file"
        raise UserError(
            f"text cache {cache_dir} {where}, not a cache folder; pass the folder that holds {DESCRIPTIONS} "
            f"(`augtext generate --cache DIR` makes one)"
        )
    return cache_dir


def read_parquet(path: Path, columns: Sequence[str] | None = None, *, fix: str) -> pa.Table:
    """Read a Parquet file or raise a UserError that names it and says what to do (`fix`)."""
    if not path.is_file():
        raise UserError(f"{path} not found; {fix}")
    try:
        # ParquetFile, not read_table: read_table imports pyarrow.dataset (and pandas), ~0.3 s per fresh process.
        with pq.ParquetFile(path) as pf:
            table = pf.read(columns=list(columns) if columns is not None else None)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable Parquet file ({short_error(exc)}); {fix}") from exc
    return table


def descriptions_fix(cache_dir: Path) -> str:
    """What to do about a descriptions.parquet that cannot be read or is damaged: `augtext generate` rewrites the
    table from requests.jsonl on every run (descriptions.rebuild), ignoring a damaged one."""
    return (
        f"rerun `augtext generate --cache {cache_dir}` with the options that made it: it rebuilds the table from "
        f"{cache_dir / 'requests.jsonl'} (answers already there are reused, not asked again)"
    )


def read_descriptions(cache_dir: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """`cache_dir`/descriptions.parquet (those `columns`), for every reader of a cache (embed, stats, score, the
    prior): one UserError naming the file when it is missing, another when it is unreadable."""
    path = cache_dir / DESCRIPTIONS
    if not path.is_file():
        raise UserError(
            f"{path} not found; run `augtext generate --cache {cache_dir} --au SPEC` first (or pass the --cache "
            "that holds it)"
        )
    return read_parquet(path, columns, fix=descriptions_fix(cache_dir))


def read_manifest(cache_dir: Path) -> dict[str, Any]:
    """The cache's manifest.json as a dict (UserError when missing, unreadable or of another version)."""
    path = cache_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{path} not found; run `augtext embed --cache {cache_dir}` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{path} is not valid JSON ({short_error(exc)}); run `augtext embed --cache {cache_dir}` to rewrite it"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        raise UserError(
            f"{path} is not a version-{MANIFEST_VERSION} augtext manifest; "
            f"run `augtext embed --cache {cache_dir}` to rewrite it"
        )
    return manifest


def table_metadata(schema: pa.Schema) -> dict[str, str]:
    """An embeddings table's schema metadata as str -> str."""
    return {k.decode("utf-8"): v.decode("utf-8") for k, v in (schema.metadata or {}).items()}


def table_dim(path: Path, schema: pa.Schema) -> int:
    """The embedding dimension of an embeddings table, checked against its `dim` metadata."""
    try:
        field = schema.field("embedding")
    except KeyError:
        field = None
    if field is None or not pa.types.is_fixed_size_list(field.type):
        raise UserError(f"{path} has no `embedding` fixed_size_list column; delete it and run `augtext embed`")
    meta = table_metadata(schema)
    if "dim" in meta and meta["dim"] != str(field.type.list_size):
        raise UserError(
            f"{path}: metadata says dim={meta['dim']} but the embedding column holds "
            f"{field.type.list_size} values per row; delete it and run `augtext embed`"
        )
    return int(field.type.list_size)


def embedding_matrix(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A fixed_size_list<float32>[dim] column as a float32 (N, dim) array (no copy when possible)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = column.flatten()
    if values.null_count == 0 and values.type == pa.float32():
        # The buffer itself: no copy, and no pandas import (pyarrow's to_numpy loads pandas, ~0.3 s a process).
        data = np.frombuffer(values.buffers()[1], dtype=np.float32, count=len(values), offset=values.offset * 4)
    else:
        data = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32)
    return data.reshape(-1, dim)


def table_path(cache_dir: Path, slug: str, entry: dict[str, Any]) -> Path:
    """Where a manifest entry's embeddings table lives (its `path`, relative to the cache)."""
    return cache_dir / entry.get("path", f"{EMBEDDINGS_DIR}/{slug}.parquet")


def _table_label(slug: str, entry: dict[str, Any]) -> str:
    """A manifest's table as a message names it: `all-MiniLM-L6-v2 (/models/other/all-MiniLM-L6-v2, 128-d)`."""
    about = [str(entry["model"])] if entry.get("model", slug) != slug else []
    about += [f"{entry['dim']}-d"] if entry.get("dim") else []
    return f"{slug} ({', '.join(about)})" if about else slug


def select_table(
    cache_dir: Path, manifest: dict[str, Any], model: str | None = None, *, warn: bool = True
) -> tuple[str, dict[str, Any], Path]:
    """(slug, manifest entry, table path) of the embeddings table of `model`: a slug or a model name as the manifest
    has it; None takes the only/first table listed (with a warning when there are several, unless not `warn`).
    UserError when the manifest lists no table, none of that model, or several that match it."""
    tables = manifest.get("embeddings") or {}
    where = cache_dir / MANIFEST
    if not tables:
        raise UserError(f"{where} lists no embedding tables; run `augtext embed --cache {cache_dir}`")
    if model is None:
        slug = next(iter(tables))
        if len(tables) > 1 and warn:
            warnings.warn(
                f"{where} lists several embedding models ({', '.join(tables)}); using {slug!r}. "
                "Pass the model explicitly to choose another.",
                stacklevel=3,
            )
        return slug, tables[slug], table_path(cache_dir, slug, tables[slug])
    # A slug or a model name as the manifest has it; a local folder also by any path that leads to it.
    names = {model, str(Path(model).expanduser().resolve())} if Path(model).expanduser().exists() else {model}
    matches = [s for s, entry in tables.items() if s in names or entry.get("model") in names]
    if not matches:
        has = ", ".join(_table_label(slug, entry) for slug, entry in tables.items())
        raise UserError(
            f"no embeddings for model {model!r} in {where} (it has: {has}); "
            f"run `augtext embed --cache {cache_dir} --model {model}` to embed the descriptions there with that model"
        )
    if len(matches) > 1:
        raise UserError(
            f"model {model!r} is ambiguous in {where}: it matches {', '.join(matches)}; "
            "give the full model name from the manifest"
        )
    return matches[0], tables[matches[0]], table_path(cache_dir, matches[0], tables[matches[0]])


def load_text_prior(
    cache_dir: str | Path,
    aus: Sequence[int | str] | str | None = None,
    model: str | None = None,
    styles: Sequence[str] | str | None = None,
    max_per_au: int | None = None,
) -> TextPrior:
    """Read an embedded augtext cache into a `TextPrior` with one row per AU, in the order of `aus`.

    `aus`: codes or labels ([1, 2, "AU4"]) in that order, or an AU spec as the command line takes it ("bp4d",
    "1-26": ascending); `None` takes every AU in the table (ascending). `model` is a slug or model name from the
    manifest (`None`: the only/first table). `styles` keeps only those description styles (a style no description
    has is named, with the cache's styles). Within an AU the descriptions are ordered by (style, text_sha256);
    `max_per_au` keeps at most that many, taken round-robin over the styles so that a cap keeps the styles balanced.
    Raises `UserError` naming the file or AU for anything missing, corrupt or stale.
    """
    if aus is not None:
        from augtext.facs import parse_au_label, parse_au_spec

        # "bp4d", "1-26" as on the command line; codes or labels ("AU12"); an AU FACS lacks is named as such
        aus = parse_au_spec(aus) if isinstance(aus, str) else [parse_au_label(str(a)) for a in aus]
        if not aus:
            raise UserError("the AU list is empty: name at least one AU (aus=None takes every AU in the cache)")
    cache_dir = cache_folder(cache_dir)
    if not cache_dir.is_dir():
        raise UserError(
            f"text cache {cache_dir} not found; create it with `augtext generate --cache {cache_dir}` "
            f"and `augtext embed --cache {cache_dir}`"
        )
    if max_per_au is not None and max_per_au < 1:
        raise UserError(f"max_per_au must be at least 1, got {max_per_au}")
    manifest = read_manifest(cache_dir)
    slug, entry, path = select_table(cache_dir, manifest, model)
    rerun = f"run `augtext embed --cache {cache_dir} --model {entry.get('model', slug)}`"
    table = read_parquet(path, fix=f"delete it and {rerun}")
    dim = table_dim(path, table.schema)
    meta = table_metadata(table.schema)
    missing = {"au", "style", "text_sha256"} - set(table.column_names)
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(sorted(missing))}; delete it and {rerun}")
    if "dim" in entry and int(entry["dim"]) != dim:
        raise UserError(
            f"{cache_dir / MANIFEST} says {slug} has dim {entry['dim']} but {path} holds {dim}-d embeddings; {rerun}"
        )

    # Stale check: the descriptions must be exactly those the embeddings were made from.
    desc_path = cache_dir / DESCRIPTIONS
    shas = read_descriptions(cache_dir, ["text_sha256"])
    current = descriptions_fingerprint(shas.column("text_sha256").to_pylist())
    embedded = meta.get("descriptions_fingerprint")
    if embedded != current or entry.get("descriptions_fingerprint") != current:
        raise UserError(f"{path} is stale: {desc_path} changed since it was embedded; {rerun}")

    au_col = table.column("au").to_numpy().astype(np.int64)
    style_col = np.asarray(table.column("style").to_pylist(), dtype=object)
    sha_col = np.asarray(table.column("text_sha256").to_pylist(), dtype=object)
    # One embedding per description: a table edited by hand (a row removed or repeated) keeps its fingerprint, which
    # covers the descriptions, not the table.
    if Counter(sha_col.tolist()) != Counter(shas.column("text_sha256").to_pylist()):
        raise UserError(
            f"{path} does not hold one embedding per description of {desc_path} ({len(sha_col)} rows for "
            f"{shas.num_rows} descriptions): it was changed since `augtext embed` wrote it; delete it and {rerun}"
        )
    keep = np.ones(len(au_col), dtype=bool)
    if styles is not None:
        styles = [styles] if isinstance(styles, str) else list(styles)
        unknown = sorted(set(styles) - set(style_col.tolist()))
        if unknown:
            raise UserError(
                f"no description in {cache_dir} has style {', '.join(map(repr, unknown))}; its styles: "
                f"{', '.join(sorted(set(style_col.tolist())))}"
            )
        keep &= np.isin(style_col, styles)
    present = sorted(set(au_col[keep].tolist()))
    wanted = present if aus is None else list(aus)
    if len(set(wanted)) != len(wanted):
        raise UserError(f"AU list {wanted} repeats an AU")
    absent = [a for a in wanted if a not in set(present)]
    if absent or not wanted:
        labels = ", ".join(f"AU{a}" for a in absent) or "no AU"  # none: every row was of other styles
        which = f" in style(s) {', '.join(styles)}" if styles is not None else ""
        verb = "have" if len(absent) > 1 else "has"
        from augtext.reference import generate_command

        command = generate_command(cache_dir, absent) if absent else f"`augtext generate --cache {cache_dir} --au SPEC`"
        raise UserError(
            f"{labels} {verb} {'no ' if absent else ''}descriptions{which} in {cache_dir}; run {command} and then "
            "`augtext embed`"
        )

    matrix = embedding_matrix(table.column("embedding"), dim)
    broken = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(broken):
        where = ", ".join(f"AU{au_col[i]} ({style_col[i]})" for i in broken[:3])
        raise UserError(
            f"{path} holds {len(broken)} embedding(s) that are not finite numbers (NaN or infinity; {where}): it was "
            f"damaged or edited; delete it and {rerun}"
        )
    picks = [_order_rows(np.flatnonzero(keep & (au_col == a)), style_col, sha_col, max_per_au) for a in wanted]
    k = max(len(p) for p in picks)
    embeddings = np.zeros((len(wanted), k, dim), dtype=np.float32)
    mask = np.zeros((len(wanted), k), dtype=bool)
    for i, rows in enumerate(picks):
        embeddings[i, : len(rows)] = matrix[rows]
        mask[i, : len(rows)] = True
    return TextPrior(aus=wanted, embeddings=embeddings, mask=mask, model=entry.get("model", slug), fingerprint=current)


def load_descriptions(
    cache_dir: str | Path,
    aus: Sequence[int],
    styles: Sequence[str] | None = None,
    max_per_au: int | None = None,
) -> dict[int, list[str]]:
    """The description texts of `aus` in a cache, chosen and ordered as `load_text_prior` chooses their embeddings
    (`styles`, `max_per_au`); an AU without any has an empty list."""
    cache_dir = cache_folder(cache_dir)
    table = read_descriptions(cache_dir, ["au", "style", "text", "text_sha256"])
    au_col = table.column("au").to_numpy().astype(np.int64)
    style_col = np.asarray(table.column("style").to_pylist(), dtype=object)
    sha_col = np.asarray(table.column("text_sha256").to_pylist(), dtype=object)
    texts = table.column("text").to_pylist()
    keep = np.isin(style_col, list(styles)) if styles is not None else np.ones(len(au_col), dtype=bool)
    return {
        int(a): [
            texts[r] for r in _order_rows(np.flatnonzero(keep & (au_col == int(a))), style_col, sha_col, max_per_au)
        ]
        for a in aus
    }


def _order_rows(rows: np.ndarray, style: np.ndarray, sha: np.ndarray, cap: int | None) -> list[int]:
    """Rows of one AU in (style, sha) order; with a cap, the first `cap` taken round-robin over the styles."""
    ordered = sorted(rows.tolist(), key=lambda r: (style[r], sha[r]))
    if cap is None or len(ordered) <= cap:
        return ordered
    rank: dict[str, int] = {}
    ranked = []
    for r in ordered:
        rank[style[r]] = rank.get(style[r], -1) + 1
        ranked.append((rank[style[r]], style[r], r))
    kept = {r for _, _, r in sorted(ranked)[:cap]}
    return [r for r in ordered if r in kept]


def shuffle_cache(src: str | Path, dst: str | Path, seed: int = 0) -> dict[int, int]:
    """Copy the embedded cache `src` to `dst` with every AU's descriptions handed to another AU: the shuffled-prior
    control (architecture kept, meaning destroyed) for `hiva_core train/eval --text-cache dst`.

    The AUs of `src`'s descriptions are permuted by `augtext.textprior.derangement(n, seed)`; the `au` column of
    descriptions.parquet and of every embeddings table is relabelled, nothing else changes (same texts, hence the same
    descriptions fingerprint: the copy is not stale). Returns {AU: the AU whose descriptions it now holds}.
    """
    from augtext.io import atomic_path, atomic_write
    from augtext.textprior import derangement

    src, dst = cache_folder(src), Path(dst)
    manifest = read_manifest(src)
    fix = f"rerun `augtext embed --cache {src}`"
    aus = sorted(set(read_parquet(src / DESCRIPTIONS, ["au"], fix=fix).column("au").to_pylist()))
    order = derangement(len(aus), seed)
    holds = {aus[i]: aus[int(order[i])] for i in range(len(aus))}  # AU aus[i] gets the texts of aus[order[i]]
    relabel = {old: new for new, old in holds.items()}
    tables = [DESCRIPTIONS] + [
        table_path(Path(), slug, entry) for slug, entry in (manifest.get("embeddings") or {}).items()
    ]
    for rel in tables:
        table = read_parquet(src / rel, fix=fix)
        column = table.column("au")
        au = pa.array([relabel.get(a, a) for a in column.to_pylist()], type=column.type)
        table = table.set_column(table.schema.get_field_index("au"), table.schema.field("au"), au)
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dst / rel) as tmp:
            pq.write_table(table, tmp)
    with atomic_write(dst / MANIFEST, "w") as fh:
        json.dump(manifest, fh, indent=2)
    return holds
