"""The request log: every LLM call of a run, labelled; a run replays from it; resume is honest."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from rafa_core.game24.cli import main as game24_main
from rafa_core.llm.base import Completion
from rafa_core.llm.request_log import RequestLog, labelled, labels, read_requests
from rafa_core.llm.scripted import ReplayLLM
from rafa_core.tictactoe.cli import main as tictactoe_main

GAME24 = ["--planning", "tot", "--feedback", "--task_start_index", "990", "--task_end_index", "993",
          "--max_step", "4", "--no-cache", "--concurrency", "2"]


def requests(out: Path) -> list[dict]:
    return read_requests(out / "requests.jsonl")


def episodes(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def test_every_call_is_logged_with_episode_step_and_role(tmp_path):
    out = tmp_path / "run"
    assert game24_main(["--backend", "oracle:0.3", *GAME24, "--out", str(out)]) == 0
    calls = requests(out)
    summary = json.loads((out / "summary.json").read_text())
    assert sum(c["params"]["n"] - c["cache_hits"] for c in calls) == summary["llm_calls"]
    assert {c["episode"] for c in calls} == {990, 991, 992}
    roles = Counter(c["role"] for c in calls)
    assert set(roles) == {"proposer", "critic", "reflection"}, roles
    for record in episodes(out):  # every step that was taken has its calls, and only those
        steps = {c["step"] for c in calls if c["episode"] == record["index"]}
        assert steps == {s["step"] for s in record["trace"]}
    first = calls[0]
    assert first["messages"][0]["content"] and isinstance(first["completions"][0], str)
    assert first["params"]["temperature"] == 0.7 and first["latency_s"] >= 0 and first["backend"] == "oracle:0.3"


def test_a_run_replays_from_its_request_log(tmp_path):
    out = tmp_path / "run"
    assert game24_main(["--backend", "oracle:0.3", *GAME24, "--out", str(out)]) == 0
    again = tmp_path / "again"
    assert game24_main(["--backend", f"replay:{out}", *GAME24, "--out", str(again)]) == 0
    strip = lambda rs: [{k: r[k] for k in ("index", "success", "env_steps", "trace")} for r in rs]  # noqa: E731
    assert sorted(strip(episodes(again)), key=lambda r: r["index"]) == sorted(strip(episodes(out)), key=lambda r: r["index"])
    assert len(requests(again)) == len(requests(out))


def test_no_request_log_flag_and_tictactoe_moves_are_steps(tmp_path):
    quiet = tmp_path / "quiet"
    assert game24_main(["--backend", "oracle", *GAME24, "--out", str(quiet), "--no-request-log"]) == 0
    assert not (quiet / "requests.jsonl").exists()
    ttt = tmp_path / "ttt"
    assert tictactoe_main(["--X", "oracle", "--O", "oracle", "--O_MPC", "2", "--num_train_epochs", "1",
                           "--verbose", "0", "--out", str(ttt)]) == 0
    calls = requests(ttt)
    roles = Counter(c["role"] for c in calls)
    assert {"proposer", "world model", "critic", "reflection"} <= set(roles), roles
    games = {r["index"]: r for r in episodes(ttt)}
    for call in calls:  # moves are the steps; the reflections come after the game's last move
        assert call["episode"] in games
        if call["role"] == "reflection":
            assert call["step"] is None and games[call["episode"]]["phase"] == "train"
        else:
            assert 1 <= call["step"] <= len(games[call["episode"]]["moves"])


def test_resume_says_what_it_skipped_and_warns_when_the_code_changed(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--backend", "oracle", *GAME24, "--out", str(out)]
    assert game24_main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert len(config["code"]["source_sha256"]) == 16 and "git_commit" in config["code"]
    capsys.readouterr()
    assert game24_main(argv) == 0
    err = capsys.readouterr().err
    assert "3 finished episodes found and skipped, 0 to run" in err and "warning" not in err
    config["code"]["source_sha256"] = "0" * 16  # as if the run was made by other code
    (out / "config.json").write_text(json.dumps(config))
    assert game24_main(argv) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and "source changed" in warnings[0]
    after = json.loads((out / "config.json").read_text())
    assert after["earlier_code"][0]["source_sha256"] == "0" * 16 and after["code"]["source_sha256"] != "0" * 16


def test_a_torn_last_line_is_cut_and_labels_nest(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text('{"op": "generate"}\n{"op": "gen')
    log = RequestLog(path)
    with labels(episode=7, step=2):
        with labels(role="critic"):
            log.write({"op": "loglik"})
        log.write({"op": "generate"})
    log.close()
    rows = read_requests(path)
    assert [r["op"] for r in rows] == ["generate", "loglik", "generate"]
    assert (rows[1]["episode"], rows[1]["step"], rows[1]["role"]) == (7, 2, "critic")
    assert rows[2]["role"] is None


def test_every_value_reads_back_as_it_was_logged(tmp_path):
    # Lines go through orjson, except where it would change a value (-inf, a huge integer).
    path = tmp_path / "requests.jsonl"
    log = RequestLog(path)
    request = {"backend": "b", "model": "m", "messages": [{"role": "user", "content": "é ≠ 😀\u2028"}],
               "temperature": 0.7, "max_tokens": 5, "stop": None, "logprobs": True}
    common = {"n": 1, "first_sample": 2**62, "cache_hits": 0, "prompt_tokens": 3, "completion_tokens": 2, "started": 0.0}
    log.generate(request, completions=[Completion("ok")], **common)
    log.generate(request, completions=[Completion("lone \ud800 surrogate")], **common)
    log.generate(request, completions=[Completion("no", "stop", [-math.inf, -0.5], ["n", "o"])], **common)
    log.loglik({"backend": "b", "model": "m", "prefix": "p"}, continuations=["a", "b"], scores=[-math.inf, -1.25],
               cache_hits=0, prompt_tokens=1, started=0.0)
    log.close()
    assert ReplayLLM(path).answers == {ReplayLLM._prompt_key(request["messages"]): ["ok", "lone \ud800 surrogate", "no"]}
    log = RequestLog(path)
    with labels(episode=2**70, step={1: "x"}):  # beyond 64 bits; a key that is not a string
        log.write({"op": "note", "path": tmp_path})
    log.close()
    plain, surrogate, scored, loglik, odd = read_requests(path)
    assert surrogate["completions"] == ["lone \ud800 surrogate"]
    assert plain["messages"] == request["messages"] and plain["completions"] == ["ok"]
    assert plain["params"]["first_sample"] == 2**62
    assert scored["completions"][0]["token_logprobs"] == [-math.inf, -0.5]
    assert loglik["scores"] == [-math.inf, -1.25]
    assert odd["episode"] == 2**70 and odd["step"] == {"1": "x"} and odd["path"] == str(tmp_path)


def test_a_labelled_model_keeps_its_protocols_and_attributes():
    from rafa_core.search.mcts import PriorModel

    class Model:
        name = "m"

        async def propose(self, state):
            return [state]

        async def priors(self, state, actions):
            return [1.0]

    wrapped = labelled(Model())
    assert isinstance(wrapped, PriorModel) and wrapped.name == "m" and labelled(wrapped) is wrapped
