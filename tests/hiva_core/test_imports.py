"""The package boundary: the model, the run folder and the text-prior contract load no CLI framework and no Parquet."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.hiva_core.conftest import REPO

HEAVY = ("typer", "click", "pyarrow")


def loaded_after(*modules: str) -> list[str]:
    """Which of HEAVY a fresh interpreter holds after importing `modules`."""
    code = (
        f"import sys; import {', '.join(modules)}; "
        f"import json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_models_and_checkpoint_load_no_cli_framework_or_parquet():
    assert loaded_after("hiva_core.models", "hiva_core.checkpoint", "augtext.errors", "augtext.textprior") == []


def test_the_check_sees_what_it_looks_for():
    """The probe itself works: the command line does load typer and click, the cache reader pyarrow."""
    assert loaded_after("hiva_core.cli", "augtext.prior") == list(HEAVY)
