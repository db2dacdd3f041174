"""The README's Python API example runs as written, on the test's own cache and run (its paths and AU list swapped
in): a user copies it first."""

from __future__ import annotations

import re

from tests.hiva_core.conftest import REPO


def test_the_readme_python_api_example_runs(text_cache, trained_run, tiny_faces):
    run, _ = trained_run
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    swaps = {
        '"cache"': repr(str(text_cache)),
        "aus=[1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]": "aus=[1, 2, 4]",
        "num_aus=12": "num_aus=3",
        '"runs/bp4d_f1"': repr(str(run)),
    }
    for old, new in swaps.items():
        assert old in code, f"the README's example no longer has {old}"
        code = code.replace(old, new)
    crops = sorted(tiny_faces.parent.glob("img/*.png"))[:2]
    scope = {"crops": crops}
    exec(compile(code, "README.md (Python API)", "exec"), scope)  # noqa: S102 - the README's own example
    assert tuple(scope["out"]["logits"].shape) == (2, 3)
    assert tuple(scope["probs"].shape) == (2, 3) and scope["calls"].dtype.is_floating_point is False
