"""Token, call, cache-hit and cost accounting, with an optional cost cap."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from .errors import BudgetExceeded

PRICE_PACKAGE = "genai-prices"  # a maintained price database, shipped with its data (no network)


@functools.lru_cache(maxsize=256)
def catalogue_price(model: str) -> tuple[float, float] | None:
    """USD per 1M (prompt, completion) tokens from the price database; None if it has no price.

    Dated snapshots (``gpt-4o-2024-08-06``) resolve to their family there.
    """
    try:
        from genai_prices import Usage as PriceUsage, calc_price
    except ImportError:  # the package needs Python >= 3.11; without it, prices come from --price
        return None
    try:
        price = calc_price(PriceUsage(input_tokens=1_000_000, output_tokens=1_000_000), model_ref=model)
    except (LookupError, ValueError):
        return None
    return float(price.input_price), float(price.output_price)


def price_of(model: str) -> tuple[float, float] | None:
    """Price per 1M tokens from the price database (runs add ``--price`` and free local models)."""
    return catalogue_price(model)


@dataclass
class ModelUsage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    cost_usd: float = 0.0
    priced: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache_hits": self.cache_hits,
            "cost_usd": round(self.cost_usd, 6),
            "priced": self.priced,
        }


@dataclass
class Usage:
    """A ledger of LLM usage per model.

    Ledgers nest: an episode's ledger has the run's ledger as ``parent`` and every record
    goes to both, so the cap (held by the root) sees the whole run.
    """

    max_cost: float | None = None
    parent: "Usage | None" = None
    per_model: dict[str, ModelUsage] = field(default_factory=dict)
    # The run's request log (set on the root ledger; children write to their root's).
    request_log: Any = None
    # Set on the root: --price overrides, and models that cost nothing (local, simulated).
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    free_models: set[str] = field(default_factory=set)

    def child(self) -> "Usage":
        return Usage(parent=self)

    @property
    def requests(self) -> Any:
        """The request log every call recorded here goes to (None: calls are not logged)."""
        ledger: Usage | None = self
        while ledger is not None:
            if ledger.request_log is not None:
                return ledger.request_log
            ledger = ledger.parent
        return None

    # -- prices ----------------------------------------------------------------------------
    @property
    def root(self) -> "Usage":
        return self if self.parent is None else self.parent.root

    def set_price(self, model: str, prompt_per_mtok: float, completion_per_mtok: float) -> None:
        self.root.prices[model] = (prompt_per_mtok, completion_per_mtok)

    def mark_free(self, model: str) -> None:
        """A model that runs here (local weights, simulated): it costs nothing."""
        self.root.free_models.add(model)

    def price(self, model: str) -> tuple[float, float] | None:
        """USD per 1M (prompt, completion) tokens: --price, then free local models, then the database."""
        root = self.root
        if model in root.prices:
            return root.prices[model]
        if model in root.free_models:
            return (0.0, 0.0)
        return price_of(model)

    def record(self, model: str, prompt_tokens: int, completion_tokens: int, calls: int = 1) -> None:
        entry = self.per_model.setdefault(model, ModelUsage())
        entry.calls += calls
        entry.prompt_tokens += prompt_tokens
        entry.completion_tokens += completion_tokens
        price = self.price(model)
        if price is None:
            entry.priced = False
        else:
            entry.cost_usd += (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6
        if self.parent is not None:
            self.parent.record(model, prompt_tokens, completion_tokens, calls)

    def record_cache_hits(self, model: str, hits: int) -> None:
        self.per_model.setdefault(model, ModelUsage()).cache_hits += hits
        if self.parent is not None:
            self.parent.record_cache_hits(model, hits)

    def check_budget(self) -> None:
        """Raise :class:`BudgetExceeded` if this ledger or an ancestor has spent its cap."""
        ledger: Usage | None = self
        while ledger is not None:
            if ledger.max_cost is not None and ledger.cost_usd >= ledger.max_cost:
                raise BudgetExceeded(
                    f"cost ${ledger.cost_usd:.4f} reached --max-cost ${ledger.max_cost:.4f}"
                )
            ledger = ledger.parent

    # -- totals ----------------------------------------------------------------------------
    @property
    def calls(self) -> int:
        return sum(m.calls for m in self.per_model.values())

    @property
    def prompt_tokens(self) -> int:
        return sum(m.prompt_tokens for m in self.per_model.values())

    @property
    def completion_tokens(self) -> int:
        return sum(m.completion_tokens for m in self.per_model.values())

    @property
    def cache_hits(self) -> int:
        return sum(m.cache_hits for m in self.per_model.values())

    @property
    def cost_usd(self) -> float:
        return sum(m.cost_usd for m in self.per_model.values())

    @property
    def unpriced_models(self) -> list[str]:
        return sorted(name for name, m in self.per_model.items() if not m.priced)

    def to_json(self) -> dict[str, Any]:
        return {
            "llm_calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache_hits": self.cache_hits,
            "cost_usd": round(self.cost_usd, 6),
            "unpriced_models": self.unpriced_models,
            "per_model": {name: m.to_json() for name, m in sorted(self.per_model.items())},
        }

    def add_json(self, data: dict[str, Any]) -> None:
        """Fold a saved ledger (an episode's ``usage``) back in, e.g. when a run resumes."""
        for name, saved in data.get("per_model", {}).items():
            entry = self.per_model.setdefault(name, ModelUsage())
            entry.calls += saved.get("calls", 0)
            entry.prompt_tokens += saved.get("prompt_tokens", 0)
            entry.completion_tokens += saved.get("completion_tokens", 0)
            entry.cache_hits += saved.get("cache_hits", 0)
            entry.cost_usd += saved.get("cost_usd", 0.0)
            entry.priced = entry.priced and saved.get("priced", True)
