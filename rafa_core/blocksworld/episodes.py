"""One instance under RAP (search only) or RAFA (search, act, observe, repeat).

Both return the episode record the runner logs (``success``, ``env_steps``, ``reward``,
``solved_at``, ``total_correct`` and the trace): for RAP the best trajectory after every
iteration and the validated answer; for RAFA every episode with, per real step, the best
trajectory of the search, the node the agent moved to (and why), what that node predicted
and what the environment showed.

Success is judged as the original judged it: RAP, the best trajectory after the last
iteration; RAFA, the *last* episode's trajectory after all ``rollouts`` episodes.
``total_correct`` is the original's per-iteration (RAP) / per-episode (RAFA) correctness
vector, and ``solved_any`` says whether any of them reached the goal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agent import EpisodeResult, RAFAAgent
from ..llm.base import BaseLLM
from ..llm.request_log import labelled, labels
from ..memory import Memory
from ..search.mcts import MCTS, MCTSConfig, MCTSPlanner, Node, Trajectory
from .domain import Action, validate_plan
from .env import BlocksworldEnv
from .model import BlocksworldModel, Situation
from .pddl_io import Instance
from .prompts import PromptSet
from .text import render_action, render_state


@dataclass
class SearchSettings:
    """Defaults = the original; ``SearchSettings.improved()`` = every project variant."""

    rollouts: int = 10  # RAP: search iterations; RAFA: episodes
    max_depth: int = 4
    alpha: float = 0.5
    w_exp: float = 1.0
    allow_undo: bool = True  # propose the action that undoes the previous one (B3)
    prior_context: str = "planbench"  # "trajectory": the whole trajectory before the action (B11)
    backup_mean: str = "k+1"  # B7
    backup_scope: str = "start"  # B8
    memory_propagate: bool = True  # B9
    best_mean: str = "depth+1"  # B10
    skip_exhausted: bool = False  # B4
    mark_failed: bool = False  # RAFA: a really walked failed trajectory is no plan any more (B5)
    stop_when_solved: bool = False  # RAFA: no further episode once one reached the goal (B6)

    @classmethod
    def improved(cls, **kwargs: Any) -> "SearchSettings":
        return cls(**{**IMPROVED, **kwargs})

    def mcts_config(self) -> MCTSConfig:
        return MCTSConfig(alpha=self.alpha, w_exp=self.w_exp, max_depth=self.max_depth,
                          backup_mean=self.backup_mean, backup_scope=self.backup_scope, best_mean=self.best_mean,
                          memory_propagate=self.memory_propagate, skip_exhausted=self.skip_exhausted)


# The project's variant of each setting the original ran differently (``--improved``).
IMPROVED: dict[str, Any] = dict(
    allow_undo=False, prior_context="trajectory", backup_mean="k", backup_scope="root", memory_propagate=False,
    best_mean="depth", skip_exhausted=True, mark_failed=True, stop_when_solved=True,
)


def trajectory_json(trajectory: Trajectory[Situation, Action]) -> dict[str, Any]:
    last = trajectory.nodes[-1] if trajectory.nodes else None
    return {
        "actions": [render_action(a) for a in trajectory.actions],
        "mean_reward": round(trajectory.mean_reward, 6) if trajectory.nodes else None,
        "predicts_goal": bool(last is not None and last.r1 > 50),
    }


def _new_tree(instance: Instance, llm: BaseLLM, prompts: PromptSet, settings: SearchSettings) -> MCTS:
    problem = instance.problem
    model = BlocksworldModel(llm=llm, goal=problem.goal, blocks=problem.blocks, prompts=prompts,
                             allow_undo=settings.allow_undo, prior_context=settings.prior_context)
    return MCTS(labelled(model), Situation.start(problem.init), settings.mcts_config())  # calls labelled by role


def _action_text(action: Action | None) -> str | None:
    return render_action(action) if action is not None else None  # None: the planner had no action


def _instance_json(instance: Instance) -> dict[str, Any]:
    return {
        "source": instance.source,
        "init": render_state(instance.problem.init),
        "goal": render_state(instance.problem.goal),
        "optimal_length": instance.optimal_length,
    }


def _invalid_predictions(tree: MCTS) -> int:
    count, stack = 0, [tree.root]
    while stack:
        node = stack.pop()
        if node.evaluated and isinstance(node.state, Situation) and not node.state.valid:
            count += 1
        stack.extend(node.children or [])
    return count


# -- RAP ---------------------------------------------------------------------------------------------
async def run_rap(instance: Instance, llm: BaseLLM, prompts: PromptSet, settings: SearchSettings) -> dict[str, Any]:
    tree = _new_tree(instance, llm, prompts, settings)
    iterations, total_correct = [], []
    problem = instance.problem
    for i in range(1, settings.rollouts + 1):
        with labels(attempt=i):
            await tree.iterate()
        best = tree.best_trajectory()
        correct = validate_plan(problem.init, problem.goal, best.actions).valid
        total_correct.append(int(correct))
        iterations.append({"iteration": i, **trajectory_json(best), "correct": correct})
    answer = tree.best_trajectory().actions
    check = validate_plan(problem.init, problem.goal, answer)
    return {
        "success": check.valid,
        "env_steps": len(answer),
        "solved_at": len(answer) if check.valid else None,
        "reward": 1.0 if check.valid else 0.0,
        "total_correct": total_correct,
        "solved_any": any(total_correct),
        "instance": _instance_json(instance),
        "plan": [render_action(a) for a in answer],
        "check": {"executable": check.executable, "goal_reached": check.goal_reached,
                  "failed_action": check.failed_action},
        "best_by_iteration": iterations,
        "invalid_predictions": _invalid_predictions(tree),
        "tree": tree.stats(),
    }


# -- RAFA ---------------------------------------------------------------------------------------------
def describe_step(tree: MCTS, best: Trajectory[Situation, Action], chosen: Node | None, why: str) -> dict[str, Any]:
    """What a RAFA step logs about its search: the best trajectory, why the agent moves to
    ``chosen`` and what that node predicted."""
    if chosen is None:
        return {"best": trajectory_json(best), "why": why}
    predicted = chosen.state if isinstance(chosen.state, Situation) and chosen.evaluated else None
    expected = predicted.atoms if predicted is not None else None
    return {
        "best": trajectory_json(best),
        "why": why,
        "expected": render_state(expected) if expected is not None else None,
        "world_model_said": predicted.raw if predicted is not None else None,
        "tree": tree.stats(),
    }


def true_situation(obs: Any, info: dict[str, Any], memory: Memory) -> Situation:
    return info["situation"]


async def run_rafa(instance: Instance, llm: BaseLLM, prompts: PromptSet, settings: SearchSettings) -> dict[str, Any]:
    tree = _new_tree(instance, llm, prompts, settings)
    planner = MCTSPlanner(tree, describe=describe_step)
    mismatches: list[int] = []

    async def learn(memory: Memory, action: Any, obs: Any, reward: float, info: dict[str, Any]) -> None:
        if info.get("illegal"):
            return
        if not await planner.observe(action, info["situation"]):
            mismatches[-1] += 1
        memory.add_feedback(obs, reward, _loggable(info))

    async def learn_episode(memory: Memory, result: EpisodeResult) -> None:
        if not result.success and settings.mark_failed:
            tree.mark_failed(planner.current)  # that plan is spent: the next episode tries another

    agent = RAFAAgent(planner=planner, make_model=lambda memory: tree.model, state_of=true_situation, learn=learn,
                      learn_episode=learn_episode, max_steps=settings.max_depth)
    with BlocksworldEnv(instance.problem, settings.max_depth) as env:
        episodes = await _rafa_episodes(instance, settings, agent, env, mismatches)
    success = bool(episodes and episodes[-1]["success"])
    solved_at, total_steps = None, 0
    for episode in episodes:
        total_steps += episode["env_steps"]
        if episode["success"] and solved_at is None:
            solved_at = total_steps
    total_correct = [int(e["success"]) for e in episodes]
    return {
        "success": success,
        "env_steps": total_steps,
        "solved_at": solved_at if success else None,
        "reward": 1.0 if success else 0.0,
        "total_correct": total_correct,
        "solved_any": any(total_correct),
        "instance": _instance_json(instance),
        "episodes_run": len(episodes),
        "episodes": episodes,
        "invalid_predictions": _invalid_predictions(tree),
        "tree": tree.stats(),
    }


async def _rafa_episodes(instance: Instance, settings: SearchSettings, agent: RAFAAgent, env: BlocksworldEnv,
                         mismatches: list[int]) -> list[dict[str, Any]]:
    """Up to ``rollouts`` episodes, each from the start, with the tree they share."""
    episodes: list[dict[str, Any]] = []
    for number in range(1, settings.rollouts + 1):
        mismatches.append(0)
        with labels(attempt=number):
            result = await agent.run_episode(env, instance.index)
        episodes.append({
            "episode": number,
            "success": result.success,
            "env_steps": result.env_steps,
            "actions": [_action_text(s.action) for s in result.trace if s.action is not None],
            "final_state": result.trace[-1].observation["state"] if result.trace else render_state(instance.problem.init),
            "wrong_predictions": mismatches[-1],
            "steps": [
                {"step": s.step, "action": _action_text(s.action), "plan_value": s.plan_value,
                 **(s.tree or {}), "observed": s.observation["state"], "info": _loggable(s.info)}
                for s in result.trace
            ],
        })
        if result.success and settings.stop_when_solved:
            break
    return episodes


def _loggable(info: dict[str, Any]) -> dict[str, Any]:
    """The step's info without the true state (an object learning reads, not a log entry)."""
    return {k: v for k, v in info.items() if k != "situation"}
