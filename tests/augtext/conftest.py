from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_server import LLMServer


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """A fresh loopback OpenAI-compatible server per test (script it with `llm_server.script([...])`)."""
    with LLMServer(retry_after=0.2, stall_s=3.0) as server:
        yield server
