"""The request identity and the append-only request log of `augtext generate`.

Owns `cache/requests.jsonl`: each answered request is one JSON line, keyed by `request_key` (a hash of everything
that determines the answer) with the per-request seed of `sample_seed`. `RequestLog` loads the log (dropping a last
line cut short by a kill), appends answers and fsyncs them in groups.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

LOG_NAME = "requests.jsonl"


# -- keys and seeds -------------------------------------------------------------------------------------------------


def _sha256_json(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sample_seed(base_seed: int, au: int, style: str, sample_idx: int) -> int:
    """The per-request seed derived from the run's base seed (31 bits, accepted by every server)."""
    digest = hashlib.sha256(f"{base_seed}:{au}:{style}:{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def request_key(
    template_sha256: str,
    messages: list[dict[str, str]],
    backend: str,
    model: str,
    params: dict[str, Any],
    sample_idx: int,
    seed: int,
) -> str:
    """sha256 of everything that determines an answer (never the API key, the server URL or the parsing)."""
    return _sha256_json(
        {
            "template_sha256": template_sha256,
            "messages": messages,
            "backend": backend,
            "model": model,
            "params": params,
            "sample_idx": sample_idx,
            "seed": seed,
        }
    )


# -- the request log ------------------------------------------------------------------------------------------------


class RequestLog:
    """Append-only JSONL of answered requests. Loading ignores (and cuts off) a last line truncated by a kill."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.skipped = 0  # corrupt lines other than a truncated tail
        self.truncated = False  # the last line was cut short (and is dropped)
        self._fh = None
        self._written = self._synced = 0  # appends handed to sync() / covered by a finished fsync
        self._inflight: asyncio.Future | None = None
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = len(data)
        if data and not data.endswith(b"\n"):
            end = data.rfind(b"\n") + 1  # a line cut short by a kill: drop it (its request is asked again)
            self.truncated = True
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = entry["key"]
                if not isinstance(entry["text"], str):  # e.g. a list or null logged by an older version: ask again
                    raise TypeError("text")
            except (ValueError, KeyError, TypeError):
                self.skipped += 1
                continue
            self.entries.setdefault(key, entry)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def append(self, entry: dict[str, Any]) -> int:
        """Write one line and flush it to the OS (a kill -9 after this loses nothing); returns the fd to fsync."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")
        self._fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True).encode() + b"\n")
        self._fh.flush()
        self.entries.setdefault(entry["key"], entry)
        return self._fh.fileno()

    async def sync(self, fd: int) -> None:
        """Return once an fsync begun after the latest append has finished. Group commit: appends made while an
        fsync runs in its worker thread share the next one, so 32 answers at once do not queue 32 fsyncs."""
        self._written += 1
        target = self._written
        while self._synced < target:
            if self._inflight is None or self._inflight.done():
                self._inflight = asyncio.ensure_future(self._fsync(fd, self._written))
            await asyncio.shield(self._inflight)

    async def _fsync(self, fd: int, upto: int) -> None:
        await asyncio.to_thread(os.fsync, fd)
        self._synced = max(self._synced, upto)

    def close(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
