"""Running a Typer app as a program, shared by both command lines (`augtext` and `hiva_core`)."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click
import typer

from augtext.errors import UserError, unwrap_worker_error


def run_app(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run a Typer app as a program: 0 on success, 2 on bad input and every handled failure, 3 on an unexpected
    error (a bug: the traceback is printed). 1 is left to the commands' own meaning (`augtext generate`: some AU/style
    ended short of --n).

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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug, not bad input: say so, with the traceback to report
        traceback.print_exc()
        print("error: unexpected internal error (the traceback above); please report it", file=sys.stderr)
        return 3
    return 0
