"""`augtext generate --backend openai` against answers real LLMs and servers give: odd shapes, odd characters, odd
bodies. Through the real CLI and SDK against the loopback server; `--no-gate` keeps them fast (the rules and the
parser are what is under test here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from augtext.cli import main
from tests.llm_server import LLMServer, generate_args

GOOD = [
    "The zygomaticus major pulls the lip corners upward and back toward the cheekbones.",
    "Combined with AU6, the lip corners rise and the cheeks lift, creating a genuine smile.",
    "The corners of the mouth are drawn up and outward, so the lips curve into a broad smile.",
]
FAST = ["--styles", "appearance", "--n", "3", "--max-rounds", "1", "--max-retries", "1", "--no-gate"]


def _run(server: LLMServer, cache: Path, capsys) -> tuple[int, str]:
    rc = main(generate_args(server, cache, "12", *FAST))
    return rc, capsys.readouterr().err


def _kept(cache: Path) -> list[str]:
    return pq.read_table(cache / "descriptions.parquet").column("text").to_pylist()


def _rejected(cache: Path) -> dict[str, int]:
    return json.loads((cache / "rejections.json").read_text())["rejected_total"]


def _logged(cache: Path) -> list[dict[str, Any]]:
    log = cache / "requests.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _completion(message: dict[str, Any], usage: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-audit",
        "object": "chat.completion",
        "created": 0,
        "model": "loopback",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": usage if usage is not None else {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }


def _reply_with(server: LLMServer, data: bytes, content_type: str = "application/json") -> None:
    """Every request gets this 200 body, as it is (the server's own answers are bypassed)."""

    def respond(handler: Any, behaviour: str, body: dict[str, Any]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server._respond = respond


# -- the answer's text ------------------------------------------------------------------------------------------------

NO_TRACE = "Traceback"


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps([[t] for t in GOOD]),  # one list per description
        "\n".join(f'"{t}"' for t in GOOD),  # one quoted description per line, no JSON
        "\n".join(f'"{t}",' for t in GOOD),  # ... with commas, as in a list without its brackets
        json.dumps(  # escaped HTML, control and invisible characters in good texts
            [
                GOOD[0].replace("lip", "lip\x00", 1).replace("cheekbones", "cheek&shy;bones"),
                "\ufeff" + GOOD[1].replace("the cheeks", "the&nbsp;cheeks\x07"),
                GOOD[2].replace("smile", "smi\u00adle").replace(" ", "\u200b", 2),
            ]
        ),
        # half an emoji's escape pair (a lone surrogate) inside the JSON the model wrote
        json.dumps(GOOD).replace("cheekbones.", "cheekbones. \\ud83d", 1),
    ],
    ids=["nested-lists", "quoted-lines", "quoted-lines-commas", "entities-and-control-chars", "lone-surrogate"],
)
def test_good_descriptions_are_kept_clean_whatever_the_wrapping(llm_server, tmp_path, capsys, answer):
    llm_server.answer = lambda code, k: answer
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 0, err
    assert _kept(tmp_path) == GOOD


def test_a_reasoning_models_thinking_is_not_its_answer(llm_server, tmp_path, capsys):
    """A reasoning model served without a reasoning parser (DeepSeek-R1 distills, Qwen3, QwQ) puts its thinking in
    the content; the list it drafts there is not its answer. Thinking cut short by --max-tokens is counted as
    `reasoning_only`, and the summary says what to change."""
    draft = json.dumps(["The brows are pulled down and together."])
    llm_server.answer = lambda code, k: (
        f"<think>\nAU12 is the smile. Draft: {draft}? No.\n</think>\n\n{json.dumps(GOOD)}"
    )
    rc, err = _run(llm_server, tmp_path / "answered", capsys)
    assert rc == 0, err
    assert _kept(tmp_path / "answered") == GOOD
    llm_server.answer = lambda code, k: f"<think>\nAU12 is the smile. Draft: {draft}, and then"
    rc, err = _run(llm_server, tmp_path / "cut", capsys)
    assert rc == 1 and _rejected(tmp_path / "cut") == {"reasoning_only": 1} and _kept(tmp_path / "cut") == []
    assert "raise --max-tokens" in err and NO_TRACE not in err, err


