"""Prompts, tolerant parsers, transcript bookkeeping, and the proposer's ranking (no engine)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rafa_core.alfworld import prompts
from rafa_core.alfworld.model import AlfState, AlfWorldModel, Journal, closest, rank_samples
from rafa_core.alfworld.oracle import critic_line, make_rule, next_command
from rafa_core.alfworld.prompts import (
    Turn,
    actor_prompt,
    critic_prompt,
    parse_action,
    parse_critic,
    parse_observation,
    read_game_section,
    world_prompt,
)
from rafa_core.alfworld.world import TASK_KINDS, World, parse_task, task_kind_of_folder
from rafa_core.llm.base import Completion
from rafa_core.llm.scripted import ScriptedLLM

REPO = Path(__file__).resolve().parents[1]
INTRO = ("You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a countertop 1, "
         "a fridge 1, and a sinkbasin 1.\n\nYour task is to: put a clean mug in cabinet.")


@pytest.mark.parametrize("answer, command", [
    ("go to countertop 1", "go to countertop 1"),
    ("> Go to  Countertop 1.", "go to countertop 1"),
    ("\n\nAction: take mug 1 from countertop 1\nmore text", "take mug 1 from countertop 1"),
    ("put mug 1 in/on cabinet 1", "move mug 1 to cabinet 1"),
    ("`open fridge 1`", "open fridge 1"),
    ("", ""),
    ("   \n  ", ""),
])
def test_parse_action_is_tolerant(answer, command):
    assert parse_action(answer) == command


@pytest.mark.parametrize("answer, value", [
    ("sub-goals: (1) take a mug; (2) clean it. Met: 1. Value: 1/2", 0.5),
    ("Critic: Met: 1, 2. Value: 2 / 3", 2 / 3),
    ("Value: 3/3\nCritic: nonsense 0/3", 1.0),
    ("looks fine to me", None),
    ("Value: 5/3", None),
    ("Value: 1/0", None),
    ("", None),
])
def test_parse_critic(answer, value):
    line, parsed = parse_critic(answer)
    assert parsed == pytest.approx(value) if value is not None else parsed is None
    if answer.strip():
        assert line.startswith("Critic:")


def test_parse_observation_keeps_the_first_line():
    assert parse_observation("\nObservation: You open the fridge 1.\nYou see...") == "You open the fridge 1."
    assert parse_observation("") == ""


def test_prompts_read_back_to_their_transcript():
    turns = [Turn("go to countertop 1", "You arrive at countertop 1. On the countertop 1, you see a mug 1."),
             Turn("take mug 1 from countertop 1", "You pick up the mug 1 from the countertop 1.", "Critic: Value: 1/3")]
    for prompt, pending in [
        (actor_prompt("clean", INTRO, turns, ["note one", "note two"], reflection_style=True), ""),
        (actor_prompt("clean", INTRO, turns, ["note one"], reflection_style=False, pending="go to sinkbasin 1"),
         "go to sinkbasin 1"),
        (world_prompt("clean", INTRO, turns, "go to sinkbasin 1"), "go to sinkbasin 1"),
        (critic_prompt("clean", INTRO, turns, [], see_actions=True), ""),
    ]:
        section = read_game_section(prompt)
        assert section.intro == INTRO
        assert [(t.action, t.observation) for t in section.turns] == [(t.action, t.observation) for t in turns]
        assert section.pending == pending
    # As the original, the critic's transcript shows every command as "OK." (and may answer "OK.").
    hidden = critic_prompt("clean", INTRO, turns, [])
    section = read_game_section(hidden)
    assert [(t.action, t.observation) for t in section.turns] == [("OK.", t.observation) for t in turns]
    assert "go to countertop 1" not in hidden and prompts.OK_OPTION in hidden
    assert section.turns[-1].critic == "Critic: Value: 1/3"
    actor = actor_prompt("clean", INTRO, turns, ["note one", "note two"], reflection_style=True)
    assert read_game_section(actor).memory == ["note one", "note two"]
    # The reflection-style example carries a memory too; it is not this game's memory.
    assert read_game_section(actor_prompt("clean", INTRO, turns, [], reflection_style=True)).memory == []
    assert "Your memory for the task below:\nTrial 0: note one\nTrial 1: note two" in actor
    assert "Critic: Value: 1/3" in critic_prompt("clean", INTRO, turns, [])
    assert "Critic:" not in actor.split("Here is the game.")[-1]


def test_memory_example_replaces_the_last_trace_as_the_original_or_is_added():
    first, second = prompts.examples("clean")
    plain = actor_prompt("clean", INTRO, [], [], reflection_style=False)
    swapped = actor_prompt("clean", INTRO, [], [], reflection_style=True)
    added = actor_prompt("clean", INTRO, [], [], reflection_style=True, swap_example=False)
    assert plain.count("Example ") == 2 and swapped.count("Example ") == 1 and added.count("Example ") == 2
    assert "An example of using memory:" in swapped and "An example of using memory:" in added
    last_action = second[1][-1].action
    assert swapped.count(f"> {last_action}\n") == added.count(f"> {last_action}\n") - 1


def test_original_candidates_are_the_first_list_and_what_the_transcript_offers():
    from rafa_core.alfworld.world import original_candidates

    initial = ("go to cabinet 1", "go to cabinet 10", "go to countertop 1", "go to desk 1")
    assert original_candidates(initial, []) == list(initial)
    seen = [Turn("go to countertop 1", "You arrive at countertop 1. On the countertop 1, you see a mug 1, and a desklamp 2.")]
    assert original_candidates(initial, seen)[4:] == ["open countertop 1", "take mug 1 from countertop 1", "use desklamp 2"]
    held = seen + [Turn("take mug 1 from countertop 1", "You pick up the mug 1 from the countertop 1."),
                   Turn("go to cabinet 10", "You arrive at cabinet 10. The cabinet 10 is closed.")]
    # "cabinet 10" is not "cabinet 1"; holding: put it here (in the installed syntax), no takes.
    move = "move mug 1 to cabinet 10" if prompts.put_syntax() == "move" else "put mug 1 in/on cabinet 10"
    assert original_candidates(initial, held)[4:] == ["open cabinet 10", move]
    sink = held + [Turn("go to sinkbasin 1", "Nothing happens."), Turn("go to countertop 1", "You arrive at countertop 1. "
                                                                        "On the countertop 1, you see a sinkbasin 1.")]
    assert "clean mug 1 with sinkbasin 1" not in original_candidates(initial, sink)
    fridge = ("go to fridge 1",)
    cold = [Turn("take apple 1 from table 1", "You pick up the apple 1 from the table 1."),
            Turn("go to fridge 1", "You arrive at fridge 1. The fridge 1 is open. In it, you see nothing.")]
    assert original_candidates(fridge, cold)[1:] == ["open fridge 1", f"{'move' if move.startswith('move') else 'put'} "
                                                     f"apple 1 {'to' if move.startswith('move') else 'in/on'} fridge 1",
                                                     "cool apple 1 with fridge 1"]


def test_the_oracle_reads_a_critic_history_without_commands_and_says_ok_when_nothing_changed():
    rule = make_rule(0.0)
    turns = [Turn("go to countertop 1", "You arrive at countertop 1. On the countertop 1, you see a mug 1."),
             Turn("take mug 1 from countertop 1", "You pick up the mug 1 from the countertop 1.")]
    request = type("R", (), {"n": 1, "rng": None})()
    answer = rule(critic_prompt("clean", INTRO, turns, []), request)
    assert parse_critic(answer)[1] == pytest.approx(1 / 3)
    turns[-1].critic = "Critic: " + answer
    assert rule(critic_prompt("clean", INTRO, turns, []), request) == "OK."
    assert parse_critic(rule(critic_prompt("clean", INTRO, turns, [], see_actions=True), request))[1] == pytest.approx(1 / 3)
    feedback = rule(prompts.critic_reflection_prompt(INTRO, turns, []), request)
    assert "1/3" in feedback and "The critic should give" in feedback


def test_the_scripted_player_takes_a_task_object_already_in_a_target_receptacle():
    intro = INTRO.replace("a clean mug in cabinet", "a clean mug in countertop")
    steps = [("go to countertop 1", "You arrive at countertop 1. On the countertop 1, you see a mug 1."),
             ("go to cabinet 1", "You arrive at cabinet 1. The cabinet 1 is closed."),
             ("open cabinet 1", "You open the cabinet 1. The cabinet 1 is open. In it, you see nothing."),
             ("go to fridge 1", "You arrive at fridge 1. The fridge 1 is closed."),
             ("open fridge 1", "You open the fridge 1. The fridge 1 is open. In it, you see nothing."),
             ("go to sinkbasin 1", "You arrive at sinkbasin 1. On the sinkbasin 1, you see nothing.")]
    world = World.from_transcript(intro, steps)
    assert next_command(world) == "go to countertop 1"
    world = World.from_transcript(intro, steps + [("go to countertop 1", steps[0][1])])
    assert next_command(world) == "take mug 1 from countertop 1"
    # A put-two task: one already there counts as placed.
    two = INTRO.replace("put a clean mug in cabinet", "put two mug in countertop")
    world = World.from_transcript(two, steps[:1])
    assert world.placed == ["mug 1"] and world.progress() == (2, 4)


def test_every_kind_has_examples_that_win_and_critic_lines_that_agree():
    for kind in TASK_KINDS:
        examples = prompts.examples(kind)
        assert len(examples) == 2
        for intro, turns in examples:
            world = World.from_transcript(intro, [(t.action, t.observation) for t in turns])
            assert world.task is not None and world.task.kind == kind
            met, total = world.progress()
            assert met == total
            assert parse_critic(turns[-1].critic or "")[1] == 1.0
            assert all("move " in t.action or not t.action.startswith("put ") for t in turns)
        assert prompts.example_reflection(kind)


def test_world_bookkeeping_and_the_scripted_player():
    world = World.from_transcript(INTRO, [])
    assert world.receptacles == ["cabinet 1", "countertop 1", "fridge 1", "sinkbasin 1"]
    assert world.task == parse_task(INTRO)
    assert next_command(world) == "go to countertop 1"  # the target (cabinet) is searched last
    steps = [("go to countertop 1", "You arrive at countertop 1. On the countertop 1, you see a mug 1, and a pen 2."),
             ("take mug 1 from countertop 1", "You pick up the mug 1 from the countertop 1.")]
    world = World.from_transcript(INTRO, steps)
    assert world.holding == "mug 1" and world.progress() == (1, 3)
    assert next_command(world) == "go to sinkbasin 1"
    assert "move mug 1 to countertop 1" in world.candidates()
    assert critic_line(world).endswith("Value: 1/3")
    assert task_kind_of_folder("pick_two_obj_and_place-CD-None-Shelf-461") == "puttwo"
    with pytest.raises(ValueError):
        task_kind_of_folder("trial_T1")


def test_ranking_by_mean_logprob_then_frequency():
    ranked = rank_samples([("b", -0.5), ("a", -0.1), ("", 0.0), ("c", -0.5), ("c", -0.6)])
    assert ranked == ["a", "c", "b"]
    assert closest(["go to desk 1"], ["look", "go to desk 2", "inventory"])[0] == "go to desk 2"


def state(**kw) -> AlfState:
    return AlfState(kind="clean", intro=INTRO, turns=(), admissible=("go to cabinet 1", "go to countertop 1", "help"),
                    initial=("go to cabinet 1", "go to countertop 1"), **kw)


def test_proposer_keeps_admissible_ranked_samples_and_pads_to_breadth():
    def rule(prompt, request):
        return [Completion("go to countertop 1", token_logprobs=[-0.5]), Completion("go to garage 9", token_logprobs=[-0.1]),
                Completion("help", token_logprobs=[-0.01])] * 2

    model = AlfWorldModel(ScriptedLLM(rule), [], False, Journal())
    s = state()
    assert asyncio.run(model.propose(s)) == ["go to countertop 1", "go to cabinet 1"]
    assert any("padded" in n for n in s.notes)


def test_oracle_rule_answers_each_role():
    from rafa_core.alfworld.model import ModelConfig

    rule = make_rule(0.0)
    for config in (ModelConfig(critic_sees_actions=True, simulator_prompt=True), ModelConfig()):
        llm = ScriptedLLM(rule)
        model = AlfWorldModel(llm, [], False, Journal(), config)
        root = state()
        assert asyncio.run(model.propose(root))[0] == "go to countertop 1"
        assert asyncio.run(model.evaluate(root)) == 0.0  # the real root always reports its value
        child = asyncio.run(model.predict(root, "go to countertop 1"))
        assert child.turns[-1].observation.startswith("You arrive at countertop 1.")
        if config.critic_sees_actions:
            assert asyncio.run(model.evaluate(child)) is None  # imagined, nothing changed
        else:  # as the original: the critic wrote a line (no earlier one to repeat), so it counts
            assert asyncio.run(model.evaluate(child)) == 0.0 and child.turns[-1].critic


def test_the_world_model_is_the_actors_prompt_with_memory_unless_asked_otherwise():
    from rafa_core.alfworld.model import ModelConfig

    seen = []

    def rule(prompt, request):
        seen.append(prompt)
        return "You arrive at countertop 1. On the countertop 1, you see nothing."

    for config in (ModelConfig(), ModelConfig(simulator_prompt=True)):
        seen.clear()
        model = AlfWorldModel(ScriptedLLM(rule), ["the mug is at the cabinet 1"], True, Journal(), config)
        asyncio.run(model.predict(state(), "go to countertop 1"))
        (prompt,) = seen
        if config.simulator_prompt:
            assert prompt.startswith(prompts.WORLD_HEAD) and "the mug is at the cabinet 1" not in prompt
        else:
            assert prompt.startswith(prompts.ACTOR_HEAD) and "Trial 0: the mug is at the cabinet 1" in prompt
            assert prompt.endswith("> go to countertop 1\n")


def test_a_critic_that_says_done_ends_nothing_unless_asked():
    from rafa_core.alfworld.model import ModelConfig

    for terminal in (False, True):
        model = AlfWorldModel(ScriptedLLM(lambda p, r: "Met: 1, 2, 3. Value: 3/3"), [], False, Journal(),
                              ModelConfig(critic_terminal=terminal))
        root = state()
        assert asyncio.run(model.evaluate(root)) == 1.0
        assert model.is_terminal(root) is terminal


class SlowLLM(ScriptedLLM):
    """The oracle with a latency, to have requests still running when an episode ends."""

    async def _generate(self, prompt, **kwargs):
        await asyncio.sleep(0.05)
        return await super()._generate(prompt, **kwargs)


def test_prefetched_proposals_are_the_ones_propose_asks_and_close_waits_for_the_rest():
    async def run():
        llm = SlowLLM(make_rule(0.0))
        journal = Journal()
        model = AlfWorldModel(llm, [], False, journal)
        root = state()
        child = await model.predict(root, "go to countertop 1")
        other = await model.predict(root, "go to cabinet 1")
        calls_before = llm.usage.calls
        model.prefetch(child)
        model.prefetch(child)  # asked twice, started once
        assert journal.speculative == 1
        assert await model.propose(child)  # the prefetched request answers it: no new call
        model.prefetch(other)
        await asyncio.sleep(0)  # in flight
        await journal.close()  # `other` was never asked for: finished, and counted as wasted
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return llm.usage.calls - calls_before, journal, leftovers

    calls, journal, leftovers = asyncio.run(run())
    assert calls == 2  # child's proposals, and other's, waited for (and billed) though unused
    assert journal.speculative_wasted == 1 and not journal.requests.unclaimed
    assert journal.speculation_note() == "speculative calls: 2, wasted: 1"
    assert leftovers == []


def test_unset_data_is_one_line_and_exit_2(tmp_path):
    for value in (None, "", "   "):
        env = {k: v for k, v in os.environ.items() if k != "ALFWORLD_DATA"}
        if value is not None:
            env["ALFWORLD_DATA"] = value
        proc = subprocess.run([sys.executable, str(REPO / "alfworld" / "run.py"), "--backend", "oracle", "--out", str(tmp_path)],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "alfworld-download" in lines[0] and "make_games" in lines[0]


def test_missing_data_dir_and_empty_data_dir_are_user_errors(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for data in (tmp_path / "nope", tmp_path):
        proc = subprocess.run([sys.executable, str(REPO / "alfworld" / "run.py"), "--backend", "oracle", "--data", str(data),
                               "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_no_prefetch_when_planning_the_episodes_last_step():
    from rafa_core.alfworld.model import ModelConfig
    from rafa_core.alfworld.prompts import Turn

    async def prefetched(real_turns: int) -> int:
        journal = Journal()
        model = AlfWorldModel(SlowLLM(make_rule(0.0), concurrency=4), [], False, journal, ModelConfig(max_steps=2))
        root = AlfState(kind="clean", intro=INTRO, turns=tuple(Turn("look", "Nothing happens.") for _ in range(real_turns)),
                        admissible=("go to cabinet 1", "go to countertop 1"))
        leaf = await model.predict(root, "go to countertop 1")  # an imagined turn on top
        model.prefetch(leaf)
        await journal.close()
        return journal.speculative

    assert asyncio.run(prefetched(0)) == 1  # planning step 1 of 2: step 2's plan will want it
    assert asyncio.run(prefetched(1)) == 0  # planning step 2 of 2: no plan follows
