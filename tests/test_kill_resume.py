"""Kill -9 and resume: a run killed at random points, restarted on the same ``--out``,
ends with every episode exactly once, no torn line, and the summary of an uninterrupted run.

What is compared: every episode record (wall-clock ``wall_s`` dropped) and the whole
``summary.json`` except ``wall_s``.  Usage totals included: a finished episode carries its
own usage and a resumed run folds those back in, while an episode cut short by the kill is
re-run from scratch and only its finished run is recorded, so the totals of an interrupted
run equal the uninterrupted one.  (Work done by a killed, unfinished episode is not in the
ledger: with a paid API that money was spent but is not reported.)
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KILL_SEED = 7


def launch(script: str, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(REPO / script), *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def run_to_end(script: str, args: list[str]) -> None:
    proc = launch(script, args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]


def whole_lines(path: Path) -> list[dict[str, Any]]:
    """The records of an episodes.jsonl that must have no torn line and no duplicate."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "torn last line"
    records = [json.loads(line) for line in raw.splitlines()]
    indices = [str(r["index"]) for r in records]
    assert len(indices) == len(set(indices)), "an episode is logged twice"
    return records


def episodes(out: Path) -> dict[str, dict[str, Any]]:
    return {str(r["index"]): {k: v for k, v in r.items() if k != "wall_s"} for r in whole_lines(out / "episodes.jsonl")}


def summary(out: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads((out / "summary.json").read_text()).items() if k != "wall_s"}


def check_after_kill(out: Path) -> int:
    """What a kill may leave: whole records plus at most one torn line; JSON files whole."""
    log = out / "episodes.jsonl"
    finished = 0
    if log.exists():
        lines = log.read_bytes().split(b"\n")
        for line in lines[:-1]:  # every newline-terminated line is a whole record
            json.loads(line)
            finished += 1
    for name in ("config.json", "summary.json"):
        if (out / name).exists():
            json.loads((out / name).read_text())  # never half-written (temporary file + rename)
    return finished




def kill_and_resume(script: str, args: list[str], out: Path, kills: int, total: int, full_s: float) -> list[int]:
    """Start, SIGKILL at a random moment while the run is under way, restart on the same
    --out; ``kills`` times, then let the last start finish. Returns the finished-episode
    counts seen after each kill.

    A kill is aimed by progress, not by the clock (a loaded machine makes clocks lie): wait
    until the log holds a random number of episodes short of ``total``, then a random few
    milliseconds more, so kills land between episodes and in the middle of them."""
    rng = random.Random(KILL_SEED)
    seen = [0]
    deadline_s = max(60.0, 10 * full_s)
    for _ in range(kills):
        proc = launch(script, [*args, "--out", str(out)])
        target = rng.randint(min(seen[-1] + 1, total - 1), total - 1)
        started = time.monotonic()
        while proc.poll() is None and count_lines(out / "episodes.jsonl") < target:
            if time.monotonic() - started > deadline_s:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.02))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
        seen.append(check_after_kill(out))
    run_to_end(script, [*args, "--out", str(out)])
    return seen[1:]


GAME24_ARGS = ["--backend", "oracle:0.3", "--feedback", "--task_start_index", "900", "--task_end_index", "930",
               "--concurrency", "4"]


def test_game24_killed_repeatedly_ends_like_an_uninterrupted_run(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    started = time.monotonic()
    run_to_end("game24/run.py", [*GAME24_ARGS, "--out", str(reference)])
    full = time.monotonic() - started
    # Kill anywhere from start-up to nearly done: each restart gets a bit further.
    seen = kill_and_resume("game24/run.py", GAME24_ARGS, killed, kills=4, total=30, full_s=full)
    assert sum(0 < n < 30 for n in seen) >= 2, f"kills should land mid-run: {seen}"
    assert sorted(episodes(killed), key=int) == [str(i) for i in range(900, 930)]
    assert episodes(killed) == episodes(reference)
    assert summary(killed) == summary(reference)


def test_a_torn_last_line_is_repaired_by_the_entry_point(tmp_path):
    """A kill in the middle of an append leaves half a record; the next start cuts it off."""
    out = tmp_path / "run"
    args = [*GAME24_ARGS[:3], "--task_start_index", "900", "--task_end_index", "903", "--out", str(out)]
    run_to_end("game24/run.py", args)
    records = whole_lines(out / "episodes.jsonl")
    dropped = records[-1]
    kept = b"".join(json.dumps(r).encode() + b"\n" for r in records[:-1])
    (out / "episodes.jsonl").write_bytes(kept + json.dumps(dropped).encode()[:50])
    run_to_end("game24/run.py", args)
    again = episodes(out)
    assert sorted(again, key=int) == ["900", "901", "902"]
    assert again[str(dropped["index"])]["success"] == dropped["success"]


TICTACTOE_ARGS = ["--X", "oracle:0.2", "--O", "oracle:0.2", "--O_MPC", "3", "--num_train_epochs", "5",
                  "--num_eval_epochs", "2", "--verbose", "0", "--concurrency", "1"]


def game_outcomes(out: Path) -> dict[str, Any]:
    return {i: (r["winner"], r["moves"]) for i, r in episodes(out).items()}


def test_tictactoe_killed_repeatedly_plays_every_game_once(tmp_path):
    """Compared: the games (winners, moves) and evaluations.  A resumed player is reloaded
    with its search cache and answers as saved after the last finished game (tested exactly
    in test_tictactoe_run.py); usage is not compared here because a kill between that save
    and the log line replays one evaluation game with a warmer cache (fewer calls)."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    started = time.monotonic()
    run_to_end("tictactoe/run.py", [*TICTACTOE_ARGS, "--out", str(reference)])
    full = time.monotonic() - started
    seen = kill_and_resume("tictactoe/run.py", TICTACTOE_ARGS, killed, kills=3, total=17, full_s=full)
    assert any(0 < n < 17 for n in seen), f"no kill landed mid-run: {seen}"
    assert len(episodes(killed)) == 2 + 5 * 3  # the first evaluation, then per epoch: training + evaluation
    assert game_outcomes(killed) == game_outcomes(reference)
    assert summary(killed)["evaluations"] == summary(reference)["evaluations"]
    assert summary(killed)["episodes"] == summary(reference)["episodes"]
