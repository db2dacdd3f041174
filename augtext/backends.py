"""LLM backends behind one async interface: `reference` (the project's own descriptions), `openai` (any
OpenAI-compatible server; augtext/backend_openai.py) and `hf` (local transformers; augtext/backend_hf.py).

All take chat messages and return `Completion`s; the generation engine drives them the same way (asyncio, bounded
concurrency). This module holds what they share (the interface, the request and its failures) and `make_backend`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from augtext.errors import UserError


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cut: bool = False  # the answer stopped at the token limit (finish_reason "length"), not where the model ended it


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


# -- reference (the project's own descriptions) ----------------------------------------------------------------------


class ReferenceBackend:
    """Answers from the project's reference description set (augtext/reference/), offline, with no model.

    Sample i of (AU, style) is the JSON list of the set's texts [i * per_request, (i + 1) * per_request) in file
    order, so `--n N` keeps the first N of a style; past the end of the set the answer is an empty list. A pair the
    set lacks is never asked (`augtext.generate.generate` leaves it out: alone an error, beside others exit 1). The
    recorded model is the set's content hash (`reference-<sha>`): an edited set gives new request keys, and a rerun
    writes the new texts.
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
        from augtext.backend_openai import OpenAIBackend

        return OpenAIBackend(
            model=model or "", base_url=base_url, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries
        )
    if backend == "hf":
        from augtext.backend_hf import HFBackend

        return HFBackend(model=model)
    raise UserError(f"unknown backend {backend!r}: use reference, openai or hf")
