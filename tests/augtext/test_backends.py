"""The openai backend's retry policy, through the real SDK against the loopback server."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import pytest

from augtext.backend_openai import OpenAIBackend, backoff_delay, is_retryable_status, parse_retry_after
from augtext.backends import RequestFailed, ServerRefused, ServerUnreachable, make_backend
from augtext.errors import UserError

MESSAGES = [
    {"role": "system", "content": "You write JSON."},
    {"role": "user", "content": "AU12 (Lip Corner Puller). Write 3 different sentences about AU12."},
]


def _complete(backend: OpenAIBackend, **kw):
    async def go():
        try:
            return await backend.complete(
                MESSAGES, n_samples=kw.pop("n_samples", 1), seed=7, temperature=0.5, max_tokens=50
            )
        finally:
            await backend.aclose()

    return asyncio.run(go())


def _backend(server, **kw) -> OpenAIBackend:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 3)
    kw.setdefault("backoff_base", 0.01)
    return OpenAIBackend(model="loopback", base_url=server.url, api_key_env="AUGTEXT_TEST_NO_SUCH_KEY", **kw)


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after({"retry-after": date}, now=now) <= 31
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0


def test_backoff_is_full_jitter_and_capped():
    rng = random.Random(0)
    delays = [backoff_delay(5, base=0.5, cap=4.0, rng=rng) for _ in range(200)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert max(delays) > 3.0 and min(delays) < 1.0  # spread over the whole window, not a fixed step
    assert all(backoff_delay(0, base=0.5, rng=rng) <= 0.5 for _ in range(50))


def test_retryable_statuses():
    assert all(is_retryable_status(s) for s in (408, 409, 429, 500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 422))


def test_answer_and_usage(llm_server):
    [c] = _complete(_backend(llm_server))
    assert c.text.startswith("[") and "AU12" in c.text
    assert c.prompt_tokens > 0 and c.completion_tokens > 0 and c.latency_s > 0
    assert llm_server.requests == 1


def test_several_samples_in_one_call(llm_server):
    out = _complete(_backend(llm_server), n_samples=3)
    assert len(out) == 3 and llm_server.requests == 1
    assert llm_server.log[0]["body"]["n"] == 3


def test_retry_after_is_honoured(llm_server):
    llm_server.retry_after = 1.0
    llm_server.script(["429"])
    backend = _backend(llm_server)
    t0 = time.perf_counter()
    [c] = _complete(backend)
    elapsed = time.perf_counter() - t0
    assert elapsed >= 1.0
    assert backend.retries == 1 and llm_server.requests == 2
    gap = llm_server.log[1]["t"] - llm_server.log[0]["t"]
    assert gap >= 1.0


def test_a_long_retry_after_is_capped_and_said(llm_server, monkeypatch, capsys):
    """Retry-After: 3600 is not an hour of silence: the wait is capped (max_retry_after, 300 s by default) and a wait
    of LONG_WAIT_S or more is said on stderr."""
    from augtext import backend_openai

    monkeypatch.setattr(backend_openai, "LONG_WAIT_S", 0.5)
    llm_server.retry_after = 3600.0
    llm_server.script(["429"])
    backend = _backend(llm_server, max_retry_after=1.0)
    t0 = time.perf_counter()
    [c] = _complete(backend)
    assert 1.0 <= time.perf_counter() - t0 < 30 and backend.retries == 1
    assert "the server asks to wait 1 s (capped from 3600 s) before retrying (Retry-After)" in capsys.readouterr().err


@pytest.mark.parametrize("behaviour", ["500", "malformed", "stall"])
def test_transient_failures_are_retried(llm_server, behaviour):
    llm_server.script([behaviour, behaviour])
    backend = _backend(llm_server, timeout=0.5)
    [c] = _complete(backend)
    assert "AU12" in c.text
    assert backend.retries == 2 and llm_server.requests == 3


def test_client_errors_are_not_retried(llm_server):
    llm_server.script(["400"])
    backend = _backend(llm_server)
    with pytest.raises(RequestFailed, match="HTTP 400"):
        _complete(backend)
    assert llm_server.requests == 1 and backend.retries == 0


def test_retries_are_bounded(llm_server):
    llm_server.default = "500"
    backend = _backend(llm_server, max_retries=2)
    with pytest.raises(RequestFailed, match="3 attempt"):
        _complete(backend)
    assert llm_server.requests == 3


def test_connection_refused_fails_cleanly():
    """Nothing listens there and nothing ever answered: no retries, a UserError naming the URL."""
    backend = OpenAIBackend(
        model="m",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="AUGTEXT_TEST_NO_SUCH_KEY",
        timeout=1.0,
        max_retries=3,
        backoff_base=0.01,
    )
    with pytest.raises(ServerUnreachable, match=r"127\.0\.0\.1:9/v1.*connection refused"):
        _complete(backend)
    assert backend.retries == 0


def test_connection_lost_after_answers_is_retried():
    """A server that has answered before and then refuses (a restart, an overload) is retried, then given up."""
    backend = OpenAIBackend(
        model="m",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="AUGTEXT_TEST_NO_SUCH_KEY",
        timeout=1.0,
        max_retries=2,
        backoff_base=0.01,
    )
    backend.answered = 1  # as after one answer
    with pytest.raises(RequestFailed, match="connection"):
        _complete(backend)
    assert backend.retries == 2


def test_api_key_comes_from_the_environment(llm_server, monkeypatch):
    monkeypatch.setenv("AUGTEXT_TEST_KEY", "sk-test-abc123")
    backend = OpenAIBackend(model="m", base_url=llm_server.url, api_key_env="AUGTEXT_TEST_KEY")
    _complete(backend)
    assert llm_server.log[0]["headers"]["authorization"] == "Bearer sk-test-abc123"
    assert "sk-test-abc123" not in repr(vars(backend))  # kept only inside the SDK client


def test_backend_option_errors(monkeypatch):
    monkeypatch.delenv("AUGTEXT_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(UserError, match="--model"):
        make_backend("openai", None, base_url="http://127.0.0.1:1/v1")
    with pytest.raises(UserError, match="AUGTEXT_TEST_NO_SUCH_KEY"):
        make_backend("openai", "gpt", base_url=None, api_key_env="AUGTEXT_TEST_NO_SUCH_KEY")
    with pytest.raises(UserError, match="unknown backend"):
        make_backend("vllm", "m")


@pytest.mark.parametrize("behaviour", ["401", "403", "404", "405", "501", "html"])
def test_a_server_that_refuses_the_first_request_is_a_user_error_at_once(llm_server, behaviour):
    """Statuses no retry changes (and an HTML page), before any answer: a UserError naming the URL, no retries."""
    llm_server.default = behaviour
    backend = _backend(llm_server)
    with pytest.raises(ServerRefused, match=rf"{llm_server.url}/chat/completions answered") as info:
        _complete(backend)
    assert isinstance(info.value, UserError)
    assert llm_server.requests == 1 and backend.retries == 0
    status = {"html": "a page that is not a chat completion"}.get(behaviour, f"HTTP {behaviour}")
    assert status in str(info.value)


@pytest.mark.parametrize("behaviour", ["404", "html"])
def test_the_same_answers_after_a_good_one_are_failed_requests(llm_server, behaviour):
    """Once the server has answered, its settings were right: a 404 or a page is this request's failure only."""
    llm_server.default = behaviour
    backend = _backend(llm_server, max_retries=1)
    backend.answered = 1
    with pytest.raises(RequestFailed):
        _complete(backend)


def test_base_url_must_be_http():
    for url in ("ftp://x/v1", "localhost:8000/v1", "http://", "http://[::1"):
        with pytest.raises(UserError, match=r"is not an http\(s\) URL"):
            make_backend("openai", "m", base_url=url, api_key_env="AUGTEXT_TEST_NO_SUCH_KEY")
    assert make_backend("openai", "m", base_url="https://example.org/v1").url == "https://example.org/v1"
