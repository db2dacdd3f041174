"""Running a Typer app as a program, shared by both command lines (`augtext` and `hiva_core`)."""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import click
import typer

from augtext.errors import UserError, unwrap_worker_error
from augtext.io import written_file

# Typer 0.2x runs its own copy of click: its usage errors (unknown option, missing or malformed value), --help's exit
# and Ctrl-C are not the click package's classes. Catch both families, so that a mistyped option is a usage error
# (exit 2), never the "internal error" traceback. TyperException is the base of typer's ClickException.
_USAGE_ERRORS = (click.ClickException, getattr(typer, "TyperException", click.ClickException))
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort)


_OWN_CODE = tuple(str(Path(__file__).resolve().parents[1] / name) + os.sep for name in ("hiva_core", "augtext"))


def _show_warning(plain, shown: set[str], message, category, filename, lineno, file=None, line=None) -> None:
    """The project's own warnings (warnings.warn in hiva_core or augtext) as one line `warning: ...`, as its other
    warnings print, each text once (the train and test splits of one manifest warn alike); any other library's as
    Python prints them (with the source line that says where)."""
    if not str(Path(filename).resolve()).startswith(_OWN_CODE):
        plain(message, category, filename, lineno, file, line)
    elif str(message) not in shown:
        shown.add(str(message))
        print(f"warning: {message}", file=file or sys.stderr, flush=True)


def run_app(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run a Typer app as a program (`_run`), the project's own warnings shown as one line each (`_show_warning`;
    restored on return: tests call the CLIs again and again). SIGTERM (what `timeout`, `docker stop` and systemd
    send) takes the path of Ctrl-C — partial outputs are removed, nothing half-written is left — and exits 143."""
    signals: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)
        raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        # SIGINT too: asyncio.run's own Ctrl-C handler cancels the main task instead, and a cancellation that lands
        # in a shielded close (httpx's, after the last answer) is absorbed: the run then ended with exit 0.
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = partial(_show_warning, warnings.showwarning, set())
            code = _run(app, argv)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if signals and code == 0:  # a signal some code swallowed: never report an interrupted run as finished
        code = 130
    terminated = [s for s in signals if s == signal.SIGTERM]
    if code == 130:
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    return code


_ENVIRONMENT = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.ENAMETOOLONG: "file name too long",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error",
}


def _environment_error(exc: BaseException) -> str | None:
    """A one-line account of an error the machine raised while a command wrote or read (a full disk, a file name too
    long, ...), found anywhere in `exc`'s chain; None for any other error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT:
            what = _ENVIRONMENT[exc.errno]
            if exc.filename is None:
                return f"{what}; fix that, then run the command again (nothing half-written is kept)"
            shown = written_file(os.fsdecode(exc.filename))  # the file, not its temp file
            fix = "choose a shorter path" if exc.errno == errno.ENAMETOOLONG else "fix that, then run the command again"
            return f"{what}: {shown}; {fix} (nothing half-written is kept)"
        if isinstance(exc, (OSError, RuntimeError)) and "No space left on device" in str(exc):
            return (
                "no space left on the device; free some space and run the command again (nothing half-written is kept)"
            )
        exc = exc.__cause__ or exc.__context__
    return None


def _run(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run a Typer app as a program: 0 on success, 2 on bad input and every handled failure, 3 on an unexpected
    error (a bug: the traceback is printed), 130 when interrupted. 1 is left to the commands' own meaning (`augtext
    generate`: some AU/style ended short of --n).

    Callable from tests (`main(["generate", ...])`) as well as from the console script.
    """
    command = typer.main.get_command(app)
    try:
        code = command.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except UserError as exc:
        print(f"error: {unwrap_worker_error(exc)}", file=sys.stderr)
        return 2
    except _EXITS as exc:
        return exc.exit_code
    except _USAGE_ERRORS as exc:
        if hasattr(exc, "show"):
            exc.show()  # usage line and "Error: ..."
        else:
            print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except (*_ABORTS, KeyboardInterrupt):  # Ctrl-C (run_app says so; SIGTERM comes here too)
        return 130
    except Exception as exc:  # a bug, not bad input: say so, with the traceback to report
        where = _environment_error(exc)
        if where is not None:  # a full disk, a name too long, a read-only place: the machine's, not a bug
            print(f"error: {where}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print("error: unexpected internal error (the traceback above); please report it", file=sys.stderr)
        return 3
    # Without standalone mode, typer's own click hands an Exit back as its code instead of raising it, and turns
    # Ctrl-C into Exit(130) on the way: the commands return None, so an int here is that exit status.
    if isinstance(code, int) and not isinstance(code, bool) and code:
        return code
    return 0
