"""Trials over the games with per-game reflection memory (RAFA's ALFWorld protocol).

Trial ``t`` plays every game not solved in an earlier trial (solved games are not replayed
but still count). After the trial, every game that failed gets a reflection from the
reflection model — given the failed critic history (as the original: commands shown as
"OK.", critic lines kept; it writes a corrected critic) or, with ``plan_reflections``, the
failed actions and observations (it writes a plan), and up to the last three earlier
reflections — and the last three reflections are prepended ("your memory for the task") to
that game's prompts in later trials.

Everything is resumable at game granularity: finished games are lines of
``episodes.jsonl`` (index ``"<trial>:<game>"``), reflections lines of ``reflections.jsonl``;
a restarted run skips what is there. The per-trial files are rebuilt from those:
``env_results_trial_<t>.json`` (one record per game), ``trial_<t>.log`` (readable
trajectories) and ``world.log`` (cumulative SUCCESS / ADDITIONAL SUCCESS / FAIL / TOTAL /
ACCURACY per trial).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..agent import RAFAAgent
from ..llm.base import BaseLLM
from ..llm.errors import UserError
from ..llm.request_log import REFLECTION, labels
from ..llm.usage import Usage
from ..memory import Memory
from ..runner import Batch, JsonlLog, RunDir, Runner, summarize, write_json_atomic
from ..search.lookahead import LookaheadPlanner
from .env import AlfWorld
from .model import AlfState, AlfWorldModel, Journal, ModelConfig, last_critic_value
from .prompts import Turn, critic_reflection_prompt, parse_reflection, reflection_prompt
from .world import original_candidates


@dataclass
class TrialSettings:
    num_trials: int = 11
    num_envs: int = 134
    use_memory: bool = True
    start_trial: int = 0
    max_steps: int = 20
    breadth: int = 2
    depth: int = 2
    discount: float = 0.9
    speculative_leaves: bool = False  # prefetch every leaf's proposals (faster, wastes calls)
    samples: int = 6
    memory_size: int = 3
    action_tokens: int | None = None  # token caps: 100 each as the original (32 / 80 / 96 with short_answers)
    observation_tokens: int | None = None
    critic_tokens: int | None = None
    concurrency: int = 1
    progress: bool = True
    # Improvements over the original (off by default; --improved turns them all on). Each is
    # a key of the config's ``rafa:`` section.
    critic_terminal: bool = False  # A1: a critic value of 1 ends a branch, at the real root the episode
    deep_discount: bool = False  # A2: discount ** depth (the original: ** min(depth, D - 1))
    simulator_prompt: bool = False  # A3: the world model's own prompt, without the memory
    real_admissible: bool = False  # A4: the engine's admissible commands at every real state
    critic_sees_actions: bool = False  # A6: the critic sees the commands and always writes a line
    plan_reflections: bool = False  # A8: reflect on actions + observations and write a plan
    short_answers: bool = False  # A9: token caps 32 / 80 / 96 (the original: 100 for each)
    add_memory_example: bool = False  # A11: the memory example as a third trace, only with memory

    def model_config(self) -> ModelConfig:
        short = self.short_answers
        return ModelConfig(samples=self.samples, breadth=self.breadth, max_steps=self.max_steps,
                           action_tokens=self.action_tokens or (32 if short else 100),
                           observation_tokens=self.observation_tokens or (80 if short else 100),
                           critic_tokens=self.critic_tokens or (96 if short else 100), critic_terminal=self.critic_terminal,
                           simulator_prompt=self.simulator_prompt, critic_sees_actions=self.critic_sees_actions,
                           real_admissible=self.real_admissible, swap_example=not self.add_memory_example)

    def memory_example(self, trial: int) -> bool:
        """Whether the actor's prompt shows the memory example: from trial 1 on, as the original
        (even without memory); with ``add_memory_example`` only when memory is on."""
        if self.add_memory_example:
            return trial > 0 and self.use_memory
        return trial > 0


# The improvements --improved turns on (the config keys above).
IMPROVEMENTS = ("critic_terminal", "deep_discount", "simulator_prompt", "real_admissible",
                "critic_sees_actions", "plan_reflections", "short_answers", "add_memory_example")


@dataclass
class EpisodeContext:
    """The real history of one episode, turned into the planner's root state each step
    (from the observation and the step's ``info``: the task kind, the admissible commands)."""

    real_admissible: bool = False
    intro: str = ""
    kind: str = ""
    initial: tuple[str, ...] = ()  # the first admissible list without its last two entries
    turns: list[Turn] = field(default_factory=list)

    def state(self, obs: str, info: dict[str, Any], memory: Memory) -> AlfState:
        if not self.intro:  # the episode's first state: what reset() said
            self.intro, self.kind = obs, info["task_type"]
            self.initial = tuple(info["admissible_commands"][:-2])
        if self.real_admissible:
            admissible = tuple(info["admissible_commands"])
        else:
            admissible = tuple(original_candidates(self.initial, self.turns))
        return AlfState(
            kind=self.kind,
            intro=self.intro,
            turns=tuple(self.turns),
            admissible=admissible,
            initial=self.initial,
            path_value=last_critic_value(self.turns),
        )

    async def learn(self, memory: Memory, action: str, obs: str, reward: float, info: dict[str, Any]) -> None:
        self.turns.append(Turn(action, obs))


def split_index(index: str) -> tuple[int, int]:
    trial, game = str(index).split(":")
    return int(trial), int(game)


class TrialLoop:
    """The trials as batches of the runner: the schedule, the episode, reflecting and the
    per-trial files after each trial, and the summary over games.  The driver hands it its
    runner (``python alfworld/run.py``); alone it makes one (``run()``, for tests)."""

    def __init__(
        self,
        run_dir: RunDir,
        games: AlfWorld,
        llm: BaseLLM,
        reflect_llm: BaseLLM,
        usage: Usage,
        settings: TrialSettings,
        runner: Runner | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.games = games
        self.llm = llm
        self.reflect_llm = reflect_llm
        self.usage = usage
        self.settings = settings
        self.num_envs = min(settings.num_envs, len(games))
        self.runner = runner or Runner(
            run_dir,
            usage,
            max_steps=settings.max_steps,
            concurrency=settings.concurrency,
            simulated=llm.simulated or reflect_llm.simulated,
            progress=settings.progress,
        )
        self.reflections = JsonlLog(run_dir.file("reflections.jsonl"))
        self.planner = LookaheadPlanner(breadth=settings.breadth, depth=settings.depth, discount=settings.discount,
                                        speculative_leaves=settings.speculative_leaves,
                                        deep_discount=settings.deep_discount)

    # -- what is known so far ---------------------------------------------------------------
    def records(self, trial: int) -> dict[int, dict[str, Any]]:
        out = {}
        for r in self.runner.log.records:
            t, z = split_index(r["index"])
            if t == trial:
                out[z] = r
        return out

    def solved_before(self, game: int, trial: int) -> bool:
        return any(
            r.get("success") and split_index(r["index"])[1] == game and split_index(r["index"])[0] < trial
            for r in self.runner.log.records
        )

    def memory_of(self, game: int, before_trial: int) -> list[str]:
        texts = [r["text"] for r in self.reflections.records if r["game"] == game and r["trial"] < before_trial]
        return texts[-self.settings.memory_size:] if self.settings.memory_size > 0 else []

    # -- the run ------------------------------------------------------------------------------
    def schedule(self) -> Iterator[Batch]:
        """One batch per trial: the games not solved in an earlier one (drawn after the last
        trial's reflections); trials before --start_trial_num are not played again."""
        for trial in range(self.settings.num_trials):
            todo = [z for z in range(self.num_envs) if not self.solved_before(z, trial)]
            yield Batch([f"{trial}:{z}" for z in todo], desc=f"trial {trial}", play=trial >= self.settings.start_trial,
                        tag=(trial, todo))

    async def after_trial(self, batch: Batch) -> None:
        trial, todo = batch.tag
        missing = [z for z in todo if z not in self.records(trial)]
        if missing:  # only possible for trials before --start_trial_num
            raise UserError(
                f"--start_trial_num {self.settings.start_trial}: trial {trial} is incomplete in "
                f"{self.run_dir.path} ({len(missing)} games missing); resume from an earlier trial"
            )
        if self.settings.use_memory:
            await self.reflect(trial)
        self.write_trial_files(trial)

    async def run(self) -> dict[str, Any]:
        result = await self.runner.run_schedule(self.schedule(), self.play, after_batch=self.after_trial)
        summary = self.final_summary(result.summary.get("stopped"))
        write_json_atomic(self.run_dir.file("summary.json"), summary)
        return summary

    async def play(self, index: str, ledger: Usage) -> dict[str, Any]:
        trial, game = split_index(index)
        llm = self.llm.with_usage(ledger)
        memory = Memory()
        for text in self.memory_of(game, trial) if self.settings.use_memory else []:
            memory.add_reflection(text)
        journal = Journal()
        env = self.games.make_env()
        s = self.settings
        context = EpisodeContext(real_admissible=s.real_admissible)
        config = s.model_config()
        agent = RAFAAgent(
            planner=self.planner,
            make_model=lambda mem: AlfWorldModel(
                llm, mem.recent_reflections(s.memory_size), s.memory_example(trial), journal, config
            ),
            state_of=context.state,
            learn=context.learn,
            max_steps=self.settings.max_steps,
        )
        with env:  # closes the TextWorld environment
            try:
                result = await agent.run_episode(env, game, memory)
            finally:
                await journal.close()
        info = self.games.games[game]
        return {
            "trial": trial,
            "game": game,
            "name": info.name,
            "gamefile": info.gamefile,
            "task_type": info.kind,
            **result.to_json(),
            "memory": list(memory.reflections),
            "fallbacks": journal.fallbacks,
            "speculative_calls": journal.speculative,
            "speculative_wasted": journal.speculative_wasted,
            "prompt": journal.first_prompt,
            "transcript": {
                "intro": context.intro,
                "turns": [{"action": t.action, "observation": t.observation, "critic": t.critic} for t in context.turns],
            },
        }

    async def reflect(self, trial: int) -> None:
        done = {(r["trial"], r["game"]) for r in self.reflections.records}
        failed = [(z, r) for z, r in sorted(self.records(trial).items()) if not r.get("success") and (trial, z) not in done]
        plans = self.settings.plan_reflections

        async def one(game: int, record: dict[str, Any]) -> None:
            transcript = record["transcript"]
            earlier = self.memory_of(game, trial + 1)
            if plans:
                turns = [Turn(t["action"], t["observation"]) for t in transcript["turns"]]
                prompt = reflection_prompt(record["task_type"], transcript["intro"], turns, earlier)
            else:
                turns = [Turn(t["action"], t["observation"], t.get("critic")) for t in transcript["turns"]]
                prompt = critic_reflection_prompt(transcript["intro"], turns, earlier)
            with labels(episode=f"{trial}:{game}", role=REFLECTION):
                answer = (await self.reflect_llm.generate(prompt, n=1, temperature=0.0, max_tokens=256))[0]
            text = parse_reflection(answer.text, first_paragraph=plans) or NO_REFLECTION
            self.reflections.append({"trial": trial, "game": game, "text": text})

        await asyncio.gather(*(one(z, r) for z, r in failed))

    # -- files -----------------------------------------------------------------------------------
    def solved_by(self, trial: int) -> set[int]:
        return {
            split_index(r["index"])[1]
            for r in self.runner.log.records
            if r.get("success") and split_index(r["index"])[0] <= trial
        }

    def write_trial_files(self, trial: int) -> None:
        played = self.records(trial)
        solved = self.solved_by(trial)
        results = []
        for z in range(self.num_envs):
            info = self.games.games[z]
            record = played.get(z)
            results.append({
                "game": z,
                "name": info.name,
                "gamefile": info.gamefile,
                "task_type": info.kind,
                "is_success": z in solved,
                "skip": record is None,
                "steps": record["env_steps"] if record else None,
                "memory": self.memory_of(z, trial + 1),
            })
        write_json_atomic(self.run_dir.file(f"env_results_trial_{trial}.json"), results)
        self.run_dir.file(f"trial_{trial}.log").write_text(render_trial_log(trial, played), encoding="utf-8")
        self.write_world_log(trial)

    def write_world_log(self, last_trial: int) -> None:
        blocks, before = [], set()
        for t in range(last_trial + 1):
            solved = self.solved_by(t)
            blocks.append(world_block(t, [z in solved for z in range(self.num_envs)], len(solved - before)))
            before = solved
        self.run_dir.file("world.log").write_text("".join(blocks), encoding="utf-8")

    def final_summary(self, stopped: str | None) -> dict[str, Any]:
        finals = []
        by_trial = []
        for t in range(self.settings.num_trials):
            by_trial.append(len(self.solved_by(t)))
        for z in range(self.num_envs):
            first = min((split_index(r["index"])[0] for r in self.runner.log.records
                         if r.get("success") and split_index(r["index"])[1] == z), default=None)
            finals.append({"index": z, "success": first is not None, "solved_at": None if first is None else first + 1})
        return summarize(
            finals,
            self.usage,
            wall_s=sum(float(r.get("wall_s", 0.0)) for r in self.runner.log.records),
            max_steps=self.settings.num_trials,
            stopped=stopped,
            simulated=self.runner.simulated,
            extra={
                "success_by_step_means": "success rate after k trials",
                "successes_by_trial": by_trial,
                "games_played": len(self.runner.log.records),
                "fallback_steps": sum(int(r.get("fallbacks", 0)) for r in self.runner.log.records),
            },
        )


NO_REFLECTION = "I ran out of steps; next time I search systematically and finish each sub-goal."


def world_block(trial: int, solved: list[bool], additional: int) -> str:
    """One trial of ``world.log``, laid out as the original's: a line per game (a game solved
    earlier is a SUCCESS again), then the cumulative counts."""
    total, successes = len(solved), sum(solved)
    accuracy = round(successes / total, 2) if total else 0.0
    games = "".join(f"Environment #{z} Trial #{trial}: {'SUCCESS' if ok else 'FAIL'}\n" for z, ok in enumerate(solved))
    return (
        f"\n\n***** Start Trial #{trial} *****\n\n{games}"
        f"\n-----\nSUCCESS: {successes}\nADDITIONAL SUCCESS: {additional}\nFAIL: {total - successes}\n"
        f"TOTAL: {total}\nACCURACY: {accuracy}\n-----\n\n\n***** End Trial #{trial} *****\n\n"
    )


def render_trial_log(trial: int, played: dict[int, dict[str, Any]]) -> str:
    out = [f"***** Trial #{trial} *****\n"]
    for z in sorted(played):
        r = played[z]
        out.append(f"\n##### Environment #{z}: {r['name']} ({r['task_type']})\n")
        for i, memory in enumerate(r.get("memory") or []):
            out.append(f"[memory trial {i}] {memory}\n")
        out.append(r["transcript"]["intro"] + "\n")
        for step, turn in zip(r.get("trace", []), r["transcript"]["turns"]):
            notes = ((step.get("tree") or {}).get("state") or {}).get("notes") or []
            for note in notes:
                out.append(f"[{note}]\n")
            out.append(f"> {turn['action']}\n{turn['observation']}\n")
            if turn.get("critic"):
                out.append(turn["critic"] + "\n")
        if r.get("speculative_wasted"):
            out.append(f"[speculative calls wasted: {r['speculative_wasted']} of {r['speculative_calls']}]\n")
        out.append(f"STATUS: {'OK' if r.get('success') else 'FAIL'} after {r.get('env_steps')} steps\n")
    return "".join(out)
