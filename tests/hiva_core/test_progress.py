"""hiva_core.progress: the one progress bar of train, predict and prepare (a live bar on a terminal, or nothing)."""

from __future__ import annotations

import pytest

from hiva_core.progress import ProgressBar, progress_bar


@pytest.fixture
def terminal(monkeypatch):
    """stderr taken for a terminal by rich (as under a real one), though pytest captures it."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


def test_off_or_piped_prints_nothing(capsys):
    for enabled in (False, None):  # None: only on a terminal, and capsys is none
        with ProgressBar(enabled, info=True) as bar:
            task = bar.task("epoch 1/1", 2)
            bar.update(task, info="loss 1.0")
            bar.done(task)
        assert not bar.enabled and task is None
        with progress_bar("predict", 3, enabled) as advance:
            advance(3)
    assert capsys.readouterr() == ("", "")


def test_forced_on_without_a_terminal_prints_a_line_a_tenth(capsys):
    """train.progress forces the bar on (rank 0), whatever stderr is; where stderr is a log file, where a live bar
    shows nothing, a plain line every tenth of a task says how far it is (the second user test's BP4D epoch printed
    nothing for 4 minutes)."""
    with ProgressBar(True, info=True) as bar:
        assert bar.enabled
        task = bar.task("epoch 3/20", 20)
        for step in range(20):
            bar.update(task, info=f"loss {1 / (step + 1):.4f}")
        bar.done(task)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 9 and lines[0].startswith("epoch 3/20: 2/20 (10%) loss 0.5000, ")
    assert lines[-1].startswith("epoch 3/20: 18/20 (90%) loss 0.0556, ") and lines[-1].endswith(" s left")
    with ProgressBar(True) as bar:  # a task added after another's done() gets a key of its own
        first, second = bar.task("a", 10), bar.task("b", 10)
        bar.done(first)
        third = bar.task("c", 10)
        bar.update(second, 5)
        bar.update(third, 2)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["b: 5/10 (50%)", "c: 2/10 (20%)"]


def test_a_terminal_gets_the_live_bar(terminal, capsys):
    with ProgressBar(None, info=True) as bar:
        task = bar.task("epoch 1/2", 2)
        bar.update(task, info="loss 0.5000")
        bar.update(task, info="loss 0.2500")
    err = capsys.readouterr().err
    assert bar.enabled and "epoch 1/2" in err and "2/2" in err and "loss 0.2500" in err
    with progress_bar("predict", 3) as advance:
        advance(2)
        advance(1)
    err = capsys.readouterr().err
    assert "predict" in err and "3/3" in err
