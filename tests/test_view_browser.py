"""The run viewer in a real headless browser (Debian's chromium, installed by scripts/test.sh):
for a run of each benchmark the page loads without script errors and shows the timeline,
plan trees, LLM calls and the benchmark's own pieces; model text is escaped."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from rafa_core.__main__ import main as rafa_main
from rafa_core.blocksworld.cli import main as blocksworld_main
from rafa_core.game24.cli import main as game24_main
from rafa_core.tictactoe.cli import main as tictactoe_main

pytestmark = pytest.mark.slow  # a real browser, and the ALFWorld engine

REPO = Path(__file__).resolve().parents[1]
INJECTED = "<script>document.title='pwned'</script><img src=x onerror=\"throw 1\">"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: scripts/test.sh installs it (apt-get install chromium)"
    return found


def rendered_dom(page: Path) -> str:
    """The DOM after the page's scripts ran, as the browser sees it."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def view(run_dir: Path) -> tuple[str, str]:
    assert rafa_main(["view", str(run_dir)]) == 0
    page = run_dir / "view.html"
    source = page.read_text(encoding="utf-8")
    assert "http://" not in source and "https://" not in source  # self-contained: nothing to fetch
    return source, rendered_dom(page)


def count(dom: str, pattern: str) -> int:
    return len(re.findall(pattern, dom))


def assert_loaded(dom: str) -> None:
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-ready="1"' in html_tag, "the page's script did not finish"
    assert "data-script-errors" not in html_tag, html_tag


def test_game24_page_shows_steps_trees_calls_and_escapes_model_text(tmp_path):
    out = tmp_path / "g24"
    assert game24_main(["--backend", "oracle:0.3", "--feedback", "--task_start_index", "990", "--task_end_index", "993",
                        "--max_step", "5", "--no-cache", "--out", str(out)]) == 0
    with open(out / "requests.jsonl", "a", encoding="utf-8") as log:  # a hostile completion
        first = json.loads((out / "requests.jsonl").read_text().splitlines()[0])
        log.write(json.dumps({**first, "completions": [INJECTED]}) + "\n")
    source, dom = view(out)
    assert_loaded(dom)
    assert INJECTED not in source and "&lt;script&gt;document.title" in source
    assert "<title>pwned</title>" not in dom
    episodes = sum(1 for _ in (out / "episodes.jsonl").open())
    assert count(dom, r'<details class="episode"') == episodes == 3
    assert count(dom, r'<li class="step') >= 3 and count(dom, r'<details class="tree"') >= 3
    assert count(dom, r'<details class="call"') >= 50 and "critic value" in dom and "feedback" in dom
    assert "RAFA (b=1)" in dom and "SIMULATED backend" in dom
    broken = out / "broken.html"  # the check itself: a script error is seen
    broken.write_text(source.replace("</body>", "<script>null.boom()</script></body>"), encoding="utf-8")
    assert 'data-script-errors="1"' in re.search(r"<html[^>]*>", rendered_dom(broken)).group(0)


def test_tictactoe_page_shows_boards(tmp_path):
    out = tmp_path / "ttt"
    assert tictactoe_main(["--X", "oracle", "--O", "oracle", "--O_MPC", "2", "--num_train_epochs", "1",
                           "--verbose", "0", "--out", str(out)]) == 0
    _, dom = view(out)
    assert_loaded(dom)
    assert count(dom, r'<pre class="board"') >= 9 and "imagined board" in dom
    assert "reflections after the game" in dom and count(dom, r'<details class="call"') > 10


def test_blocksworld_page_shows_block_states_and_corrections(tmp_path):
    out = tmp_path / "bw"
    assert blocksworld_main("rafa", ["--backend", "oracle:0.3", "--single_run", "--no-cache", "--out", str(out)],
                            default_data=REPO / "blocksworld" / "data" / "step_4.json") == 0
    _, dom = view(out)
    assert_loaded(dom)
    assert count(dom, r'<pre class="text blocks"') >= 4 and "world model predicted" in dom and "initial state" in dom
    assert count(dom, r'class="role role-world-model"') >= 1 and count(dom, r'class="role role-proposer"') >= 1


def test_alfworld_page_shows_trials_and_reflections(tmp_path, monkeypatch):
    from rafa_core.alfworld.cli import main as alfworld_main
    from rafa_core.alfworld.make_games import make_games

    data = tmp_path / "games"
    make_games(data, per_type=1, seed=0)
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    out = tmp_path / "alf"
    argv = ["--data", str(data), "--out", str(out), "--no-cache", "--progress", "false", "--backend", "oracle:0.5",
            "--num_trials", "2", "--num_envs", "3", "--seed", "3"]
    assert asyncio.run(alfworld_main(argv, default_config=REPO / "alfworld" / "base_config.yaml")) == 0
    _, dom = view(out)
    assert_loaded(dom)
    assert 'id="trials"' in dom and "trial 0" in dom and count(dom, r'<details class="tree"') >= 1
    reflections = out / "reflections.jsonl"
    if reflections.exists() and reflections.read_text().strip():
        assert "after trial 0:" in dom and count(dom, r'class="role role-reflection"') >= 1
