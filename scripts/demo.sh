#!/usr/bin/env bash
# The README's first command: a small RAFA run on the Game of 24 with the embedded model
# (SmolLM2-135M-Instruct, no key, no network), then its summary table. Two puzzles, three
# proposals per step, two environment steps: a few minutes on 2 CPU cores. The tiny model
# shows the machinery working, not the paper's numbers. Extra flags go to game24/run.py
# (e.g. --backend oracle for the simulated model, or --task_end_index 910).
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo needs only the hf extra (no llama.cpp build, no ALFWorld engine).
RAFA_EXTRAS=${RAFA_EXTRAS:-hf}
source scripts/venv.sh
# One torch thread: on a busy 2-core machine two threads spin against each other
# (measured: 13x slower per token); on an idle one the difference is small.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$VENV/bin/python" game24/run.py --backend local --planning tot --feedback \
  --task_start_index 900 --task_end_index 902 \
  --n_generate_sample 3 --n_evaluate_sample 1 --max_step 2 \
  --short-answers --concurrency 2 --out runs/demo/game24-rafa-local "$@"
