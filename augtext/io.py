"""Small file helpers shared by both packages."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO


def _umask_mode() -> int:
    """0666 less the process umask: what open() would give a new file (mkstemp's temp files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return (stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH) & ~mask


_TEMP_NAME = 200  # of a file name, at most this much goes into its temp file's name (a name holds 255 bytes)


def temp_prefix(name: str) -> str:
    """The start of the temp file's name that `atomic_path` writes a file `name` through: `.name.` (cut short for a
    long name, so that the temp name stays legal wherever the name itself is)."""
    cut = name.encode()[:_TEMP_NAME].decode(errors="ignore")
    return f".{cut}."


_TEMP_RE = re.compile(r"^\.(.+)\.[A-Za-z0-9_]{8}\.tmp$")  # temp_prefix, mkstemp's 8 characters, ".tmp"


def written_file(path: str | os.PathLike) -> Path:
    """The file that `path` is written as, when it is one of `atomic_path`'s temp files (`out/.eval.json.k2j3x9q1.tmp`
    -> `out/eval.json`, what a message should name); otherwise `path` itself. A long name's cut (temp_prefix) stays
    cut."""
    path = Path(path)
    m = _TEMP_RE.match(path.name)
    return path.with_name(m.group(1)) if m else path


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temp files that `atomic_path(path)` left behind when its process was killed mid-write; returns
    how many. Call it where a single writer starts (a second writer at the same time would lose its temp file)."""
    target = Path(path)
    removed = 0
    if target.parent.is_dir():
        for stale in target.parent.glob(f"{glob.escape(temp_prefix(target.name))}*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed += 1
    return removed


def check_output_file(
    path: str | os.PathLike,
    option: str,
    example: str = "out",
    reads: Iterable[tuple[str | os.PathLike, str]] = (),
) -> Path:
    """`path` as a file a command may write (call it before the work): a UserError naming `option` when it is a
    folder (suggesting the file `example` in it: `--json out` -> out/eval.json), when a part of its folder path is a
    file, when that folder is not writable, or when it is one of the files the command reads (`reads`: (file, what
    it is), e.g. the manifest evaluated or the run's config.json; by any path or link that leads to it)."""
    from augtext.errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name (e.g. {path / example})")
    _check_writable_folder(path.parent, path, option)
    if path.exists():
        for source, what in reads:
            with contextlib.suppress(OSError):  # a source that does not exist is no file to lose
                if os.path.samefile(path, source):
                    raise UserError(f"{option} {path} is {what}, which this command reads; write to another file")
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


def write_target(path: str | os.PathLike) -> Path | None:
    """Where an all-or-nothing write of `path` goes: `path`, or the file a symbolic link there points to (the link
    stays a link); None when `path` is a device, pipe or socket (`/dev/stdout`, a FIFO), written as a stream."""
    target = Path(path)
    with contextlib.suppress(OSError):
        if not stat.S_ISREG(os.stat(target).st_mode):  # follows links; a missing file raises: a new file
            return None
    return Path(os.path.realpath(target)) if target.is_symlink() else target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """Write `path` all or nothing, for libraries that want a file name (pyarrow, safetensors, torch.save): yields a
    temp path in the same folder, which is fsynced and renamed over `path` when the block ends without error.

    A crash (or an exception inside the block) leaves the old file untouched and no partial file behind. A symbolic
    link is kept: the file it points to is the one replaced. A device, pipe or socket (`/dev/stdout`) is not replaced
    by a file: it is written directly (a stream has no all or nothing).
    """
    target = write_target(path)
    if target is None:
        yield Path(path)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)
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
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Write several files all or nothing, as atomic_path writes one: yields a temp path for each. When the block ends
    without error they are renamed over their targets in the order given (the last is the commit point a reader
    trusts), else every temp file is removed and no target changes: a full disk at the third file leaves the first
    two as they were."""
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(atomic_path(p)) for p in reversed(paths)]  # the last entered is renamed first
        yield temps[::-1]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", fsync: bool = True) -> Iterator[IO]:
    """Like atomic_path, yielding the open temp file (`mode` "w" for text in UTF-8, "wb" for bytes)."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
        yield fh


def utc_now() -> str:
    """The current time as every `created_utc` of the toolkit writes it: ISO 8601 in UTC with microseconds and Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
