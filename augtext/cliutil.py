"""Running a Typer app as a program, shared by both command lines (`augtext` and `hiva_core`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
import typer

from augtext.errors import UserError, unwrap_worker_error


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
