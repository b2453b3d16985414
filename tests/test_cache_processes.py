"""Two processes sharing one response cache (two runs with the same --cache)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from rafa_core.llm import ResponseCache

WRITER = textwrap.dedent(
    """
    import sys
    from rafa_core.llm import ResponseCache
    cache = ResponseCache(sys.argv[1])
    for i in range(300):
        cache.put(f"{sys.argv[2]}-{i}", {"text": "x" * (i % 50)})
        cache.get(f"{sys.argv[2]}-{i // 2}")
    """
)


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResponseCache(path).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], env=env)
             for name in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    cache = ResponseCache(path)
    assert len(cache) == 900
    assert cache.get("b-299") == {"text": "x" * (299 % 50)}
