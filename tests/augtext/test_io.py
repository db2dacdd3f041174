from __future__ import annotations

import errno
import os
import stat
import threading

import pytest
import typer

from augtext.cliutil import run_app
from augtext.io import atomic_path, atomic_write, remove_stale_temps, temp_prefix


def test_atomic_write_replaces_whole_file_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with atomic_write(target, "w") as fh:
        fh.write('{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert os.listdir(target.parent) == ["out.json"]


@pytest.mark.parametrize("use_path", [False, True])
def test_a_failure_inside_the_block_keeps_the_old_file_and_no_temp(tmp_path, use_path):
    target = tmp_path / "table.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        if use_path:
            with atomic_path(target) as tmp:
                tmp.write_bytes(b"half")
                raise RuntimeError("crash mid-write")
        else:
            with atomic_write(target) as fh:
                fh.write(b"half")
                raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["table.bin"]


def test_a_symbolic_link_stays_a_link_to_the_file_written(tmp_path):
    (tmp_path / "real.json").write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    with atomic_write(link, "w") as fh:
        fh.write("new")
    assert link.is_symlink() and (tmp_path / "real.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_a_pipe_is_written_as_a_stream_not_replaced_by_a_file(tmp_path):
    """`--json /dev/stdout`, a FIFO: what is written reaches whoever reads it, and the node stays what it was (a
    rename would put a regular file in its place: as root, even over /dev/stdout's link or /dev/full)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with atomic_write(fifo, "w") as fh:
        fh.write("streamed")
    reader.join(timeout=10)
    assert got == [b"streamed"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe"]


def test_a_long_legal_name_gets_a_legal_temp_name(tmp_path):
    target = tmp_path / ("x" * 250 + ".json")  # a legal name: ".<name>.<random>.tmp" would not be
    with atomic_write(target, "w") as fh:
        fh.write("{}")
    assert target.read_text() == "{}" and os.listdir(tmp_path) == [target.name]
    (tmp_path / f"{temp_prefix(target.name)}abcd1234.tmp").write_text("left by a killed writer")
    assert remove_stale_temps(target) == 1 and os.listdir(tmp_path) == [target.name]


@pytest.mark.parametrize(
    ("error", "expect"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/out/.eval.json.k2j3x9q1.tmp"),
         "error: no space left on the device: /data/out/eval.json; fix that, then run the command again"),
        (OSError(errno.ENAMETOOLONG, "File name too long", "/data/" + "n" * 300),
         "error: file name too long: /data/nnn"),
        (RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file data/0: "
                      "file write failed; No space left on device"),
         "error: no space left on the device; free some space"),
    ],
)  # fmt: skip
def test_the_machine_s_errors_are_one_line_and_exit_2(error, expect, capsys):
    """A full disk or a name too long is no bug of the toolkit: one line naming the file (not its temp file), exit 2,
    no traceback. Other errors stay the internal-error traceback (exit 3)."""
    app = typer.Typer()

    @app.command()
    def write() -> None:
        raise error

    assert run_app(app, []) == 2
    err = capsys.readouterr().err
    assert err.startswith(expect) and "Traceback" not in err and err.count("\n") == 1

    @app.command()
    def bug() -> None:
        raise OSError(errno.ENOENT, "No such file or directory", "/a/bug")

    assert run_app(app, ["bug"]) == 3


def test_a_ctrl_c_some_code_swallowed_is_still_no_success(capsys):
    """Ctrl-C that a library absorbs (asyncio's cancellation landing in httpx's shielded close did, after the last
    answer: `augtext generate` then exited 0) still exits 130: scripts never take an interrupted run for a
    finished one."""
    import signal
    import time

    app = typer.Typer()

    @app.command()
    def work() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass

    assert run_app(app, []) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