def test_html_entities_are_decoded_not_kept():
    from augtext.validate import clean_text

    assert clean_text("The lip corners rise &amp; the cheeks lift, in a smile&#39;s shape.") == (
        "The lip corners rise & the cheeks lift, in a smile's shape."
    )
    assert clean_text("Lips & teeth; AT&T; a &unknown word") == "Lips & teeth; AT&T; a &unknown word"


@pytest.mark.parametrize("answer", ["[" * 100_000, "Answer: " + "[" * 5000 + json.dumps(GOOD)])
def test_deeply_nested_brackets_are_rejected_not_a_crash(llm_server, tmp_path, capsys, answer):
    """A degenerate answer (a model repeating '[') nests past the JSON decoder's depth: a malformed answer, counted
    as such, and the logged answer does not break the reruns."""
    llm_server.answer = lambda code, k: answer
    for _ in range(2):
        rc, err = _run(llm_server, tmp_path, capsys)
        assert rc == 1 and NO_TRACE not in err, err
        assert _rejected(tmp_path) == {"malformed_json": 1} and _kept(tmp_path) == []
    assert llm_server.requests == 1  # the rerun parsed the logged answer again


# -- the server's body ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "usage"),
    [
        # content as a list of parts (reasoning models): the text parts are the answer, not the thinking
        (
            {"content": [{"type": "thinking", "thinking": "AU12 smiles."}, {"type": "text", "text": json.dumps(GOOD)}]},
            None,
        ),
        ({"content": json.dumps(GOOD)}, {"prompt_tokens": "ten", "completion_tokens": None}),  # counts, not numbers
    ],
    ids=["content-parts", "bad-usage"],
)
def test_usable_answers_in_unusual_bodies_are_kept(llm_server, tmp_path, capsys, message, usage):
    _reply_with(llm_server, json.dumps(_completion(message, usage)).encode())
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 0, err
    assert _kept(tmp_path) == GOOD
    assert all(isinstance(e["text"], str) for e in _logged(tmp_path))


def test_a_lone_surrogate_in_the_content_is_dropped_before_logging(llm_server, tmp_path, capsys):
    body = json.dumps(_completion({"content": json.dumps(GOOD)}))
    _reply_with(llm_server, body.replace("cheekbones.", "cheekbones.\\ud83d", 1).encode())
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 0 and NO_TRACE not in err, err
    assert _kept(tmp_path) == GOOD
    [entry] = _logged(tmp_path)
    assert "\ud83d" not in entry["text"]


def test_a_structured_refusal_is_counted_as_a_refusal(llm_server, tmp_path, capsys):
    """OpenAI's refusals come as `content: null` with a `refusal` text: an answer (a refusal), not a failed
    request that is retried and asked again on every run."""
    _reply_with(llm_server, json.dumps(_completion({"content": None, "refusal": "I'm sorry, I can't help."})).encode())
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 1 and "failed requests" not in err and "0 failed" in err, err
    assert _rejected(tmp_path) == {"refusal": 1}
    assert llm_server.requests == 1


@pytest.mark.parametrize(
    ("body", "content_type", "says", "sent"),
    [
        (json.dumps(_completion({"content": None})), "application/json", "content is null", 2),
        (json.dumps(_completion({"content": 42})), "application/json", "content is null or not a string", 2),
        # a page in place of the first answer: not a chat-completions server, no retry
        ("<html><body>502 Bad Gateway</body></html>", "text/html", "not a chat completion ('<html><body>502 Bad", 1),
    ],
    ids=["content-null", "content-number", "html-page"],
)
def test_unusable_bodies_fail_the_request_and_say_why(llm_server, tmp_path, capsys, body, content_type, says, sent):
    _reply_with(llm_server, body.encode(), content_type)
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 2 and NO_TRACE not in err, err  # the run's only request failed: one line, exit 2
    assert says in err and "1 usable choice" not in err
    assert _logged(tmp_path) == []  # not logged: a rerun asks again
    assert llm_server.requests == sent  # retried once (--max-retries 1)


