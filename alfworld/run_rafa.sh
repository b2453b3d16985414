#!/usr/bin/env bash
# The paper's run: 11 trials over the 134 unseen games, with reflection memory.
# Needs the ALFWorld data: `alfworld-download` (then ALFWORLD_DATA=~/.cache/alfworld), or
# offline games: `python -m rafa_core.alfworld.make_games --out DIR` and ALFWORLD_DATA=DIR.
# Extra arguments go to run.py (e.g. --backend gpt-4o-mini, --base-url URL, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
exec "$PY" alfworld/run.py --num_trials 11 --num_envs 134 --run_name rafa_run_logs --use_memory "$@"
