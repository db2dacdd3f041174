"""Small file helpers shared by both packages."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO


def _umask_mode() -> int:
    """0666 less the process umask: what open() would give a new file (mkstemp's temp files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return (stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH) & ~mask


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temp files that `atomic_path(path)` left behind when its process was killed mid-write; returns
    how many. Call it where a single writer starts (a second writer at the same time would lose its temp file)."""
    target = Path(path)
    removed = 0
    if target.parent.is_dir():
        for stale in target.parent.glob(f".{target.name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed += 1
    return removed


def check_output_file(path: str | os.PathLike, option: str, example: str = "out") -> Path:
    """`path` as a file a command may write (call it before the work): a UserError naming `option` when it is a
    folder (suggesting the file `example` in it: `--json out` -> out/eval.json), when a part of its folder path is a
    file, or when that folder is not writable."""
    from augtext.errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name (e.g. {path / example})")
    _check_writable_folder(path.parent, path, option)
    return path


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """`path` as a folder a command may write into (created if missing; call it before the work): a UserError naming
    `option` when it, or a part of its path, is a file, or when it cannot be written."""
    path = Path(path)
    _check_writable_folder(path, path, option)
    return path


def _check_writable_folder(folder: Path, shown: Path, option: str) -> None:
    """The folder, or the nearest part of its path that exists, must be a writable folder."""
    from augtext.errors import UserError

    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        what = "is a file, not a folder" if existing == shown else f"lies under {existing}, a file, not a folder"
        raise UserError(f"{option} {shown} {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {shown}: cannot write in {existing} (permission denied); choose another path")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """Write `path` all or nothing, for libraries that want a file name (pyarrow, safetensors, torch.save): yields a
    temp path in the same folder, which is fsynced and renamed over `path` when the block ends without error.

    A crash (or an exception inside the block) leaves the old file untouched and no partial file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", fsync: bool = True) -> Iterator[IO]:
    """Like atomic_path, yielding the open temp file (`mode` "w" for text in UTF-8, "wb" for bytes)."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
        yield fh


def utc_now() -> str:
    """The current time as every `created_utc` of the toolkit writes it: ISO 8601 in UTC with microseconds and Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
