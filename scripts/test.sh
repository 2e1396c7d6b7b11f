#!/usr/bin/env bash
# The whole suite. Uses DATABASE_URL / CELERY_BROKER_URL when set (PostgreSQL, Redis),
# the embedded default otherwise. pytest's own exit code is the answer.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
export PYTHONDONTWRITEBYTECODE=1
# Tests never share a broker with a running demo portal.
# One broker file per run: two suites side by side must not consume each other's tasks.
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-sqla+sqlite:///$PWD/var/test-broker-$$.sqlite3}"
trap 'rm -f "$PWD/var/test-broker-$$.sqlite3"' EXIT
.venv/bin/python -m pytest "$@"
