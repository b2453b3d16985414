"""The ``hf`` backend's engine: owns the model on its worker thread, generates for a batch of
prompts with one ``model.generate`` (left padding) and scores a batch of (prefix,
continuation) pairs with one pass over the distinct prefixes and one over all continuations
on top of the shared prefix key/value cache (right padding)."""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from .base import Completion, GenerationResult, Prompt, as_messages, cut_at_stop
from .hf_loading import Loaded, prefer_sleeping_openmp_threads, require_torch_and_transformers
from .tokens import chat_ids

# Continuation rows scored per forward pass (bounds the memory of the expanded KV cache).
MAX_LOGLIK_ROWS = 64
# Sampling keeps the likely tokens only, as llama.cpp does by default (top-k 40, top-p 0.95,
# min-p 0.05): from the whole distribution a small model's answers drift into noise within a
# few tokens (SmolLM2-135M wrote no usable Game-of-24 step that way; see the README's demo).
SAMPLE_TOP_K, SAMPLE_TOP_P, SAMPLE_MIN_P = 40, 0.95, 0.05


# ---------------------------------------------------------------------------------------
# Statistics the backend exposes (tests and benchmarks read them)
# ---------------------------------------------------------------------------------------
@dataclass
class BatchStats:
    requests: int = 0  # generate / loglik requests that reached the model
    batches: int = 0  # groups of requests run together on the worker thread
    generate_calls: int = 0  # model.generate invocations
    forward_passes: int = 0  # plain forward passes (loglik)
    largest_batch: int = 0
    load_seconds: float | None = None
    loaded_from: str | None = None  # "model" | "converted cache" | "fresh conversion"


# ---------------------------------------------------------------------------------------
# Generation and scoring on the worker thread
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenKey:
    """Generate requests with equal keys share one ``model.generate`` call."""

    temperature: float
    max_tokens: int
    stop: tuple[str, ...]
    logprobs: bool
    sequences: int  # per prompt: 1 when greedy (replicated afterwards), n when sampling
    # The run's --seed (views of one backend may sample under different seeds).
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def settings_text(self) -> str:
        """The sampling settings as torch's seed is derived from them (see ``Engine._batch_seed``).
        The text is fixed (it was this class's repr), so samples drawn so far stay reproducible."""
        return (f"_GenKey(temperature={self.temperature!r}, max_tokens={self.max_tokens!r}, stop={self.stop!r}, "
                f"logprobs={self.logprobs!r}, sequences={self.sequences!r})")


@dataclass
class GenPayload:
    prompt: Prompt
    n: int
    draw: int = 0  # which sample of the request comes first: a later draw gets other samples


@dataclass
class LoglikPayload:
    prefix: str
    continuations: list[str]


def _stop_criterion(tokenizer: Any, stops: tuple[str, ...], prompt_len: int) -> Any:
    from transformers import StoppingCriteria

    class StopOnStrings(StoppingCriteria):
        """Marks a row done as soon as its generated text contains a stop string."""

        def __call__(self, input_ids, scores, **kwargs):  # type: ignore[override]
            import torch

            texts = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            done = [any(s in text for s in stops) for text in texts]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopOnStrings()


