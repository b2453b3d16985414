"""LLM backends behind one async protocol (see docs/architecture.md, "The LLM layer")."""

from .base import LLM, BaseLLM, Completion, GenerationResult, Prompt, as_messages, as_text
from .errors import BackendError, BudgetExceeded, NotSupported, UserError
from .cache import ResponseCache
from .registry import BackendOptions, describe_choice, make_llm
from .scripted import ReplayLLM, ScriptedLLM, ScriptedRequest
from .usage import Usage, price_of

__all__ = [
    "LLM", "BackendError", "BaseLLM", "BudgetExceeded", "Completion", "GenerationResult",
    "NotSupported", "Prompt", "UserError", "as_messages", "as_text", "ResponseCache",
    "BackendOptions", "describe_choice", "make_llm", "ReplayLLM", "ScriptedLLM",
    "ScriptedRequest", "Usage", "price_of",
]
