"""One error type for bad input, shared by both command lines (exit status 2, one clear line on stderr).

Standard library only: the models and the text-prior contract raise it without loading a CLI framework. The runner
that turns it into an exit status is `augtext.cliutil.run_app`.
"""

from __future__ import annotations


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


def short_error(exc: BaseException | str, limit: int = 160) -> str:
    """An exception (or a server's message) as one line of at most `limit` characters, for a message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
