"""The semantic gate's last check: a discriminator trained on labelled descriptions (augtext.discriminator)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from augtext.cli import main
from augtext.discriminator import (
    LOOKALIKE_MARGIN,
    NOT_A_DESCRIPTION,
    RESCUE_MARGIN,
    RESCUE_MIN_SIMILARITY,
    Discriminator,
    discriminator_path,
    shipped_discriminator,
    training_key,
)
from augtext.errors import UserError
from augtext.facs import FACS
from augtext.quality import SemanticGate, _not_counted, default_embedder, strip_labels
from augtext.validate import GATE_REASONS, REJECTION_REASONS, validate_description
from tests.hiva_core.benchscript import bench_script
from tests.llm_server import generate_args

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def embedder():
    return default_embedder()


def toy(classes=(1, 2, 4, 7, 44), own=0) -> Discriminator:
    """A discriminator over 2-d vectors: class j's logit is 3 * x[0] * (j + 1) + bias, bias favouring class `own`."""
    k = len(classes)
    weights = np.zeros((k, 2), dtype=np.float32)
    weights[:, 0] = 3.0 * np.arange(1, k + 1)
    bias = np.zeros(k, dtype=np.float32)
    bias[own] = 1.0
    return Discriminator(MODEL, "k", np.asarray(classes), weights, bias)


def test_the_shipped_discriminator_was_trained_on_todays_labelled_sets():
    """Its key is that of the reference set and every answer set bench_answers measures: a set added, or a text
    changed, without training again (`python bench/train_discriminator.py`) fails here."""
    bench = bench_script("train_discriminator")
    rows = bench.labelled_rows()
    judge = shipped_discriminator(MODEL)
    assert judge is not None and discriminator_path(MODEL).exists()
    assert judge.key == training_key(MODEL, bench.training_pairs(rows))
    # every FACS AU has texts to learn from, and so has the class of texts that describe no movement
    assert sorted(int(c) for c in judge.classes) == sorted([NOT_A_DESCRIPTION, *FACS])
    assert judge.weights.shape == (len(FACS) + 1, 384)


def test_training_key_is_order_free_and_changes_with_any_row():
    rows = [(1, "The inner brows rise."), (2, "The outer brows rise.")]
    assert training_key(MODEL, rows) == training_key(MODEL, rows[::-1])
    assert training_key(MODEL, rows) != training_key(
        MODEL, [(1, "The inner brows rise."), (4, "The outer brows rise.")]
    )
    assert training_key(MODEL, rows) != training_key("another/model", rows)


def test_margins_leave_out_the_aus_the_text_names_and_the_same_action():
    judge = toy()
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    logp = judge.log_proba(x)
    assert np.allclose(np.exp(logp).sum(axis=1), 1.0)
    # text 0: class 44 (the largest weight) wins; text 1: all logits 0 but the own class's bias
    margin, rival = judge.margins(x, 1, [set(), set()])
    assert rival.tolist() == [44, 2] and margin[0] == pytest.approx(logp[0, 0] - logp[0, 4])
    assert margin[1] == pytest.approx(1.0)  # own bias 1, the rivals 0
    # 44 named by the text: the next one, 7, is the rival; 7 is scored as 44's action: neither rivals AU7 or AU44
    margin, rival = judge.margins(x[:1], 1, [{44}])
    assert rival.tolist() == [7]
    assert judge.margins(x[:1], 7, [set()])[1].tolist() == [4]
    assert judge.margins(x[:1], 44, [set()])[1].tolist() == [4]
    # an AU it has no class for, or no rival left: never dropped
    assert judge.margins(x, 12, [set(), set()])[0].tolist() == [np.inf, np.inf]
    assert judge.margins(x[:1], 1, [{2, 4, 7, 44}])[0].tolist() == [np.inf]


def test_not_a_description_is_a_rival_only_where_asked():
    """A lookalike is another AU, never "no description"; a text the ranking dropped is kept only if its own AU also
    beats NOT_A_DESCRIPTION."""
    judge = toy(classes=(1, 2, NOT_A_DESCRIPTION))  # logits 3, 6, 9 for x = (1, 0), +1 for AU1
    x = np.array([[1.0, 0.0]])
    margin, rival = judge.margins(x, 1, [set()])
    assert (rival.tolist(), margin[0]) == ([2], pytest.approx(4.0 - 6.0))
    margin, rival = judge.margins(x, 1, [set()], description=True)
    assert (rival.tolist(), margin[0]) == ([NOT_A_DESCRIPTION], pytest.approx(4.0 - 9.0))
    assert judge.margins(x, 1, [{2}])[0].tolist() == [np.inf]  # no AU rival left
    assert judge.margins(x, 1, [{2}], description=True)[1].tolist() == [NOT_A_DESCRIPTION]


