#!/usr/bin/env bash
# Installs what ingressfed needs on a Debian 12 machine with Python 3.11 into ./.venv.
#   scripts/setup.sh          runtime + demo
#   scripts/setup.sh --test   also everything the tests and benchmarks need (BIND9, Knot, dnsperf,
#                             wrk, nginx, slowhttptest, dig/kdig, helm) — run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# gcc and Python's headers: packages that compile, and the mypyc build of the request path (ADR 0016)
py_include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)"
{ command -v gcc >/dev/null && [ -f "$py_include/Python.h" ]; } || need_apt+=(gcc python3-dev)
if [ "$want_test" = 1 ]; then
  command -v named >/dev/null || need_apt+=(bind9)
  command -v knotd >/dev/null || need_apt+=(knot)
  command -v kdig >/dev/null || need_apt+=(knot-dnsutils)
  command -v dig >/dev/null || need_apt+=(dnsutils)
  command -v dnsperf >/dev/null || need_apt+=(dnsperf)
  command -v wrk >/dev/null || need_apt+=(wrk)
  command -v nginx >/dev/null || need_apt+=(nginx-light)
  command -v unzip >/dev/null || need_apt+=(unzip)
  command -v npm >/dev/null || need_apt+=(npm)
  command -v openssl >/dev/null || need_apt+=(openssl)
  command -v curl >/dev/null || need_apt+=(curl)
  command -v h2load >/dev/null || need_apt+=(nghttp2-client)
  command -v slowhttptest >/dev/null || need_apt+=(slowhttptest)
  command -v chromium >/dev/null || need_apt+=(chromium)  # the status page's browser tests (headless)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
# Debian starts the daemons it installs; the tests start their own on free ports.
if [ "$want_test" = 1 ]; then
  for svc in named bind9 knot nginx; do
    $SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
if [ "$want_test" = 1 ]; then
  .venv/bin/pip install -q -e '.[test]'
  if [ -d examples/ingressfed-provider-example ]; then
    .venv/bin/pip install -q -e examples/ingressfed-provider-example
  fi
  if [ -f .ci/helm.sh ]; then bash .ci/helm.sh; fi
else
  .venv/bin/pip install -q -e '.[all]'
fi
echo "setup: done (.venv)"
