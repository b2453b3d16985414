"""The RAFA loop of the paper, written once.

    obs = env.reset()
    while not done:
        if switch(memory, obs):                     # re-plan?
            plan = await planner.plan(model(memory), state)   # reason for future
        obs, reward, done, info = env.step(act(plan))         # act for now
        memory.add(obs, reward, info)                         # feedback for the next plan

Baselines are the same loop with a part switched off: plan once and never learn (ToT),
learn without look-ahead (Reflexion), search without acting between searches (RAP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Protocol, TypeVar

from .llm.request_log import REFLECTION, labelled, labels
from .memory import Memory
from .search.base import Plan, TaskModel

Obs = TypeVar("Obs")
State = TypeVar("State")
Action = TypeVar("Action")


class Environment(Protocol[Obs, Action]):
    """Ground truth, independent of any LLM."""

    def reset(self, index: Any) -> Obs: ...

    def step(self, action: Action) -> tuple[Obs, float, bool, dict[str, Any]]: ...


class Planner(Protocol):
    async def plan(self, model: TaskModel, state: Any) -> Plan: ...


def replan_every_step(memory: Memory, obs: Any, plan: Plan | None) -> bool:
    """The paper's default switching condition: reason again after every real step."""
    return True


def first_action(plan: Plan) -> Any:
    return plan.next()


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
    ``state_of(obs, memory)`` turns an observation into the planner's state;
    ``to_action(plan)`` is the part of the plan executed now;
    ``learn(memory, action, obs, reward, info)`` turns feedback into memory (reflections,
    corrected examples); without it the raw feedback is stored.
    """

    planner: Planner
    make_model: Callable[[Memory], TaskModel]
    state_of: Callable[[Any, Memory], Any] = lambda obs, memory: obs
    to_action: Callable[[Plan], Any] = first_action
    switch: Callable[[Memory, Any, Plan | None], bool] = replan_every_step
    learn: Callable[[Memory, Any, Any, float, dict[str, Any]], Awaitable[None]] | None = None
    max_steps: int = 20

    async def run_episode(self, env: Environment, index: Any, memory: Memory | None = None) -> EpisodeResult:
        memory = memory if memory is not None else Memory()
        obs = env.reset(index)
        plan: Plan | None = None
        result = EpisodeResult(success=False, env_steps=0, reward=0.0)
        for step in range(1, self.max_steps + 1):
            with labels(step=step):  # the request log tells which real step each call served
                stop = await self._step(env, memory, step, result, obs, plan)
            if stop is None:
                break
            obs, plan = stop
        return result

    async def _step(self, env: Environment, memory: Memory, step: int, result: EpisodeResult, obs: Any,
                    plan: Plan | None) -> tuple[Any, Plan] | None:
        """One real step: reason (if the switch says so), act, observe, learn. None: the episode ends."""
        replanned = plan is None or not plan or self.switch(memory, obs, plan)
        if replanned:
            plan = await self.planner.plan(labelled(self.make_model(memory)), self.state_of(obs, memory))
        if not plan:
            # Nothing to act on: a failed step in the log, and the episode ends here.
            result.trace.append(StepRecord(step, [], plan.value, plan.tree, None, obs, 0.0, True,
                                           {"error": "the planner returned no action"}))
            return None
        action = self.to_action(plan)
        obs, reward, done, info = env.step(action)
        result.env_steps = step
        result.reward += reward
        result.trace.append(
            StepRecord(
                step=step,
                plan=list(plan.actions) if replanned else None,
                plan_value=plan.value if replanned else None,
                tree=plan.tree if replanned else None,
                action=action,
                observation=obs,
                reward=reward,
                done=done,
                info=info,
            )
        )
        plan = plan.rest()
        with labels(role=REFLECTION):
            if self.learn is not None:
                await self.learn(memory, action, obs, reward, info)
            else:
                memory.add_feedback(obs, reward, info)
        if info.get("success"):
            result.success = True
            result.solved_at = step
        return None if done else (obs, plan)