class Engine:
    """Owns the model; every method except ``__init__`` runs on the single worker thread."""

    def __init__(self, load: Callable[[], tuple[Loaded, str]], stats: BatchStats) -> None:
        self._load = load
        self._loaded: Loaded | None = None
        self.stats = stats

    def loaded(self) -> Loaded:
        if self._loaded is None:
            prefer_sleeping_openmp_threads()
            require_torch_and_transformers()
            start = time.perf_counter()
            self._loaded, origin = self._load()
            self.stats.load_seconds = time.perf_counter() - start
            self.stats.loaded_from = origin
        return self._loaded

    def release(self) -> None:
        self._loaded = None

    def run_group(self, kind: str, key: Hashable, payloads: list[Any]) -> list[Any]:
        lm = self.loaded()  # first: it may set up how torch is imported
        import torch

        self.stats.batches += 1
        self.stats.requests += len(payloads)
        self.stats.largest_batch = max(self.stats.largest_batch, len(payloads))
        with torch.inference_mode():
            if kind == "generate":
                return self._generate(lm, key, payloads)
            if kind == "loglik":
                return self._loglik(lm, payloads)
        raise ValueError(f"unknown request kind {kind!r}")

    # -- prompts ---------------------------------------------------------------------------
    @staticmethod
    def _prompt_ids(lm: Loaded, prompt: Prompt) -> list[int]:
        return chat_ids(lm.tokenizer, as_messages(prompt))  # what HFCounter counts

    # -- generation ------------------------------------------------------------------------
    def _generate(self, lm: Loaded, key: GenKey, payloads: list[GenPayload]) -> list[GenerationResult]:
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        prompts = [self._prompt_ids(lm, p.prompt) for p in payloads]
        input_ids, attention_mask = _left_pad(prompts, lm.pad_id, lm.device)
        prompt_len = input_ids.shape[1]
        config = GenerationConfig(
            max_new_tokens=key.max_tokens,
            do_sample=not key.greedy,
            num_return_sequences=key.sequences,
            pad_token_id=lm.pad_id,
            eos_token_id=lm.eos_ids,
            return_dict_in_generate=True,
            output_logits=key.logprobs,
        )
        if not key.greedy:
            config.temperature, config.top_k, config.top_p = key.temperature, SAMPLE_TOP_K, SAMPLE_TOP_P
            config.min_p = SAMPLE_MIN_P
            # Sampling is reproducible for the same batch and seed (the response cache covers the rest).
            torch.manual_seed(self._batch_seed(key, prompts, [p.draw for p in payloads]))
        criteria = StoppingCriteriaList(
            [_stop_criterion(lm.tokenizer, key.stop, prompt_len)] if key.stop else []
        )
        out = lm.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            stopping_criteria=criteria,
        )
        self.stats.generate_calls += 1
        new_tokens = out.sequences[:, prompt_len:].tolist()
        chosen_logprobs = _chosen_logprobs(out.logits, out.sequences[:, prompt_len:]) if key.logprobs else None
        rows = [
            self._completion(lm, key, tokens, chosen_logprobs[i] if chosen_logprobs else None)
            for i, tokens in enumerate(new_tokens)
        ]
        results = []
        for index, (payload, prompt) in enumerate(zip(payloads, prompts)):
            mine = rows[index * key.sequences : (index + 1) * key.sequences]
            generated = sum(count for _, count in mine)
            completions = [c for c, _ in mine]
            if key.greedy:  # greedy: one computation serves every sample
                completions = [_copy(completions[0]) for _ in range(payload.n)]
            results.append(
                GenerationResult(completions=completions, prompt_tokens=len(prompt), completion_tokens=generated)
            )
        return results

    def _completion(
        self, lm: Loaded, key: GenKey, tokens: list[int], logprobs: list[float] | None
    ) -> tuple[Completion, int]:
        """One generated row -> (completion cut at EOS / stop string, tokens generated)."""
        tokenizer = lm.tokenizer
        ended = next((i for i, t in enumerate(tokens) if t in lm.eos_ids), None)
        body = tokens if ended is None else tokens[:ended]
        completion = Completion(text=tokenizer.decode(body, skip_special_tokens=True),
                                finish_reason="length" if ended is None else "stop")
        if logprobs is not None:
            completion.token_logprobs = [float(x) for x in logprobs[: len(body)]]
            completion.tokens = [tokenizer.decode([t]) for t in body]
        # The stopping criterion ends a row at the token that completes a stop string.
        return cut_at_stop(completion, key.stop), len(body)

    @staticmethod
    def _batch_seed(key: GenKey, prompts: list[list[int]], draws: list[int]) -> int:
        """torch's seed for one model.generate: the run's seed, the settings, the batch's prompts
        and which draws they are (first draws keep the seed they always had)."""
        parts = [repr(key.seed), key.settings_text(), repr(prompts)] + ([repr(draws)] if any(draws) else [])
        digest = hashlib.sha256(f"({', '.join(parts)})".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (2**63)

    # -- log-likelihood --------------------------------------------------------------------
    def _loglik(self, lm: Loaded, payloads: list[LoglikPayload]) -> list[tuple[list[float], int]]:
        """Scores for every (prefix, continuation) of the batch.

        Pass 1 runs each distinct prefix once (left-padded); pass 2 runs all continuations
        (right-padded) on top of their prefix's key/value cache. Returns, per payload, the
        scores and the number of tokens processed for it.
        """
        tokenizer = lm.tokenizer
        which: dict[str, int] = {}  # distinct prefix -> its index
        for payload in payloads:
            which.setdefault(payload.prefix, len(which))
        prefix_ids = [self._prefix_ids(lm, prefix) for prefix in which]
        row_prefix: list[int] = []
        row_ids: list[list[int]] = []
        for payload in payloads:
            owner = which[payload.prefix]
            for continuation in payload.continuations:
                row_prefix.append(owner)
                row_ids.append(_continuation_ids(tokenizer, payload.prefix, prefix_ids[owner], continuation))
        scores = self._score_rows(lm, prefix_ids, row_prefix, row_ids)
        results, row = [], 0
        for payload in payloads:
            rows = slice(row, row + len(payload.continuations))
            tokens = len(prefix_ids[which[payload.prefix]]) + sum(len(ids) for ids in row_ids[rows])
            results.append((scores[rows], tokens))
            row = rows.stop
        return results

    @staticmethod
    def _prefix_ids(lm: Loaded, prefix: str) -> list[int]:
        ids = list(lm.tokenizer(prefix)["input_ids"]) if prefix else []
        if not ids:  # condition the first continuation token on something
            start = lm.tokenizer.bos_token_id
            ids = [start if start is not None else lm.eos_ids[0]]
        return ids

    def _score_rows(
        self, lm: Loaded, prefix_ids: list[list[int]], row_prefix: list[int], row_ids: list[list[int]]
    ) -> list[float]:
        import torch

        model = lm.model
        scores = [0.0] * len(row_ids)
        live = [i for i, ids in enumerate(row_ids) if ids]  # an empty continuation scores 0
        if not live:
            return scores
        # Pass 1: the distinct prefixes, left-padded so every prefix ends in the last column.
        ids, mask = _left_pad(prefix_ids, lm.pad_id, lm.device)
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=_positions(mask),
            use_cache=True,
            **lm.last_logits_only,
        )
        self.stats.forward_passes += 1
        first_logprobs = out.logits[:, -1, :].float().log_softmax(-1)  # predicts each first token
        prefix_cache, prefix_lens = _output_cache(out), mask.sum(-1)
        for start in range(0, len(live), MAX_LOGLIK_ROWS):
            chunk = live[start : start + MAX_LOGLIK_ROWS]
            owner = torch.tensor([row_prefix[i] for i in chunk], device=lm.device)
            conts = [row_ids[i] for i in chunk]
            firsts = torch.tensor([c[0] for c in conts], device=lm.device)
            chunk_scores = first_logprobs[owner].gather(1, firsts[:, None])[:, 0]
            longest = max(len(c) for c in conts)
            if longest > 1:
                # Pass 2: continuations right-padded after their own prefix's cache.
                cont, cont_mask = _right_pad(conts, lm.pad_id, lm.device)
                cache = copy.deepcopy(prefix_cache)
                cache.reorder_cache(owner)
                out = model(
                    input_ids=cont,
                    attention_mask=torch.cat([mask[owner], cont_mask], dim=1),
                    position_ids=prefix_lens[owner][:, None] + torch.arange(longest, device=lm.device),
                    use_cache=True,
                    **{lm.cache_arg: cache},
                )
                self.stats.forward_passes += 1
                logprobs = out.logits[:, :-1, :].float().log_softmax(-1)
                targets = cont[:, 1:]
                picked = logprobs.gather(2, targets[:, :, None])[:, :, 0] * cont_mask[:, 1:]
                chunk_scores = chunk_scores + picked.sum(-1)
            for i, value in zip(chunk, chunk_scores.tolist()):
                scores[i] = float(value)
        return scores