def test_a_discriminator_saves_loads_and_names_a_damaged_file(tmp_path):
    judge = toy()
    path = tmp_path / "d.npz"
    judge.save(path)
    back = Discriminator.load(path)
    assert back.model == MODEL and back.key == "k" and back.classes.tolist() == [1, 2, 4, 7, 44]
    assert np.allclose(back.log_proba(np.eye(2)), judge.log_proba(np.eye(2)), atol=1e-6)
    path.write_bytes(b"not an npz")
    with pytest.raises(UserError, match="d.npz"):
        Discriminator.load(path)
    np.savez(path, model=np.asarray(MODEL), key=np.asarray("k"), classes=np.arange(3), weights=np.zeros((2, 4)))
    with pytest.raises(UserError, match="d.npz"):
        Discriminator.load(path)  # no bias
    np.savez(
        path,
        model=np.asarray(MODEL),
        key=np.asarray("k"),
        classes=np.arange(3),
        weights=np.zeros((2, 4)),
        bias=np.zeros(3),
    )
    with pytest.raises(UserError, match="damaged"):
        Discriminator.load(path)  # 2 rows of weights for 3 classes


def test_another_embedding_model_has_no_discriminator():
    assert shipped_discriminator("BAAI/bge-small-en-v1.5") is None

    class Other:
        name = "BAAI/bge-small-en-v1.5"

    assert SemanticGate(Other()).discriminator is None
    assert SemanticGate(Other(), discriminator=False).discriminator is None
    judge = toy()
    assert SemanticGate(Other(), discriminator=judge).discriminator is judge


def test_lookalike_is_a_gate_reason_and_a_rejection_reason():
    assert "lookalike" in GATE_REASONS and "lookalike" in REJECTION_REASONS


LOOKALIKES = [
    # written blind (bench/data/once, never trained on), each a look-alike sent under the wrong code, each passing the
    # rules and the similarity ranking of the gate
    (25, 22, "Lips part corresponds to mouthFunnel in the rig, the lips turned out and pushed forward in a funnel."),
    (26, 5, "A surprised baby's jaw drop appears as the upper lids lifting to expose white above the irises."),
    (
        4,
        1,
        "Ask the patient to frown, testing AU4: the inner brow corners lift upward and the centre of the forehead "
        "creases horizontally.",
    ),
    (
        4,
        5,
        "A person using the brow lowerer opens the upper eyelids wider, so you can see white above the colored part of "
        "the eye.",
    ),
]


@pytest.mark.parametrize(("au", "rival", "text"), LOOKALIKES)
def test_the_gate_drops_a_lookalike_the_similarity_ranking_keeps(embedder, au, rival, text):
    assert validate_description(text, FACS[au]) is None
    assert SemanticGate(embedder, discriminator=False).check([text], au)[0].reason is None
    decision = SemanticGate(embedder).check([text], au)[0]
    assert (decision.reason, decision.rival) == ("lookalike", rival)


def test_the_gate_keeps_correct_texts_and_does_not_count_the_companions_they_name(embedder):
    """Correct texts of the AUs above are kept; so are texts that describe a companion they name beside their own AU,
    which the discriminator alone reads as that companion: what a text names does not count against it."""
    gate = SemanticGate(embedder)
    correct = {
        12: [
            "In a baby's social smile, the zygomaticus major pulls the lip corners up and back toward the cheekbones."
        ],
        4: [
            "Ask the patient to frown: the brows are pulled down and together, and vertical furrows form between them."
        ],
        26: ["In a surprised baby the jaw drops, the lower jaw hanging loose so the mouth falls open."],
    }
    for au, texts in correct.items():
        assert [validate_description(t, FACS[au]) for t in texts] == [None] * len(texts)
        assert [d.reason for d in gate.check(texts, au)] == [None] * len(texts), au
    companions = [
        (
            1,
            5,
            "Together with AU5, the inner brows are pulled up while the upper lids are raised so white shows above the "
            "iris.",
        ),
        (25, 22, "Together with AU22, the lips part as they are turned out and pushed forward into a funnel."),
    ]
    for au, named, text in companions:
        margin, rival = gate.discriminator.margins(embedder([strip_labels(text)]), au, [set()])
        assert (rival[0], margin[0] < -LOOKALIKE_MARGIN) == (named, True)  # counted, the companion would win
        assert validate_description(text, FACS[au]) is None and gate.check([text], au)[0].reason is None


def test_generate_records_a_lookalike_with_its_reason_and_keeps_the_rest(llm_server, tmp_path):
    """Through `augtext generate` against a real loopback server: the look-alike is in rejected.parquet as `lookalike`,
    counted in rejections.json, and the correct text beside it is kept."""
    funnel = LOOKALIKES[0][2]
    correct = "The lips come apart a little at rest, the jaw staying where it is, so a small gap shows between them."
    llm_server.answer = lambda code, k: json.dumps([funnel, correct])
    cache = tmp_path / "c"
    args = generate_args(llm_server, str(cache), "25", "--styles", "appearance", "--n", "2", "--max-rounds", "1")
    assert main(args) == 1  # one of two kept: the pair ends short
    assert pq.read_table(cache / "descriptions.parquet").column("text").to_pylist() == [correct]
    rejected = pq.read_table(cache / "rejected.parquet").to_pylist()
    assert [(r["reason"], r["rival"], r["text"]) for r in rejected] == [("lookalike", 22, funnel)]
    assert rejected[0]["similarity"] is not None
    counts = json.loads((cache / "rejections.json").read_text())["rejected_total"]
    assert counts == {"lookalike": 1}


