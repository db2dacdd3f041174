"""hiva_core.views: what the commands print, from the library's results (the library itself prints none)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from hiva_core.views import print_predict_summary, print_predict_table, print_prepare_summary


def test_predict_summary_counts_and_names_the_problem_files(capsys):
    summary = {
        "images": 3,
        "videos": 1,
        "frames_read": 5,
        "faces": 4,
        "frames_without_face": 3,
        "no_face": [{"source": "a.jpg", "frame": 0}, {"source": "v.mp4", "frame": 1}, {"source": "v.mp4", "frame": 2}],
        "unreadable": [{"source": "b.png", "error": "OSError: truncated"}],
    }
    print_predict_summary(summary, Path("out.csv"))
    assert capsys.readouterr() == (
        "",
        "predict: 3 image(s), 1 video(s), 5 frame(s) read, 4 face(s), 3 without a face, 1 unreadable -> out.csv\n"
        "  no face: a.jpg\n"
        "  no face: v.mp4 (2 frames)\n"
        "  unreadable: b.png: OSError: truncated\n",
    )


def test_predict_summary_names_what_the_folders_held_besides_images(capsys):
    summary = {"images": 1, "videos": 0, "frames_read": 1, "faces": 1, "frames_without_face": 0, "no_face": []}
    summary["unreadable"] = []
    summary["skipped"] = ["in/.hidden.jpg", "in/notes.txt", "in/sub", "in/x.doc"]
    print_predict_summary(summary, None)
    assert capsys.readouterr().err.splitlines()[0] == (
        "predict: 1 image(s), 0 video(s), 1 frame(s) read, 1 face(s), 0 without a face, 0 unreadable, "
        "4 other file(s) in the folders skipped (.hidden.jpg, notes.txt, sub, ...)"
    )


def test_prepare_summary_without_problems_says_how_to_train(capsys):
    summary = {"dataset": "gft", "frames": 6, "cropped": 6, "problems": {}, "images": "o/images", "list_dir": "o/lists"}
    print_prepare_summary({**summary, "report": "o/prepare_report.csv"})
    assert capsys.readouterr() == (
        "",
        "prepare gft: 6/6 labelled frames cropped\ntrain with: --data gft:o/images --lists o/lists\n",
    )


def test_predict_table_is_csv_on_a_pipe(capsys):
    row = {"source": "x/a.jpg", "kind": "image", "frame": 0, "time_s": float("nan"), "face": 0, "status": "ok"}
    rows = pd.DataFrame([{**row, "AU1_prob": 0.75, "AU1": 1}])
    print_predict_table(rows, [1], 0.5)
    assert pd.read_csv(io.StringIO(capsys.readouterr().out))["AU1_prob"].tolist() == [0.75]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout.isatty", lambda: True)
        print_predict_table(rows, [1], 0.5)
    shown = capsys.readouterr().out
    assert "a.jpg" in shown and "0.75" in shown and "x/a.jpg" not in shown


# ------------------------------------------------------------------------------------- the README says what they do
def _readme_section(title: str) -> str:
    from tests.hiva_core.conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_trains_on_what_prepare_writes(capsys):
    """README's commands after `prepare --out OUT` read OUT/images and OUT/lists, as prepare's own last line says."""
    import re

    prepare = _readme_section("Preparing raw BP4D / DISFA / GFT")
    out = re.search(r"hiva_core prepare bp4d --root \S+ --out (\S+)", prepare).group(1)
    print_prepare_summary(
        {
            "dataset": "bp4d",
            "frames": 1,
            "cropped": 1,
            "problems": {},
            "images": f"{out}/images",
            "list_dir": f"{out}/lists",
        }
    )
    said = capsys.readouterr().err.splitlines()[-1].removeprefix("train with: ")
    data, lists = re.fullmatch(r"--data (\S+) --lists (\S+)", said).groups()
    for title in ("Training", "Evaluation", "Preparing raw BP4D / DISFA / GFT"):
        section = "\n".join(re.findall(r"```bash\n(.*?)```", _readme_section(title), re.S)).replace("\\\n", " ")
        assert re.findall(r"--data (bp4d:\S+)", section) and set(re.findall(r"--data (bp4d:\S+)", section)) == {data}
        assert set(re.findall(r"--data bp4d:\S+ --lists (\S+)", section)) == {lists}, title


def test_readme_documents_log_csv_and_loader_workers():
    """Every log.csv column is named in README "Training", and so is fixing data.num_workers for reproducible
    numbers (each loader process draws the augmentation from its own random stream)."""
    from hiva_core.run_folder import LOG_COLUMNS

    training = " ".join(_readme_section("Training").split())
    assert all(f"`{column}`" in training for column in LOG_COLUMNS), [
        c for c in LOG_COLUMNS if f"`{c}`" not in training
    ]
    assert "The number changes the results, not only the speed" in training
    assert "For numbers others can reproduce — a paper's — fix it, `--set data.num_workers=N`" in training
