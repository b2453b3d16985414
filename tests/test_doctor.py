"""``python -m rafa_core doctor``: one OK/WARN/FAIL line per check, exit 1 only on a FAIL."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rafa_core import doctor

REPO = Path(__file__).resolve().parents[1]
NAMES = ["python", "dependencies", "extras", "torch", "embedded model", "game24 data", "alfworld engine",
         "ALFWORLD_DATA", "response cache", "keys", "endpoint", "llama.cpp"]


def run_doctor(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "rafa_core", "doctor", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env=environment)


def lines_by_name(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines()[:-1]:
        match = re.match(r"^(OK|WARN|FAIL) +([^:]+): \S", line)
        assert match, f"not a check line: {line!r}"
        found[match.group(2)] = match.group(1)
    return found


def test_every_check_has_one_line_and_a_status(tmp_path):
    data = tmp_path / "alfworld"
    game = data / "json_2.1.1" / "valid_unseen" / "pick_and_place-Apple-None-Fridge-1" / "trial_1"
    game.mkdir(parents=True)
    (game / "game.tw-pddl").write_text("{}")
    result = run_doctor("--cache", str(tmp_path / "cache"), ALFWORLD_DATA=str(data), OPENAI_API_KEY="",
                        AZURE_OPENAI_ENDPOINT="", AZURE_OPENAI_API_KEY="", OPENAI_BASE_URL="")
    statuses = lines_by_name(result.stdout)
    assert list(statuses) == NAMES, result.stdout
    assert set(statuses.values()) <= {"OK", "WARN"} and result.returncode == 0, result.stdout
    assert "1 valid_unseen games" in result.stdout and "writable" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"{len(NAMES)} checks: 0 FAIL")


def test_an_unwritable_cache_fails_with_what_to_do(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_doctor("--cache", str(blocker / "cache"))
    assert result.returncode == 1
    assert lines_by_name(result.stdout)["response cache"] == "FAIL"
    [line] = [ln for ln in result.stdout.splitlines() if "response cache" in ln]
    assert "not writable" in line and "--cache DIR" in line


def test_alfworld_data_that_is_missing_or_empty_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "nowhere"))
    assert doctor.check_alfworld_data().status == doctor.FAIL
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    check = doctor.check_alfworld_data()
    assert check.status == doctor.FAIL and "no games" in check.detail and "make_games" in check.fix
    monkeypatch.delenv("ALFWORLD_DATA")
    assert doctor.check_alfworld_data().status == doctor.WARN


def test_half_an_azure_configuration_is_a_warning(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://x.invalid")
    check = doctor.check_keys(None)
    assert check.status == doctor.WARN and "AZURE_OPENAI_API_KEY" in check.fix


def test_online_reports_a_closed_port_and_a_live_server(monkeypatch):
    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.end_headers()
            self.wfile.write(b'{"data": []}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        live = doctor.check_online(f"http://127.0.0.1:{server.server_address[1]}/v1", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert live.status == doctor.OK and "HTTP 200" in live.detail
    closed = doctor.check_online(f"http://127.0.0.1:{server.server_address[1]}/v1", timeout=5)
    assert closed.status == doctor.FAIL and "connection refused" in closed.detail


def test_declared_requirements_follow_pyproject():
    needs = doctor.declared_requirements()
    assert {"openai", "httpx"} <= set(needs[""])
    assert {"hf", "alfworld", "llamacpp", "plot", "test"} <= set(needs) and "textworld" in needs["alfworld"]


@pytest.mark.parametrize("version, status", [("2.13.0+cpu", doctor.OK)])
def test_a_cpu_torch_is_recognised_without_importing_it(monkeypatch, version, status):
    monkeypatch.setattr(doctor, "installed_version", lambda dist: version if dist == "torch" else None)
    monkeypatch.setitem(sys.modules, "torch", None)  # importing torch would raise ImportError
    check = doctor.check_torch()
    assert check.status == status and "CPU build" in check.detail
