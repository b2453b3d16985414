"""The RAFA loop of the paper, written once, as an agent an environment can drive step by step.

    obs, info = env.reset(index)
    while not done:
        action = await agent.act(obs, info)      # reason for future (if the switch says so), act for now
        obs, reward, done, info = env.step(action)
        await agent.observe(action, obs, reward, done, info)   # feedback into memory
    await agent.end_episode(result)              # learning across episodes

:meth:`RAFAAgent.run_episode` is that driver; a game with two players (Tic-Tac-Toe) drives
two agents through the same three calls in turn.  Baselines are the same loop with a part
switched off: plan once and never learn (ToT), learn without look-ahead (Reflexion),
search without acting between searches (RAP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Protocol, TypeVar

from .environment import Environment
from .llm.request_log import REFLECTION, labelled, labels
from .memory import Memory
from .search.base import Plan, TaskModel

Obs = TypeVar("Obs")
State = TypeVar("State")
Action = TypeVar("Action")

__all__ = ["Agent", "EpisodeResult", "Environment", "Planner", "RAFAAgent", "StepRecord"]


class Planner(Protocol):
    async def plan(self, model: TaskModel, state: Any) -> Plan: ...


class Agent(Protocol[Obs, Action]):
    """What an environment (or a game) drives: one action per call, feedback after it."""

    async def act(self, obs: Obs, info: dict[str, Any]) -> Action | None:
        """The action to take now (None: nothing to act on, the episode ends)."""
        ...

    async def observe(self, action: Action, obs: Obs, reward: float, done: bool, info: dict[str, Any]) -> Any:
        """A real transition (feedback for the next decision)."""
        ...

    async def end_episode(self, result: Any) -> Any:
        """The episode is over (learning across episodes)."""
        ...


def replan_every_step(memory: Memory, obs: Any, plan: Plan | None) -> bool:
    """The paper's default switching condition: reason again after every real step."""
    return True


def first_action(plan: Plan) -> Any:
    """Act for now: the plan's first action (None when the plan has none)."""
    return plan.next() if plan else None


@dataclass
class StepRecord:
    step: int
    plan: list[Any] | None
    plan_value: float | None
    tree: Any
    action: Any
    observation: Any
    reward: float
    done: bool
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "plan": self.plan,
            "plan_value": self.plan_value,
            "tree": self.tree,
            "action": self.action,
            "observation": self.observation,
            "reward": self.reward,
            "done": self.done,
            "info": self.info,
        }


@dataclass
class EpisodeResult:
    success: bool
    env_steps: int
    reward: float
    trace: list[StepRecord] = field(default_factory=list)
    # The first environment step at which the episode was solved (None if never).
    solved_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "env_steps": self.env_steps,
            "reward": self.reward,
            "solved_at": self.solved_at,
            "trace": [r.to_json() for r in self.trace],
        }