def test_a_logged_answer_without_text_is_asked_again(llm_server, tmp_path, capsys):
    """A log line whose text is not a string (as an earlier version logged a list of content parts) is skipped
    with a warning and its request asked again, instead of failing every rerun."""
    assert _run(llm_server, tmp_path, capsys)[0] == 0
    log = tmp_path / "requests.jsonl"
    [entry] = _logged(tmp_path)
    log.write_text(json.dumps({**entry, "text": [{"type": "text", "text": entry["text"]}]}) + "\n")
    llm_server.reset()
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 0 and "skipped 1 unreadable line" in err, err
    assert llm_server.requests == 1 and len(_kept(tmp_path)) == 3


@pytest.mark.parametrize(
    "answer",
    [
        "\n".join(GOOD),
        "Here are three descriptions of AU12:\n\n" + "\n\n".join(GOOD) + "\n",
        # wrapped by hand: a line going on in lower case belongs to the one above
        GOOD[0] + "\n" + GOOD[1].replace(" the cheeks", "\nthe cheeks") + "\n" + GOOD[2].replace(" so ", "\nso "),
    ],
)
def test_descriptions_one_per_line_without_markers_are_read(llm_server, tmp_path, capsys, answer):
    """A list written without numbers or bullets, one description per line or per paragraph (as many chat models
    answer), is read as a list, in strict mode too; an introducing line ending in ':' is not a description."""
    llm_server.answer = lambda code, k: answer
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 0 and _kept(tmp_path) == GOOD and _rejected(tmp_path) == {}, err


@pytest.mark.parametrize("content", [None, ""])
def test_thinking_in_a_field_of_its_own_and_no_answer_is_reasoning_only(llm_server, tmp_path, capsys, content):
    """vLLM's reasoning parser puts a model's thinking in `reasoning_content`; cut short by --max-tokens, the answer
    has no content (null or ""). That is an answer of thinking only — counted as `reasoning_only` with the advice to
    raise --max-tokens — not a failed request asked again and again."""
    message = {"content": content, "reasoning_content": "AU12 is the lip corner puller. Let me draft five"}
    _reply_with(llm_server, json.dumps(_completion(message)).encode())
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 1 and _rejected(tmp_path) == {"reasoning_only": 1}, err
    assert "raise --max-tokens" in err and "failed requests" not in err and NO_TRACE not in err


def test_answers_in_no_format_it_reads_say_lenient_rereads_them(llm_server, tmp_path, capsys):
    """One paragraph of prose: strict parsing (the openai default) reads no list there; the summary and the closing
    line say that --lenient reads its sentences, from the log, without asking again."""
    llm_server.answer = lambda code, k: " ".join(GOOD)
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 1 and _rejected(tmp_path) == {"no_json": 1}, err
    assert "answers that gave none: no_json 1" in err
    assert "1 answer(s) were in no format augtext reads" in err and "--lenient takes their sentences" in err
    assert "rerun with --lenient" in err.splitlines()[-1] and "Raise --max-rounds" not in err
    rc = main(generate_args(llm_server, tmp_path, "12", *FAST, "--lenient"))
    assert rc == 0 and _kept(tmp_path) == GOOD and llm_server.requests == 1  # the logged answer, read again


