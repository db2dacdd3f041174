"""One error type for bad input, shared by both command lines (exit status 2, one clear line on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
import typer


class UserError(Exception):
    """Bad input the user can fix (unknown AU, corrupt cache, unreadable image, ...).

    The message must name the thing that was wrong (AU, file, line) and, where possible, what to do.
    The command line prints it on one line and exits with status 2.
    """


def unwrap_worker_error(exc: UserError) -> UserError:
    """The original one-line UserError from the copy that a torch DataLoader worker re-raises (torch rebuilds the
    exception with the worker's whole traceback as its message)."""
    text = str(exc)
    marker = f"{UserError.__module__}.{UserError.__name__}: "
    if text.startswith("Caught UserError") and marker in text:
        return UserError(text.rsplit(marker, 1)[1].strip())
    return exc


def run_app(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run a Typer app as a program: 0 on success, 2 on bad input, 1 on anything unexpected.

    Callable from tests (`main(["generate", ...])`) as well as from the console script.
    """
    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except UserError as exc:
        print(f"error: {unwrap_worker_error(exc)}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    return 0