@dataclass
class RAFAAgent(Generic[State, Action]):
    """Reason (learn from memory + plan ahead) -> act the first part -> observe -> switch?

    ``make_model(memory)`` builds the LLM-backed task model from what was learned so far;
    ``state_of(obs, info, memory)`` turns an observation into the planner's state;
    ``to_action(plan)`` is the part of the plan executed now (None: nothing to act on);
    ``learn(memory, action, obs, reward, info)`` turns feedback into memory (reflections,
    corrected examples) and returns what it learned, for the log; without it the raw
    feedback is stored;
    ``learn_episode(memory, result)`` learns across episodes (a failed trajectory, a
    reflection on a game) and returns what it learned, for the log.
    ``memory`` lives as long as the agent; :meth:`run_episode` can start from another one.
    """

    planner: Planner
    make_model: Callable[[Memory], TaskModel]
    state_of: Callable[[Any, dict[str, Any], Memory], Any] = lambda obs, info, memory: obs
    to_action: Callable[[Plan], Any] = first_action
    switch: Callable[[Memory, Any, Plan | None], bool] = replan_every_step
    learn: Callable[[Memory, Any, Any, float, dict[str, Any]], Awaitable[Any]] | None = None
    learn_episode: Callable[[Memory, Any], Awaitable[Any]] | None = None
    max_steps: int = 20
    memory: Memory = field(default_factory=Memory)
    # The episode under way: its record, the plan being executed, the decision of the last act.
    episode: EpisodeResult = field(default_factory=lambda: EpisodeResult(success=False, env_steps=0, reward=0.0))
    plan: Plan | None = None
    replanned: bool = False
    acted: bool = False  # act() was called and its transition is not observed yet
    step: int = 0

    # -- the driver -------------------------------------------------------------------------
    async def run_episode(self, env: Environment, index: Any, memory: Memory | None = None) -> EpisodeResult:
        """One episode of ``env`` (the paper's loop); ``memory``: start from that one."""
        if memory is not None:
            self.memory = memory
        obs, info = _obs_and_info(env.reset(index))
        for step in range(1, self.max_steps + 1):
            with labels(step=step):  # the request log tells which real step each call served
                action = await self.act(obs, info)
                if action is None:
                    break
                obs, reward, done, info = env.step(action)
                await self.observe(action, obs, reward, done, info)
            if done:
                break
        result = self.episode
        await self.end_episode(result)
        return result

    # -- the agent protocol -------------------------------------------------------------------
    async def act(self, obs: Any, info: dict[str, Any]) -> Any:
        """Reason for the future if the switch says so, and return the action for now
        (None, logged as a failed step: the planner had nothing to act on)."""
        self.step += 1
        plan = self.plan
        self.replanned = plan is None or not plan or self.switch(self.memory, obs, plan)
        if self.replanned:
            plan = await self.planner.plan(labelled(self.make_model(self.memory)), self.state_of(obs, info, self.memory))
        assert plan is not None
        self.plan, self.acted = plan, True
        action = self.to_action(plan)
        if action is None:
            self.episode.trace.append(StepRecord(self.step, [], plan.value, plan.tree, None, obs, 0.0, True,
                                                 {"error": "the planner returned no action"}))
        return action

    async def observe(self, action: Any, obs: Any, reward: float, done: bool, info: dict[str, Any]) -> Any:
        """Learn from a real transition; returns what ``learn`` said.  After this agent's own
        act the step is recorded and the plan goes on with its next action; a transition
        made by someone else (the other player of a game) is only learned from."""
        if self.acted:
            self.acted = False
            self._record(action, obs, reward, done, info)
        with labels(role=REFLECTION):
            if self.learn is not None:
                return await self.learn(self.memory, action, obs, reward, info)
            self.memory.add_feedback(obs, reward, info)
        return None

    def _record(self, action: Any, obs: Any, reward: float, done: bool, info: dict[str, Any]) -> None:
        plan, replanned, result = self.plan, self.replanned, self.episode
        assert plan is not None
        result.env_steps = self.step
        result.reward += reward
        result.trace.append(StepRecord(
            step=self.step,
            plan=list(plan.actions) if replanned else None,
            plan_value=plan.value if replanned else None,
            tree=plan.tree if replanned else None,
            action=action,
            observation=obs,
            reward=reward,
            done=done,
            info=info,
        ))
        self.plan = plan.rest()
        if info.get("success"):
            result.success = True
            result.solved_at = self.step

    async def end_episode(self, result: Any) -> Any:
        """Learn across episodes from ``result``; the next act starts a new episode."""
        self.episode = EpisodeResult(success=False, env_steps=0, reward=0.0)
        self.plan, self.replanned, self.acted, self.step = None, False, False, 0
        if self.learn_episode is None:
            return None
        with labels(role=REFLECTION):
            return await self.learn_episode(self.memory, result)


def _obs_and_info(reset: Any) -> tuple[Any, dict[str, Any]]:
    # An environment written for the older ``reset -> obs`` would be unpacked silently wrong.
    if not (isinstance(reset, tuple) and len(reset) == 2 and isinstance(reset[1], dict)):
        raise TypeError("Environment.reset(index) must return (obs, info)")
    return reset
