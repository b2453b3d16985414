"""Benchmark: the look-ahead's LLM calls of a level run concurrently.

One ALFWorld episode (a generated game, the real engine) with the simulated oracle served
by the loopback OpenAI-compatible server with 100 ms latency per request, played with
concurrent calls (backend concurrency 64) and with one request at a time (concurrency 1).
Prints the wall-time ratio sequential/concurrent, the planning ratio against the bound the
episode's trees allow (their critical path), and the LLM calls per step.

What bounds the ratio: a full B=2 x D=2 tree makes 16 calls on a critical path of 5 waves
(3.2x); after a real step whose observation the world model predicted, the new tree repeats
6 of the old tree's requests (answered once per episode) and makes 10 new calls in 3 waves
(3.33x). The planner prefetches the next tree's first new wave (the proposals of the leaves
under the chosen child) as soon as the action is chosen; those requests then run while the
engine steps. That hides the engine's step (~20 ms), not a wave: the action is known only
when the last wave is in. Prefetching is off with one request at a time (nothing to overlap),
so the sequential run makes no speculative calls; on a misprediction the concurrent run's
prefetched calls are wasted, and counted. What is left between the bound and the measured
ratio is per-request CPU on this box (the SDK and the loopback server share the GIL: ~8 ms
per wave) and the engine's reset and steps, which both runs pay.

The agent is the default configuration (the original's algorithm: its candidates, its
critic answering "OK." or a line, the actor's prompt as the world model).

Also printed: the same episode with ``rafa.speculative_leaves`` (every leaf's proposals are
asked with its critic, so the next tree is one wave shorter when the prediction holds, at the
cost of the wasted proposals under the children not chosen), and with the oracle in-process
at the same latency (no HTTP), which shows the planner's own ratio.

    python scripts/bench_alfworld.py [--latency 0.1] [--kind heat]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rafa_core.agent import RAFAAgent  # noqa: E402
from rafa_core.alfworld.model import AlfWorldModel, Journal  # noqa: E402
from rafa_core.alfworld.oracle import make_rule  # noqa: E402
from rafa_core.alfworld.trials import EpisodeContext  # noqa: E402
from rafa_testkit.loopback import LoopbackServer  # noqa: E402
from rafa_core.llm.openai_backend import OpenAILLM  # noqa: E402
from rafa_core.llm.scripted import ScriptedLLM  # noqa: E402
from rafa_core.llm.usage import Usage  # noqa: E402
from rafa_core.search.lookahead import LookaheadPlanner  # noqa: E402


class TimedPlanner(LookaheadPlanner):
    """The same planner, adding up the time spent planning (the part concurrency speeds up)."""

    planning_s: float = 0.0

    async def plan(self, model, state):
        t0 = time.perf_counter()
        try:
            return await super().plan(model, state)
        finally:
            self.planning_s += time.perf_counter() - t0


class SleepyOracle(ScriptedLLM):
    """The oracle in-process with the same latency: the planner's gain without HTTP overhead."""

    def __init__(self, latency: float, **kwargs) -> None:
        super().__init__(make_rule(0.0), **kwargs)
        self.latency = latency

    async def _generate(self, prompt, **kwargs):
        await asyncio.sleep(self.latency)
        return await super()._generate(prompt, **kwargs)


async def episode(games, index: int, make_llm, concurrency: int, speculative_leaves: bool = False) -> dict:
    usage = Usage()
    llm = make_llm(usage, concurrency)
    env = games.make_env()
    context = EpisodeContext()
    planner = TimedPlanner(breadth=2, depth=2, discount=0.9, speculative_leaves=speculative_leaves)
    journal = Journal()
    agent = RAFAAgent(
        planner=planner,
        make_model=lambda memory: AlfWorldModel(llm, [], False, journal),
        state_of=context.state,
        learn=context.learn,
        max_steps=20,
    )
    t0 = time.perf_counter()
    with env:
        try:
            result = await agent.run_episode(env, index)
            wall = time.perf_counter() - t0
        finally:
            await journal.close()
    await llm.aclose()
    return {"wall_s": wall, "planning_s": planner.planning_s, "steps": result.env_steps,
            "success": result.success, "calls": usage.calls,
            "speculative": journal.speculative, "wasted": journal.speculative_wasted}


