"""What carries over from the original RAP/RAFA code: its data format and paths, its command
lines (verbatim, oracle backend), its flags, its prior prompt, its metrics, and the paper's
figure.  Every instance set here is a fixture the test writes from the project's own data."""

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rafa_core.blocksworld.cli import main as cli_main
from rafa_core.blocksworld.domain import applicable_actions, apply, validate_plan
from rafa_core.blocksworld.model import BlocksworldModel, Situation
from rafa_core.blocksworld.pddl_io import load_instance_set
from rafa_core.blocksworld.prompts import PromptSet
from rafa_core.blocksworld.text import render_action, render_state
from rafa_core.llm.scripted import ScriptedLLM

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "blocksworld" / "data"
# The original's layout: problem paths relative to its BlocksWorld folder.
ORIGINAL_PROBLEMS = "gpt-plan-benchmark/gpt_plan_test/instances/generated_basic"
LETTERS = {"red": "a", "blue": "b", "orange": "c", "yellow": "d", "white": "e"}  # PlanBench's naming
# The original README's command lines (BlocksWorld/README.md), run from its folder.
README_RAP = ("CUDA_VISIBLE_DEVICES=0,1,2 nohup python -m torch.distributed.run --master_port 1034 --nproc_per_node 1 "
              "run_mcts.py --task mcts --model_name Vicuna --verbose False --data data/blocksworld/step_6.json "
              "--max_depth 6 --name m6ct_roll60 --rollouts 60 --model_path lmsys/vicuna-33b-v1.3 --num_gpus 3")
README_RAFA = ("CUDA_VISIBLE_DEVICES=0,1,2 nohup python -m torch.distributed.run --master_port 36977 --nproc_per_node 1 "
               "run_rafa_mcts.py --model_name Vicuna --verbose False --data data/blocksworld/step_6.json --max_depth 6 "
               "--name rafm_step6_33b_try60 --rollouts 60 --model_path lmsys/vicuna-33b-v1.3 --num_gpus 3")


def as_letters(text: str) -> str:
    for colour, letter in LETTERS.items():
        text = text.replace(colour, letter)
    return text


def write_original_set(folder: Path, steps: int, count: int, *, plan_names: str = "colours") -> Path:
    """``data/blocksworld/step_<steps>.json`` in the original's format (a list of [problem
    path, gold plan text, length]) with PlanBench-style problem files (objects a b c d),
    made from the first four-block instances of our own set."""
    ours = json.loads((DATA / f"step_{steps}.json").read_text())
    entries = []
    for entry in ours:
        text = (DATA / entry["instance"]).read_text()
        if "white" in text:
            continue  # four blocks: a b c d
        problem = f"{ORIGINAL_PROBLEMS}/instance-{len(entries) + 1}.pddl"
        (folder / problem).parent.mkdir(parents=True, exist_ok=True)
        (folder / problem).write_text(as_letters(text))
        plan = "".join(f"{step}\n" for step in entry["gold_plan"])
        entries.append([problem, as_letters(plan) if plan_names == "objects" else plan, entry["optimal_length"]])
        if len(entries) == count:
            break
    target = folder / "data" / "blocksworld" / f"step_{steps}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(entries))
    return target


@pytest.mark.parametrize("plan_names", ["colours", "objects"])
def test_a_set_in_the_original_format_loads_as_it_is(tmp_path, monkeypatch, plan_names):
    target = write_original_set(tmp_path, 4, 3, plan_names=plan_names)
    monkeypatch.chdir(tmp_path / "data")  # paths resolve from the set's folder upwards, not from here
    instances = load_instance_set(target)
    ours = load_instance_set(DATA / "step_4.json")
    assert len(instances) == 3 and all(i.optimal_length == 4 for i in instances)
    for inst in instances:
        assert set(inst.problem.blocks) <= set(LETTERS)  # a b c d became the colours
        assert dict(inst.problem.renamed)["a"] == "red"
        assert inst.source.startswith(ORIGINAL_PROBLEMS)
        check = validate_plan(inst.problem.init, inst.problem.goal, inst.gold_plan)
        assert check.valid and len(inst.gold_plan) == 4
        assert any(o.problem.init == inst.problem.init and o.problem.goal == inst.problem.goal for o in ours)


def test_a_bad_entry_or_an_unknown_plan_name_is_one_clear_error(tmp_path):
    from rafa_core.llm.base import UserError

    target = write_original_set(tmp_path, 4, 1)
    entries = json.loads(target.read_text())
    target.write_text(json.dumps([[entries[0][0], "(unstack q r)\n", 4]]))
    with pytest.raises(UserError, match="cannot read gold plan action"):
        load_instance_set(target)
    target.write_text(json.dumps([42]))
    with pytest.raises(UserError, match="entry 0 is neither"):
        load_instance_set(target)


