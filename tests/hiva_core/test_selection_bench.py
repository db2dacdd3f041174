"""bench/bench_selection.py reading runs trained elsewhere (--logs): the log lines the trainer writes, parsed into the
epoch each criterion keeps. The run is trained with train.select=val_auc, so the bench's val_auc choice must be the
epoch the run kept (its metrics.json), and `last` its final epoch."""

from __future__ import annotations

import csv
import json

from hiva_core.cli import main
from tests.hiva_core.benchscript import bench_script
from tests.hiva_core.conftest import train_argv


def test_selection_bench_reads_the_trainers_log(tmp_path, text_cache, tiny_faces, capsys, one_thread):
    out = tmp_path / "run"
    argv = train_argv(text_cache, tiny_faces, out, "--fold", "1", epochs=4)
    argv += ["--set", "data.val_fraction=0.25", "--set", "train.select=val_auc"]
    assert main(argv) == 0
    log = tmp_path / "tiny_run.log"
    log.write_text(capsys.readouterr().err)

    results = tmp_path / "selection.json"
    assert bench_script("bench_selection").main(["--name", "tiny", "--logs", str(log), "--out", str(results)]) == 0
    record = json.loads(results.read_text())["tiny"]
    (seed,) = record["seeds"]
    assert seed["seed"] == "tiny_run" and [r["epoch"] for r in seed["epochs"]] == [1, 2, 3, 4]
    assert seed["validation"].startswith("2 of 8 training subjects")
    kept = json.loads((out / "metrics.json").read_text())
    assert seed["chosen"]["val_auc"]["epoch"] == kept["best_epoch"]
    assert seed["chosen"]["last"]["epoch"] == 4
    assert seed["chosen"]["test"]["test"] == max(r["test"] for r in seed["epochs"])
    with open(out / "log.csv", newline="") as fh:  # its val_f1 column holds each epoch's test F1
        assert [r["test"] for r in seed["epochs"]] == [
            round(100 * float(row["val_f1"]), 1) for row in csv.DictReader(fh)
        ]
    assert "| last | 4, " in capsys.readouterr().out
