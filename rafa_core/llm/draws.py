"""Fresh draws of repeated requests, reproducibly.

``BaseLLM.generate(..., first_sample=k)`` returns samples ``k, k+1, ...`` of a request, each
cached on its own. A call site that must re-sample a request it already asked (as code that
calls the API every time does) takes its ``first_sample`` from a :class:`Draws`: the k-th
asking of a request in a stream gets the next unused samples. A stream names one source of
randomness (e.g. seed + episode) and owns its own range of sample indices, so

- the same stream asks again in the same order -> the same samples (a rerun with the same
  seed replays from the cache, no backend call);
- another stream (another episode or seed) -> other samples, never a shared first draw.

A sampler that takes a seed (OpenAI's ``seed``, llama.cpp's, torch's) gets, for draw ``k``
(sample index ``k``) of a run with ``--seed s``, the seed :func:`sampler_seed` ``(s, k)``:
``(s + k * SEED_STEP) mod 2**63``. Draw 0 is sent ``s`` itself; the rule is a bijection
between draws and seeds for every ``s``, so two draws of one run never share a seed and
:func:`draw_of` reads the draw back (the loopback test server does, to answer as
``ScriptedLLM`` would).
"""

from __future__ import annotations

import hashlib
from typing import Any, Hashable

from .base import Prompt, as_messages

# Sample indices a stream may use per request before it would reach the next stream's range.
STREAM_SPAN = 10**6
# Seeds are 63-bit (OpenAI's ``seed`` is a signed 64-bit integer). The step is odd (the 64-bit
# golden ratio constant), so k -> s + k * step is one-to-one modulo 2**63.
SEED_BITS = 63
SEED_STEP = 0x9E3779B97F4A7C15 % 2**SEED_BITS
_SEED_STEP_INVERSE = pow(SEED_STEP, -1, 2**SEED_BITS)


def sampler_seed(seed: int, draw: int) -> int:
    """The seed a sampler is given for sample ``draw`` of a request in a run seeded ``seed``."""
    return (seed + draw * SEED_STEP) % 2**SEED_BITS


def draw_of(seed: int, sampled_with: int) -> int:
    """Which draw of a run seeded ``seed`` was sampled with ``sampled_with`` (inverse of :func:`sampler_seed`)."""
    return ((sampled_with - seed) * _SEED_STEP_INVERSE) % 2**SEED_BITS


class Draws:
    """Which samples of each request a stream has used so far."""

    def __init__(self, stream: str) -> None:
        digest = hashlib.sha256(stream.encode("utf-8")).digest()
        self.base = int.from_bytes(digest[:4], "big") * STREAM_SPAN
        self._used: dict[Hashable, int] = {}

    def first_sample(self, prompt: Prompt, n: int, **params: Any) -> int:
        """The first of ``n`` samples of this request not yet used in this stream.

        ``params`` are the request's other settings (temperature, max_tokens, stop, ...):
        a request with other settings is another request. Call it right before
        ``generate``, in the order the requests are made, for the order to be reproducible.
        """
        # A hashable key (JSON would cost ten times as much): equal requests, equal keys.
        key = (tuple(tuple(sorted(m.items())) for m in as_messages(prompt)),
               tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())))
        used = self._used.get(key, 0)
        self._used[key] = used + n
        return self.base + used

