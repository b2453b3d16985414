"""BlocksWorld on the embedded SmolLM2 (CPU): how fast are the MCTS priors, and where does
an expansion spend its time?

1. Prior scoring of all children of a node: one ``loglik`` call (the prior prompt once,
   every child's action on top of its key/value cache, one batched pass) against one
   sequence per call (prefix + one action each time, as the original scored children).
   Prints the throughput ratio (target >= 3x).
2. A short RAP search on one instance: the share of wall time spent in the LLM vs in the
   search (tree, text layer, simulator) per expansion.

    python scripts/bench_blocksworld.py [--nodes 6] [--repeats 3]

3. ``--faithfulness``: no model, the simulated oracle: instances solved and model calls of
   the original's search (the default) against ``--improved`` and against each single
   variant, for the README's "Differences from the original" table.

    python scripts/bench_blocksworld.py --faithfulness [--sets 4 6] [--rows] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataclasses import replace  # noqa: E402

from rafa_core.blocksworld.domain import applicable_actions, apply  # noqa: E402
from rafa_core.blocksworld.episodes import IMPROVED, SearchSettings, run_rafa, run_rap  # noqa: E402
from rafa_core.blocksworld.oracle import make_oracle  # noqa: E402
from rafa_core.blocksworld.pddl_io import load_instance_set  # noqa: E402
from rafa_core.blocksworld.prompts import PromptSet, prior_prefix  # noqa: E402
from rafa_core.blocksworld.text import render_action  # noqa: E402
from rafa_core.llm.registry import BackendOptions  # noqa: E402
from rafa_core.llm.usage import Usage  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "blocksworld" / "data" / "step_4.json"


class TimedLLM:
    """Delegates to a backend and adds up the wall time spent waiting for it."""

    def __init__(self, llm) -> None:
        self.llm = llm
        self.seconds = 0.0
        self.calls = 0

    async def _timed(self, call):
        start = time.perf_counter()
        try:
            return await call
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    async def generate(self, *args, **kwargs):
        return await self._timed(self.llm.generate(*args, **kwargs))

    async def loglik(self, *args, **kwargs):
        return await self._timed(self.llm.loglik(*args, **kwargs))


def bench_nodes(count: int, n_blocks: int):
    """(prefix, continuations) of ``count`` nodes of ``n_blocks``-block step-4 instances: one
    step in, the successor with most children (typically holding a block)."""
    prompts = PromptSet.default()
    nodes = []
    for inst in load_instance_set(DATA):
        if len(inst.problem.blocks) != n_blocks:
            continue
        state = inst.problem.init
        action = max(applicable_actions(state), key=lambda a: len(applicable_actions(apply(state, a))))
        after = apply(state, action)
        prefix = prior_prefix(prompts, inst.problem.goal, state) + render_action(action) + "\n"  # depth 1, as scored
        nodes.append((prefix, [render_action(a) for a in applicable_actions(after)]))
        if len(nodes) == count:
            break
    return nodes


async def prior_scoring(llm, nodes, repeats: int) -> tuple[float, float, int]:
    """Seconds per child: batched (one call per node) and one sequence per call."""
    children = sum(len(c) for _, c in nodes)
    batched, single = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for prefix, conts in nodes:
            await llm.loglik(prefix, conts)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        for prefix, conts in nodes:
            for cont in conts:
                await llm.loglik(prefix, [cont])
        single.append(time.perf_counter() - start)
    return statistics.median(batched) / children, statistics.median(single) / children, children


async def search_share(llm) -> dict:
    inst = load_instance_set(DATA)[0]
    timed = TimedLLM(llm)
    start = time.perf_counter()
    record = await run_rap(inst, timed, PromptSet.default(), SearchSettings(rollouts=1, max_depth=4))
    wall = time.perf_counter() - start
    # An expansion: the world model predicts a node's state, then its children get priors.
    return {"wall": wall, "llm": timed.seconds, "calls": timed.calls, "expansions": max(1, record["tree"]["expanded"])}


# -- 3. the original's search against this project's variants (simulated oracle) ------------------
# (label, oracle error rate, oracle priors)
ORACLES = (("flat priors, exact world model", 0.0, "flat"),
           ("informative priors, world model wrong on 30%", 0.3, "informative"))


def variants(rows: bool) -> list[tuple[str, SearchSettings]]:
    """The original, --improved, and (with ``rows``) the original with one variant each."""
    chosen = [("original (default)", SearchSettings()), ("--improved", SearchSettings.improved())]
    if rows:
        for name, value in IMPROVED.items():
            shown = f"--{name} {value}" if not isinstance(value, bool) else f"--{name} {str(value).lower()}"
            chosen.append((shown, replace(SearchSettings(), **{name: value})))
    return chosen


async def solve_set(instances, method: str, settings: SearchSettings, error_rate: float, priors: str) -> dict:
    run = run_rafa if method == "rafa" else run_rap
    prompts = PromptSet.default()
    solved = solved_any = calls = 0
    for inst in instances:
        usage = Usage()
        llm = make_oracle(error_rate, BackendOptions(usage=usage), priors=priors)
        record = await run(inst, llm, prompts, settings)
        solved += bool(record["success"])
        solved_any += bool(record["solved_any"])
        calls += usage.calls
    return {"solved": solved, "solved_any": solved_any, "calls": calls, "n": len(instances)}


async def faithfulness(sets: list[int], rows: bool, limit: int | None, rollouts: int, data_dir: Path) -> None:
    print(f"simulated oracle; RAFA {rollouts} episodes, RAP {rollouts} iterations; "
          "solved (last episode / iteration) | solved in any | model calls")
    for steps in sets:
        instances = load_instance_set(data_dir / f"step_{steps}.json")[:limit]
        for label, error_rate, priors in ORACLES:
            print(f"\n{data_dir.name}/step_{steps} ({len(instances)} instances, depth {steps}), {label}:")
            for name, base in variants(rows):
                settings = replace(base, rollouts=rollouts, max_depth=steps)
                cells = []
                for method in ("rafa", "rap"):
                    start = time.perf_counter()
                    r = await solve_set(instances, method, settings, error_rate, priors)
                    cells.append(f"{method.upper()} {r['solved']}/{r['n']} | any {r['solved_any']} | "
                                 f"{r['calls']} calls ({time.perf_counter() - start:.0f} s)")
                print(f"  {name:<28} " + "   ".join(cells), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=6, help="tree nodes whose children are scored")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--faithfulness", action="store_true", help="the original's search vs the variants (oracle)")
    parser.add_argument("--sets", type=int, nargs="*", default=[4, 6], choices=[4, 6])
    parser.add_argument("--rows", action="store_true", help="also each variant alone on top of the original")
    parser.add_argument("--limit", type=int, default=None, help="only the first N instances of each set")
    parser.add_argument("--rollouts", type=int, default=10)
    parser.add_argument("--data_dir", type=Path, default=DATA.parent, help="a folder with step_4.json / step_6.json")
    args = parser.parse_args()
    if args.faithfulness:
        await faithfulness(args.sets, args.rows, args.limit, args.rollouts, args.data_dir)
        return
    from rafa_core.llm.hf import local_llm

    llm = local_llm()  # no response cache: every call reaches the model
    start = time.perf_counter()
    await llm.load()
    print(f"model: SmolLM2-135M-Instruct on CPU (loaded in {time.perf_counter() - start:.1f} s)")
    nodes4, nodes5 = bench_nodes(args.nodes, 4), bench_nodes(max(1, args.nodes // 2), 5)
    await llm.loglik(nodes4[0][0], nodes4[0][1])  # warm-up
    totals = [0.0, 0.0, 0]
    print(f"prior scoring of all children of a node, median of {args.repeats}:")
    for label, nodes in (("4 blocks", nodes4), ("5 blocks", nodes5)):
        per_batched, per_single, children = await prior_scoring(llm, nodes, args.repeats)
        totals[0] += per_batched * children
        totals[1] += per_single * children
        totals[2] += children
        print(f"  {label}: {len(nodes)} nodes, {children / len(nodes):.1f} children each: batched on a shared prefix "
              f"{per_batched * 1000:.0f} ms/child, one sequence per call {per_single * 1000:.0f} ms/child "
              f"-> {per_single / per_batched:.1f}x")
    print(f"  throughput ratio, all {totals[2]} children: {totals[1] / totals[0]:.1f}x (target >= 3x; "
          "bounded by the children per node, since the shared prompt dominates)")
    share = await search_share(llm)
    search = share["wall"] - share["llm"]
    per = share["expansions"]
    print(f"RAP, 1 iteration on one step-4 instance: {share['calls']} LLM calls, {per} expansions")
    print(f"  per expansion: LLM {share['llm'] / per:.2f} s, search {search / per * 1000:.1f} ms "
          f"-> LLM {share['llm'] / share['wall']:.1%} of the time, search {search / share['wall']:.1%}")
    await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
