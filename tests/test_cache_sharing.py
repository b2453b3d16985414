"""One ``--cache`` through the entry point: two runs writing it at once both complete with the
right results, and a damaged cache is reported on stderr and rebuilt, never silently used.

(``test_cache_processes.py`` checks ResponseCache itself under concurrent writers.)
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--backend", "oracle:0.3", "--feedback", "--task_start_index", "900", "--task_end_index", "906",
        "--concurrency", "4"]


def start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(REPO / "game24/run.py"), *ARGS, "--out", str(out), *extra],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    return err


def outcomes(out: Path) -> dict[str, Any]:
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return {str(r["index"]): (r["success"], r["env_steps"], [s["action"] for s in r["trace"]]) for r in records}


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def test_two_runs_share_one_cache_at_the_same_time(tmp_path):
    finish(start(tmp_path / "reference", "--no-cache"))
    cache = tmp_path / "cache"
    first, second = start(tmp_path / "a", "--cache", str(cache)), start(tmp_path / "b", "--cache", str(cache))
    for proc in (first, second):
        assert "warning" not in finish(proc)
    expected = outcomes(tmp_path / "reference")
    assert outcomes(tmp_path / "a") == expected and outcomes(tmp_path / "b") == expected
    # Whatever the interleaving, a third run finds every answer in the cache.
    finish(start(tmp_path / "c", "--cache", str(cache)))
    assert outcomes(tmp_path / "c") == expected
    assert summary(tmp_path / "c")["llm_calls"] == 0
    assert summary(tmp_path / "c")["cache_hits"] >= summary(tmp_path / "reference")["llm_calls"]


def test_a_garbage_cache_file_is_reported_and_rebuilt(tmp_path):
    finish(start(tmp_path / "reference", "--no-cache"))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "responses.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    err = finish(start(tmp_path / "a", "--cache", str(cache)))
    assert "corrupt" in err and str(cache / "responses.sqlite") in err
    assert (cache / "responses.sqlite.corrupt").exists()  # kept aside for a look, not deleted
    assert outcomes(tmp_path / "a") == outcomes(tmp_path / "reference")
    finish(start(tmp_path / "b", "--cache", str(cache)))
    assert summary(tmp_path / "b")["llm_calls"] == 0  # the rebuilt cache is whole


def test_damaged_entries_are_reported_and_asked_again(tmp_path):
    cache = tmp_path / "cache"
    finish(start(tmp_path / "a", "--cache", str(cache)))
    with sqlite3.connect(cache / "responses.sqlite") as db:
        db.execute("UPDATE responses SET value = substr(value, 1, 12) WHERE rowid % 3 = 0")  # cut JSON
        db.execute("UPDATE responses SET value = '\"text\"' WHERE rowid % 3 = 1")  # JSON, wrong shape
        damaged = db.execute("SELECT count(*) FROM responses WHERE rowid % 3 != 2").fetchone()[0]
    err = finish(start(tmp_path / "b", "--cache", str(cache)))
    assert "unreadable entries" in err
    assert outcomes(tmp_path / "b") == outcomes(tmp_path / "a")
    assert summary(tmp_path / "b")["llm_calls"] > 0  # the damaged answers were asked again ...
    assert summary(tmp_path / "b")["llm_calls"] <= damaged
    err = finish(start(tmp_path / "c", "--cache", str(cache)))
    assert "warning" not in err and summary(tmp_path / "c")["llm_calls"] == 0  # ... and rewritten
