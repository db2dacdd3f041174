"""bench/bench_answers.py: its cut-short measure (correct texts cut after a random word, judged by the rules) and the
folders of sets it measures."""

from __future__ import annotations

import pytest

from augtext.facs import FACS
from tests.hiva_core.benchscript import bench_script

WHOLE = [
    (12, "The lip corners are pulled up and back toward the cheekbones, deepening the nasolabial folds."),
    (4, "The brows are drawn down and together, bunching the skin between them into vertical furrows."),
    (15, "The lip corners are pulled down, so the mouth turns down at its ends and the lower lip is stretched."),
    (1, "The inner ends of the eyebrows are raised, wrinkling the middle of the forehead above the nose."),
]


def test_cut_texts_end_on_a_word_no_sentence_ends_on_and_are_rejected_as_cut_off():
    bench = bench_script("bench_answers")
    r = bench.cut_short(WHOLE * 25, FACS)
    assert r["texts"] == 100
    assert 0 < r["cut_off"] < 1 and r["cut_off"] <= 1 - r["cut_pass_rules"]
    assert bench.cut_short(WHOLE * 25, FACS) == r  # seeded: the same cuts every run
    # texts the rules reject whole, or under nine words, are not cut
    short_or_wrong = [(12, "The lip corners rise."), (12, "Buy cherry lip balm at the shop today for the summer.")]
    assert bench.cut_short(short_or_wrong, FACS)["texts"] == 0


def test_data_folder_measures_its_own_sets(tmp_path):
    """`--data DIR`: every *_answers.json of DIR (bench/data/once), SETS for bench/data, a clear exit for none."""
    bench = bench_script("bench_answers")
    assert bench.answer_sets(bench.DATA) == bench.SETS
    once = bench.answer_sets(bench.DATA / "once")
    assert once and not set(once) & set(bench.SETS) and all((bench.DATA / "once" / f"{n}.json").exists() for n in once)
    for name in ("b_answers.json", "a_answers.json", "notes.json"):
        (tmp_path / name).write_text("{}")
    assert bench.answer_sets(tmp_path) == ("a_answers", "b_answers")
    with pytest.raises(SystemExit, match="no \\*_answers.json"):
        bench.answer_sets(tmp_path / "empty")
