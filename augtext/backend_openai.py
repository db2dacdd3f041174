"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM, llama.cpp server, Ollama, ...) through
the official SDK. Retries live here, in our own loop, so that their policy (backoff with full jitter, Retry-After,
which errors are worth another try) is the same whatever server sits behind the SDK."""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import re
import sys
import time
from typing import Any

from augtext.backends import Completion, RequestFailed, RequestSpec, ServerRefused, ServerUnreachable
from augtext.errors import UserError, short_error

RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx
REFUSED_STATUS = frozenset({401, 403, 404, 405, 501})  # before the first answer: the run's settings are wrong


# -- retry policy ---------------------------------------------------------------------------------------------------


LONG_WAIT_S = 10.0  # a Retry-After wait at least this long is said on stderr (the longer ones each time)


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` (seconds or HTTP date) or `retry-after-ms` header; None if absent/bad."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""
    return (rng or random).uniform(0.0, min(cap, base * (2**attempt)))


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or 500 <= status <= 599


# -- openai ---------------------------------------------------------------------------------------------------------


class OpenAIBackend:
    """Any OpenAI-compatible chat-completions server through the official SDK (vLLM, llama.cpp server, Ollama, ...).

    The SDK's own retries are off (`max_retries=0`); `complete` retries 408/409/429/5xx, timeouts, connection errors
    and unparsable answers, waiting `Retry-After` when the server says so and backoff with full jitter otherwise.
    The API key is read from the environment variable `api_key_env` and kept only inside the SDK client.
    """

    name = "openai"
    max_samples_per_call = 1

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 300.0,
    ) -> None:
        from openai import AsyncOpenAI

        if not model:
            raise UserError("--model is required with --backend openai (the model name the server serves)")
        if base_url is not None:
            check_base_url(base_url)
        key = os.environ.get(api_key_env)
        self.api_key_env = api_key_env  # the variable's name, for messages (the key stays inside the SDK client)
        self.key_set = bool(key)
        if not key:
            if base_url is None:
                raise UserError(
                    f"no API key: set the environment variable {api_key_env}, or point --base-url at a "
                    "local OpenAI-compatible server"
                )
            key = "EMPTY"  # local servers (vLLM, llama.cpp, Ollama) accept any key
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self._said_wait = 0.0  # the longest Retry-After wait said on stderr so far
        self.retries = 0
        self.answered = 0  # successful answers so far: connection errors after the first are retried
        self._client = AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        n_samples: int = 1,
        seed: int = 0,
        temperature: float = 0.9,
        max_tokens: int = 400,
        request: RequestSpec | None = None,
    ) -> list[Completion]:
        import openai

        kwargs: dict[str, Any] = dict(
            model=self.model, messages=messages, temperature=temperature, max_tokens=max_tokens, seed=seed
        )
        if n_samples != 1:
            kwargs["n"] = n_samples
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            t0 = time.perf_counter()
            try:
                resp = await self._client.chat.completions.create(**kwargs)
                latency = time.perf_counter() - t0
                if isinstance(resp, str):  # the SDK hands over a 200 body that is not JSON (an HTML page) as text
                    if self.answered == 0:
                        raise ServerRefused(self._not_chat(f"a page that is not a chat completion ({resp[:60]!r})"))
                    raise ValueError(f"the server's answer is not a chat completion: {resp[:80]!r}")
                choices = resp.choices or []
                texts = [_choice_text(c) for c in choices]
                if len(texts) < n_samples:
                    raise ValueError(f"answer has {len(texts)} choice(s), asked for {n_samples}")
                if any(t is None for t in texts[:n_samples]):
                    raise ValueError("an answer's message has no text (content is null or not a string)")
                usage = resp.usage
                pt = _token_count(getattr(usage, "prompt_tokens", 0))
                ct = _token_count(getattr(usage, "completion_tokens", 0))
                per = max(1, len(texts))
                self.answered += 1
                return [
                    Completion(
                        text=t,
                        prompt_tokens=pt,
                        completion_tokens=ct // per,
                        latency_s=latency,
                        cut=getattr(c, "finish_reason", None) == "length",
                    )
                    for t, c in zip(texts[:n_samples], choices, strict=False)
                ]
            except openai.APIStatusError as exc:
                status = exc.status_code
                last = f"HTTP {status}: {short_error(exc, 200)}"
                if self.answered == 0 and status in REFUSED_STATUS:
                    raise ServerRefused(self._refused_message(status, exc)) from None
                if not is_retryable_status(status):
                    raise RequestFailed(last) from None
                wait = parse_retry_after(exc.response.headers if exc.response is not None else None)
            except openai.APITimeoutError:
                last = f"timed out after {self.timeout:g} s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {short_error(exc, 200).rstrip('.')}"
                if self.answered == 0 and _refused(exc):
                    raise ServerUnreachable(
                        f"cannot connect to {self.url} (connection refused): is the server "
                        "running and is --base-url right? Answers already in the cache are "
                        "kept; rerun once the server is up"
                    ) from None
            except (openai.APIResponseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
                last = f"unusable answer: {short_error(exc, 200)}"  # truncated or malformed JSON body
            if attempt == self.max_retries:
                break
            self.retries += 1
            if wait is not None:
                delay = min(wait, self.max_retry_after)
                if delay >= LONG_WAIT_S and delay > self._said_wait:  # not a silent pause of minutes
                    self._said_wait = delay
                    capped = f" (capped from {wait:g} s)" if wait > delay else ""
                    print(f"the server asks to wait {delay:g} s{capped} before retrying (Retry-After)", file=sys.stderr)
            else:
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap)
            await asyncio.sleep(delay)
        raise RequestFailed(f"gave up after {self.max_retries + 1} attempt(s): {last}")

    async def aclose(self) -> None:
        await self._client.close()

    @property
    def url(self) -> str:
        """The base URL requests go to (the SDK's default when --base-url is not given)."""
        return str(self._client.base_url).rstrip("/")

    def _refused_message(self, status: int, exc: Exception) -> str:
        """What a 401/403/404/405/501 to the first request means, and what to do. The server's own words are left
        out for 401/403: some echo part of the key."""
        where = f"{self.url}/chat/completions answered HTTP {status}"
        if status in (401, 403):
            env = self.api_key_env
            if not self.key_set:
                return (
                    f"{where}: the server needs an API key, and the environment variable {env} (--api-key-env) "
                    f"is unset; set {env} to the server's key, or name the variable that holds it with --api-key-env"
                )
            return (
                f"{where}: the server refused the API key in the environment variable {env} (--api-key-env); "
                f"check its value, or name the variable that holds the right key with --api-key-env"
            )
        if status == 404:
            return (
                f"{where} ({_server_says(exc)}): either --base-url is not the API's root (an OpenAI-compatible "
                f"base URL usually ends in /v1) or the server does not serve --model {self.model}"
            )
        return self._not_chat(f"HTTP {status} ({_server_says(exc)})")

    def _not_chat(self, what: str) -> str:
        return (
            f"{self.url}/chat/completions answered {what}: this is not an OpenAI-compatible chat-completions "
            "server; point --base-url at one (its base URL usually ends in /v1)"
        )


def check_base_url(base_url: str) -> None:
    """UserError unless `base_url` is an http(s) URL with a host (checked before anything is sent)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(base_url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a malformed IPv6 address or port
        ok = False
    if not ok:
        raise UserError(
            f"--base-url {base_url!r} is not an http(s) URL; pass the server's address with its scheme, "
            "e.g. http://localhost:8000/v1"
        )


def _choice_text(choice: Any) -> str | None:
    """The text of one chat-completion choice, or None when it has none. Content may be a string or a list of
    content parts (the text parts are joined; "thinking" parts are not the answer). A message without content but
    with a `refusal` (OpenAI's structured refusals) answers with the refusal, which validation counts as one; one with
    only a reasoning field (`reasoning_content`: thinking cut short by the token limit) answers with that thinking in
    <think>, which validation counts as reasoning_only. Lone UTF-16 surrogates (half an emoji's escape pair) are
    dropped: they cannot be written to the log as UTF-8."""
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) else getattr(p, "text", None) for p in content]
        kinds = [p.get("type") if isinstance(p, dict) else getattr(p, "type", None) for p in content]
        texts = [t for t, k in zip(parts, kinds, strict=True) if isinstance(t, str) and k in (None, "text")]
        content = "".join(texts) if texts else None
    if content is None and isinstance(getattr(message, "refusal", None), str):
        content = message.refusal
    reasoning = next((r for k in _REASONING_FIELDS if isinstance(r := getattr(message, k, None), str) and r), None)
    if reasoning is not None and not (isinstance(content, str) and content.strip()):
        # a reasoning model's thinking in a field of its own and no answer (cut short by the token limit): an answer
        # of thinking only, which parse_response counts as reasoning_only ("raise --max-tokens")
        content = f"<think>{reasoning}"
    if not isinstance(content, str):
        return None
    return _SURROGATE_RE.sub("", content)


_REASONING_FIELDS = ("reasoning_content", "reasoning")  # vLLM's and other servers' field for a model's thinking


_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def _token_count(value: Any) -> int:
    """A usage count as an int; 0 when the server sent none or something else (provenance, not worth an answer)."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _refused(exc: BaseException) -> bool:
    """Whether a connection error means nothing listens there (refused, or no such host), not a dropped link."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (
            isinstance(exc, ConnectionRefusedError)
            or "connection refused" in str(exc).lower()
            or "name or service not known" in str(exc).lower()
            or "nodename nor servname" in str(exc).lower()
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _server_says(exc: Any) -> str:
    """The error message in a status error's JSON body, else the status line's reason ("Not Implemented"): not a
    whole HTML error page."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return short_error(body["message"], 120)
    response = getattr(exc, "response", None)
    return getattr(response, "reason_phrase", "") or "no details"
