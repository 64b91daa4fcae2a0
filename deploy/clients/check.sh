#!/usr/bin/env bash
# Generate clients from the three OpenAPI documents and compile them, as a front end or an integration would:
# TypeScript types (openapi-typescript) type-checked by tsc together with calls through openapi-fetch, and
# Python packages (openapi-python-client) byte-compiled and imported. Installs its tools itself, from the
# npm registry (pinned in package-lock.json) and PyPI (pinned below), into a scratch folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=deploy/clients
command -v npm >/dev/null || { echo "deploy/clients/check.sh needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
OPENAPI_PYTHON_CLIENT=openapi-python-client==0.29.1

uv run --frozen python "$here/dump_specs.py" "$work/specs"
cp "$here/package.json" "$here/package-lock.json" "$here/tsconfig.json" "$here/usage.ts" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
mkdir -p "$work/ts" "$work/py"
for service in issues scoring media; do
  "$work/node_modules/.bin/openapi-typescript" "$work/specs/$service.json" -o "$work/ts/$service.ts" --silent
  sed "s/SERVICE/$service/g" "$here/python-client.yaml" > "$work/py/$service.yaml"
  uvx --quiet "$OPENAPI_PYTHON_CLIENT" generate --path "$work/specs/$service.json" \
    --config "$work/py/$service.yaml" --meta none --output-path "$work/py/huanzhi_${service}_client" >"$work/py/$service.log" 2>&1 \
    || { cat "$work/py/$service.log"; exit 1; }
done
(cd "$work" && node_modules/.bin/tsc -p tsconfig.json)
echo "typescript: ok (tsc --strict over the generated types and usage.ts)"
uv run --frozen python -m compileall -q "$work/py"
PYTHONPATH="$work/py" uv run --frozen --with attrs --with python-dateutil python -c "
import importlib
for service in ('issues', 'scoring', 'media'):
    client = importlib.import_module(f'huanzhi_{service}_client')
    api = importlib.import_module(f'huanzhi_{service}_client.api')
    models = importlib.import_module(f'huanzhi_{service}_client.models')
    print(f'python {service}: ok ({len(models.__all__)} models)')
"
