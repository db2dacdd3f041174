"""Prior quality: the reference set, the semantic gate (through a real loopback LLM server), `augtext score`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from augtext.cli import main
from augtext.facs import DATASET_AUS, FACS
from augtext.quality import SemanticGate, default_embedder, facs_reference_text, score_cache, score_embeddings
from augtext.reference import (
    REFERENCE_AUS,
    REFERENCE_DIR,
    few_shot_examples,
    gaps_message,
    reference_gaps,
    reference_set,
    reference_texts,
    reference_version,
)
from augtext.templates import available_styles, render_messages
from augtext.validate import named_aus, validate_description
from tests.llm_server import generate_args

GATE_SET = json.loads((Path(__file__).parent / "data" / "gate_set.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def embedder():
    return default_embedder()


# -- the reference set ------------------------------------------------------------------------------------------------


PER_PAIR = 10  # descriptions per (AU, style) in the reference set


def test_reference_set_covers_every_dataset_au_and_style():
    ref = reference_set()
    styles = available_styles()
    assert {a for aus in DATASET_AUS.values() for a in aus} <= set(REFERENCE_AUS)
    # One file per AU of REFERENCE_AUS and no other: a missing or stray file fails here.
    assert sorted(int(p.stem[2:]) for p in REFERENCE_DIR.glob("AU*.jsonl")) == sorted(REFERENCE_AUS)
    assert {au for au, _ in ref} == set(REFERENCE_AUS)
    for au in REFERENCE_AUS:
        for style in styles:
            assert len(ref.get((au, style), ())) == PER_PAIR, f"AU{au}/{style}"
    assert sum(len(t) for t in ref.values()) == len(REFERENCE_AUS) * len(styles) * PER_PAIR  # 44 x 5 x 10 = 2200
    for (au, style), texts in ref.items():
        assert au in FACS and style in styles
        assert len(set(texts)) == len(texts), f"AU{au}/{style} repeats a text"


def test_reference_files_have_exactly_the_schema():
    styles = available_styles()
    for path in sorted(REFERENCE_DIR.glob("AU*.jsonl")):
        code = int(path.stem[2:])
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and "\n\n" not in text, f"{path}: blank line or no final newline"
        rows = [json.loads(line) for line in text.splitlines()]  # a line that is not JSON fails here
        assert len(rows) == len(styles) * PER_PAIR, path
        for row in rows:
            assert list(row) == ["au", "style", "text"] and row["au"] == code, path
            assert row["style"] in styles and row["text"] == row["text"].strip() != "", (path, row)
        assert Counter(r["style"] for r in rows) == dict.fromkeys(styles, PER_PAIR), path


def test_every_reference_description_passes_the_rules():
    bad = [
        (au, t, r)
        for (au, _s), texts in reference_set().items()
        for t in texts
        if (r := validate_description(t, FACS[au])) is not None
    ]
    assert not bad, bad[:5]


def test_reference_set_passes_the_gate_and_is_identifiable(embedder):
    gate = SemanticGate(embedder)
    aus, texts, kept = [], [], Counter()
    for (au, style), pair in reference_set().items():
        decisions = gate.check(list(pair), au)
        kept[(au, style)] = sum(d.reason is None for d in decisions)
        aus += [au] * len(pair)
        texts += list(pair)
    assert sum(kept.values()) >= 0.95 * len(texts)
    assert min(kept.values()) >= 8, "every pair must keep --n 8 through the gate (the quick start asks for 8)"
    scores = score_embeddings(aus, embedder(texts), embedder)
    n = sum(s.n for s in scores)
    loo = sum(s.identifiability_loo * s.n for s in scores) / n
    assert loo >= 0.9
    # Per AU too: a file that describes the wrong AU (or mostly another one) would hide in the overall mean.
    weak = {
        s.au: (s.identifiability_facs, s.identifiability_loo)
        for s in scores
        if min(s.identifiability_facs, s.identifiability_loo) < 0.9
    }
    assert not weak, weak


def test_reference_changes_change_the_version(tmp_path):
    assert reference_version().startswith("reference-")
    (tmp_path / "AU1.jsonl").write_text('{"au": 1, "style": "appearance", "text": "x"}\n{"au": 99}\n')
    from augtext.errors import UserError

    with pytest.raises(UserError, match=r"AU1.jsonl:2"):
        reference_set(tmp_path)


def test_few_shot_examples_are_fixed_and_from_the_pair():
    ex = few_shot_examples(12, "appearance", 3)
    assert ex == few_shot_examples(12, "appearance", 3) and len(ex) == 3
    assert set(ex) <= set(reference_texts(12, "appearance"))
    assert few_shot_examples(12, "appearance", 0) == [] and few_shot_examples(12, "mine", 3) == []  # a user's style
    messages, _ = render_messages("appearance", 12, 5, examples=ex)
    assert all(e in messages[1]["content"] for e in ex)
    plain, _ = render_messages("appearance", 12, 5)
    assert ex[0] not in plain[1]["content"]


# -- the gate, through `augtext generate --backend openai` against a real loopback server ---------------------------


def _kept_share(llm_server, tmp_path, kind: str) -> tuple[float, list[str]]:
    items = GATE_SET[kind]
    by_au: dict[int, list[str]] = {}
    for au, text in items:
        by_au.setdefault(int(au), []).append(text)
    llm_server.answer = lambda code, k: json.dumps(by_au.get(code, []))
    cache = tmp_path / kind
    args = generate_args(
        llm_server,
        str(cache),
        ",".join(map(str, sorted(by_au))),
        "--styles",
        "appearance",
        "--n",
        "10",
        "--max-rounds",
        "1",
    )
    assert main(args) in (0, 1)
    kept = pq.read_table(cache / "descriptions.parquet").column("text").to_pylist()
    return len(set(kept) & {t for _, t in items}) / len(items), kept


def test_gate_keeps_correct_descriptions(llm_server, tmp_path):
    share, _ = _kept_share(llm_server, tmp_path, "correct")
    assert share >= 0.9


def test_gate_drops_off_domain_sentences_with_face_words(llm_server, tmp_path):
    share, kept = _kept_share(llm_server, tmp_path, "off_domain")
    assert share == 0, kept
    reasons = json.loads((tmp_path / "off_domain" / "rejections.json").read_text())["rejected_total"]
    assert set(reasons) <= {"far_from_au", "other_au", "off_topic", "no_change", "wrong_direction"}
    assert reasons.get("no_change", 0) >= 12  # most say nothing a face does: the rules drop them before the gate


def test_gate_drops_most_descriptions_of_another_au(llm_server, tmp_path):
    share, _ = _kept_share(llm_server, tmp_path, "wrong_au")
    assert share <= 0.5


def test_no_gate_keeps_what_the_rules_keep(llm_server, tmp_path):
    # An AU24 off-domain sentence the rules cannot tell from a description (lip-ish words, a pressing movement):
    # the gate drops it, --no-gate keeps it.
    sealed = "Press the lid firmly to seal the container before putting it in the freezer."
    assert [24, sealed] in GATE_SET["off_domain"]
    llm_server.answer = lambda code, k: json.dumps([sealed])
    for gate, status in ((["--no-gate"], 0), ([], 1)):
        cache = tmp_path / ("plain" if gate else "gated")
        args = ["--styles", "appearance", "--n", "1", "--max-rounds", "1", *gate]
        assert main(generate_args(llm_server, str(cache), "24", *args)) == status


def test_a_shortfall_the_gate_caused_says_so_and_no_gate_keeps_the_logged_texts(llm_server, tmp_path, capsys):
    # The gate is what left the pair short: the error line counts its drops, names rejected.parquet and --no-gate,
    # and the rerun with --no-gate keeps the texts from the logged answers without asking the server again.
    sealed = "Press the lid firmly to seal the container before putting it in the freezer."
    llm_server.answer = lambda code, k: json.dumps([sealed])
    cache = tmp_path / "c"
    args = ["--styles", "appearance", "--n", "1", "--max-rounds", "1"]
    assert main(generate_args(llm_server, str(cache), "24", *args)) == 1
    err = capsys.readouterr().err
    assert "the semantic gate dropped 1 of their texts" in err and "--no-gate" in err
    assert str(cache / "rejected.parquet") in err
    asked = llm_server.requests
    assert main(generate_args(llm_server, str(cache), "24", *args, "--no-gate")) == 0
    assert llm_server.requests == asked
    assert pq.read_table(cache / "descriptions.parquet").column("text").to_pylist() == [sealed]
    assert "semantic gate" not in capsys.readouterr().err


def test_a_shortfall_without_gate_drops_does_not_blame_the_gate(llm_server, tmp_path, capsys):
    llm_server.answer = lambda code, k: json.dumps(["Lips."])  # too short: the rules drop it, not the gate
    args = ["--styles", "appearance", "--n", "1", "--max-rounds", "1"]
    assert main(generate_args(llm_server, str(tmp_path), "24", *args)) == 1
    err = capsys.readouterr().err
    assert "too few valid descriptions" in err and "semantic gate" not in err


# -- the reference backend ---------------------------------------------------------------------------------------


def test_reference_backend_writes_the_set_offline(tmp_path, capsys):
    cache = tmp_path / "c"
    assert main(["generate", "--au", "bp4d", "--n", "8", "--cache", str(cache)]) == 0
    df = pq.read_table(cache / "descriptions.parquet").to_pandas()
    assert set(df["backend"]) == {"reference"} and set(df["model"]) == {reference_version()}
    assert sorted(df["au"].unique()) == list(DATASET_AUS["bp4d"])
    counts = df.groupby(["au", "style"]).size()
    assert len(counts) == 12 * len(available_styles()) and (counts == 8).all()
    for au, style, text in zip(df["au"], df["style"], df["text"], strict=True):
        assert text in reference_texts(int(au), style)
    lines = (cache / "requests.jsonl").read_text().splitlines()
    before = (cache / "descriptions.parquet").read_bytes()
    assert main(["generate", "--au", "bp4d", "--n", "8", "--cache", str(cache)]) == 0  # rerun: all cached
    assert (cache / "requests.jsonl").read_text().splitlines() == lines
    assert (
        pq.read_table(cache / "descriptions.parquet")
        .to_pandas()
        .drop(columns=["created_utc"])
        .equals(df.drop(columns=["created_utc"]))
        and before
    )


def test_reference_backend_refuses_a_style_the_set_lacks(tmp_path, capsys):
    """Asked only for a style of the user's own (--prompts), the reference backend could answer nothing but empty
    lists (it used to send them and advise more rounds): one line naming what it covers and what to use instead,
    exit 2, before the cache is touched."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "mine.j2").write_text((Path(__file__).parents[2] / "augtext/prompts/appearance.j2").read_text())
    cache = tmp_path / "c"
    args = ["generate", "--au", "45", "--n", "2", "--styles", "mine", "--prompts", str(prompts), "--cache", str(cache)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(
        "error: the reference set (--backend reference) has no descriptions in style(s) mine: it covers AUs 1-2, "
        "4-39, 41-46 in the styles anatomical, appearance, context, contrast, intensity. "
    )
    assert "Generate those with an LLM backend: --backend openai" in err[0] and "--backend hf" in err[0]
    assert "--max-rounds" not in err[0] and "README" in err[0]
    assert not cache.exists()


def test_reference_gaps_name_styles_the_set_lacks():
    """A style of the user's own (--prompts) has no reference texts either."""
    assert reference_gaps([12, 45], ["appearance", "mine"]) == [(12, "mine"), (45, "mine")]
    message = gaps_message(reference_gaps([12], ["appearance", "mine"]))
    assert "has no descriptions in style(s) mine: it covers AUs" in message and "Generate those with" in message


def test_reference_backend_help_makes_no_speed_claim():
    """5 AUs take about 20 s (the semantic gate encodes every text): not "instant"."""
    import typer

    from augtext.cli import app

    params = {p.name: p for p in typer.main.get_command(app).commands["generate"].params}
    text = params["backend"].help
    assert "instant" not in text and "offline, no LLM, nothing to download" in text


def test_reference_backend_refuses_a_model(tmp_path, capsys):
    assert main(["generate", "--au", "12", "--model", "x", "--cache", str(tmp_path)]) == 2
    assert "--backend reference" in capsys.readouterr().err


def test_llm_rows_beside_reference_rows_do_not_change_them(llm_server, tmp_path):
    """A run of another backend (or of other AUs) leaves the rows of pairs it was not asked about exactly as they
    were."""
    cache = tmp_path / "c"
    assert main(["generate", "--au", "1,2", "--n", "4", "--styles", "appearance", "--cache", str(cache)]) == 0
    before = pq.read_table(cache / "descriptions.parquet").to_pandas().drop(columns=["created_utc"])
    assert main(generate_args(llm_server, str(cache), "2,4", "--n", "3", "--styles", "appearance")) == 0
    after = pq.read_table(cache / "descriptions.parquet").to_pandas()
    ref_rows = after[after["backend"] == "reference"].drop(columns=["created_utc"]).reset_index(drop=True)
    assert ref_rows.equals(before.reset_index(drop=True))
    llm = after[after["backend"] == "openai"]
    assert sorted(Counter(llm["au"]).items()) == [(2, 3), (4, 3)]
    assert main(["generate", "--au", "4", "--n", "2", "--styles", "appearance", "--cache", str(cache)]) == 0
    again = pq.read_table(cache / "descriptions.parquet").to_pandas()
    assert (
        again[again["au"].isin([1, 2])]
        .drop(columns=["created_utc"])
        .reset_index(drop=True)
        .equals(after[after["au"].isin([1, 2])].drop(columns=["created_utc"]).reset_index(drop=True))
    )


def test_llm_copy_of_a_few_shot_example_is_a_duplicate(llm_server, tmp_path):
    example = few_shot_examples(12, "appearance", 1)[0]
    llm_server.answer = lambda code, k: json.dumps([example])
    assert (
        main(
            generate_args(
                llm_server,
                str(tmp_path),
                "12",
                "--n",
                "1",
                "--styles",
                "appearance",
                "--few-shot",
                "1",
                "--max-rounds",
                "1",
            )
        )
        == 1
    )
    body = llm_server.log[0]["body"]
    assert example in body["messages"][1]["content"]
    assert json.loads((tmp_path / "rejections.json").read_text())["rejected_total"] == {"duplicate": 1}


# -- augtext score ------------------------------------------------------------------------------------------------


def test_score_measures_identifiability_specificity_diversity_validity(tmp_path, capsys, embedder):
    cache = tmp_path / "c"
    assert main(["generate", "--au", "1,12,26", "--n", "8", "--cache", str(cache)]) == 0
    capsys.readouterr()
    out = tmp_path / "score.json"
    assert main(["score", "--cache", str(cache), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "prior quality: 120 descriptions of 3 AUs; identifiability" in printed
    data = json.loads(out.read_text())
    assert data["vectors_from"] == "encoded" and data["overall"]["n"] == 120
    per_au = {row["au"]: row for row in data["per_au"]}
    assert set(per_au) == {1, 12, 26}
    for row in per_au.values():
        assert row["identifiability_loo"] >= 0.8 and row["specificity"] > 0 and 0.3 < row["diversity"] < 0.9
        assert row["validity"]["kept"] == 40 and 0.9 <= row["validity"]["rate"] <= 1  # surplus texts are valid
    assert main(["embed", "--cache", str(cache)]) == 0
    assert main(["score", "--cache", str(cache), "--json", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["vectors_from"] == "cache"
    assert again["overall"]["identifiability_facs"] == pytest.approx(data["overall"]["identifiability_facs"])


def test_score_tells_meaning_from_noise(embedder):
    """Shuffled labels score near chance; the right labels score high (the measure can fail)."""
    items = [(au, t) for au in (1, 4, 12, 17, 26) for t in reference_texts(au)]
    aus = [a for a, _ in items]
    vectors = embedder([t for _, t in items])
    right = score_embeddings(aus, vectors, embedder)
    shuffled = score_embeddings(list(np.random.default_rng(0).permutation(aus)), vectors, embedder)
    mean = lambda scores, f: sum(getattr(s, f) * s.n for s in scores) / sum(s.n for s in scores)  # noqa: E731
    assert mean(right, "identifiability_loo") >= 0.9 > 0.5 > mean(shuffled, "identifiability_loo")
    assert mean(right, "specificity") > 0 > mean(shuffled, "specificity")


def test_score_errors_name_the_file(tmp_path, capsys):
    assert main(["score", "--cache", str(tmp_path)]) == 2
    assert "descriptions.parquet" in capsys.readouterr().err
    (tmp_path / "taken.json").mkdir()  # checked before any scoring (issue 11)
    assert main(["score", "--cache", str(tmp_path), "--json", str(tmp_path / "taken.json")]) == 2
    taken = tmp_path / "taken.json"
    assert f"--json {taken} is a folder; give a file name (e.g. {taken / 'score.json'})" in capsys.readouterr().err


def test_facs_reference_text_holds_the_facts():
    text = facs_reference_text(FACS[12])
    assert "Lip Corner Puller" in text and "zygomaticus major" in text


def test_score_cache_is_deterministic(tmp_path, embedder):
    cache = tmp_path / "c"
    assert main(["generate", "--au", "4,15", "--n", "8", "--styles", "appearance,contrast", "--cache", str(cache)]) == 0
    a, b = score_cache(cache, embedder=embedder), score_cache(cache, embedder=embedder)
    assert a.to_json() == b.to_json()


def test_a_no_gate_run_of_other_aus_keeps_the_gated_rows(llm_server, tmp_path):
    """Rows of pairs a run was not asked about stay as they were, whatever that run's --n and --gate."""
    cache = tmp_path / "c"
    assert main(generate_args(llm_server, cache, "1,2", "--n", "3", "--styles", "appearance")) == 0
    before = pq.read_table(cache / "descriptions.parquet").to_pandas()
    assert main(generate_args(llm_server, cache, "4", "--n", "5", "--styles", "appearance", "--no-gate")) == 0
    after = pq.read_table(cache / "descriptions.parquet").to_pandas()
    assert after[after["au"].isin([1, 2])].reset_index(drop=True).equals(before.reset_index(drop=True))
    records = {(p["au"], p["style"]): p for p in json.loads((cache / "rejections.json").read_text())["pairs"]}
    assert records[(1, "appearance")]["gate"] and not records[(4, "appearance")]["gate"]
    assert records[(1, "appearance")]["cap"] == 3 and records[(4, "appearance")]["cap"] == 5
    (cache / "descriptions.parquet").unlink()  # lost: rebuilt from the log with each source's recorded settings
    assert main(generate_args(llm_server, cache, "4", "--n", "5", "--styles", "appearance", "--no-gate")) == 0
    again = pq.read_table(cache / "descriptions.parquet").to_pandas()
    assert again.drop(columns=["created_utc"]).equals(after.drop(columns=["created_utc"]))


def test_gate_judges_the_text_not_a_copied_au_label(embedder):
    from augtext.quality import strip_labels

    assert strip_labels("When AU12 (Lip Corner Puller) shows, the lips droop.") == "When shows, the lips droop."
    assert strip_labels("The lips part (AU25) a little.") == "The lips part a little."
    assert strip_labels("AU24") == "AU24"  # nothing else to judge: left as it is
    gate = SemanticGate(embedder)
    off = "The new phone case comes in seven colours and ships next week."
    labelled = gate.check([f"AU12 (Lip Corner Puller): {off}"], 12)[0]
    assert labelled.reason == "far_from_au"


@pytest.mark.parametrize(
    ("text", "judged"),
    [
        ("At level D (severe) of AU1, the inner brows rise high.", "the inner brows rise high."),
        ("Level B: the lip corners are clearly pulled up.", "the lip corners are clearly pulled up."),
        ("A (trace): the lip corners lift only barely.", "the lip corners lift only barely."),
        ("At trace intensity (A), the inner brows rise.", "the inner brows rise."),
        ("Scored at E, the jaw hangs wide open.", "the jaw hangs wide open."),
        ("At E intensity the lip corners are dragged down.", "the lip corners are dragged down."),
        ("E - maximum: the lips are pressed hard.", "the lips are pressed hard."),
        ("D, severe: the brows are pulled down hard.", "the brows are pulled down hard."),
        # a letter without a level's context is a word of the text
        ("A faint tug raises the lip corners.", "A faint tug raises the lip corners."),
        ("At rest the lips are closed.", "At rest the lips are closed."),
    ],
)
def test_gate_judges_the_text_not_the_intensity_level_it_starts_with(text, judged):
    """The intensity prompt asks every sentence to start with its level; the level phrase is the prompt's format, and
    judged with the text it pulled correct intensity texts away from their AU (bench_answers: blind intensity set
    kept 119 -> 123 of 136, another AU's 3 -> 1 of 68)."""
    from augtext.quality import strip_labels

    assert strip_labels(text) == judged


def test_gate_does_not_count_the_aus_a_text_names_against_it(embedder):
    """A contrast or context text is about the AU it names too: that AU does not outrank the text's own. Without
    this, the AU15 contrast below ranked third behind AU17 and AU12 (`other_au`). What the text says of its own AU
    must still be near it: another AU's description naming that AU is dropped as before."""
    gate = SemanticGate(embedder)
    contrast = (
        "Unlike AU17, where the chin boss is pushed up and wrinkles like the skin of an orange, in AU15 the mouth "
        "turns down at the corners, giving a sad expression."
    )
    assert gate.check([contrast], 15)[0].reason is None
    others = [
        "With AU6, the cheeks are lifted and crow's feet wrinkles appear at the outer eye corners.",  # sent as AU1
        "With AU12, the lip corners are pulled up and back toward the cheekbones.",  # sent as AU15
    ]
    assert [d.reason for d in gate.check(others[:1], 1) + gate.check(others[1:], 15)] == ["other_au", "other_au"]


def test_gate_does_not_count_a_named_aus_lookalikes_where_the_text_states_its_own_movement(embedder, monkeypatch):
    """A context text naming AU1 sits near AU1's look-alikes too (AU2, AU4): where its own clauses state its own AU's
    movement, they do not outrank it either (these four were `other_au`, ranks 3-4); a text that states none of its
    own AU's movement is judged as before (the companion-only texts of the test above). Judged whole
    (`judge_clauses=False`): judging the text's own clauses alone keeps some of them by another road (below)."""
    gate = SemanticGate(embedder, judge_clauses=False)
    kept = [
        (
            "Together with AU1, the lip corners are pulled down by the depressor anguli oris and the inner ends of the "
            "eyebrows are drawn upward by the medial frontalis.",
            15,
        ),
        (
            "Together with AU2, the jaw drops and the mouth hangs open and the outer ends of the eyebrows are lifted "
            "by the lateral frontalis.",
            26,
        ),
        ("Unlike AU15, which lowers only the lip corners, AU16 pulls the whole lower lip down.", 16),
        (
            "AU14 tucks the lip corners inward to make dimples, whereas AU13 lifts them up sharply and puffs the "
            "cheeks.",
            13,
        ),
    ]
    assert [gate.check([t], au)[0].reason for t, au in kept] == [None] * 4
    with monkeypatch.context() as m:  # counting the named AUs only, as before
        m.setattr("augtext.quality._not_counted", lambda text, au: named_aus(text) - {au})
        assert [gate.check([t], au)[0].reason for t, au in kept] == ["other_au"] * 4


def test_gate_does_not_count_aus_whose_movement_the_text_does_not_state(embedder, monkeypatch):
    """Where a text states its own AU's movement, an AU with movement words whose movement it does not state does not
    outrank it: a sharp lip pull whose cheeks swell is near the cheek puff (AU34) in the embedding but says nothing
    of air held in the mouth; a tightened lid is near the slit and the eyes closed; the dimpler's corners pressed into
    the cheeks are near the smile (AU12, its look-alike) but are not pulled up (dropped while look-alikes always
    counted). A look-alike whose movement the text states still counts (the smile's pull up and back toward the
    cheekbones, sent as the dimpler beside a tightening, stays dropped), and so does every AU where the text states no
    movement of its own AU."""
    from augtext import quality

    gate = SemanticGate(embedder)
    texts = {
        13: "The cheeks swell slightly while the lip corners rise at a steep angle.",
        7: "The palpebral orbicularis oculi tenses the eyelids so that the eyes look narrowed.",
        14: "The lip corners are pressed into the cheeks, giving a smug, tight-lipped look.",
    }
    assert [gate.check([t], au)[0].reason for au, t in texts.items()] == [None, None, None]
    smile = "The lip corners tighten and are pulled up and back toward the cheekbones into a smile."
    assert validate_description(smile, FACS[14]) is None
    assert gate.check([smile], 14)[0].reason == "other_au"
    ranking = SemanticGate(embedder, discriminator=False)  # the discriminator would keep these texts either way
    with monkeypatch.context() as m:  # counting the named AUs only, as before
        m.setattr(quality, "_not_counted", lambda text, au: named_aus(text) - {au})
        assert [ranking.check([t], au)[0].reason for au, t in texts.items()] == ["other_au"] * 3


def test_gate_counts_the_aus_facs_2002_scores_as_one_action_once(embedder, monkeypatch):
    """FACS 2002 scores squint (AU44) as the lid tightener (AU7) and slit and lid droop (AU42, AU41) as intensities of
    eyes closed (AU43): a lid tightening is not outranked by the squint, and the slit and eyes closed above it count
    as one competitor."""
    from augtext import quality
    from augtext.facs import SCORED_AS, scored_as

    assert SCORED_AS == {41: 43, 42: 43, 44: 7} and scored_as(44) == 7 and scored_as(12) == 12
    text = "The eyelids tense and the eyes look narrowed, as in a squint."
    gate = SemanticGate(embedder)
    assert validate_description(text, FACS[7]) is None
    assert gate.check([text], 7)[0].reason is None
    sims = gate.au_similarities(embedder([text]))[0]
    codes = gate.prototypes[0]
    above = {c for c, s in zip(codes, sims, strict=True) if s > sims[codes.index(7)]}
    assert {44, 42} <= above or {44, 43} <= above  # what FACS 2002 scores as AU7 and AU43 ranks above it
    with monkeypatch.context() as m:  # every code its own competitor (the ranking alone: the discriminator keeps it)
        m.setattr(quality, "scored_as", lambda code: code)
        assert SemanticGate(embedder, discriminator=False).check([text], 7)[0].reason == "other_au"


def test_gate_judges_a_contrast_texts_own_clauses_alone(embedder, monkeypatch):
    """A contrast whose look-alike clause comes first and is not split off at "while", ";" or ", and" is judged again
    without its clauses about the AUs it names: what it says of its own AU decides. A text whose own clause describes
    another AU is still dropped. (Judged with the named AUs alone not counted: counting fewer AUs, the gate keeps the
    whole text, and the clause path is not reached.)"""
    from augtext import quality
    from augtext.quality import _parts, strip_labels

    monkeypatch.setattr(quality, "_not_counted", lambda text, au: named_aus(text) - {au})
    text = "Compared with AU4, which pulls the brows down, AU7 narrows the eyes by tightening the lower lids."
    assert _parts(text, strip_labels(text), 7) == ["narrows the eyes by tightening the lower lids"]
    gate = SemanticGate(embedder)
    decision = gate.check([text], 7)[0]
    assert (decision.reason, decision.rank, decision.clause) == (
        None,
        1,
        "narrows the eyes by tightening the lower lids",
    )
    wrong = "Unlike AU12, which lifts the lip corners, here the chin boss is pushed up and wrinkles."  # as AU15
    assert gate.check([wrong], 15)[0].reason == "other_au"
    with monkeypatch.context() as m:  # the clauses alone, as before (the ranking alone: the discriminator keeps it)
        m.setattr(quality, "_parts", lambda text, stripped, au: quality.clauses(stripped))
        assert SemanticGate(embedder, discriminator=False).check([text], 7)[0].reason == "other_au"


def test_gate_does_not_count_an_au_the_text_sets_aside_by_its_muscle(embedder, monkeypatch):
    """A contrast by muscle ("unlike a frown made by the corrugator, ...") is about that muscle's AU by design, as one
    by code is: the AU is not counted against the text's own (movement.contrasted_aus)."""
    from augtext import quality
    from augtext.movement import contrasted_aus

    text = (
        "Unlike a frown made by the corrugator, which lowers and knits the brows, AU1 uses the central part of the"
        " frontalis to lift only the inner brow ends."
    )
    assert contrasted_aus(text) == {4}
    assert contrasted_aus("The mentalis pushes the chin up, unlike the zygomaticus major.") == {12}
    assert contrasted_aus("The mentalis pushes the chin boss up and wrinkles it.") == set()  # no contrast
    gate = SemanticGate(embedder)
    assert gate.check([text], 1)[0].reason is None
    with monkeypatch.context() as m:  # counted (and AUs whose movement it does not state counted too): AU4 outranks it
        m.setattr(quality, "contrasted_aus", lambda text: set())
        m.setattr(quality, "has_movement_words", lambda au: False)
        assert gate.check([text], 1)[0].reason == "other_au"


def test_clauses_split_a_sentence_at_its_joints():
    from augtext.quality import clauses

    assert clauses("The jaw drops and the mouth falls open, while the brows lift and the eyes widen.") == [
        "The jaw drops and the mouth falls open",
        "the brows lift and the eyes widen",
    ]
    assert clauses("The mandible is lowered so the teeth part; the eyebrows rise high.") == [
        "The mandible is lowered so the teeth part",
        "the eyebrows rise high",
    ]
    assert clauses("With AU2 raised: the outer ends of the eyebrows are lifted.") == []  # one clause is left
    assert clauses("The lips part a little, but not much.") == []  # "not much" is too short to be judged alone
    assert clauses("The lip corners are pulled up and back toward the cheekbones.") == []  # "and" without a comma


def test_gate_keeps_a_sentence_one_of_whose_clauses_is_about_its_au(embedder, monkeypatch):
    """An LLM joins what the AU does to what the rest of the face does; whole, such a sentence can sit nearer other
    AUs (the jaw drop below ranked 5th for AU26 beside raised brows). A clause about the own AU keeps it; a sentence
    none of whose clauses is about the own AU is dropped as before. (With the named AUs alone not counted, as the gate
    judged before it left out the AUs whose movement a text does not state: whole, these two now pass.)"""
    monkeypatch.setattr("augtext.quality._not_counted", lambda text, au: named_aus(text) - {au})
    gate = SemanticGate(embedder)
    whole = SemanticGate(embedder, judge_clauses=False)
    mixed = {
        26: "The mandible is lowered so the teeth come apart; the eyebrows rise high.",
        12: "The lip corners are pulled up and back, while the eyes narrow and crow's feet form at their corners.",
    }
    for au, text in mixed.items():
        assert whole.check([text], au)[0].reason == "other_au", (au, text)
        decision = gate.check([text], au)[0]
        assert decision.reason is None and decision.clause is not None, (au, text)
        assert decision.clause in text and decision.clause != text
    wrong = {
        15: "The lip corners are pulled up into a smile, while the cheeks rise and crow's feet appear at the eyes.",
        26: "The lips are pressed together firmly, and the skin above the upper lip bulges.",
        1: "The lips are pushed forward into a small pucker, while the cheeks hollow slightly.",
    }
    assert [gate.check([text], au)[0].reason is not None for au, text in wrong.items()] == [True, True, True]


def test_a_clause_is_not_compared_with_the_text_it_came_from(embedder):
    """The reference set is judged leave-one-out: a prototype identical to the text is never counted. A clause of a
    reference text is not identical to it, yet near: its `sources` row removes that prototype too."""
    from augtext.quality import clauses

    gate = SemanticGate(embedder)
    codes = gate.prototypes[0]
    text, au = next((t, a) for (a, _s), texts in sorted(reference_set().items()) for t in texts if len(clauses(t)) > 1)
    clause = clauses(text)[0]
    whole_vec, clause_vec = embedder([text]), embedder([clause])
    assert np.allclose(gate.au_similarities(whole_vec, sources=whole_vec), gate.au_similarities(whole_vec))
    # the text itself is among the AU's prototypes: without it, the clause's similarity to its own AU can only fall
    alone = gate.au_similarities(clause_vec, sources=whole_vec)[0, codes.index(au)]
    assert alone <= gate.au_similarities(clause_vec)[0, codes.index(au)]
    protos = gate.prototypes[2][gate.prototypes[1] == au]
    assert float((protos @ whole_vec[0]).max()) > 0.9999  # the reference text is one of its AU's prototypes


def test_what_generate_keeps_of_llm_style_answers_written_without_seeing_the_gate(embedder):
    """The rules and the gate together, on answers written to measure them (bench/data/heldout_answers.json: 378
    correct descriptions of AUs 1-28 in the five styles and compound sentences, 80 of another AU, 30 off-domain;
    bench/bench_answers.py reports them with the other sets). Measured at this commit: 0.884 / 0.062 / 0.033."""
    data = json.loads((Path(__file__).parents[2] / "bench" / "data" / "heldout_answers.json").read_text("utf-8"))
    gate = SemanticGate(embedder)

    def kept(rows: list[dict]) -> float:
        n = 0
        for au in sorted({r["au"] for r in rows}):
            texts = [r["text"] for r in rows if r["au"] == au]
            valid = [t for t in texts if validate_description(t, FACS[au]) is None]
            n += sum(d.reason is None for d in gate.check(valid, au))
        return n / len(rows)

    assert kept(data["correct"]) >= 0.85
    assert kept(data["wrong_au"]) <= 0.10
    assert kept(data["off_domain"]) <= 0.10
