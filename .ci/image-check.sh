#!/usr/bin/env bash
# Exercise the Dockerfile's install steps without Docker (no daemon in CI):
#   builder: wheel of the project, then wheels of its runtime dependencies with the image's extras;
#   runtime: a fresh venv installed from those wheels only (--no-index), then `ingressfed --version`.
# Also checks that the runtime venv holds no test/dev tooling and that every command module the
# chart starts (run, proxy, dns-serve) is present, and that the proxy's request path is the mypyc build
# (ADR 0016). Needs: python3.11 with venv and headers, gcc, PyPI access.
# IMAGE_WHEELS=DIR keeps the built wheels there (scripts/test.sh tests the same compiled wheel).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
# Keep in sync with ARG EXTRAS in the Dockerfile (tests/chart/test_image.py checks it).
EXTRAS="kube,route53,clouddns"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "image-check: $PYTHON not found (the image is based on python:3.11-slim)" >&2
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1

# The Docker build context is filtered by .dockerignore: copy only what the Dockerfile copies.
mkdir -p "$WORK/src"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/setup.py" "$WORK/src/"
for pkg in buildtools ingressfed providers geo; do
  cp -r "$ROOT/$pkg" "$WORK/src/$pkg"
done
find "$WORK/src" -name '__pycache__' -type d -prune -exec rm -rf {} +

echo "image-check: builder stage"
"$PYTHON" -m venv "$WORK/builder"
(
  cd "$WORK/src"
  INGRESSFED_COMPILE=1 "$WORK/builder/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/wheels" .
  WHEEL="$(ls "$WORK"/wheels/ingressfed-*.whl)"
  "$WORK/builder/bin/python" -m pip wheel --quiet --wheel-dir "$WORK/wheels" "${WHEEL}[${EXTRAS}]"
)

echo "image-check: runtime stage"
"$PYTHON" -m venv "$WORK/runtime"
"$WORK/runtime/bin/pip" install --quiet --no-index --find-links "$WORK/wheels" "ingressfed[${EXTRAS}]"
"$WORK/runtime/bin/python" -m pip uninstall --quiet --yes pip

# Run from outside the source tree so the installed package, not the checkout, is imported.
cd "$WORK"
VERSION_OUT="$("$WORK/runtime/bin/ingressfed" --version)"
EXPECTED="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n 1)"
if [[ "$VERSION_OUT" != "ingressfed $EXPECTED" ]]; then
  echo "image-check: 'ingressfed --version' printed '$VERSION_OUT', expected 'ingressfed $EXPECTED'" >&2
  exit 1
fi
echo "image-check: $VERSION_OUT"

"$WORK/runtime/bin/python" - "$EXTRAS" <<'EOF'
import importlib.util
import sys

# Runtime extras must import; test and demo tooling must not be in the image.
wanted = {"kube": "kubernetes_asyncio", "route53": "boto3", "clouddns": "google.cloud.dns"}
for extra in sys.argv[1].split(","):
    module = wanted[extra]
    if importlib.util.find_spec(module) is None:
        sys.exit(f"image-check: extra {extra!r} installed no {module}")
for module in ("pytest", "moto", "mypy", "ruff", "mmdb_writer", "geolite2", "pip"):
    if importlib.util.find_spec(module) is not None:
        sys.exit(f"image-check: {module} must not be in the runtime image")
import providers.loader  # noqa: E402,F401  the entry points resolve from the installed wheel
EOF

# The modules buildtools/ingressfed_build.py compiles must be extension modules in the image.
COMPILED="$(grep -oE '"ingressfed/[a-z0-9_/]+\.py"' "$ROOT/buildtools/ingressfed_build.py" | tr -d '"')"
# shellcheck disable=SC2086  # one argument per module
"$WORK/runtime/bin/python" - $COMPILED <<'EOF'
import importlib
import sys

for path in sys.argv[1:]:
    name = path.removesuffix(".py").replace("/", ".")
    where = importlib.import_module(name).__file__ or ""
    if not where.endswith(".so"):
        sys.exit(f"image-check: {name} is not compiled in the image ({where}); is gcc missing?")
print(f"image-check: {len(sys.argv) - 1} modules compiled")
EOF
if [ -n "${IMAGE_WHEELS:-}" ]; then
  mkdir -p "$IMAGE_WHEELS"
  cp "$WORK"/wheels/ingressfed-*.whl "$IMAGE_WHEELS/"
fi

HELP="$("$WORK/runtime/bin/ingressfed" --help)"
for command in run proxy dns-serve join check-config; do
  if ! grep -qE "^\s+$command\b|[{,]$command[,}]" <<<"$HELP"; then
    echo "image-check: WARNING: 'ingressfed $command' is not in the installed CLI (the chart starts run, proxy, dns-serve)" >&2
  fi
done
echo "image-check: ok"
