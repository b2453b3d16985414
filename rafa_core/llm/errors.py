"""The error classes of the LLM layer, in a module of their own so that every layer can raise them
without importing the machinery (``base``, ``cache``, ``usage`` and the data loaders all do)."""


class UserError(Exception):
    """Bad user input (flags, keys, files, servers): one line for the user, exit code 2."""


class BackendError(Exception):
    """The backend failed after its retries (server down, malformed answers, ...)."""


class NotSupported(UserError):
    """The backend cannot do what was asked (e.g. ``loglik`` on a chat-only server)."""


class ContextOverflow(UserError):
    """A prompt plus its ``max_tokens`` does not fit the model's context window (see context.py)."""


class BudgetExceeded(Exception):
    """The run's ``--max-cost`` is spent; the runner stops cleanly."""