def run_lines(folder: Path, line: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a shell command line in ``folder`` with ``python`` = this interpreter and the
    project importable (the scripts are linked into the folder, as in the original's)."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python"
    if not python.exists():  # a wrapper, not a link: a venv's interpreter finds its venv from its own path
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    return subprocess.run(["bash", "-c", line], capture_output=True, text=True, cwd=folder, env=env, timeout=timeout)


def original_folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "BlocksWorld"
    folder.mkdir()
    for script in ("run_mcts.py", "run_rafa_mcts.py"):
        (folder / script).symlink_to(ROOT / "blocksworld" / script)
    write_original_set(folder, 6, count)
    return folder


@pytest.mark.slow
def test_the_original_readme_command_lines_run_verbatim(tmp_path):
    folder = original_folder(tmp_path, 2)
    for line, name, method in ((README_RAP, "m6ct_roll60", "rap"), (README_RAFA, "rafm_step6_33b_try60", "rafa")):
        result = run_lines(folder, f"{line} --backend oracle")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "backend: oracle [SIMULATED]" in result.stdout
        assert "search: the original's" in result.stdout
        run = folder / "runs" / "blocksworld" / name
        summary = json.loads((run / "summary.json").read_text())
        records = [json.loads(line) for line in (run / "episodes.jsonl").read_text().splitlines()]
        assert summary["episodes"] == 2 and json.loads((run / "config.json").read_text())["method"] == method
        assert [len(r["total_correct"]) for r in records] == [60, 60]  # every iteration / episode
        assert len(summary["total_correct"]) == 60
        assert summary["total_correct"][-1] == summary["successes"]  # judged on the last one
    # The same line without the launcher, and with --single_run N as the original meant it.
    plain = README_RAFA.split(" --nproc_per_node 1 ")[1].replace("--name rafm_step6_33b_try60", "--name plain")
    result = run_lines(folder, f"python {plain} --backend oracle --single_run 1 --rollouts 2")
    assert result.returncode == 0, result.stderr[-2000:]
    records = (folder / "runs" / "blocksworld" / "plain" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(r)["index"] for r in records] == [1]


def test_the_original_data_path_falls_back_to_our_set_with_a_note_and_a_wrong_path_names_the_sets(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    code = cli_main("rafa", ["--backend", "oracle", "--data", "data/blocksworld/step_4.json", "--single_run", "2",
                             "--rollouts", "1", "--task", "mcts", "--out", str(out)], default_data=DATA / "step_4.json")
    assert code == 0
    printed = capsys.readouterr().out
    assert "note: data/blocksworld/step_4.json (the original's PlanBench set) is not here" in printed
    assert [json.loads(r)["index"] for r in (out / "episodes.jsonl").read_text().splitlines()] == [2]
    code = cli_main("rafa", ["--backend", "oracle", "--data", "data/step_9.json", "--out", str(out)],
                    default_data=DATA / "step_4.json")
    err = capsys.readouterr().err
    assert code == 2 and "instance set not found: data/step_9.json" in err and "step_6.json" in err


class RecordingPriors:
    """Every (prefix, continuation) the prior scores, and a score per continuation."""

    def __init__(self):
        self.seen = []

    def __call__(self, prefix, continuation):
        self.seen.append((prefix, continuation))
        return -float(len(continuation))


def test_the_original_prior_scores_the_last_one_or_two_plan_lines_from_the_last_even_depth():
    inst = load_instance_set(DATA / "step_4.json")[0]
    init, goal = inst.problem.init, inst.problem.goal
    rule = RecordingPriors()
    llm = ScriptedLLM(lambda prompt, request: "", loglik_rule=rule)
    model = BlocksworldModel(llm=llm, goal=goal, blocks=inst.problem.blocks, prompts=PromptSet.default())
    assert model.prior_context == "planbench" and model.allow_undo

    situation, states = Situation.start(init), [init]
    for depth in range(3):
        actions = applicable_actions(situation.atoms)
        rule.seen.clear()
        priors = asyncio.run(model.priors(situation, actions))
        assert sum(priors) == pytest.approx(1.0)
        base = states[2 * (depth // 2)]
        scored = rule.seen[-len(actions):]
        for prefix, continuation in rule.seen:
            assert "\n" not in continuation  # newline tokens are not scored
            assert prefix.rsplit("[STATEMENT]", 1)[1].startswith(f"\nAt the start, {render_state(base)}.")
            assert "[STATE 0]" not in prefix and "[GOAL]" not in prefix  # not the whole trajectory
        assert [c for _, c in scored] == [render_action(a) for a in actions]
        if depth % 2:  # odd: the previous action's line is scored too (once, shared by the siblings)
            assert len(rule.seen) == len(actions) + 1
            assert rule.seen[0][1] == render_action(situation.actions[-1])
            assert scored[0][0].endswith(f"[PLAN]\n{render_action(situation.actions[-1])}\n")
        else:
            assert len(rule.seen) == len(actions) and scored[0][0].endswith("[PLAN]\n")
        action = actions[-1]
        states.append(apply(situation.atoms, action))
        situation = situation.then(action, states[-1])


def load_plot_results():
    spec = importlib.util.spec_from_file_location("plot_results", ROOT / "scripts" / "plot_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["plot_results"] = module
    spec.loader.exec_module(module)
    return module


def test_the_paper_figure_draws_our_runs_and_the_originals_numbers(tmp_path):
    from rafa_core.blocksworld import paper

    runs = []
    for method in ("rafa", "rap"):
        out = tmp_path / method
        assert cli_main(method, ["--backend", "oracle", "--resume_file_idx", "50", "--rollouts", "2",
                                 "--out", str(out)], default_data=DATA / "step_4.json") == 0
        assert paper.recognise(out) and paper.set_of(out) == 4
        runs.append(out)
    assert not paper.recognise(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    paper.draw_paper(ax, [(r, r.name) for r in runs])
    labels = [t.get_text() for t in ax.legend().get_texts()]
    assert sum(label.startswith("ours: ") and "[simulated]" in label for label in labels) == 2
    assert any("original (paper" in label and "RAFA Vicuna-13B, 4-step, 93%" in label for label in labels)
    assert not any("6-step" in label for label in labels)
    assert "environment steps" in ax.get_xlabel() and "4-step" in ax.get_title()
    plt.close(fig)
    png = tmp_path / "paper.png"
    assert load_plot_results().main([*map(str, runs), "--paper", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
