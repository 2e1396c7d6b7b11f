#!/usr/bin/env bash
# The whole suite (or the pytest arguments given), after the import contracts and lint.
# Uses DATABASE_URL / CELERY_BROKER_URL when set (PostgreSQL, Redis), the embedded default
# otherwise. pytest's own exit code is the answer.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
export PYTHONDONTWRITEBYTECODE=1
# The suite talks plain HTTP to its own servers; production's HTTPS redirect (on whenever
# DATABASE_URL is set) would answer every request with 301. tests/portal/test_deploy_settings.py
# checks the production defaults in a process of their own.
export DJANGO_SECURE_SSL_REDIRECT="${DJANGO_SECURE_SSL_REDIRECT:-0}"
# Tests never share a broker with a running demo portal.
# One broker file per run: two suites side by side must not consume each other's tasks.
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-sqla+sqlite:///$PWD/var/test-broker-$$.sqlite3}"
trap 'rm -f "$PWD/var/test-broker-$$.sqlite3"' EXIT
# The room rules (.importlinter: the engine imports no Django and no app, projects never imports
# compliance, portal neither) and lint (ruff.toml) come first: a broken contract fails the run.
if ! contracts=$(.venv/bin/lint-imports --no-cache --config .importlinter 2>&1); then
  echo "$contracts"; echo "import contracts broken (.importlinter)"; exit 1
fi
echo "$contracts" | grep -E "^Contracts:"
.venv/bin/ruff check --quiet --no-cache .
.venv/bin/python -m pytest "$@"
