"""The embedded SmolLM2 through llama.cpp with its trained context: exact counts and the issue's
Tic-Tac-Toe run (slow: loads the real model). The hf `local` counterpart is in test_hf_backend.py."""

from __future__ import annotations

import asyncio
import json

import pytest

from rafa_core.llm.llamacpp import LlamaCppLLM
from rafa_core.tictactoe.cli import main as tictactoe_main
from tests.llama_server import smollm2_gguf

SMOLLM2_TRAINED_CONTEXT = 8_192
PROMPTS = [
    "Name a colour.",
    [{"role": "system", "content": "You play Tic-Tac-Toe. Answer with one board."},
     {"role": "user", "content": "Board:\nX | 2 | 3\n---------\n4 | O | 6\n---------\n7 | 8 | 9\nX plays 9. Board after:"}],
]


@pytest.mark.slow
def test_llamacpp_opens_the_trained_context_and_counts_as_llama_cpp_does():
    llm = LlamaCppLLM(smollm2_gguf())
    assert llm.n_ctx == llm.context_window() == SMOLLM2_TRAINED_CONTEXT
    assert llm.token_counter().exact
    for prompt in PROMPTS:
        before = llm.usage.prompt_tokens
        asyncio.run(llm.generate(prompt, max_tokens=2, temperature=0.0))
        assert llm.usage.prompt_tokens - before == llm.count_prompt(prompt)  # what llama.cpp reported
    assert LlamaCppLLM(smollm2_gguf(), n_ctx=1024).context_window() == 1024


@pytest.mark.slow
@pytest.mark.timeout(2400)  # three games of many model calls each on 2 CPU cores
def test_the_issues_tictactoe_run_on_the_embedded_model_through_llamacpp_finishes(tmp_path):
    """RAFA O with 2 proposals, depth 1, one training game: it stopped at a 2,130-token prompt
    when llama.cpp was opened with a fixed 2,048-token context. (X, a base player whose
    prompts do not grow, is the simulated oracle to keep the test shorter.)"""
    gguf = smollm2_gguf()
    out = tmp_path / "run"
    code = tictactoe_main(["--X", "oracle", "--O", f"llamacpp:{gguf}", "--O_MPC", "2", "--depth", "1",
                           "--num_train_epochs", "1", "--verbose", "0", "--no-cache", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 3 and summary["stopped"] is None  # evaluation, training game, evaluation
