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
# AGENTSIM_PIP_EXTRA: more requirements resolved together with the project's (test-pre.sh)
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install -q -e ".[test]" ${AGENTSIM_PIP_EXTRA:-}
PY="$VENV/bin/python"
