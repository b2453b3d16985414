#!/usr/bin/env bash
# The README's first command: RAFA on one BlocksWorld problem with the embedded model
# (SmolLM2-135M-Instruct, no key, no network). At each real step the agent plans in its
# search tree (the model proposes actions and predicts their effects), takes the first
# action, observes the true state, and when the model's prediction was wrong the tree is
# corrected with what was observed before it plans again. Then it prints that trace and
# writes view.html (every step, the tree, each LLM call's prompt and answer).
# A minute or two on an idle 2-core machine (the model converts once, ~30 s, the first time).
# Extra flags go to blocksworld/run_rafa_mcts.py (e.g. --backend oracle for the simulated model).
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo needs only the hf extra (no llama.cpp build, no ALFWorld engine).
RAFA_EXTRAS=${RAFA_EXTRAS:-hf}
source scripts/venv.sh
# One torch thread: on a busy 2-core machine two threads spin against each other
# (measured: 13x slower per token); on an idle one the difference is small.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=runs/demo/blocksworld-rafa-local
"$VENV/bin/python" blocksworld/run_rafa_mcts.py --backend local --single_run --rollouts 1 --out "$OUT" "$@"
echo
"$VENV/bin/python" -m rafa_core trace "$OUT"
echo
"$VENV/bin/python" -m rafa_core view "$OUT" >/dev/null
echo "look next: $OUT/view.html (open it in a browser: each step's search tree, the action, the"
echo "prediction and the observation, and every LLM call's prompt and answer);"
echo "requests.jsonl there holds every call; python -m rafa_core compare $OUT prints its row of the table."
