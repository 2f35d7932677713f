#!/usr/bin/env bash
# The two commands of the README. Each installs what it needs into .venv first (Python 3.11+ only).
#   ./manage.sh worker [args]   run the worker (an embedded Redis when PAYMENTER_BROKER_URL is unset)
#   ./manage.sh test [args]     lint, type-check and run every test (pytest args pass through)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

install() {  # $1: the extras to install ("" or "[test]")
  local stamp=".venv/.installed$1"
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".$1"
    touch "$stamp"
  fi
}

case "${1:-}" in
  worker)
    shift
    install ""
    exec .venv/bin/paymenter-worker run "$@"
    ;;
  test)
    shift
    install "[test]"
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    exec .venv/bin/pytest "$@"
    ;;
  *)
    echo "usage: ./manage.sh worker [run options] | ./manage.sh test [pytest options]" >&2
    exit 2
    ;;
esac
