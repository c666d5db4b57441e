#!/usr/bin/env bash
# Set up, then run the example scenarios the way users run theirs.
source "$(dirname "$0")/_venv.sh"
exec "$PY" -m pytest --agentsim examples -p no:cacheprovider "$@"
