"""What every backend is built with, in a module of its own: the registry builds backends from it
and the simulated backends take it, so neither has to import the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .base import BaseLLM
from .cache import ResponseCache
from .usage import Usage


@dataclass
class BackendOptions:
    base_url: str | None = None
    api_key: str | None = None
    cache: ResponseCache | None = None
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 6
    seed: int = 0
    usage: Usage = field(default_factory=Usage)
    # The model simulated backends count tokens as (default tokens.DEFAULT_STAND_IN).
    counts_as: str | None = None
    # --context-window: check prompts against this window; llamacpp opens the model with it.
    context_window: int | None = None


# Builds a benchmark's simulated backend from (error rate, options).
OracleFactory = Callable[[float, BackendOptions], BaseLLM]
