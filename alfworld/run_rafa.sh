#!/usr/bin/env bash
# The original's run_rafa.sh: 11 trials over the 134 unseen games, run name "RAFA", from trial
# 0, with reflection memory (--use_memory; off without it, as in the original).
# Needs the ALFWorld data: `alfworld-download` (then ALFWORLD_DATA=~/.cache/alfworld), or
# offline games: `python -m rafa_core.alfworld.make_games --out DIR` and ALFWORLD_DATA=DIR.
# Extra arguments go to run.py (e.g. --backend oracle, --base-url URL, --out DIR, --improved).
# Works from any folder (the original's README runs it from its ALFWorld folder).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
exec "$PY" alfworld/run.py \
  --num_trials 11 \
  --num_envs 134 \
  --run_name "RAFA" \
  --start_trial_num 0 \
  --use_memory "$@"
