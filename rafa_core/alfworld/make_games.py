"""Offline ALFWorld games: our own PDDL problems over the shipped ``alfred.pddl`` / ``alfred.twl2``.

    python -m rafa_core.alfworld.make_games --out DIR [--per-type 2] [--seed 0]

writes ``DIR/json_2.1.1/valid_unseen/<task_type>-<Object>-None-<Receptacle>-<scene>/trial_<id>/``
with ``traj_data.json``, ``initial_state.pddl`` and ``game.tw-pddl`` (the JSON that
``AlfredTWEnv`` loads: ``pddl_domain``, ``grammar``, ``pddl_problem``, ``solvable``,
``walkthrough``), plus ``DIR/logic/alfred.{pddl,twl2}`` — the layout ``alfworld-download``
produces, so ``ALFWORLD_DATA=DIR`` runs the same code path as the official games.

Each room has six receptacles, each at its own location, and the agent starts in the
middle of the room. A game is kept only if TextWorld's planner (fast-downward) finds a plan;
the plan is stored as the game's walkthrough.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..cli import ArgumentParser
from ..llm.errors import UserError

TASK_TYPES = {
    1: "pick_and_place_simple",
    2: "look_at_obj_in_light",
    3: "pick_clean_then_place_in_recep",
    4: "pick_heat_then_place_in_recep",
    5: "pick_cool_then_place_in_recep",
    6: "pick_two_obj_and_place",
}

# The task sentence ALFWorld's templates would produce for each type (first template).
TASK_SENTENCES = {
    "pick_and_place_simple": "put a {obj} in {recep}",
    "look_at_obj_in_light": "look at {obj} under the {toggle}",
    "pick_clean_then_place_in_recep": "put a clean {obj} in {recep}",
    "pick_heat_then_place_in_recep": "put a hot {obj} in {recep}",
    "pick_cool_then_place_in_recep": "put a cool {obj} in {recep}",
    "pick_two_obj_and_place": "put two {obj} in {recep}",
}

OPENABLE = {"Cabinet", "Drawer", "Fridge", "Microwave", "Safe"}

# Objects a task may be about, per task type, and where they may end up.
TASK_OBJECTS = {
    "pick_and_place_simple": (["SoapBottle", "Pen", "KeyChain", "Vase", "Spatula", "Candle"],
                              ["CounterTop", "Shelf", "Drawer", "DiningTable", "Cabinet"]),
    "look_at_obj_in_light": (["Book", "CD", "CellPhone", "AlarmClock", "Pencil", "Bowl"], []),
    "pick_clean_then_place_in_recep": (["Mug", "Plate", "Cloth", "Ladle", "Lettuce", "Fork"],
                                       ["CounterTop", "Cabinet", "DiningTable", "Shelf"]),
    "pick_heat_then_place_in_recep": (["Apple", "Potato", "Egg", "Mug", "Bread", "Tomato"],
                                      ["CounterTop", "DiningTable", "Fridge", "GarbageCan"]),
    "pick_cool_then_place_in_recep": (["Apple", "Tomato", "Lettuce", "Bottle", "Pan", "Cup"],
                                      ["CounterTop", "DiningTable", "Cabinet", "Shelf"]),
    "pick_two_obj_and_place": (["CD", "Pencil", "SoapBar", "CreditCard", "KeyChain", "Newspaper"],
                               ["Drawer", "Shelf", "SideTable", "Dresser", "Sofa"]),
}

# The appliance a task needs (it is one of the six receptacles of the room).
APPLIANCE = {
    "look_at_obj_in_light": "SideTable",
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}

FILLER_RECEPTACLES = ["CounterTop", "Cabinet", "Drawer", "Shelf", "DiningTable", "Desk",
                      "GarbageCan", "Dresser", "StoveBurner", "CoffeeMachine", "Bed", "Sofa"]
DISTRACTORS = ["Spoon", "Knife", "Pot", "SaltShaker", "PepperShaker", "Watch", "Box",
               "TissueBox", "RemoteControl", "Towel", "Statue", "Laptop"]

ROOM_SIZE = 6  # receptacles per room: keeps a searching agent within 20 steps
MAX_OPENABLE = 2  # closed receptacles cost an extra "open" each while searching


def coordinate(rng: random.Random) -> str:
    """An ALFRED-style mangled coordinate, e.g. ``_bar__minus_01_dot_20``."""
    value = rng.uniform(-3, 3)
    sign = "_plus_" if value >= 0 else "_minus_"
    whole, frac = f"{abs(value):05.2f}".split(".")
    return f"_bar_{sign}{whole}_dot_{frac}"


def entity_id(kind: str, rng: random.Random) -> str:
    """``Apple|-01.20|+00.90|+01.10`` mangled the way ALFRED writes PDDL names."""
    if kind == "SinkBasin":  # ALFRED names it Sink|x|y|z|SinkBasin; shown as "sinkbasin"
        return "Sink" + "".join(coordinate(rng) for _ in range(3)) + "_bar_SinkBasin"
    return kind + "".join(coordinate(rng) for _ in range(3))


@dataclass
class Spec:
    """One game: what the task is and how the room is laid out."""

    task_type: str
    obj: str
    recep: str  # target receptacle type ("" for look_at_obj_in_light)
    toggle: str  # "DeskLamp" for look_at_obj_in_light
    scene: int
    receptacles: list[tuple[str, str]] = field(default_factory=list)  # (type, id)
    objects: list[tuple[str, str, str]] = field(default_factory=list)  # (type, id, receptacle id)

    @property
    def task_desc(self) -> str:
        return TASK_SENTENCES[self.task_type].format(
            obj=self.obj.lower(), recep=self.recep.lower(), toggle=self.toggle.lower()
        )

    @property
    def folder(self) -> str:
        target = self.recep or self.toggle
        return f"{self.task_type}-{self.obj}-None-{target}-{self.scene}"


def make_spec(task_type: str, scene: int, rng: random.Random) -> Spec:
    objects, targets = TASK_OBJECTS[task_type]
    obj = rng.choice(objects)
    recep = rng.choice(targets) if targets else ""
    toggle = "DeskLamp" if task_type == "look_at_obj_in_light" else ""
    spec = Spec(task_type, obj, recep, toggle, scene)

    kinds = [k for k in (recep, APPLIANCE.get(task_type, "")) if k]
    fillers = [k for k in FILLER_RECEPTACLES if k not in kinds]
    rng.shuffle(fillers)
    for kind in fillers:
        if len(kinds) >= ROOM_SIZE:
            break
        if kind in OPENABLE and sum(k in OPENABLE for k in kinds) >= MAX_OPENABLE:
            continue
        kinds.append(kind)
    rng.shuffle(kinds)
    spec.receptacles = [(k, entity_id(k, rng)) for k in kinds]

    # Task objects start anywhere but in the target receptacle and the appliance.
    sources = [rid for k, rid in spec.receptacles if k not in (recep, APPLIANCE.get(task_type))]
    count = 2 if task_type == "pick_two_obj_and_place" else 1
    for _ in range(count):
        spec.objects.append((obj, entity_id(obj, rng), rng.choice(sources)))
    if toggle:
        lamp_home = next(rid for k, rid in spec.receptacles if k == APPLIANCE[task_type])
        spec.objects.append((toggle, entity_id(toggle, rng), lamp_home))
    for kind in rng.sample(DISTRACTORS, rng.randint(2, 4)):
        spec.objects.append((kind, entity_id(kind, rng), rng.choice([rid for _, rid in spec.receptacles])))
    return spec


def goal_pddl(spec: Spec) -> str:
    obj, recep = f"{spec.obj}Type", f"{spec.recep}Type"
    if spec.task_type == "look_at_obj_in_light":
        return (
            "(and (exists (?ot - object ?r - receptacle ?a - agent ?l - location)"
            f" (and (objectType ?ot {spec.toggle}Type) (toggleable ?ot) (isToggled ?ot)"
            " (receptacleAtLocation ?r ?l) (atLocation ?a ?l) (inReceptacle ?ot ?r)))"
            f" (exists (?o - object ?a - agent) (and (objectType ?o {obj}) (holds ?a ?o))))"
        )
    if spec.task_type == "pick_two_obj_and_place":
        return (
            "(exists (?r - receptacle ?o1 - object ?o2 - object)"
            f" (and (receptacleType ?r {recep}) (objectType ?o1 {obj}) (objectType ?o2 {obj})"
            " (not (= ?o1 ?o2)) (inReceptacle ?o1 ?r) (inReceptacle ?o2 ?r)))"
        )
    state = {
        "pick_clean_then_place_in_recep": " (isClean ?o)",
        "pick_heat_then_place_in_recep": " (isHot ?o)",
        "pick_cool_then_place_in_recep": " (isCool ?o)",
    }.get(spec.task_type, "")
    return (
        "(exists (?r - receptacle ?o - object)"
        f" (and (receptacleType ?r {recep}) (objectType ?o {obj}){state} (inReceptacle ?o ?r)))"
    )


def problem_pddl(spec: Spec, name: str, rng: random.Random) -> str:
    locations = {rid: f"loc_bar_{i + 1}_bar_{rng.randint(-9, 9)}_bar_{rng.choice([0, 1, 2, 3])}_bar_30"
                 for i, (_, rid) in enumerate(spec.receptacles)}
    start = "loc_bar_0_bar_0_bar_0_bar_0"
    otypes = sorted({kind for kind, _, _ in spec.objects})
    rtypes = sorted({kind for kind, _ in spec.receptacles})
    objects = ["agent1 - agent", f"{start} - location"]
    objects += [f"{loc} - location" for loc in locations.values()]
    objects += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    objects += [f"{oid} - object" for _, oid, _ in spec.objects]
    objects += [f"{rid} - receptacle" for _, rid in spec.receptacles]

    init = [f"(atLocation agent1 {start})"]
    for kind, rid in spec.receptacles:
        init += [f"(receptacleType {rid} {kind}Type)", f"(receptacleAtLocation {rid} {locations[rid]})"]
        if kind in OPENABLE:
            init.append(f"(openable {rid})")
    for kind, oid, home in spec.objects:
        init += [f"(objectType {oid} {kind}Type)", f"(inReceptacle {oid} {home})",
                 f"(objectAtLocation {oid} {locations[home]})"]
        if kind == "DeskLamp":
            init.append(f"(toggleable {oid})")
            continue
        init.append(f"(pickupable {oid})")
        if kind == spec.obj:
            init += [f"(cleanable {oid})", f"(heatable {oid})", f"(coolable {oid})"]
    for rt in rtypes:  # any receptacle can hold any portable object in these small rooms
        init += [f"(canContain {rt}Type {ot}Type)" for ot in otypes if ot != "DeskLamp"]

    lines = [f"(define (problem {name})", "(:domain alfred)", "(:objects"]
    lines += [f"  {o}" for o in objects] + [")", "(:init"] + [f"  {f}" for f in init] + [")"]
    lines += [f"(:goal {goal_pddl(spec)})", ")"]
    return "\n".join(lines) + "\n"


def traj_data(spec: Spec, trial_id: str) -> dict:
    """The fields of ALFRED's traj_data.json that ALFWorld reads (and a few for humans)."""
    return {
        "task_id": trial_id,
        "task_type": spec.task_type,
        "pddl_params": {
            "object_target": spec.obj,
            "parent_target": spec.recep,
            "toggle_target": spec.toggle,
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {"scene_num": spec.scene, "floor_plan": f"FloorPlan{spec.scene}"},
        "turk_annotations": {"anns": [{"task_desc": spec.task_desc.capitalize() + ".", "votes": [1]}]},
        "generator": "rafa_core.alfworld.make_games",
    }


def shipped_logic() -> tuple[Path, Path]:
    """The domain and grammar shipped in the alfworld wheel."""
    from .prompts import shipped_data_dir

    try:
        data = shipped_data_dir()
    except OSError as exc:
        raise UserError(f"{exc}; pip install 'rafa_core[alfworld]'")
    return data / "alfred.pddl", data / "alfred.twl2"


def plan_walkthrough(game: dict) -> list[str]:
    """Ask TextWorld's planner for a plan; [] when the game is unsolvable."""
    import textworld
    from textworld.envs.pddl import PddlEnv

    from .env import keep_data_env

    with keep_data_env():
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler

    env = AlfredDemangler(PddlEnv(textworld.EnvInfos(policy_commands=True, won=True)))
    env.load(game)
    state = env.reset()
    plan = list(state["policy_commands"] or [])
    # Check the plan by playing it: the planner's commands must be real and must win.
    for command in plan:
        state, _, _ = env.step(command)
        if state.feedback == "Nothing happens.":
            return []
    return plan if state["won"] else []


def write_game(spec: Spec, root: Path, trial_id: str, rng: random.Random, domain: str, grammar: str) -> Path | None:
    problem = problem_pddl(spec, f"plan_{trial_id}", rng)
    game = {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", spec.task_desc),
        "pddl_problem": problem,
    }
    walkthrough = plan_walkthrough(game)
    if not walkthrough:
        return None
    folder = root / spec.folder / f"trial_{trial_id}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "initial_state.pddl").write_text(problem, encoding="utf-8")
    (folder / "traj_data.json").write_text(json.dumps(traj_data(spec, trial_id), indent=2) + "\n", encoding="utf-8")
    game.update(solvable=True, walkthrough=walkthrough)
    (folder / "game.tw-pddl").write_text(json.dumps(game) + "\n", encoding="utf-8")
    return folder


def make_games(out: Path, per_type: int = 2, seed: int = 0, split: str = "valid_unseen") -> list[Path]:
    """Write ``per_type`` solvable games of each of the six task types under ``out``."""
    domain_path, grammar_path = shipped_logic()
    domain = domain_path.read_text(encoding="utf-8")
    grammar = grammar_path.read_text(encoding="utf-8")
    logic = out / "logic"
    logic.mkdir(parents=True, exist_ok=True)
    shutil.copy(domain_path, logic / "alfred.pddl")
    shutil.copy(grammar_path, logic / "alfred.twl2")

    root = out / "json_2.1.1" / split
    written: list[Path] = []
    for type_id, task_type in TASK_TYPES.items():
        for k in range(per_type):
            rng = random.Random(f"{seed}-{task_type}-{k}")
            for attempt in range(10):
                scene = 400 + 10 * type_id + k
                trial_id = f"T{seed:04d}{type_id}{k:02d}_{attempt:02d}"
                folder = write_game(make_spec(task_type, scene, rng), root, trial_id, rng, domain, grammar)
                if folder is not None:
                    written.append(folder)
                    break
            else:
                raise RuntimeError(f"no solvable {task_type} game in 10 attempts (seed {seed})")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="data root to write (use it as $ALFWORLD_DATA)")
    parser.add_argument("--per-type", dest="per_type", type=int, default=2, help="games per task type (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.per_type < 1:
        print("error: --per-type must be >= 1", file=sys.stderr)
        return 2
    try:
        folders = make_games(Path(args.out), per_type=args.per_type, seed=args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(folders)} games under {Path(args.out) / 'json_2.1.1' / 'valid_unseen'}")
    print(f"run with: ALFWORLD_DATA={args.out} python alfworld/run.py ...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