def test_stats_says_which_au_a_lookalike_was_read_as_and_reads_a_cache_from_before_the_column(
    llm_server, tmp_path, capsys
):
    """rejected.parquet's `rival` is shown by `augtext stats`; a cache whose rejected.parquet predates the column
    keeps its rows (rival null) when a later run rewrites the file for other pairs, and stats still reads it."""
    funnel = LOOKALIKES[0][2]
    correct = "The lips come apart a little at rest, the jaw staying where it is, so a small gap shows between them."
    llm_server.answer = lambda code, k: json.dumps([funnel, correct])
    cache = tmp_path / "c"
    main(generate_args(llm_server, str(cache), "25", "--styles", "appearance", "--n", "2", "--max-rounds", "1"))
    assert main(["stats", "--cache", str(cache), "--samples", "1"]) == 0
    assert "lookalike (read as AU22)" in " ".join(capsys.readouterr().out.split())

    path = cache / "rejected.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["rival"]), path)  # as an older augtext wrote it
    assert main(["stats", "--cache", str(cache), "--samples", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "lookalike" in out and "read as" not in out
    llm_server.answer = lambda code, k: json.dumps([correct])
    main(generate_args(llm_server, str(cache), "26", "--styles", "appearance", "--n", "1", "--max-rounds", "1"))
    rows = pq.read_table(path).to_pylist()
    assert [(r["au"], r["reason"], r["rival"], r["text"]) for r in rows if r["au"] == 25] == [
        (25, "lookalike", None, funnel)
    ]


# Written blind (bench/data/once: measured once, never trained on): correct texts in a frame or voice the prototypes do
# not hold (a chess player, a wedding photographer, a usability session, a film's audio description), which the
# similarity ranking finds a little far from their AU.
FRAMED = [
    (
        4,
        "He leans over the chessboard, brows pulled low and drawn together, two vertical furrows cutting the skin "
        "between them.",
    ),
    (
        15,
        "During the father-daughter speech your inner brows lifted and your lip corners sank down, a tender, sad face "
        "that tells the whole story.",
    ),
    (
        17,
        "Reading the refund policy, P6 showed AU17 with AU15: chin raised and wrinkled, lower lip pushed up, lip "
        "corners down, a doubtful, skeptical mouth.",
    ),
    (
        45,
        "She hears the lie and blinks rapidly, once, twice, her eyes flicking closed and open as she forces a smile.",
    ),
]


@pytest.mark.parametrize(("au", "text"), FRAMED)
def test_the_discriminator_keeps_a_framed_text_the_ranking_finds_a_little_far(embedder, au, text):
    assert validate_description(text, FACS[au]) is None
    before = SemanticGate(embedder, discriminator=False).check([text], au)[0]
    assert before.reason == "far_from_au" and RESCUE_MIN_SIMILARITY <= before.similarity
    after = SemanticGate(embedder).check([text], au)[0]
    assert (after.reason, after.overruled, after.similarity) == (None, "far_from_au", before.similarity)


def test_the_discriminator_keeps_a_text_the_ranking_reads_as_a_look_alike(embedder):
    """`other_au` overruled: an AU14 text nearer the smile by its words ("lip corners", "smug"); from an answer set
    the shipped discriminator was trained on (none of the once sets has such a text)."""
    text = "The lip corners are pressed into the cheeks, giving a smug, tight-lipped look when the muscle contracts."
    assert SemanticGate(embedder, discriminator=False).check([text], 14)[0].reason == "other_au"
    assert SemanticGate(embedder).check([text], 14)[0].overruled == "other_au"


@pytest.mark.parametrize(
    ("au", "text"),
    [
        (14, "A dimple on a golf ball is a small round dent, and a ball has around three hundred of them."),
        (24, "key: AU24; value: 'Press Play Lips', a lip plumping gloss; volume: 6 ml; flavour: mint"),
    ],
)
def test_a_text_about_no_movement_stays_dropped_though_no_other_au_beats_its_own(embedder, au, text):
    """Off-domain texts written blind (bench/data/once): among the AUs, the discriminator reads their own AU; the
    class of texts that describe no movement is what keeps them out."""
    gate = SemanticGate(embedder)
    decision = gate.check([text], au)[0]
    assert decision.reason == "far_from_au" and decision.similarity >= RESCUE_MIN_SIMILARITY
    vector, skip = embedder([strip_labels(text)]), [_not_counted(text, au)]
    assert gate.discriminator.margins(vector, au, skip)[0][0] >= RESCUE_MARGIN
    margin, rival = gate.discriminator.margins(vector, au, skip, description=True)
    assert (rival[0], margin[0] < RESCUE_MARGIN) == (NOT_A_DESCRIPTION, True)
