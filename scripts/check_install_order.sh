#!/usr/bin/env bash
# CI's install check (issue 18): the README's two commands must install on a new machine in
# either order. scripts/test.sh in CI already builds .venv in one go; this builds a second,
# throw-away venv the other way round, as `scripts/demo.sh` then `scripts/test.sh` would (the
# demo's extras with the project installed editable first, then every extra, so the sdists --
# fast-downward-textworld, llama-cpp-python -- are built with the project already in the
# venv), with an EMPTY pip cache, so an install step that works only with a warm cache or in
# one order fails here. It installs only: no demo run, no tests. Costs the sdist builds from
# scratch (~15-25 min on 2 cores; the time is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/rafa-install-order.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PIP_CACHE_DIR="$work/pip-cache"  # empty: nothing built earlier can hide a failing build
mkdir -p "$PIP_CACHE_DIR"
start=$(date +%s)
for extras in hf hf,alfworld,llamacpp,plot,test; do  # demo.sh's, then test.sh's
  step=$(date +%s)
  (RAFA_VENV="$work/venv" RAFA_EXTRAS="$extras"; source scripts/venv.sh)
  echo "install check: [$extras] into a fresh venv with an empty pip cache: $(( $(date +%s) - step )) s" >&2
done
# What the later commands need is importable from the venv that was built in this order.
"$work/venv/bin/python" -c "import rafa_core, torch, transformers, llama_cpp, textworld, alfworld, matplotlib, pytest"
echo "install check passed in $(( $(date +%s) - start )) s (demo's extras, then all; empty pip cache)" >&2