async def warm_up(make_llm) -> None:
    """One untimed request: the SDK's first request in a process builds its response types
    (~0.1 s, once); without this only the run that goes first would pay for it."""
    llm = make_llm(Usage(), 1)
    await llm.generate("warm-up", n=1, temperature=0.0, max_tokens=1)
    await llm.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1, help="server latency per request in seconds (default 0.1)")
    parser.add_argument("--kind", default="heat", help="task kind of the game to play (default heat)")
    args = parser.parse_args()

    import os

    from rafa_core.alfworld.env import AlfWorld
    from rafa_core.alfworld.make_games import make_games

    with tempfile.TemporaryDirectory() as tmp:
        make_games(Path(tmp), per_type=1, seed=0)
        os.environ["ALFWORLD_DATA"] = tmp
        games = AlfWorld()
        index = next(g.index for g in games.games if g.kind == args.kind)
        print(f"game {index}: {games.games[index].name} (oracle [SIMULATED] behind the loopback server, "
              f"{args.latency * 1000:.0f} ms per request)")
        with LoopbackServer(make_rule(0.0), latency_s=args.latency) as server:
            def loopback(usage, concurrency):
                return OpenAILLM("loopback", base_url=server.base_url, api_key="bench", usage=usage, concurrency=concurrency)

            asyncio.run(warm_up(loopback))
            fast = asyncio.run(episode(games, index, loopback, concurrency=64))
            slow = asyncio.run(episode(games, index, loopback, concurrency=1))
            spec = asyncio.run(episode(games, index, loopback, concurrency=64, speculative_leaves=True))

        def in_process(usage, concurrency):
            return SleepyOracle(args.latency, usage=usage, concurrency=concurrency)

        fast_ip = asyncio.run(episode(games, index, in_process, concurrency=64))
        slow_ip = asyncio.run(episode(games, index, in_process, concurrency=1))
    def calls(run: dict) -> str:
        return f"{run['calls']} calls ({run['speculative']} prefetched, {run['wasted']} wasted)"

    for name, run in (("concurrent", fast), ("sequential", slow)):
        print(f"{name:>10}: {run['wall_s']:.2f} s wall ({run['planning_s']:.2f} s planning), "
              f"{run['steps']} steps, {calls(run)}, won={run['success']}")
    # In-process, a wave of concurrent calls costs one latency: planning time / latency counts
    # the waves on the trees' critical path, and the calls made one at a time bound the ratio.
    waves = max(1, round(fast_ip["planning_s"] / args.latency))
    sequential_calls = round(slow_ip["planning_s"] / args.latency)
    bound = sequential_calls / waves
    planning = slow["planning_s"] / fast["planning_s"]
    print(f"wall-time ratio sequential/concurrent: {slow['wall_s'] / fast['wall_s']:.2f}x; planning only: "
          f"{planning:.2f}x, {planning / bound:.0%} of the {bound:.2f}x its trees' critical path allows")
    print(f"LLM calls per real step: {fast['calls'] / max(1, fast['steps']):.1f} concurrent, "
          f"{slow['calls'] / max(1, slow['steps']):.1f} sequential (a full tree makes 16 on 5 waves, at most 3.2x; "
          "after a predicted step 10 new ones on 3 waves, 3.33x)")
    print(f"with speculative leaves: {spec['wall_s']:.2f} s wall ({spec['planning_s']:.2f} s planning), {calls(spec)}; "
          f"vs the sequential run: {slow['wall_s'] / spec['wall_s']:.2f}x wall, {slow['planning_s'] / spec['planning_s']:.2f}x planning")
    print(f"oracle in-process with the same latency (no HTTP): {slow_ip['wall_s'] / fast_ip['wall_s']:.2f}x wall, "
          f"{slow_ip['planning_s'] / fast_ip['planning_s']:.2f}x planning")
    print(f"critical-path bound (default configuration, as the original): {sequential_calls} planning calls "
          f"on {waves} waves = at most {bound:.2f}x on planning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
