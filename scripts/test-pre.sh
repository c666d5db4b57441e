#!/usr/bin/env bash
# The newest livekit-agents 2.x pre-release (tox env lk-pre): its own venv (.venv-pre), the
# whole suite and the examples with deprecation warnings as errors. CI runs it after
# scripts/test.sh.
export AGENTSIM_VENV="${AGENTSIM_VENV:-.venv-pre}"
# a specifier naming a pre-release admits pre-releases of that package only (no --pre,
# which would also take release candidates of protobuf and httpx); 1.8.7+ of the openai
# plugin import names 2.0.0b1 does not have
export AGENTSIM_PIP_EXTRA="livekit-agents>=2.0.0b1,<3 livekit-plugins-openai==1.8.6"
source "$(dirname "$0")/_venv.sh"
"$PY" -c "import livekit.agents as a; print('livekit-agents', a.__version__)"
"$PY" -m pytest --agentsim examples -p no:cacheprovider -W error::DeprecationWarning
exec "$PY" -m pytest -p no:cacheprovider -n 2 "$@"
