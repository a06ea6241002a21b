#!/usr/bin/env bash
# Run the test suite (creates .venv on first use). Extra arguments go to pytest.
# The tests are spread over one pytest-xdist worker per core, at most 4 (CI has 2); set
# TEST_WORKERS=0 (or pass -n 0, or -p no:xdist) for one process.
REQUIREMENTS=requirements-dev.txt source "$(dirname "$0")/_env.sh"
cores="$(nproc 2>/dev/null || echo 1)"
workers="${TEST_WORKERS:-$(( cores > 4 ? 4 : cores ))}"
[ "$workers" -gt 1 ] || workers=0
xdist=(-n "$workers" --dist loadgroup)
case " $* " in *no:xdist*) xdist=() ;; esac
"$PY" -m pytest -q "${xdist[@]}" "$@" tests
