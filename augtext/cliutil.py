"""Running a Typer app as a program, shared by both command lines (`augtext` and `hiva_core`)."""

from __future__ import annotations

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
    terminated: list[int] = []

    def on_sigterm(signum: int, frame: object) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = partial(_show_warning, warnings.showwarning, set())
            code = _run(app, argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if code == 130:
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    return code


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
    except Exception:  # a bug, not bad input: say so, with the traceback to report
        traceback.print_exc()
        print("error: unexpected internal error (the traceback above); please report it", file=sys.stderr)
        return 3
    # Without standalone mode, typer's own click hands an Exit back as its code instead of raising it, and turns
    # Ctrl-C into Exit(130) on the way: the commands return None, so an int here is that exit status.
    if isinstance(code, int) and not isinstance(code, bool) and code:
        return code
    return 0
