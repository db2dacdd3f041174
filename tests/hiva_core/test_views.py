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
