#!/usr/bin/env bash
# The one command that installs ingressfed and plays the kubefed walkthrough on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ingressfed demo "$@"
