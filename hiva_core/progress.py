"""Progress bars on stderr for `hiva_core train`, `predict` and `prepare`: one implementation for all three.

A rich live bar when enabled, nothing when disabled. `enabled=None` means "when stderr is a terminal" (predict and
prepare by default); a caller may force it on (train's `train.progress`, rank 0 only). The bars are transient: they
vanish when done, so that what stays on screen is the command's own output. Forced on where stderr is no terminal (a
log file, `nohup`), where a live bar shows nothing, a plain line every tenth of a task says how far it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any


class ProgressBar:
    """rich progress bars on stderr, or nothing: `with ProgressBar(enabled) as bar: t = bar.task("epoch 1", n)`.

    `task(description, total)` adds a bar (total 0 or None: no known end), `update(task, advance, info)` advances it,
    `done(task)` removes it. `info=True` adds a text column for each task's `info` (train's running loss); `eta`
    shows the time remaining (train), else the time elapsed (predict, prepare)."""

    def __init__(self, enabled: bool | None = None, *, info: bool = False, eta: bool = True):
        self.bar = None
        self._live: AbstractContextManager = nullcontext()  # the bar once there is one: entered and left with us
        self._plain: dict[int, dict[str, Any]] | None = None  # forced on without a terminal: tasks shown as lines
        if enabled is False:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            if enabled:  # a log file: a line every tenth of a task
                self._plain = {}
            return
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        if info:
            columns.append(TextColumn("{task.fields[info]}"))
        columns.append(TimeRemainingColumn() if eta else TimeElapsedColumn())
        self.bar = self._live = Progress(*columns, console=console, transient=True)

    @property
    def enabled(self) -> bool:
        return self.bar is not None or self._plain is not None

    def __enter__(self) -> ProgressBar:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)

    def task(self, description: str, total: int | None) -> Any:
        if self._plain is not None:
            import time

            key = max(self._plain, default=-1) + 1  # never a live task's key (len() would be, after a done())
            self._plain[key] = {"what": description, "total": total or 0, "done": 0, "shown": 0, "t0": time.time()}
            return key
        return self.bar.add_task(description, total=total or None, info="") if self.bar is not None else None

    def update(self, task: Any, advance: int = 1, info: str | None = None) -> None:
        if self._plain is not None:
            self._plain_line(self._plain[task], advance, info)
        elif self.bar is not None:
            fields = {} if info is None else {"info": info}
            self.bar.update(task, advance=advance, **fields)

    def done(self, task: Any) -> None:
        if self._plain is not None:
            self._plain.pop(task, None)
        elif self.bar is not None:
            self.bar.remove_task(task)

    @staticmethod
    def _plain_line(state: dict[str, Any], advance: int, info: str | None) -> None:
        """One line on stderr each time a task passes another tenth of its total (none without a known total, and
        none at its end: the caller's own line says it is done)."""
        import sys
        import time

        state["done"] += advance
        total, done = state["total"], state["done"]
        tenth = 10 * done // total if total else 0
        if 0 < tenth < 10 and tenth > state["shown"]:
            state["shown"] = tenth
            seconds = time.time() - state["t0"]
            left = seconds * (total - done) / done
            extra = f" {info}" if info else ""
            print(
                f"{state['what']}: {done}/{total} ({10 * tenth}%){extra}, {seconds:.0f} s, about {left:.0f} s left",
                file=sys.stderr,
                flush=True,
            )


@contextmanager
def progress_bar(label: str, total: int, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """One bar of `total` items (frames) and the time elapsed; the context value advances it by n:
    `with progress_bar("predict", frames) as advance: ... advance(n)`."""
    with ProgressBar(enabled, eta=False) as bar:
        task = bar.task(label, total)
        yield lambda n: bar.update(task, n)
