#!/usr/bin/env bash
# Start the whole system on its embedded defaults (SQLite, local object folder, demo data).
# Needs only Python 3.11+: uv is bootstrapped into .tools/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/bootstrap.sh
exec uv run --frozen python -m services.devserver "$@"
