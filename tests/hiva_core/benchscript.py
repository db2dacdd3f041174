"""Running a bench/ script from a test: `bench_main(name, argv, shared_data)` loads bench/<name>.py and calls its
`main(argv)`, skipping the test where SynthAU cannot render (no ICT-FaceKit model in the shared data, no offscreen
OpenGL); `render_synth` renders a small SynthAU set for one, or skips alike."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from augtext.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def render_synth(shared_data: Path, out: Path, **kwargs) -> Path:
    """A SynthAU set rendered into `out` (hiva_core.synth.writer.run_synth's keywords), or a skip where SynthAU
    cannot render here."""
    from hiva_core.synth.writer import run_synth

    path = shared_data / "ict-facekit" / "ict_facekit_light.npz"
    if not path.is_file():
        pytest.skip(f"no face model at {path}")
    try:
        run_synth(out, face_model=path, progress=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - no offscreen OpenGL here
        if "OpenGL" in str(exc):
            pytest.skip(str(exc))
        raise
    return out


def bench_script(name: str) -> ModuleType:
    """bench/<name>.py as a module (registered in sys.modules: dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def bench_main(name: str, argv: list[str], shared_data: Path) -> Any:
    """`bench/<name>.py`'s main(argv), or a skip when SynthAU cannot be rendered here."""
    if not (shared_data / "ict-facekit" / "ict_facekit_light.npz").is_file():
        pytest.skip("no ICT-FaceKit face model in the shared data")
    script = bench_script(name)
    try:
        return script.main(argv)
    except UserError as exc:
        if "OpenGL" in str(exc):
            pytest.skip(f"no offscreen OpenGL here: {exc}")
        raise
