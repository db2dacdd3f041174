"""The README's quick start script finds the environment wherever HIVA_VENV puts it.

The environment here is a folder of small executables that log their arguments (the real run takes minutes and is
the README's first command); what is checked is which tools the script calls, from where, and in what order."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("augtext", "hiva_core", "python")


def _logging_venv(root: Path, log: Path) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for tool in TOOLS:
        exe = bin_dir / tool
        exe.write_text(f'#!/usr/bin/env bash\necho "$0 $*" >> "{log}"\n')
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return root


@pytest.mark.parametrize("absolute", [True, False], ids=["absolute", "relative"])
def test_quickstart_runs_its_steps_with_the_tools_of_hiva_venv(tmp_path, absolute):
    log = tmp_path / "calls.log"
    venv = _logging_venv(tmp_path / "env", log)
    given = str(venv) if absolute else os.path.relpath(venv, REPO)
    env = {**os.environ, "HIVA_VENV": given, "QS": str(tmp_path / "qs"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["bash", "scripts/quickstart.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert all(Path(call.split()[0]).resolve().parent == venv / "bin" for call in calls), calls
    tools = [(Path(call.split()[0]).name, call.split()[1]) for call in calls]
    steps = [f"{tool} {command}" for tool, command in tools if tool != "python"]
    assert steps == [
        "augtext generate",
        "augtext embed",
        "augtext stats",
        "hiva_core synth",
        "hiva_core train",
        "hiva_core eval",
    ]
