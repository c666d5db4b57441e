# Sourced by the other scripts: make (or reuse) .venv and install the project into it.
# AGENTSIM_FRESH_VENV=1 (set by CI) always starts from an empty environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${AGENTSIM_VENV:-.venv}"
if [ "${AGENTSIM_FRESH_VENV:-0}" = "1" ]; then rm -rf "$VENV"; fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
"$VENV/bin/python" -m pip install -q -e ".[test]"
PY="$VENV/bin/python"
