"""The default is the original's algorithm (audit §1); each improvement is its own flag."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rafa_core.game24 import prompts
from rafa_core.game24.cli import build_parser, main
from rafa_core.game24.data import load_puzzles
from rafa_core.game24.episode import Game24Config, play
from rafa_core.game24.improvements import Improvements, from_args
from rafa_core.game24.model import Game24Model, Game24Settings, Game24State, Reflector
from rafa_core.game24.paper import STEP_OFFSET, paper_curve, paper_method, recognise
from rafa_core.llm.scripted import ScriptedLLM
from rafa_core.memory import Memory

ROOT = Path(__file__).resolve().parents[1]
PUZZLES = load_puzzles()
STATE = Game24State("4 4 6 8", lines=("4 + 8 = 12 (left: 4 6 12)",))
# The original README's five command lines (Game24/README.md), run from its folder.
ORIGINAL_COMMON = ("--backend gpt-4 --task game24 --task_file_path 24.csv --task_start_index 900 "
                   "--task_end_index 1000 --prompt_sample standard --n_generate_sample 10 --method_generate propose "
                   "--method_evaluate value --method_select greedy")
ORIGINAL_COMMANDS = (
    "--n_select_sample 1 --n_evaluate_sample 3 --feedback",
    "--n_select_sample 1 --n_evaluate_sample 3 --planning tot",
    "--n_select_sample 2 --n_evaluate_sample 3 --planning tot",
    "--n_select_sample 1 --n_evaluate_sample 3 --planning naive --feedback",
    "--n_select_sample 2 --n_evaluate_sample 3 --planning tot --feedback",
)


class Recorder:
    """A scripted backend that answers 'sure' and keeps every request it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, object]] = []
        self.llm = ScriptedLLM(self.rule)

    def rule(self, text, request):
        self.requests.append((text, request))
        return [f"draw {request.rng.random()}\nsure" for _ in range(request.n)]


def settings(**improved) -> Game24Settings:
    return Game24Settings(n_generate_sample=10, n_evaluate_sample=3, improved=Improvements(**improved))


def test_the_critic_is_drawn_afresh_every_time_as_the_original_g4():
    rec = Recorder()
    model = Game24Model(rec.llm, settings())
    asyncio.run(model.evaluate(STATE))
    asyncio.run(model.evaluate(STATE))
    assert len(rec.requests) == 2  # no value cache: the same question is asked again ...
    assert rec.requests[0][1].rng.random() != rec.requests[1][1].rng.random()  # ... and drawn anew
    assert rec.requests[0][1].temperature == 0.3
    cached = Recorder()
    model = Game24Model(cached.llm, settings(value_cache=True))
    asyncio.run(model.evaluate(STATE))
    asyncio.run(model.evaluate(STATE))
    assert len(cached.requests) == 1 and model.values.hits == 1


def test_a_whole_run_replays_from_the_cache_with_the_same_seed(tmp_path):
    argv = ["--backend", "oracle:0.3", "--task_start_index", "995", "--max_step", "4", "--feedback",
            "--n_evaluate_sample", "3", "--cache", str(tmp_path / "cache")]
    first = main_summary(argv + ["--out", str(tmp_path / "a")])
    again = main_summary(argv + ["--out", str(tmp_path / "b")])
    assert first["llm_calls"] > 0 and again["llm_calls"] == 0 and again["cache_hits"] > 0
    assert actions(tmp_path / "a") == actions(tmp_path / "b")
    other_seed = main_summary(argv + ["--out", str(tmp_path / "c"), "--seed", "1"])
    assert other_seed["llm_calls"] > 0  # another seed draws other samples


