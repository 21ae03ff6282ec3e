#!/usr/bin/env bash
# The one command that sets up and runs every check: lint, types, layering, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.tools/bin:$PATH"
echo "== ruff"; .venv/bin/ruff check ingressfed providers geo tests bench buildtools setup.py
echo "== ruff format"; .venv/bin/ruff format --check ingressfed providers geo
echo "== mypy (strict)"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== image build steps (no Docker here: the Dockerfile's pip steps in a fresh venv)"
rm -rf .build/wheels .build/compiled
IMAGE_WHEELS="$PWD/.build/wheels" bash .ci/image-check.sh
# The suite runs on what the image ships: its wheel, with the proxy's request path compiled by mypyc
# (ADR 0016), unpacked beside the checkout. --import-mode=importlib keeps pytest from putting the
# checkout ahead of it on sys.path; the checkout stays on it for tests/ and bench/. The compiled
# modules' tests run once more on uvloop, the loop production uses: compiled code checks the types
# uvloop's objects really have (tests/conftest.py; pytest-timeout's thread method, as a signal
# does not interrupt uvloop's loop).
echo "== the image's wheel, unpacked for the tests (.build/compiled)"
.venv/bin/pip install --quiet --no-deps --target .build/compiled .build/wheels/ingressfed-*.whl
rm -rf .build/compiled/*.dist-info .build/compiled/bin  # the editable install's metadata stays the one
echo "== pytest (compiled request path)"
PYTHONPATH="$PWD/.build/compiled:$PWD" .venv/bin/pytest --import-mode=importlib -q -p no:cacheprovider "$@"
if [ "$#" -eq 0 ]; then
  echo "== pytest (compiled request path on uvloop: tests/proxy, tests/tls, tests/geo)"
  INGRESSFED_TEST_LOOP=uvloop PYTHONPATH="$PWD/.build/compiled:$PWD" .venv/bin/pytest --import-mode=importlib \
    -q -p no:cacheprovider -o timeout_method=thread tests/proxy tests/tls tests/geo
  # Pure Python is the reference the compiled modules are built from: their tests run on it too.
  echo "== pytest (pure Python request path: tests/proxy, tests/geo)"
  .venv/bin/pytest -q -p no:cacheprovider tests/proxy tests/geo
fi
