#!/usr/bin/env bash
# Run the test suite (creates .venv on first use). Extra arguments go to pytest.
REQUIREMENTS=requirements-dev.txt source "$(dirname "$0")/_env.sh"
"$PY" -m pytest -q "$@" tests
