"""The llamacpp backend in-process on the embedded SmolLM2 GGUF (slow: loads a real model)."""

from __future__ import annotations

import asyncio

import pytest

from rafa_core.llm.errors import UserError
from rafa_core.llm.llamacpp import LlamaCppLLM
from rafa_core.llm.registry import BackendOptions, make_llm
from tests.llama_server import smollm2_gguf


def test_a_missing_gguf_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="GGUF"):
        make_llm(f"llamacpp:{tmp_path / 'nope.gguf'}", BackendOptions())


@pytest.mark.slow
def test_generation_stop_logprobs_and_loglik_ordering():
    llm = LlamaCppLLM(smollm2_gguf(), seed=1)

    async def run():
        samples = await llm.generate("Name a colour.", n=2, max_tokens=6, temperature=0.9)
        counting = "Count from 1 to 10, separated by commas."
        [free] = await llm.generate(counting, max_tokens=20, temperature=0.0)
        [stopped] = await llm.generate(counting, max_tokens=20, temperature=0.0, stop=["4"])
        [scored] = await llm.generate("The capital of France is", max_tokens=3, temperature=0.0, logprobs=True)
        scores = await llm.loglik("The capital of France is", [" Paris", " banana", " purple sideways"])
        return samples, free, stopped, scored, scores

    samples, free, stopped, scored, scores = asyncio.run(run())
    assert len(samples) == 2 and any(s.text.strip() for s in samples)
    assert "4" in free.text and "4" not in stopped.text and free.text.startswith(stopped.text)
    assert scored.tokens and len(scored.tokens) == len(scored.token_logprobs)
    assert all(lp <= 0.0 for lp in scored.token_logprobs)
    assert scores[0] > scores[1] and scores[0] > scores[2]
    assert all(s < 0.0 for s in scores)
    assert llm.usage.calls == 2 + 1 + 1 + 1 + 3
    assert llm.usage.completion_tokens > 0
