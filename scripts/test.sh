#!/usr/bin/env bash
# The one command that sets up and runs every check: lint, types, layering, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.tools/bin:$PATH"
echo "== ruff"; .venv/bin/ruff check ingressfed providers geo tests bench
echo "== ruff format"; .venv/bin/ruff format --check ingressfed providers geo
echo "== mypy (strict)"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== image build steps (no Docker here: the Dockerfile's pip steps in a fresh venv)"
bash .ci/image-check.sh
echo "== pytest"; .venv/bin/pytest -q -p no:cacheprovider "$@"
