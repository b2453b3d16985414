"""Fresh draws of repeated requests, reproducibly.

``BaseLLM.generate(..., first_sample=k)`` returns samples ``k, k+1, ...`` of a request, each
cached on its own. A call site that must re-sample a request it already asked (as code that
calls the API every time does) takes its ``first_sample`` from a :class:`Draws`: the k-th
asking of a request in a stream gets the next unused samples. A stream names one source of
randomness (e.g. seed + episode) and owns its own range of sample indices, so

- the same stream asks again in the same order -> the same samples (a rerun with the same
  seed replays from the cache, no backend call);
- another stream (another episode or seed) -> other samples, never a shared first draw.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .base import Prompt, as_messages

# Sample indices a stream may use per request before it would reach the next stream's range.
STREAM_SPAN = 10**6


class Draws:
    """Which samples of each request a stream has used so far."""

    def __init__(self, stream: str) -> None:
        digest = hashlib.sha256(stream.encode("utf-8")).digest()
        self.base = int.from_bytes(digest[:4], "big") * STREAM_SPAN
        self._used: dict[str, int] = {}

    def first_sample(self, prompt: Prompt, n: int, **params: Any) -> int:
        """The first of ``n`` samples of this request not yet used in this stream.

        ``params`` are the request's other settings (temperature, max_tokens, stop, ...):
        a request with other settings is another request. Call it right before
        ``generate``, in the order the requests are made, for the order to be reproducible.
        """
        key = json.dumps({"messages": as_messages(prompt), **params}, sort_keys=True, default=str)
        used = self._used.get(key, 0)
        self._used[key] = used + n
        return self.base + used