def main_summary(argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads((Path(argv[argv.index("--out") + 1]) / "summary.json").read_text())


def actions(out: Path) -> dict:
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return {r["index"]: [s["action"] for s in r["trace"]] for r in records}


def test_episodes_allow_max_step_plus_one_submissions_as_the_original_g2(tmp_path, capsys):
    # oracle:1 answers wrong every time: every episode runs to its end.
    base = ["--backend", "oracle:1", "--planning", "naive", "--task_start_index", "995", "--max_step", "3", "--no-cache"]
    default = main_summary(base + ["--out", str(tmp_path / "d")])
    exact = main_summary(base + ["--exact-max-step", "--out", str(tmp_path / "e")])
    assert list(default["success_by_step"]) == ["1", "2", "3", "4"]  # real submissions, not shifted
    assert list(exact["success_by_step"]) == ["1", "2", "3"]
    assert {len(s) for s in actions(tmp_path / "d").values()} == {4}
    assert {len(s) for s in actions(tmp_path / "e").values()} == {3}


def test_answers_may_run_to_1000_tokens_as_the_original_g10():
    for improved, value_cap in (({}, 1000), ({"short_answers": True}, 160)):
        rec = Recorder()
        asyncio.run(Game24Model(rec.llm, settings(**improved)).evaluate(STATE))
        assert rec.requests[0][1].max_tokens == value_cap


def test_naive_draws_n_generate_sample_and_shows_no_steps_as_the_original_g12():
    state = Game24State("4 4 6 8", committed=("4 + 8 = 12 (left: 4 6 12)",))
    for improved, n, shows_step in (({}, 10, False), ({"lean_naive": True}, 1, True)):
        rec = Recorder()
        asyncio.run(Game24Model(rec.llm, settings(**improved)).whole_plan(state, "standard"))
        [(text, request)] = rec.requests
        assert request.n == n and ("4 + 8 = 12 (left: 4 6 12)" in text) == shows_step


def test_reflections_are_kept_raw_in_an_always_present_message_as_the_original_g5():
    memory = Memory()
    model = Game24Model(ScriptedLLM(lambda t, r: "sure"), settings(), memory)
    prompt = model.critic_prompt("Numbers: 4 6 12")
    assert [m["role"] for m in prompt] == ["user", "user"] and prompts.CRITIC_LESSONS_HEAD in prompt[0]["content"]
    assert len(model.proposer_prompt("x")) == 3  # intro, what was learned (nothing yet), the prompt
    reflection = "Well, 4 + 8 = 12 looked fine.\n\n4 6 12 -> sure"
    reflector = Reflector(ScriptedLLM(lambda t, r: reflection), settings(), "4 4 6 8")
    obs = {"feedback": "Line 1 `4 + 8 = 12 (left: 4 6 12)`: correct — fine."}
    asyncio.run(reflector.learn(memory, "4 + 8 = 12 (left: 4 6 12)", obs, 1.0, {"steps_left": 3}))
    assert memory.examples_for("numbers_lessons") == [reflection]  # as written, chatter included
    parsed = Game24Model(ScriptedLLM(lambda t, r: "sure"), settings(parsed_lessons=True), Memory())
    assert parsed.critic_prompt("Numbers: 4 6 12") == "Numbers: 4 6 12"  # nothing learned: no message


def test_improved_turns_every_improvement_on():
    assert from_args(build_parser().parse_args(["--improved"])) == Improvements.all_on()
    assert from_args(build_parser().parse_args([])) == Improvements()
    assert from_args(build_parser().parse_args(["--value-cache"])) == Improvements(value_cache=True)


def test_the_original_file_name_and_naive_run_are_accepted():
    assert load_puzzles("24.csv") == PUZZLES and len(PUZZLES) == 1362
    assert build_parser().parse_args(["--naive_run"]).naive_run is True


def test_a_noisy_oracle_still_solves_with_the_original_algorithm():
    cfg = Game24Config(planning="tot", feedback=True, settings=settings())
    from rafa_core.game24.oracle import oracle_llm
    from rafa_core.llm.registry import BackendOptions

    llm = oracle_llm(0.3, BackendOptions(concurrency=64))

    async def all_puzzles():
        return await asyncio.gather(*(play(i, PUZZLES, llm, cfg) for i in range(990, 1000)))

    records = asyncio.run(all_puzzles())
    assert sum(r["success"] for r in records) >= 7
    assert all(r["value_cache_hits"] == 0 for r in records)


def test_the_original_readme_commands_run_from_the_benchmark_folder(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    for i, tail in enumerate(ORIGINAL_COMMANDS):
        argv = f"{ORIGINAL_COMMON} {tail}".split() + ["--backend", "oracle", "--task_end_index", "910",
                                                     "--out", str(tmp_path / f"run{i}")]
        result = subprocess.run([sys.executable, "run.py", *argv], cwd=ROOT / "game24", capture_output=True,
                                text=True, env=env, timeout=600)
        assert result.returncode == 0, (tail, result.stderr[-1500:])
        summary = json.loads((tmp_path / f"run{i}" / "summary.json").read_text())
        assert summary["episodes"] == 10 and summary["simulated"] is True
        assert list(summary["success_by_step"])[-1] == "21"


def test_the_paper_figure_shifts_steps_by_three_and_draws_the_reference(tmp_path):
    runs = []
    for name, extra in (("tot", ["--improved"]), ("rafa", ["--feedback"])):
        out = tmp_path / name
        assert main(["--backend", "oracle:0.3", "--no-cache", "--task_start_index", "990", "--max_step", "8",
                     "--out", str(out), *extra]) == 0
        runs.append(out)
    summary = json.loads((runs[1] / "summary.json").read_text())
    xs, rates = paper_curve(summary["success_by_step"])
    assert xs == list(range(21)) and rates[:STEP_OFFSET + 1] == [0.0] * (STEP_OFFSET + 1)
    assert rates[4] == pytest.approx(100 * summary["success_by_step"]["1"])
    assert rates[12] == pytest.approx(100 * summary["success_by_step"]["9"]) == rates[20]  # 9 real steps at most
    assert recognise(runs[0]) and not recognise(tmp_path)
    assert paper_method(json.loads((runs[1] / "config.json").read_text())) == "RAFA b=1"
    spec = importlib.util.spec_from_file_location("plot_results", ROOT / "scripts" / "plot_results.py")
    plot_results = importlib.util.module_from_spec(spec)
    sys.modules["plot_results"] = plot_results
    spec.loader.exec_module(plot_results)
    png = tmp_path / "paper.png"
    assert plot_results.main([*map(str, runs), "--paper", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    import matplotlib.pyplot as plt

    from rafa_core.game24.paper import draw_paper

    fig, ax = plt.subplots()
    draw_paper(ax, [(runs[1], "rafa"), (runs[0], "tot")])
    labels = [line.get_label() for line in ax.get_lines()]
    assert "paper at step 20, GPT-4 (read off its figure)" in labels
    assert [t.get_text() for t in ax.texts] == ["RAFA b=1", "ToT b=1"]
    assert labels[0] == "ours: rafa (n=10) [simulated]"  # the original's algorithm: no flag named
    assert "ours: tot --improved (n=10) [simulated]" in labels
    assert ax.get_title() == "Game of 24" and "+ 3" in ax.get_xlabel()
    plt.close(fig)
