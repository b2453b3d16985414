"""What the agent acts in: the ground truth of a task, independent of any LLM.

``reset(index) -> (obs, info)`` starts an episode, ``step(action) -> (obs, reward, done,
info)`` plays one real step, ``close()`` frees what the environment holds (a game engine,
a process); ``with env: ...`` closes it on the way out.  ``info`` carries everything the
agent's learning needs (the true state, the legal actions), so nothing reads the
environment's attributes.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

Obs = TypeVar("Obs")
Action = TypeVar("Action")
Info = dict[str, Any]


@runtime_checkable
class Environment(Protocol[Obs, Action]):
    def reset(self, index: Any) -> tuple[Obs, Info]: ...

    def step(self, action: Action) -> tuple[Obs, float, bool, Info]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Environment[Obs, Action]": ...

    def __exit__(self, *exc: Any) -> None: ...


class Closing:
    """``close()`` (nothing to free by default) and the context manager around it."""

    def close(self) -> None:
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