def test_every_text_not_kept_is_in_rejected_parquet_with_its_reason(llm_server, tmp_path, capsys):
    """rejections.json counts; rejected.parquet says which text, from which answer, and why — whole answers read
    as none (the answer itself), texts the rules drop and repeats — and a run for another pair carries it over."""
    off_topic = "The committee meets every Tuesday to review the budget for next year."
    answers = iter(["\n".join(f"{i}. {t}" for i, t in enumerate([*GOOD, off_topic, GOOD[0]], 1)), " ".join(GOOD)])
    llm_server.answer = lambda code, k: next(answers)
    rc = main(
        generate_args(
            llm_server, tmp_path, "12", "--styles", "appearance", "--n", "4", "--max-rounds", "2", "--no-gate"
        )
    )
    err = capsys.readouterr().err
    table = pq.read_table(tmp_path / "rejected.parquet").to_pylist()
    rows = {(r["reason"], r["text"]) for r in table}
    assert rc == 1 and _kept(tmp_path) == GOOD, err
    assert f"each of them, with its reason: {tmp_path / 'rejected.parquet'}" in err
    assert rows == {("off_topic", off_topic), ("duplicate", GOOD[0]), ("no_json", " ".join(GOOD))}, table
    assert {(r["au"], r["style"], r["model"]) for r in table} == {(12, "appearance", "loopback")}
    assert {r["request_key"] for r in table} == {e["key"] for e in _logged(tmp_path)}
    assert sum(_rejected(tmp_path).values()) == len(table)
    llm_server.answer = lambda code, k: json.dumps(GOOD)
    assert main(generate_args(llm_server, tmp_path, "1", *FAST)) in (0, 1)
    again = pq.read_table(tmp_path / "rejected.parquet").to_pylist()
    assert [r for r in again if r["au"] == 12] == table  # the AU12 rows carried over as they were


def test_the_gates_rejections_carry_its_similarity():
    """A text the semantic gate drops is recorded with the reason and its similarity to its own AU (walk_pair with a
    stand-in gate: the real one is measured in bench/bench_answers.py)."""
    from augtext.descriptions import walk_pair
    from augtext.quality import GateDecision

    class Gate:
        def check(self, texts, au):
            return [
                GateDecision("other_au" if "cheeks" in t else None, 0.55 if "cheeks" in t else 0.8, 1) for t in texts
            ]

    entry = {
        "key": "k1",
        "sample_idx": 0,
        "text": json.dumps(GOOD),
        "backend": "openai",
        "model": "m",
        "style": "appearance",
    }
    res = walk_pair([entry], 12, cap=5, lenient=False, gate=Gate())
    assert [t for _, _, t in res.kept] == [GOOD[0], GOOD[2]]
    assert res.rejected == [("k1", "other_au", GOOD[1], 0.55, None)]


def test_a_wrong_muscle_is_dropped_with_its_reason_and_nothing_else_is_lost(llm_server, tmp_path, capsys):
    """An answer that credits the AU's right movement to the wrong muscle (what a model that mixes up its anatomy
    writes) is dropped as `wrong_muscle`, counted in rejections.json and kept with its reason in rejected.parquet; the
    good descriptions of the same answer are kept."""
    wrong = [
        "The risorius contracts and pulls the lip corners up into a broad smile.",
        "The lip corners rise toward the cheekbones as the buccinator contracts.",
    ]
    llm_server.answer = lambda code, k: json.dumps([GOOD[0], wrong[0], GOOD[2], wrong[1], GOOD[1]])
    rc, err = _run(llm_server, tmp_path, capsys)
    assert rc == 0, err
    assert _kept(tmp_path) == [GOOD[0], GOOD[2], GOOD[1]]
    assert _rejected(tmp_path).get("wrong_muscle") == 2
    rejected = pq.read_table(tmp_path / "rejected.parquet").to_pylist()
    assert sorted((r["reason"], r["text"]) for r in rejected) == sorted(("wrong_muscle", t) for t in wrong)


