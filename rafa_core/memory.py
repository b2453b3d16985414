"""The feedback buffer RAFA learns from: reflections, learned examples, trial summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Memory:
    """What the agent carries from one reasoning step (or trial) to the next.

    ``feedback`` holds the raw observations of this episode; ``reflections`` short lessons
    written by the LLM; ``examples`` corrected in-context examples per model (e.g. a world
    model's mispredictions, fixed); ``trials`` one summary per finished trial.
    """

    feedback: list[dict[str, Any]] = field(default_factory=list)
    reflections: list[str] = field(default_factory=list)
    examples: dict[str, list[Any]] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    # Bumped on every change, so caches keyed by memory state go stale automatically.
    version: int = 0

    def add_feedback(self, observation: Any, reward: float = 0.0, info: dict[str, Any] | None = None) -> None:
        self.feedback.append({"observation": observation, "reward": reward, "info": info or {}})
        self.version += 1

    def add_reflection(self, text: str) -> None:
        text = text.strip()
        if text:
            self.reflections.append(text)
            self.version += 1

    def recent_reflections(self, k: int = 3) -> list[str]:
        return self.reflections[-k:] if k > 0 else []

    def add_example(self, kind: str, example: Any) -> None:
        self.examples.setdefault(kind, []).append(example)
        self.version += 1

    def examples_for(self, kind: str) -> list[Any]:
        return list(self.examples.get(kind, []))

    def add_trial(self, summary: dict[str, Any]) -> None:
        self.trials.append(summary)
        self.version += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "feedback": self.feedback,
            "reflections": self.reflections,
            "examples": self.examples,
            "trials": self.trials,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Memory":
        return cls(
            feedback=list(data.get("feedback", [])),
            reflections=list(data.get("reflections", [])),
            examples={k: list(v) for k, v in data.get("examples", {}).items()},
            trials=list(data.get("trials", [])),
            version=int(data.get("version", 0)),
        )
