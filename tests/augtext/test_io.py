from __future__ import annotations

import os
import stat

import pytest

from augtext.io import atomic_path, atomic_write


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
