"""The STRIPS domain, the generated sets (committed and regenerated) and PDDL loading."""

import json
from pathlib import Path

import pytest

from rafa_core.blocksworld.domain import (
    COLOURS,
    DistanceTable,
    all_configurations,
    all_states,
    applicable_actions,
    apply,
    is_applicable,
    is_consistent,
    pick_up,
    put_down,
    shortest_plan,
    stack,
    state_from_stacks,
    unstack,
    validate_plan,
)
from rafa_core.blocksworld.generate import Generator, SetSpec, write_sets
from rafa_core.blocksworld.pddl_io import PddlReader, load_instance_set
from rafa_core.llm.base import UserError

DATA = Path(__file__).resolve().parents[1] / "blocksworld" / "data"


@pytest.fixture(scope="module")
def committed():
    reader = PddlReader()
    return {name: load_instance_set(DATA / f"{name}.json", reader) for name in ("step_4", "step_6")}


def test_operators():
    s = state_from_stacks([["red", "blue"], ["orange"]])
    assert applicable_actions(s) == [pick_up("orange"), unstack("blue", "red")]
    held = apply(s, unstack("blue", "red"))
    assert ("holding", "blue") in held and ("clear", "red") in held and ("handempty",) not in held
    assert applicable_actions(held) == [put_down("blue"), stack("blue", "red"), stack("blue", "orange")]
    assert not is_applicable(s, pick_up("red"))  # red is covered
    assert not is_applicable(held, stack("blue", "blue"))
    with pytest.raises(ValueError):
        apply(s, pick_up("red"))


def test_state_space_sizes_and_consistency():
    assert len(all_configurations(COLOURS[:4])) == 73 and len(all_configurations(COLOURS[:5])) == 501
    states = all_states(COLOURS[:5])
    assert len(states) == 866 and len(set(states)) == 866
    assert all(is_consistent(s) for s in states)
    s = state_from_stacks([["red", "blue"]])
    assert not is_consistent(s | {("clear", "red")})
    assert not is_consistent((s - {("handempty",)}))


def test_plan_validator():
    s = state_from_stacks([["red", "blue"], ["orange"]])
    goal = frozenset({("on", "red", "orange")})
    plan = shortest_plan(s, goal)
    assert len(plan) == 4 and validate_plan(s, goal, plan).valid
    bad = validate_plan(s, goal, [pick_up("red")] + plan)
    assert not bad.valid and not bad.executable and bad.failed_action == "(pick-up red)"
    short = validate_plan(s, goal, plan[:3])
    assert short.executable and not short.goal_reached and not short.valid
    assert DistanceTable().optimal_length(s, goal) == 4


@pytest.mark.parametrize("name,size,length,five", [("step_4", 57, 4, 6), ("step_6", 114, 6, 11)])
def test_committed_sets_have_spec_sizes_and_optimal_gold_plans(committed, name, size, length, five):
    instances = committed[name]
    assert len(instances) == size
    assert sum(len(i.problem.blocks) == 5 for i in instances) == five
    assert all(len(i.problem.blocks) in (4, 5) for i in instances)
    table = DistanceTable()
    seen = set()
    for inst in instances:
        p = inst.problem
        assert p.blocks == COLOURS[: len(p.blocks)]
        assert 1 <= len(p.goal) <= 3 and all(a[0] == "on" for a in p.goal)
        assert not any(a in p.init for a in p.goal)
        assert inst.optimal_length == length == len(inst.gold_plan)
        assert validate_plan(p.init, p.goal, inst.gold_plan).valid
        assert table.optimal_length(p.init, p.goal) == length  # BFS: nothing shorter exists
        seen.add((p.init, p.goal))
    assert len(seen) == size


def test_regenerating_with_the_seed_gives_the_committed_files(tmp_path):
    write_sets(tmp_path)
    for rel in ["domain.pddl", "step_4.json", "step_6.json", "instances/step_4/instance-001.pddl",
                "instances/step_6/instance-114.pddl"]:
        assert (tmp_path / rel).read_text() == (DATA / rel).read_text(), rel
    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.pddl"))
    assert produced == sorted(p.relative_to(DATA) for p in DATA.rglob("*.pddl"))


def test_other_seed_gives_other_instances():
    a = Generator(1).make_set(SetSpec("x", 4, 5, 1))
    b = Generator(2).make_set(SetSpec("x", 4, 5, 1))
    assert [(i.init, i.goal) for i in a] != [(i.init, i.goal) for i in b]
    assert all(len(i.plan) == 4 for i in a + b)


PROBLEM = """(define (problem p) (:domain blocksworld-4ops)
(:objects a b c d)
(:init (handempty) (ontable a) (on b c) (ontable c) (ontable d) (clear a) (clear b) (clear d))
(:goal (and (on c b))))
"""


def write_set(folder: Path, problem: str = PROBLEM, entry=None) -> Path:
    (folder / "instances").mkdir(parents=True, exist_ok=True)
    (folder / "instances" / "p1.pddl").write_text(problem)
    data = folder / "set.json"
    data.write_text(json.dumps([entry or {"instance": "instances/p1.pddl",
                                          "gold_plan": ["(unstack blue orange)", "(put-down blue)",
                                                        "(pick-up orange)", "(stack orange blue)"],
                                          "optimal_length": 4}]))
    return data


def test_letter_objects_map_to_colours(tmp_path):
    (inst,) = load_instance_set(write_set(tmp_path))
    assert inst.problem.blocks == ("red", "blue", "orange", "yellow")
    assert ("on", "blue", "orange") in inst.problem.init
    assert inst.problem.goal == frozenset({("on", "orange", "blue")})
    assert validate_plan(inst.problem.init, inst.problem.goal, inst.gold_plan).valid


@pytest.mark.parametrize("breakage", ["missing set", "bad json", "bad pddl", "bad gold", "no hand", "bad domain", "empty"])
def test_bad_instance_files_are_one_line_user_errors(tmp_path, breakage):
    data = write_set(tmp_path)
    if breakage == "missing set":
        data = tmp_path / "nope.json"
    elif breakage == "bad json":
        data.write_text("[{")
    elif breakage == "bad pddl":
        (tmp_path / "instances" / "p1.pddl").write_text("(define (problem p) (:init (on a")
    elif breakage == "bad gold":
        data = write_set(tmp_path, entry={"instance": "instances/p1.pddl", "gold_plan": ["(fly a)"]})
    elif breakage == "no hand":
        write_set(tmp_path, PROBLEM.replace("(handempty)", ""))
    elif breakage == "bad domain":
        (tmp_path / "domain.pddl").write_text("(define (domain d) (:requirements :strips) (:predicates (p ?x))"
                                              " (:action a :parameters (?x) :precondition (p ?x) :effect (not (p ?x))))")
    elif breakage == "empty":
        data.write_text("[]")
    with pytest.raises(UserError) as err:
        load_instance_set(data)
    assert "\n" not in str(err.value)
