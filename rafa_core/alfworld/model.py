"""The LLM-backed ALFWorld model the look-ahead searches over: proposer, world model, critic.

By default every part is what the original code did (``alfworld_trial_wv.py``); each of our
improvements is a ``ModelConfig`` flag (``--improved`` turns them all on).

- ``propose``: 6 samples at temperature 1.0 with token log-probabilities, ranked by mean
  token log-probability; only candidate commands are kept, then padded up to the breadth
  with the candidates closest to what was sampled (when no sample is a candidate the step
  falls back to the closest one, and says so). The candidates are the state's
  ``admissible``: as the original, the game's first admissible list (without its last two
  entries) plus commands read off the transcript (``world.original_candidates``); with
  ``real_admissible`` the engine's list at the real state and ``World.candidates`` at
  imagined ones.
- ``predict``: the next observation, greedy, one line: the actor's prompt (memory included)
  continued after "> command", as the original; ``simulator_prompt``: a dedicated prompt.
- ``evaluate``: the critic's next line. As the original, its transcript shows each command as
  "OK." and it may answer "OK." (no new value); every critic line it writes is kept in the
  critic's history. ``critic_sees_actions``: commands shown, a line always asked for, kept
  only when its value changed. The critic never ends anything unless ``critic_terminal``
  (a value of 1 then makes the node terminal, at the real root too).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from ..llm.base import BaseLLM, Completion
from ..llm.memo import Memo
from .prompts import (
    Turn,
    actor_prompt,
    critic_prompt,
    is_no_critic,
    parse_action,
    parse_critic,
    parse_observation,
    world_prompt,
)
from .world import World, original_candidates

HIDDEN_COMMANDS = {"help"}  # its answer is a page of text that helps no plan


@dataclass
class AlfState:
    """A real or imagined point of an episode. Real turns are shared with the episode, so
    the critic line written at the real root stays in the critic's history."""

    kind: str
    intro: str
    turns: tuple[Turn, ...]
    admissible: tuple[str, ...]
    initial: tuple[str, ...] = ()  # the game's first admissible list without its last two entries
    imagined: int = 0  # how many of the last turns are imagined
    path_value: float | None = None  # most recent critic value on the path
    done: bool = False
    notes: list[str] = field(default_factory=list)

    def to_log(self) -> dict[str, Any]:
        last = self.turns[-1] if self.turns else None
        return {
            "observation": last.observation if last else self.intro,
            "critic": last.critic if last else None,
            "imagined": self.imagined > 0,
            "notes": list(self.notes),
        }


def last_critic_value(turns: tuple[Turn, ...] | list[Turn]) -> float | None:
    for turn in reversed(turns):
        if turn.critic:
            return parse_critic(turn.critic)[1]
    return None


@dataclass
class ModelConfig:
    samples: int = 6
    temperature: float = 1.0
    breadth: int = 2
    action_tokens: int = 100  # the original's cap for every call
    observation_tokens: int = 100
    critic_tokens: int = 100
    max_steps: int | None = None  # the episode's step limit: no prefetch for a plan that will not come
    # Improvements over the original (all off by default; --improved turns them on):
    critic_terminal: bool = False  # a critic value of 1 ends the branch (at the real root: the episode)
    simulator_prompt: bool = False  # world model: a dedicated prompt, no memory
    critic_sees_actions: bool = False  # critic: commands shown, always a line, kept when the value changes
    real_admissible: bool = False  # candidates: the engine's list at real states, World.candidates imagined
    swap_example: bool = True  # the memory example replaces the last plain trace (False: added as a third)


@dataclass
class Journal:
    """What one episode's model calls leave for the logs."""

    first_prompt: str | None = None
    fallbacks: int = 0
    # The episode's answers by request. After a real step whose observation the world model
    # predicted, the new tree repeats prompts of the previous one (same history): they are
    # answered once. A proposer prompt keeps its first draw of samples, like a cache would.
    # Requests the planner prefetched and nobody asked for by the episode's end are wasted.
    requests: Memo[str, list[Completion]] = field(default_factory=Memo, repr=False)

    @staticmethod
    def key(prompt: Any, params: dict[str, Any]) -> str:
        return json.dumps([prompt, params], sort_keys=True, ensure_ascii=False, default=str)

    async def ask(self, llm: BaseLLM, prompt: Any, **params: Any) -> list[Completion]:
        return await self.requests.get(self.key(prompt, params), lambda: llm.generate(prompt, **params))

    def prefetch(self, llm: BaseLLM, prompt: Any, **params: Any) -> None:
        """Start a request a later ``ask`` will probably make; do not wait for it."""
        self.requests.prefetch(self.key(prompt, params), lambda: llm.generate(prompt, **params))

    async def close(self) -> None:
        """At the episode's end: let prefetched requests still running finish (not cancelled:
        usage and logs stay the same whatever the timing), count the unused as wasted."""
        await self.requests.settle()

    @property
    def speculative(self) -> int:
        """Requests started ahead of need."""
        return self.requests.prefetched

    @property
    def speculative_wasted(self) -> int:
        """Of those, never asked for by the episode's end."""
        return self.requests.wasted

    def speculation_note(self) -> str | None:
        if not self.speculative:
            return None
        return f"speculative calls: {self.speculative}, wasted: {self.speculative_wasted}"