def _continuation_ids(tokenizer: Any, prefix: str, prefix_ids: list[int], continuation: str) -> list[int]:
    """The continuation's tokens as the model would see them after the prefix.

    Tokenizing prefix + continuation together and cutting off the prefix keeps a
    SentencePiece tokenizer from adding a spurious leading space to the continuation; when
    a token straddles the boundary the continuation is tokenized on its own instead.
    """
    if not continuation:
        return []
    whole = list(tokenizer(prefix + continuation)["input_ids"]) if prefix else []
    if whole[: len(prefix_ids)] == prefix_ids and len(whole) > len(prefix_ids):
        return whole[len(prefix_ids) :]
    return list(tokenizer(continuation, add_special_tokens=False)["input_ids"])


def _left_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


def _right_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return ids, mask


def _positions(mask: Any) -> Any:
    """Position ids that ignore left padding (each row starts at 0 at its first real token)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _output_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)  # named past_key_values before transformers 5.x
    return cache if cache is not None else out.past_key_values


def _chosen_logprobs(step_logits: Sequence[Any], new_tokens: Any) -> list[list[float]]:
    """Log-probability (under the raw model distribution) of each generated token."""
    import torch

    logits = torch.stack(list(step_logits), dim=1).float()  # (rows, steps, vocab)
    chosen = logits.log_softmax(-1).gather(2, new_tokens[:, : logits.shape[1], None])[:, :, 0]
    return chosen.tolist()


def _copy(completion: Completion) -> Completion:
    return Completion(
        text=completion.text,
        finish_reason=completion.finish_reason,
        token_logprobs=list(completion.token_logprobs) if completion.token_logprobs is not None else None,
        tokens=list(completion.tokens) if completion.tokens is not None else None,
    )
