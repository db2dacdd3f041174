"""`augtext generate` end to end: the real openai SDK against the loopback server, and an injected backend."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from augtext.backends import Completion, RequestFailed
from augtext.cli import main
from augtext.facs import FACS
from augtext.generate import GenerateConfig, generate
from augtext.requestlog import RequestLog
from augtext.validate import validate_description
from tests.llm_server import generate_args, synth_descriptions

REPO = Path(__file__).resolve().parents[2]
VOLATILE = ["created_utc", "latency_s"]  # the only columns allowed to differ between two runs


cli_args = generate_args  # the arguments every test here starts from


def read(cache: Path):
    return pq.read_table(cache / "descriptions.parquet").to_pandas()


def stable(df):
    return df.drop(columns=VOLATILE).reset_index(drop=True)


def test_every_au_gets_n_despite_failures(llm_server, tmp_path, capsys):
    llm_server.script(
        ["429", "500", "stall", "malformed", "refusal", "offtopic", "garbage", "429", "500", "refusal", "offtopic"]
    )
    rc = main(
        cli_args(
            llm_server,
            tmp_path,
            "1,2,4",
            "--styles",
            "appearance,contrast",
            "--n",
            "6",
            "--timeout",
            "1",
            "--concurrency",
            "4",
        )
    )
    assert rc == 0, capsys.readouterr().err
    df = read(tmp_path)
    counts = df.groupby(["au", "style"]).size()
    assert len(counts) == 6 and (counts == 6).all()
    for au, text in zip(df["au"], df["text"], strict=True):
        assert validate_description(text, FACS[int(au)]) is None
    assert df["text_sha256"].is_unique
    rejected = json.loads((tmp_path / "rejections.json").read_text())["rejected_total"]
    assert rejected.get("refusal", 0) >= 1 and rejected.get("off_topic", 0) >= 1
    err = capsys.readouterr().err
    assert "retries" in err and "kept 36" in err
    # stderr is not a terminal here: progress comes as plain lines (a log file shows the run is alive)
    assert re.search(r"^generate: \d+/\d+ requests, kept \d+", err, re.M), err


def test_schema_and_provenance(llm_server, tmp_path):
    assert main(cli_args(llm_server, tmp_path, "12", "--styles", "appearance", "--n", "3", "--seed", "5")) == 0
    table = pq.read_table(tmp_path / "descriptions.parquet")
    assert [(f.name, str(f.type)) for f in table.schema] == [
        ("au", "int16"),
        ("text", "string"),
        ("text_sha256", "string"),
        ("style", "string"),
        ("template_sha256", "string"),
        ("backend", "string"),
        ("model", "string"),
        ("params", "string"),
        ("seed", "int64"),
        ("sample_idx", "int32"),
        ("request_key", "string"),
        ("created_utc", "string"),
        ("prompt_tokens", "int32"),
        ("completion_tokens", "int32"),
        ("latency_s", "float"),
    ]
    row = table.to_pylist()[0]
    assert row["backend"] == "openai" and row["model"] == "loopback" and row["created_utc"].endswith("Z")
    assert json.loads(row["params"]) == {"temperature": 0.9, "max_tokens": 400}
    assert llm_server.log[0]["body"]["seed"] == row["seed"]
    entry = json.loads((tmp_path / "requests.jsonl").read_text().splitlines()[0])
    assert entry["key"] == row["request_key"] and row["text"] in entry["text"]
    assert {
        "au",
        "style",
        "text",
        "prompt_tokens",
        "completion_tokens",
        "latency_s",
        "created_utc",
        "backend",
        "model",
        "params",
        "seed",
        "sample_idx",
        "template_sha256",
    } <= set(entry)


def test_rerun_sends_zero_requests(llm_server, tmp_path):
    args = cli_args(llm_server, tmp_path, "1,2", "--styles", "appearance,anatomical", "--n", "4")
    assert main(args) == 0
    first = read(tmp_path)
    sent = llm_server.requests
    assert sent >= 4
    llm_server.reset()
    assert main(args) == 0
    assert llm_server.requests == 0
    assert read(tmp_path).equals(first)


def test_api_key_is_never_written(llm_server, tmp_path, monkeypatch):
    secret = "sk-test-SECRET-9f8e7d6c5b4a"
    monkeypatch.setenv("AUGTEXT_TEST_KEY", secret)
    args = cli_args(llm_server, tmp_path, "6", "--styles", "appearance", "--n", "3")
    args[args.index("AUGTEXT_TEST_NO_SUCH_KEY")] = "AUGTEXT_TEST_KEY"
    assert main(args) == 0
    assert llm_server.log[0]["headers"]["authorization"] == f"Bearer {secret}"  # it was used ...
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 3
    for path in files:  # ... and stored nowhere
        assert secret.encode() not in path.read_bytes(), path


def test_bad_spec_exits_2(llm_server, tmp_path, capsys):
    assert main(cli_args(llm_server, tmp_path, "3")) == 2
    assert "AU3" in capsys.readouterr().err
    assert main(cli_args(llm_server, tmp_path, "1", "--styles", "haiku")) == 2
    assert "haiku" in capsys.readouterr().err
    assert main(cli_args(llm_server, tmp_path, "1", "--n", "0")) == 2
    assert llm_server.requests == 0


def test_garbage_only_backend_fails_naming_the_aus(llm_server, tmp_path, capsys):
    llm_server.default = "garbage"
    rc = main(cli_args(llm_server, tmp_path, "1,2", "--styles", "appearance", "--n", "3", "--max-rounds", "2"))
    err = capsys.readouterr().err
    assert rc == 1
    assert "AU1/appearance (0/3)" in err and "AU2/appearance (0/3)" in err
    assert len(read(tmp_path)) == 0
    assert llm_server.requests >= 4  # it did re-ask before giving up
    # the answers are logged: a rerun re-parses them but does not ask again for the same sample indices
    sent = llm_server.requests
    llm_server.reset()
    assert main(cli_args(llm_server, tmp_path, "1,2", "--styles", "appearance", "--n", "3", "--max-rounds", "2")) == 1
    assert llm_server.requests == 0 and sent > 0


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_down_fails_fast_naming_the_url(tmp_path, capsys):
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    t0 = time.monotonic()
    rc = main(
        [
            "generate",
            "--backend",
            "openai",
            "--base-url",
            url,
            "--model",
            "m",
            "--au",
            "1-26",
            "--cache",
            str(tmp_path),
            "--api-key-env",
            "AUGTEXT_TEST_NO_SUCH_KEY",
        ]
    )
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and url in err[0] and "connection refused" in err[0]
    assert "--max-rounds" not in err[0]
    # the one timing assert the suite allows: the failure itself used to be a hang (68-254 s of retries)
    assert elapsed < 10
    assert not (tmp_path / "requests.jsonl").exists() or not (tmp_path / "requests.jsonl").read_text()


def test_cached_rerun_needs_no_server(llm_server, tmp_path, capsys):
    assert main(cli_args(llm_server, tmp_path, "1", "--styles", "appearance", "--n", "3")) == 0
    before = read(tmp_path)
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    args = cli_args(llm_server, tmp_path, "1", "--styles", "appearance", "--n", "3")
    args[args.index("--base-url") + 1] = url
    assert main(args) == 0
    assert stable(read(tmp_path)).equals(stable(before))


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_impossible_cache_is_one_line_before_any_request(llm_server, tmp_path, capsys, kind):
    if kind == "file":
        cache = tmp_path / "cache"
        cache.write_text("not a folder")
        want = "is a file, not a folder"
    else:
        cache = Path("/proc/hiva-no-such-cache")  # not creatable even as root
        want = "cannot write to the cache folder"
    assert main(cli_args(llm_server, cache, "1", "--styles", "appearance")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and want in err[0] and str(cache) in err[0]
    assert llm_server.requests == 0


def test_truncated_log_line_is_reported(llm_server, tmp_path, capsys):
    assert main(cli_args(llm_server, tmp_path, "1", "--styles", "appearance", "--n", "2")) == 0
    with open(tmp_path / "requests.jsonl", "ab") as fh:
        fh.write(b'{"key": "abc", "au": 1, "te')
    capsys.readouterr()
    assert main(cli_args(llm_server, tmp_path, "1", "--styles", "appearance", "--n", "2")) == 0
    assert "was cut short" in capsys.readouterr().err


def test_stale_temp_files_are_removed(llm_server, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    stale = tmp_path / ".descriptions.parquet.abc123.tmp"
    stale.write_bytes(b"half a table")
    assert main(cli_args(llm_server, tmp_path, "1", "--styles", "appearance", "--n", "2")) == 0
    assert not stale.exists()


def test_unexpected_error_is_not_exit_1(monkeypatch, tmp_path, capsys):
    import augtext.generate

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(augtext.generate, "generate", boom)
    assert main(["generate", "--au", "1", "--cache", str(tmp_path)]) == 3
    assert "unexpected internal error" in capsys.readouterr().err


def _refuse_some(body: dict) -> str | None:
    """Deterministic by content: every third seed gets a refusal, so some pairs need a second round."""
    return "refusal" if body.get("seed", 0) % 3 == 0 else None


def test_killed_run_resumes_to_the_same_result(llm_server, tmp_path):
    llm_server.policy = _refuse_some
    common = ["--styles", "appearance,contrast", "--n", "5", "--concurrency", "2"]
    aus = "1,2,4,6,12"
    # reference: one uninterrupted run
    ref = tmp_path / "ref"
    assert main(cli_args(llm_server, ref, aus, *common)) == 0
    ref_lines = (ref / "requests.jsonl").read_text().splitlines()
    # a run in another process, killed with SIGKILL once a few answers are logged
    llm_server.reset()
    llm_server.latency_s = 0.2
    cache = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "augtext.cli", *cli_args(llm_server, cache, aus, *common)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = cache / "requests.jsonl"
    deadline = time.monotonic() + 120  # a wait, not a timing assert: a loaded machine starts the process slowly
    while time.monotonic() < deadline and (not log.exists() or log.read_bytes().count(b"\n") < 4):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = log.read_bytes().count(b"\n")
    assert 4 <= done < len(ref_lines), "the run was not killed mid-way"
    with open(log, "ab") as fh:  # as if killed in the middle of writing a line
        fh.write(b'{"key": "0123abc", "au": 1, "te')
    llm_server.latency_s = 0.0
    llm_server.reset()
    assert main(cli_args(llm_server, cache, aus, *common)) == 0
    assert llm_server.requests == len(ref_lines) - done  # only the missing requests were sent
    lines = log.read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == len(ref_lines)
    resumed, reference = read(cache), read(ref)
    assert not resumed.duplicated(["au", "style", "text"]).any()
    assert stable(resumed).equals(stable(reference))


@pytest.mark.parametrize(
    ("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_ctrl_c_exits_130_and_keeps_what_was_answered(llm_server, tmp_path, sig, status, word):
    """Ctrl-C (SIGINT) mid-run: exit status 130 and one "interrupted" line, never 0 (scripts would take an
    interrupted run for a finished one), after one that says the answers logged so far are kept and the same
    command resumes, which it does, asking only the rest. SIGTERM (`timeout`, `docker stop`) takes the same path:
    143 and "terminated" (it killed the process before, mid-write)."""
    llm_server.latency_s = 0.2
    cache = tmp_path / "cache"
    args = cli_args(
        llm_server, cache, "1,2,4,6,12", "--styles", "appearance,contrast", "--n", "5", "--concurrency", "2"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "augtext.cli", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = cache / "requests.jsonl"
    deadline = time.monotonic() + 120  # a wait, not a timing assert
    while time.monotonic() < deadline and (not log.exists() or log.read_bytes().count(b"\n") < 3):
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert err.strip().splitlines()[-1] == word and "Traceback" not in err
    done = log.read_text().splitlines()
    assert done and all(json.loads(line)["key"] for line in done)  # whole lines only
    kept = err.strip().splitlines()[-2]
    assert (
        kept
        == f"{log} keeps the {len(done)} answer(s) received: the same command resumes without asking for them again"
    )
    llm_server.latency_s = 0.0
    llm_server.reset()
    assert main(args) == 0
    assert llm_server.requests == len(log.read_text().splitlines()) - len(done)


def test_an_interrupted_run_closes_its_loop_even_when_a_task_absorbs_its_cancellation(monkeypatch):
    """Ctrl-C can land anywhere in the loop; a task that swallows its cancellation (as httpx's shielded close can)
    must not hang the exit: the tasks left get SHUTDOWN_GRACE_S, then the loop closes and the interrupt goes on."""
    import augtext.generate as gen

    monkeypatch.setattr(gen, "SHUTDOWN_GRACE_S", 0.2)

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    async def interrupted() -> None:
        asyncio.ensure_future(stubborn())
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    async def finished() -> int:
        await asyncio.sleep(0)
        return 7

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gen._run_loop(interrupted())
    assert time.monotonic() - t0 < 30  # a wait bounded by the grace, not a timing assert: asyncio.run never returns
    assert gen._run_loop(finished()) == 7


# -- an injected backend: no HTTP at all ------------------------------------------------------------------------------

PROSE = (
    "Sure! AU12 pulls the corners of the lips up and back toward the cheekbones. The cheeks lift a little and "
    "the mouth widens as the lip corners rise into a smile. The nasolabial fold deepens beside the smiling mouth."
)  # every sentence about AU12 alone: "The nasolabial fold deepens beside the mouth." also fits AU11, 27 and 28


class FakeBackend:
    """Answers from a script: a list of 'ok' / 'garbage' / 'fail' consumed per call, then 'ok'."""

    name = "fake"
    model = "fake-1"
    max_samples_per_call = 1

    def __init__(self, script=()):
        self.script = list(script)
        self.calls: list[int] = []  # seeds asked for
        self.retries = 0

    async def complete(self, messages, *, n_samples, seed, temperature, max_tokens, request=None):
        self.calls.append(seed)
        await asyncio.sleep(0)
        what = self.script.pop(0) if self.script else "ok"
        if what == "fail":
            raise RequestFailed("HTTP 503: scripted")
        if what == "garbage":
            return [Completion(text="%%% not json %%%")]
        if what == "prose":
            return [Completion(text=PROSE)]
        code = 12
        return [
            Completion(
                text=json.dumps(synth_descriptions(code, 3, random.Random(seed))),
                prompt_tokens=10,
                completion_tokens=20,
                latency_s=0.01,
            )
        ]

    async def aclose(self):
        pass


def _config(cache: Path, **kw) -> GenerateConfig:
    kw = {"aus": (12,), "styles": ("appearance",), "cache": cache, "n": 6, "per_request": 3, "progress": False, **kw}
    return GenerateConfig(**kw)


def test_garbage_is_not_asked_again_and_new_rounds_use_new_samples(tmp_path):
    backend = FakeBackend(["garbage", "garbage"])
    report = generate(_config(tmp_path), backend)
    assert report.ok and report.kept[(12, "appearance")] == 6
    assert report.rejections["no_json"] == 2
    entries = RequestLog(tmp_path / "requests.jsonl").entries.values()
    assert sorted(e["sample_idx"] for e in entries) == list(range(len(backend.calls)))
    assert len(set(backend.calls)) == len(backend.calls)  # every request its own seed
    rerun = FakeBackend()
    report = generate(_config(tmp_path), rerun)
    assert rerun.calls == [] and report.cached == len(backend.calls) and report.sent == 0


def test_failed_requests_are_not_cached_and_are_asked_again(tmp_path):
    report = generate(_config(tmp_path, max_rounds=1), FakeBackend(["fail"]))
    assert report.failed == 1 and not report.ok and "HTTP 503" in report.failures[0]
    assert report.shortfalls == [(12, "appearance", 3)]
    again = FakeBackend()
    report = generate(_config(tmp_path, max_rounds=1), again)
    assert len(again.calls) == 1 and report.ok


def test_truncated_and_corrupt_log_lines_are_not_fatal(tmp_path, capsys):
    generate(_config(tmp_path), FakeBackend())
    log = tmp_path / "requests.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]) + b"not json at all\n" + lines[-1][:25])  # corrupt + cut-off last line
    again = FakeBackend()
    report = generate(_config(tmp_path), again)
    assert report.ok and len(again.calls) == 1  # only the lost answer is asked again
    assert "skipped 1 unreadable line" in capsys.readouterr().err
    assert log.read_bytes().endswith(b"\n")


def test_more_per_pair_reuses_the_cache(tmp_path):
    first = FakeBackend()
    generate(_config(tmp_path, n=3), first)
    more = FakeBackend()
    report = generate(_config(tmp_path, n=9), more)
    assert report.ok and report.kept[(12, "appearance")] == 9
    assert report.cached == len(first.calls) and len(more.calls) == 2
    assert len(read(tmp_path)) == 9


@pytest.mark.parametrize("seed", [0, 1])
def test_seed_changes_the_requests(tmp_path, seed):
    a = FakeBackend()
    generate(_config(tmp_path / "a", seed=seed), a)
    b = FakeBackend()
    generate(_config(tmp_path / "b", seed=seed + 10), b)
    assert set(a.calls).isdisjoint(b.calls)


def test_parsing_is_not_in_the_key_lenient_reparses_without_asking(tmp_path):
    strict = generate(_config(tmp_path, n=3, max_rounds=1, lenient=False), FakeBackend(["prose"]))
    assert strict.kept[(12, "appearance")] == 0 and strict.rejections["no_json"] == 1
    again = FakeBackend(["garbage"])
    lenient = generate(_config(tmp_path, n=3, max_rounds=1, lenient=True), again)
    assert again.calls == [] and lenient.ok  # the same logged answer, parsed again
    assert len(read(tmp_path)) == 3


def test_the_closing_count_is_what_the_table_holds_after_a_run_that_went_further(tmp_path):
    # The strict run's second round asked for 12 more (its yield was 0); a lenient rerun of one round reaches only the
    # first 2 answers, but the table is rebuilt from every logged answer: the report counts the same rows.
    strict = generate(_config(tmp_path, max_rounds=2, lenient=False), FakeBackend(["garbage"] * 2 + ["prose"] * 12))
    assert strict.kept[(12, "appearance")] == 0 and strict.rejections["no_json"] == 14
    again = FakeBackend()
    lenient = generate(_config(tmp_path, max_rounds=1, lenient=True), again)
    assert again.calls == []
    held = len(read(tmp_path))
    assert held == 3  # PROSE's three sentences, said twelve times
    assert lenient.kept[(12, "appearance")] == held and lenient.shortfalls == [(12, "appearance", held)]
    assert lenient.rejections["duplicate"] >= 1


def test_log_sync_is_group_committed(tmp_path, monkeypatch):
    import augtext.requestlog as requestlog

    calls = []

    def slow_fsync(fd):
        calls.append(fd)
        time.sleep(0.02)

    monkeypatch.setattr(requestlog.os, "fsync", slow_fsync)
    log = RequestLog(tmp_path / "requests.jsonl")

    async def answer(i):
        await asyncio.sleep(0)
        fd = log.append({"key": f"k{i}", "i": i})
        mine = log._written + 1  # sync() numbers this append
        await log.sync(fd)
        return mine, log._synced

    async def main():
        return await asyncio.gather(*(answer(i) for i in range(32)))

    synced = asyncio.run(main())
    assert all(done >= mine for mine, done in synced) and log._synced == 32  # each waited for a covering fsync
    assert 1 <= len(calls) < 8  # ... but far fewer fsyncs than answers
    log.close()
    assert len((tmp_path / "requests.jsonl").read_text().splitlines()) == 32


def test_plan_round_closes_the_gap_at_the_pairs_yield():
    from augtext.generate import plan_round

    assert plan_round(kept=0, answered=0, n=8, per_request=5) == 2  # optimistic before any answer
    assert plan_round(kept=8, answered=2, n=8, per_request=5) == 0  # done
    assert plan_round(kept=2, answered=2, n=8, per_request=5) == 6  # 1 kept per answer: 6 more
    assert plan_round(kept=0, answered=4, n=8, per_request=5) == 12  # nothing kept: bounded, not unbounded


@pytest.mark.parametrize(
    ("cli", "argv", "says"),
    [
        ("augtext", ["generate", "--au", "1", "--no-such-option"], "No such option: --no-such-option"),
        ("augtext", ["generate", "--au", "1", "--n", "many"], "Invalid value for '--n'"),
        ("augtext", ["generate", "--au"], "requires an argument"),
        ("hiva_core", ["eval"], "Missing option '--run'"),
        ("hiva_core", ["predict", "--run", "runs/x"], "Missing argument"),
        ("hiva_core", ["train", "--epochs", "abc"], "Invalid value for '--epochs'"),
        ("hiva_core", ["predict", "--bogus", "1", "face.jpg"], "No such option: --bogus"),
    ],
)
def test_usage_errors_are_exit_2_not_internal_errors(cli, argv, says, capsys):
    """Both command lines (one runner, augtext.cliutil.run_app), whatever click typer runs on (its own copy since
    typer 0.2x): a mistyped command line is a usage error."""
    from hiva_core.cli import main as hiva_main

    assert {"augtext": main, "hiva_core": hiva_main}[cli](argv) == 2
    err = capsys.readouterr().err
    assert says in err and "internal error" not in err and "Traceback" not in err


# -- scripted LLM answers: what a FACS coder keeps, in the shapes chat models answer in -------------------------------

SCRIPTED = {  # AU: (descriptions a FACS coder keeps, answers that are not descriptions of this AU)
    1: (
        [
            "The inner corners of the eyebrows are raised, giving the brows an oblique, worried look.",
            "Together with AU4, the inner brows rise while being drawn together, as in grief.",
        ],
        [
            "The outer ends of the eyebrows are lifted, arching the brows at the sides.",  # AU2
            "The eyebrows drop and knit together, forming a scowl over the eyes.",  # AU4's direction
            "AU1 is known as the Inner Brow Raiser in the Facial Action Coding System.",  # a name, no change
        ],
    ),
    2: (
        ["The outer ends of the eyebrows are lifted, arching the brows at the sides."],
        [
            "The inner ends of the eyebrows are raised, giving the brows an oblique, worried shape.",  # AU1
            "The outer eyebrows sink down toward the eyelids.",
        ],
    ),
    12: (
        [
            "The zygomaticus major pulls the lip corners upward and back toward the cheekbones.",
            "Combined with AU6, the lip corners rise and the cheeks lift, creating a genuine smile.",
        ],
        [
            "The lip corners are pulled sideways toward the ears, stretching the lips flat.",  # AU20
            "Certainly! Here is one more sentence about the lip corner puller.",
            "The lip corners are not pulled up in this action at all.",
        ],
    ),
    15: (
        ["The corners of the mouth are pulled downward, giving a sad expression."],
        [
            "The corners of the mouth turn up into a smile.",  # AU12
            "The Lip Corner Depressor is AU15 in the Facial Action Coding System.",
        ],
    ),
    43: (
        ["The eyes close and stay closed, with the lashes of both lids meeting."],
        [
            "The upper eyelids lift and the lower lids stay still.",
            "The eyes don't close; the lids stay where they are.",
        ],
    ),
}


def _shaped(code: int) -> str:
    """The AU's scripted sentences in one of the shapes chat models answer in (markdown, fenced object, JSON)."""
    good, bad = SCRIPTED[code]
    texts = [*good, *bad]
    if code % 3 == 0:
        return "\n".join(f"{i}. **{t}**" for i, t in enumerate(texts, 1))
    if code % 3 == 1:
        return "Sure! Here are the sentences:\n```json\n" + json.dumps({"descriptions": texts}, indent=2) + "\n```"
    return json.dumps({f"sentence_{i}": t for i, t in enumerate(texts, 1)})


def test_scripted_answers_keep_exactly_the_right_descriptions(llm_server, tmp_path, capsys):
    llm_server.answer = lambda code, k: _shaped(code)
    aus = ",".join(map(str, SCRIPTED))
    rc = main(cli_args(llm_server, tmp_path, aus, "--styles", "appearance", "--n", "2", "--max-rounds", "1"))
    kept = {(int(a), t) for a, t in zip(read(tmp_path)["au"], read(tmp_path)["text"], strict=True)}
    assert kept == {(au, t) for au, (good, _) in SCRIPTED.items() for t in good}, capsys.readouterr().err
    assert rc == 1  # AUs with one right description end short of --n 2


def test_an_echoed_prompt_is_not_kept(llm_server, tmp_path):
    # A model that repeats its prompt answers with the prompt's format example (a JSON list of one sentence about
    # the AU, with its facts): a copy, as a copied few-shot example is, not a description.
    from augtext.templates import render_messages

    def echo(code: int, k: int) -> str:
        messages, _ = render_messages("appearance", code, k)
        return "\n\n".join(m["content"] for m in messages)

    llm_server.answer = echo
    args = ["--styles", "appearance", "--n", "1", "--max-rounds", "1"]
    assert main(cli_args(llm_server, tmp_path, "12,25", *args)) == 1
    assert len(read(tmp_path)) == 0
    assert json.loads((tmp_path / "rejections.json").read_text())["rejected_total"] == {"duplicate": 2}


# -- whole-server failures, option checks, what the shortfall line advises -------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [
        ("401", "the environment variable AUGTEXT_TEST_NO_SUCH_KEY (--api-key-env) is unset"),
        ("403", "the environment variable AUGTEXT_TEST_NO_SUCH_KEY (--api-key-env) is unset"),
        ("404", "usually ends in /v1) or the server does not serve --model loopback"),
        ("405", "HTTP 405 (Method Not Allowed): this is not an OpenAI-compatible chat-completions server"),
        ("501", "HTTP 501 (Not Implemented): this is not an OpenAI-compatible chat-completions server"),
        ("html", "a page that is not a chat completion ('<html>"),
    ],
)
def test_a_server_that_refuses_us_is_one_line_exit_2_at_once(llm_server, tmp_path, capsys, caplog, behaviour, says):
    """A key it needs, a wrong path or model, a web server that is not an LLM server: one line naming the URL and
    the status, after the first answers (not a shortfall of every pair after hundreds of requests)."""
    llm_server.default = behaviour
    assert main(cli_args(llm_server, tmp_path, "1-26", "--max-retries", "2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert f"{llm_server.url}/chat/completions answered" in err[0]
    assert llm_server.requests <= 24  # the requests already in flight, not one per pair (120 pairs)
    # the other pairs were stopped before the client closed: none failed on it unreported at the loop's shutdown
    assert not [r.getMessage() for r in caplog.records if r.name == "asyncio"]


def test_a_refused_key_names_the_variable_not_the_key(llm_server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUGTEXT_TEST_KEY", "sk-test-SECRET-1234")
    args = cli_args(llm_server, tmp_path, "1,2")
    args[args.index("AUGTEXT_TEST_NO_SUCH_KEY")] = "AUGTEXT_TEST_KEY"
    llm_server.default = "401"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "refused the API key in the environment variable AUGTEXT_TEST_KEY" in err and "SECRET" not in err


def test_every_request_failing_is_one_line_exit_2_and_keeps_the_cache(llm_server, tmp_path, capsys):
    """No request of the run answered (here: a server that rejects each as a bad request): exit 2 with the first
    failure, not a shortfall; descriptions.parquet is still rebuilt and keeps the rows of earlier runs."""
    assert main(cli_args(llm_server, tmp_path, "12", "--styles", "appearance", "--n", "3")) == 0
    before = read(tmp_path)
    llm_server.reset()
    llm_server.default = "400"
    capsys.readouterr()
    assert main(cli_args(llm_server, tmp_path, "1,2", "--styles", "appearance", "--n", "3")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == err[-1], err
    assert "answered none of the" in errors[0] and "HTTP 400" in errors[0]
    assert "answers already in the cache are kept" in errors[0] and "--max-rounds" not in errors[0]
    assert llm_server.requests >= 2
    assert stable(read(tmp_path)).equals(stable(before))


def test_partial_failure_stays_a_shortfall_that_says_rerun(llm_server, tmp_path, capsys):
    llm_server.script(["400"])
    args = cli_args(llm_server, tmp_path, "12", "--styles", "appearance", "--n", "6", "--max-rounds", "1")
    assert main([*args, "--concurrency", "1"]) == 1
    err = capsys.readouterr().err
    assert "1 request(s) failed" in err and "Rerun to continue" in err


def test_shortfall_without_failures_does_not_say_rerun(tmp_path):
    """A rerun replays the same cached rounds: with no failed request, only more rounds (or a lower --n) help."""
    from augtext.generate import shortfall_message

    config = _config(tmp_path, max_rounds=1)
    report = generate(config, FakeBackend(["garbage", "garbage"]))
    assert report.shortfalls and not report.failures
    message = shortfall_message(report, config)
    assert "AU12/appearance (0/6)" in message and "Rerun to continue" not in message
    assert "--max-rounds" in message and "--n" in message
    failed = generate(_config(tmp_path / "b", max_rounds=1), FakeBackend(["fail"]))
    assert "Rerun to continue" in shortfall_message(failed, config)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--temperature", "-1", "--temperature must be between 0 and 2 (got -1)"),
        ("--temperature", "2.5", "--temperature must be between 0 and 2 (got 2.5)"),
        ("--base-url", "ftp://x", "--base-url 'ftp://x' is not an http(s) URL"),
        ("--base-url", "localhost:8000/v1", "--base-url 'localhost:8000/v1' is not an http(s) URL"),
    ],
)
def test_out_of_range_options_are_one_line_before_any_request(llm_server, tmp_path, capsys, option, value, says):
    args = cli_args(llm_server, tmp_path, "1", "--styles", "appearance")
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert llm_server.requests == 0


def test_gate_warm_up_is_over_when_generate_returns(tmp_path, monkeypatch):
    """A warm-up thread still loading (inside torch) when the interpreter exits aborts the process (exit 134) when
    every request fails fast: generate joins it before returning."""
    import threading

    import augtext.quality

    def slow_embedder(model=None):
        time.sleep(1.0)
        raise RuntimeError("no model here")  # not reported by the warm-up: the gate's first use would raise it

    monkeypatch.setattr(augtext.quality, "default_embedder", slow_embedder)
    report = generate(_config(tmp_path, max_rounds=1, gate=True), FakeBackend(["fail", "fail"]))
    assert report.failed == 2 and report.none_answered
    assert not [t for t in threading.enumerate() if t.name == "gate-warm-up"]


def test_an_interrupted_run_stops_the_gate_making_its_prototypes(tmp_path, monkeypatch):
    """Ctrl-C while the gate's prototypes are encoded (the first run in a cache: about 2,500 texts, half a minute on
    2 cores; the Ctrl-C tests above waited for all of them) ends the run at the next chunk: the warm-up thread and
    the walker waiting on it stop, and no prototypes are stored half made."""
    import math
    import threading

    import numpy as np

    import augtext.quality
    from augtext.quality import PROTOTYPE_CHUNK, SemanticGate

    chunks: list[int] = []

    class SlowEmbedder:  # the TextEmbedder interface, `delay` s per call
        name = "slow"

        def __init__(self, delay: float) -> None:
            self.delay = delay

        def __call__(self, texts):
            chunks.append(len(texts))
            time.sleep(self.delay)
            return np.full((len(texts), 4), 0.5, dtype=np.float32)

    class Interrupted(FakeBackend):  # Ctrl-C lands while the first request waits for its answer
        async def complete(self, *args, **kwargs):
            await asyncio.sleep(0.3)
            raise KeyboardInterrupt

    prototypes = len(SemanticGate(embedder=SlowEmbedder(0.0)).prototypes[1])  # made whole when not stopped
    assert chunks == [PROTOTYPE_CHUNK] * (len(chunks) - 1) + [prototypes - PROTOTYPE_CHUNK * (len(chunks) - 1)]
    whole = len(chunks)
    chunks.clear()
    monkeypatch.setattr(augtext.quality, "default_embedder", lambda model=None: SlowEmbedder(0.1))
    with pytest.raises(KeyboardInterrupt):
        generate(_config(tmp_path, gate=True), Interrupted())
    assert whole == math.ceil(prototypes / PROTOTYPE_CHUNK) and 1 <= len(chunks) < whole / 2, chunks
    assert not [t for t in threading.enumerate() if t.name == "gate-warm-up"]
    assert not list(tmp_path.rglob("prototypes-*"))


def test_reference_backend_generates_the_styles_it_has_and_names_the_others_once(tmp_path, capsys):
    """A style of the user's own (--prompts) is not in the reference set: it is not asked (no request, nothing
    logged), the package's style is generated exactly as alone, and the run ends with exit 1 (a pair got none) in a
    line that points back to the one warning, without advice that cannot help (more rounds, a lower --n)."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "mine.j2").write_text((Path(__file__).parents[2] / "augtext/prompts/appearance.j2").read_text())
    args = ["generate", "--n", "2", "--no-gate", "--au", "1", "--prompts", str(prompts)]
    assert main([*args, "--styles", "appearance,mine", "--cache", str(tmp_path / "both")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    warnings = [line for line in err if line.startswith("warning:")]
    assert len(warnings) == 1 and "has no descriptions in style(s) mine: it covers AUs 1-2, 4-39, 41-46" in warnings[0]
    assert "Generate those with an LLM backend: --backend openai" in warnings[0]
    assert err[-1] == "error: AU1/mine not generated: the reference set has none (see above)."
    assert not [line for line in err if "--max-rounds" in line or "--n" in line]
    entries = RequestLog(tmp_path / "both" / "requests.jsonl").entries.values()
    assert {e["style"] for e in entries} == {"appearance"}
    assert main([*args, "--styles", "appearance", "--cache", str(tmp_path / "alone")]) == 0
    assert stable(read(tmp_path / "both")).equals(stable(read(tmp_path / "alone")))


def test_reference_shortfall_does_not_advise_more_rounds(tmp_path, capsys):
    """The reference set holds 10 texts per AU and style: no number of rounds reaches --n 12."""
    args = ["generate", "--au", "1", "--n", "12", "--styles", "appearance", "--no-gate", "--cache", str(tmp_path)]
    assert main(args) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "AU1/appearance (10/12)" in last and "the reference set holds at most 10 per AU and style" in last
    assert "--max-rounds" not in last and "Lower --n" in last and "--backend openai" in last
