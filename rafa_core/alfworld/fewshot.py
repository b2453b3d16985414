"""Rebuild ``fewshot.json``: our scripted player's traces on freshly generated games.

    python -m rafa_core.alfworld.fewshot

Two traces per task kind, played through the real engine by ``oracle.next_command``, with
a critic line after each observation that changes progress, one example reflection per
kind (written from a trace cut in half), and three corrected-critic reflections (the
original's kind, on three kinds' halved traces). Uses a seed no test or run uses for its games.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .make_games import make_games
from .oracle import critic_feedback, critic_line, next_command, reflection_text
from .prompts import Turn
from .world import World

FEWSHOT_SEED = 7
PER_KIND = 2
CRITIC_REFLECTION_KINDS = ("clean", "puttwo", "heat")  # the original's three examples span kinds too


def play(env, index: int, max_steps: int = 25) -> tuple[str, list[Turn]]:
    intro, _ = env.reset(index)
    turns: list[Turn] = []
    last = World.from_transcript(intro, []).progress()
    for _ in range(max_steps):
        world = World.from_transcript(intro, [(t.action, t.observation) for t in turns])
        command = next_command(world)
        obs, _, done, info = env.step(command)
        turns.append(Turn(command, obs))
        world.apply(command, obs)
        if world.progress() != last:
            turns[-1].critic = critic_line(world)
            last = world.progress()
        if info["won"]:
            return intro, turns
    raise RuntimeError(f"the scripted player did not win game {index}")


def build() -> dict:
    from .env import AlfWorld

    with tempfile.TemporaryDirectory() as tmp:
        make_games(Path(tmp), per_type=PER_KIND, seed=FEWSHOT_SEED)
        os.environ["ALFWORLD_DATA"] = tmp
        games = AlfWorld()
        env = games.make_env()
        out: dict[str, list[dict]] = {}
        for game in games.games:
            intro, turns = play(env, game.index)
            out.setdefault(game.kind, []).append(
                {"intro": intro, "turns": [{"action": t.action, "observation": t.observation, "critic": t.critic} for t in turns]}
            )
        for kind, traces in list(out.items()):
            ex = traces[-1]
            half = [Turn(t["action"], t["observation"]) for t in ex["turns"][: max(1, len(ex["turns"]) // 2)]]
            world = World.from_transcript(ex["intro"], [(t["action"], t["observation"]) for t in ex["turns"]])
            out[f"{kind}_reflection"] = [{"text": reflection_text(world, half)}]
        env.close()
    out["critic_reflections"] = critic_reflections(out)
    return out


def critic_reflections(data: dict) -> list[dict]:
    """Failed attempts (the first trace of a kind, cut in half, critic lines kept) and the
    corrected critic written about each."""
    shots = []
    for kind in CRITIC_REFLECTION_KINDS:
        ex = data[kind][0]
        half = ex["turns"][: max(1, len(ex["turns"]) // 2)]
        world = World.from_transcript(ex["intro"], [(t["action"], t["observation"]) for t in half])
        turns = [Turn(t["action"], t["observation"], t.get("critic")) for t in half]
        shots.append({"intro": ex["intro"], "turns": half, "text": critic_feedback(world, turns)})
    return shots


def main() -> None:
    data = build()
    path = Path(__file__).with_name("fewshot.json")
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
