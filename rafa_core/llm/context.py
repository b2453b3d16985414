"""Context windows, and fitting a prompt's examples into one.

Every backend checks a request before sending it (``BaseLLM.check_context``): its prompt,
counted by the model's own tokenizer (:mod:`.tokens`), plus ``max_tokens`` must fit the
model's window, else one clear :class:`~rafa_core.llm.base.ContextOverflow` (exit code 2)
instead of a provider's 400 in the middle of a run.  The window comes from
``--context-window`` if given, else the model itself (hf: its config; llamacpp: the context
it was opened with), else :data:`CONTEXT_WINDOWS`; a model in none of them is not checked.

A benchmark whose prompts grow with what it learns applies its own documented rule first,
through :func:`fit_examples` (Tic-Tac-Toe: the oldest learned examples are left out).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

# Context windows in tokens (prompt + completion), from OpenAI's model pages; maintained
# here.  Dated snapshots fall back to their family (gpt-4o-2024-08-06 -> gpt-4o).  The
# gpt-3.5-turbo alias is 16k today; the paper's 2023 snapshots had 4k.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4": 8_192,
    "gpt-4-0314": 8_192,
    "gpt-4-0613": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-4-turbo": 128_000,
    "gpt-4-1106-preview": 128_000,
    "gpt-4-0125-preview": 128_000,
    "gpt-3.5-turbo": 16_385,
    "gpt-3.5-turbo-0301": 4_096,
    "gpt-3.5-turbo-0613": 4_096,
    "gpt-3.5-turbo-16k": 16_385,
    "gpt-3.5-turbo-instruct": 4_096,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    "gpt-5": 400_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "davinci-002": 16_384,
    "babbage-002": 16_384,
}


def known_context_window(model: str) -> int | None:
    """The window of a model in :data:`CONTEXT_WINDOWS` (dated snapshots and fine-tunes
    fall back to their family); None for a model not in the table."""
    if model.startswith("ft:"):
        model = model[3:].split(":", 1)[0]
    if model in CONTEXT_WINDOWS:
        return CONTEXT_WINDOWS[model]
    family = max((m for m in CONTEXT_WINDOWS if model.startswith(m + "-")), key=len, default=None)
    return CONTEXT_WINDOWS[family] if family else None


def fit_examples(
    llm: Any,
    build: Callable[[list[T]], Any],
    examples: Sequence[T],
    max_tokens: int,
    *,
    keep_first: int = 0,
) -> tuple[Any, int]:
    """``build(examples)`` with as few of the oldest examples left out as the window needs.

    ``examples`` run oldest to newest; the first ``keep_first`` (fixed ones) are never left
    out, the rest are dropped oldest first.  Returns (prompt, how many were left out).  If
    even the fewest examples do not fit, that prompt is returned and the request's own
    check refuses it with one clear error.
    """
    items = list(examples)
    window = llm.context_window()

    def prompt_without(dropped: int) -> Any:
        return build(items[:keep_first] + items[keep_first + dropped :])

    def fits(dropped: int) -> bool:
        return llm.count_prompt(prompt_without(dropped)) + max_tokens <= window

    droppable = max(0, len(items) - keep_first)
    if window is None or fits(0):
        return prompt_without(0), 0
    if not fits(droppable):
        return prompt_without(droppable), droppable
    low, high = 1, droppable  # the fewest to leave out: fits() only turns true as more go
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return prompt_without(low), low