class AlfWorldModel:
    """The TaskModel of one real step (rebuilt each step with the current memory)."""

    def __init__(
        self,
        llm: BaseLLM,
        reflections: list[str],
        reflection_style: bool,
        journal: Journal,
        config: ModelConfig | None = None,
    ) -> None:
        self.llm = llm
        self.reflections = reflections
        self.reflection_style = reflection_style
        self.journal = journal
        self.config = config or ModelConfig()

    # -- proposer -------------------------------------------------------------------------
    def _proposer_request(self, state: AlfState) -> tuple[str, dict[str, Any]]:
        cfg = self.config
        prompt = actor_prompt(state.kind, state.intro, list(state.turns), self.reflections, self.reflection_style,
                              swap_example=cfg.swap_example)
        return prompt, {"n": cfg.samples, "temperature": cfg.temperature, "max_tokens": cfg.action_tokens, "logprobs": True}

    def prefetch(self, state: AlfState) -> None:
        """The planner's hint that the next plan expands ``state``: start its proposer request
        (its critic request was made already, when this plan evaluated it). A backend that
        runs one request at a time could not overlap it with anything: then nothing starts."""
        if self.llm.concurrency <= 1 or self._last_real_step(state):
            return
        prompt, params = self._proposer_request(state)
        self.journal.prefetch(self.llm, prompt, **params)

    def _last_real_step(self, state: AlfState) -> bool:
        """Whether the step being planned is the episode's last (then no plan follows it)."""
        real_steps_done = len(state.turns) - state.imagined
        return self.config.max_steps is not None and real_steps_done + 1 >= self.config.max_steps

    async def propose(self, state: AlfState) -> list[str]:
        cfg = self.config
        prompt, params = self._proposer_request(state)
        if self.journal.first_prompt is None:
            self.journal.first_prompt = prompt
        samples = await self.journal.ask(self.llm, prompt, **params)
        ranked = rank_samples([(parse_action(c.text), c.mean_logprob) for c in samples])
        allowed = [c for c in state.admissible if c not in HIDDEN_COMMANDS]
        kept = [c for c in ranked if c in allowed]
        if not kept:
            if not state.imagined:
                self.journal.fallbacks += 1
            shown = "; ".join(repr(c.text.strip()[:40]) for c in samples[:3])
            state.notes.append(f"proposer: no admissible command among {len(samples)} samples ({shown}); "
                               "falling back to the closest admissible command")
        padding = closest(ranked, [c for c in allowed if c not in kept])
        if len(kept) < cfg.breadth and padding:
            added = padding[: cfg.breadth - len(kept)]
            if kept:
                state.notes.append(f"proposer: padded with {added}")
            else:
                state.notes.append(f"proposer: fallback {added[0]!r}")
            kept += added
        return kept

    # -- world model ----------------------------------------------------------------------
    async def predict(self, state: AlfState, action: str) -> AlfState:
        if self.config.simulator_prompt:
            prompt = world_prompt(state.kind, state.intro, list(state.turns), action)
        else:
            prompt = actor_prompt(state.kind, state.intro, list(state.turns), self.reflections, self.reflection_style,
                                  swap_example=self.config.swap_example, pending=action)
        answer = (await self.journal.ask(self.llm, prompt, n=1, temperature=0.0, max_tokens=self.config.observation_tokens))[0]
        observation = parse_observation(answer.text)
        notes = []
        if not observation:
            observation = "Nothing happens."
            notes.append("world model: empty answer, assumed 'Nothing happens.'")
        turns = state.turns + (Turn(action, observation),)
        if self.config.real_admissible:
            world = World.from_transcript(state.intro, [(t.action, t.observation) for t in turns])
            admissible = tuple(world.candidates())
        else:
            admissible = tuple(original_candidates(state.initial, list(turns)))
        return AlfState(
            kind=state.kind,
            intro=state.intro,
            turns=turns,
            admissible=admissible,
            initial=state.initial,
            imagined=state.imagined + 1,
            path_value=state.path_value,
            notes=notes,
        )

    # -- critic ---------------------------------------------------------------------------
    async def evaluate(self, state: AlfState) -> float | None:
        cfg = self.config
        prompt = critic_prompt(state.kind, state.intro, list(state.turns), self.reflections,
                               see_actions=cfg.critic_sees_actions)
        answer = (await self.journal.ask(self.llm, prompt, n=1, temperature=0.0, max_tokens=cfg.critic_tokens))[0]
        if not cfg.critic_sees_actions and is_no_critic(answer.text):
            # "OK.": no new critic line; the real root keeps the last real value.
            return state.path_value if not state.imagined else None
        line, value = parse_critic(answer.text)
        if value is None:
            state.notes.append(f"critic: no value k/N in {answer.text.strip()[:60]!r}; keeping the previous value")
            return state.path_value if not state.imagined else None
        if cfg.critic_terminal:
            state.done = value >= 1.0
        changed = value != state.path_value
        if not cfg.critic_sees_actions:  # as the original: every critic line written is a new value
            changed = True
        if changed and state.turns:
            state.turns[-1].critic = line
        state.path_value = value
        # The real root always reports its value: the leaves start from it.
        return value if (changed or not state.imagined) else None

    def is_terminal(self, state: AlfState) -> bool:
        return state.done


def rank_samples(samples: list[tuple[str, float]]) -> list[str]:
    """Distinct non-empty commands, best mean token log-probability first (then frequency)."""
    best: dict[str, tuple[float, int, int]] = {}
    for i, (command, logprob) in enumerate(samples):
        if not command:
            continue
        lp, count, first = best.get(command, (float("-inf"), 0, i))
        best[command] = (max(lp, logprob), count + 1, first)
    return sorted(best, key=lambda c: (-best[c][0], -best[c][1], best[c][2]))


def closest(samples: list[str], commands: list[str]) -> list[str]:
    """``commands`` ordered by how close they are to any sample (ties keep their order)."""
    if not samples:
        return list(commands)

    def similarity(command: str) -> float:
        return max(difflib.SequenceMatcher(None, command, s).ratio() for s in samples)

    return sorted(commands, key=lambda c: -similarity(c))
