#!/usr/bin/env bash
# Run every check and test: lint, types, migrations in step with the models, then the test suite against
# SQLite and a real PostgreSQL (127.0.0.1:5432, user postgres; the tests create and drop their databases),
# with the three services started as processes for the cross-service tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/bootstrap.sh
started=$(date +%s)
echo "== ruff";  uv run --frozen ruff check services tests bench alembic
echo "== ruff format"; uv run --frozen ruff format --check services tests bench alembic
echo "== mypy (strict)"; uv run --frozen mypy services
echo "== alembic check (models match migrations)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for service in issues scoring media; do
  uv run --frozen alembic -n "$service" -x url="sqlite+aiosqlite:///$scratch/$service.db" upgrade head
  uv run --frozen alembic -n "$service" -x url="sqlite+aiosqlite:///$scratch/$service.db" check
done
echo "== clients generated from the three OpenAPI documents compile (TypeScript, Python)"
bash deploy/clients/check.sh
echo "== pytest (schemathesis included: every operation of the three running services held to its OpenAPI)"
# -n auto: a worker per core (tests/support/xdist.py keeps each live stack on one worker); -n 0 for one.
HUANZHI_SCHEMATHESIS="${HUANZHI_SCHEMATHESIS:-1}" uv run --frozen pytest -q -p no:cacheprovider -n auto "$@"
echo "== done in $(( $(date +%s) - started )) s"
