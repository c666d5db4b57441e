#!/usr/bin/env bash
# Set up, then run the test suite, the examples, lint and types.
source "$(dirname "$0")/_venv.sh"
"$PY" -m ruff check pytest_agentsim tests examples
"$PY" -m ruff format --check pytest_agentsim tests examples
"$PY" -m mypy
"$PY" -m pytest -p no:cacheprovider -n 2 "$@"
"$PY" -m pytest --agentsim examples -p no:cacheprovider
# reduced flake check: the examples pass repeatedly, serial and -n 2, snapshots unchanged
exec "$PY" benchmarks/flake_check.py --runs 2
