#!/usr/bin/env bash
# Set up, then lint, type-check, run the examples (plus a reduced flake check) and the tests.
source "$(dirname "$0")/_venv.sh"
"$PY" -m ruff check pytest_agentsim tests examples benchmarks
"$PY" -m ruff format --check pytest_agentsim tests examples benchmarks
"$PY" -m mypy
"$PY" -m pytest --agentsim examples -p no:cacheprovider
# reduced flake check: the examples pass repeatedly, serial and -n 2, snapshots unchanged
"$PY" benchmarks/flake_check.py --runs 2
# the test suite last, so its summary is the closing line
exec "$PY" -m pytest -p no:cacheprovider -n 2 "$@"