@pytest.mark.parametrize(
    ("style", "reason", "good", "wrong"),
    [
        # an intensity answer whose stated level contradicts the degree it describes (a small model copies the level
        # from the prompt and describes another)
        (
            "intensity",
            "wrong_level",
            [
                "At level A (trace), the lip corners lift only slightly toward the cheekbones.",
                "Level D (severe): the lip corners are pulled far up and back, deepening the nasolabial folds.",
                "At level E (maximum), the lip corners are pulled up as far as they go, the cheeks bunched high.",
            ],
            [
                "At level A (trace), the lip corners are pulled up as far as possible into a huge grin.",
                "Level E (maximum): the lip corners barely lift, a faint change hardly visible.",
            ],
        ),
        # a context answer that sets the AU in an emotion it is no part of (a small model's guess)
        (
            "context",
            "wrong_emotion",
            [
                "With AU6 raising the cheeks, the lip corners are pulled up into the smile of happiness.",
                "A one-sided pull of the lip corner, with a dimple beside it, shows contempt.",
                "The lip corners are drawn up, unlike the tight mouth of an angry face.",
            ],
            [
                "The lip corners are pulled up and back, the core of an angry face.",
                "In fear the lip corners are drawn up toward the cheekbones.",
            ],
        ),
    ],
)
def test_a_wrong_fact_is_dropped_with_its_reason_and_nothing_else_is_lost(
    llm_server, tmp_path, capsys, style, reason, good, wrong
):
    """The wrong texts are dropped with their reason, counted and kept with it in rejected.parquet; the answer's right
    texts are kept."""
    llm_server.answer = lambda code, k: json.dumps([good[0], wrong[0], good[1], wrong[1], good[2]])
    args = ["--styles", style, "--n", "3", "--max-rounds", "1", "--max-retries", "1", "--no-gate"]
    rc = main(generate_args(llm_server, tmp_path, "12", *args))
    assert rc == 0, capsys.readouterr().err
    assert _kept(tmp_path) == good
    assert _rejected(tmp_path).get(reason) == 2
    rejected = pq.read_table(tmp_path / "rejected.parquet").to_pylist()
    assert sorted((r["reason"], r["text"]) for r in rejected) == sorted((reason, t) for t in wrong)


CUT_TAIL = "The lip corners are drawn up toward the cheekbones as the zygomaticus major contracts."


@pytest.mark.parametrize(
    ("shape", "max_tokens", "broken"),
    [
        ("json", 52, "The lip corners are drawn up"),  # cut inside the fourth string (GOOD: 46 words)
        ("lines", 56, "The lip corners are drawn up"),  # "1." ... "4." markers count as words
        ("json", 46, None),  # cut just after the third string: nothing broken, nothing lost
    ],
)
def test_an_answer_cut_at_max_tokens_loses_only_the_text_it_breaks_off_in(
    llm_server, tmp_path, capsys, shape, max_tokens, broken
):
    """A server stops an answer at --max-tokens and says so (finish_reason "length"). The log records it
    (`"cut": true`); the complete texts before the cut are kept, strict JSON parsing included (the JSON breaks off,
    yet its finished strings are whole), and the text it breaks off in is rejected as cut_off with a line that says to
    raise --max-tokens. A rerun re-reads the log and ends the same."""
    texts = [*GOOD, CUT_TAIL]
    answer = json.dumps(texts) if shape == "json" else "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))
    llm_server.answer = lambda code, k: answer
    llm_server.token_limit = True
    args = generate_args(llm_server, tmp_path, "12", *FAST, "--max-tokens", str(max_tokens))
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert _kept(tmp_path) == GOOD
    log = _logged(tmp_path)
    assert log and all(e["cut"] is True for e in log)
    rejected = pq.read_table(tmp_path / "rejected.parquet").to_pylist() if broken else []
    assert [(r["reason"], r["text"]) for r in rejected] == ([("cut_off", broken)] if broken else [])
    assert ("broke off unfinished (cut_off)" in err and f"--max-tokens ({max_tokens})" in err) == bool(broken), err
    before = (tmp_path / "descriptions.parquet").read_bytes()
    assert main(args) == 0
    assert _logged(tmp_path) == log and (tmp_path / "descriptions.parquet").read_bytes() == before


def test_an_answer_the_model_ended_itself_is_not_cut(llm_server, tmp_path, capsys):
    """Under the limit the server's finish_reason is "stop": nothing is marked cut, and a last text without a full
    stop is kept (a list's lines often have none)."""
    llm_server.answer = lambda code, k: "\n".join(f"- {t.rstrip('.')}" for t in GOOD)
    llm_server.token_limit = True
    rc = main(generate_args(llm_server, tmp_path, "12", *FAST, "--max-tokens", "400"))
    assert rc == 0, capsys.readouterr().err
    assert _kept(tmp_path) == [t.rstrip(".") for t in GOOD]
    assert all("cut" not in e for e in _logged(tmp_path))
