"""``--backend oracle[:error rate]``: a simulated model that answers from the rules (a test double).

With an error rate, that share of answers is wrong (a bad move first, a wrong sum, a wrong
judgement), drawn from the request's seeded random stream so runs replay exactly.
"""

from __future__ import annotations

import re

from numberwalk.env import MOVES, apply, moves_to_target, reachable
from numberwalk.prompts import PREDICT_HEAD, PROPOSE_HEAD, VALUE_HEAD

from rafa_core.llm.options import BackendOptions
from rafa_core.llm.scripted import ScriptedRequest, oracle_backend


def position(prompt: str) -> tuple[int, int]:
    value, target = re.search(r"Now at (\d+), the target is (\d+)", prompt).groups()
    return int(value), int(target)


def make_rule(error_rate: float):
    def rule(prompt: str, request: ScriptedRequest) -> str:
        wrong = request.rng.random() < error_rate
        if prompt.startswith(PROPOSE_HEAD):
            value, target = position(prompt)
            best = (moves_to_target(value, target) or list(MOVES))[0]
            order = [best] + [m for m in MOVES if m != best]
            return "\n".join(order[::-1] if wrong else order)
        if prompt.startswith(PREDICT_HEAD):
            value = int(re.search(r"Number: (\d+)", prompt).group(1))
            move = re.search(r"Move: (\S+)", prompt).group(1)
            return str(apply(value, move) + (1 if wrong else 0))
        if prompt.startswith(VALUE_HEAD):
            ok = reachable(*position(prompt)) != wrong
            return "sure" if ok else "impossible"
        return "no idea"

    return rule


def oracle_llm(error_rate: float, options: BackendOptions):
    return oracle_backend(make_rule(error_rate), error_rate, options)
