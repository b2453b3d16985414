"""Test support that does not ship with the library (the wheel packages ``rafa_core`` only).

``loopback``: an OpenAI-compatible HTTP server on 127.0.0.1 that answers with a scripted rule,
injects faults and enforces quotas; the tests and the ``scripts/bench_*.py`` run the real
OpenAI backend against it.
"""
