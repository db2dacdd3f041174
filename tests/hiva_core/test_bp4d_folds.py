"""The BP4D user's path end to end: real ME-GraphAU/MDHR fold lists (a few rows of each, with placeholder images),
`hiva_core train --folds all` then `hiva_core eval --folds all`, through the command line."""

from __future__ import annotations

import json

from augtext.facs import DATASET_AUS, au_label
from hiva_core.cli import main
from tests.hiva_core.conftest import train_argv
from tests.hiva_core.imagefix import write_protocol_sample
from tests.textcache import make_text_cache


def test_train_and_eval_every_bp4d_fold_from_list_files(tmp_path, shared_data, one_thread, capsys):
    root, lists = write_protocol_sample(
        shared_data / "protocols", tmp_path / "bp4d", "bp4d", n=12, folds=(1, 2, 3), size=40
    )
    cache = make_text_cache(tmp_path / "cache", aus=DATASET_AUS["bp4d"], per_au=2)
    out = tmp_path / "runs" / "bp4d"
    argv = train_argv(cache, f"bp4d:{root}", out, "--lists", str(lists), "--folds", "all", epochs=1)
    assert main(argv) == 0, capsys.readouterr().err
    for fold in (1, 2, 3):
        assert json.loads((out / f"fold{fold}" / "config.json").read_text())["config"]["data"]["fold"] == fold
        assert (out / f"fold{fold}" / "model.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["folds"]) == ["fold1", "fold2", "fold3"]
    assert summary["mean"]["aus"] == DATASET_AUS["bp4d"]
    folds_f1 = [summary["folds"][f"fold{k}"]["avg"]["f1"] for k in (1, 2, 3)]
    assert abs(summary["mean"]["avg"]["f1"] - sum(folds_f1) / 3) < 1e-9  # the paper's figure: the mean over folds
    capsys.readouterr()

    assert (
        main(
            [
                "eval",
                "--run",
                str(out),
                "--data",
                f"bp4d:{root}",
                "--lists",
                str(lists),
                "--folds",
                "all",
                "--json",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    for au in DATASET_AUS["bp4d"]:
        assert f"| {au_label(au)} |" in table  # every BP4D AU has its row, ready to paste
    result = json.loads((tmp_path / "eval.json").read_text())
    assert abs(result["mean"]["avg"]["f1"] - summary["mean"]["avg"]["f1"]) < 1e-6  # eval reproduces training's
