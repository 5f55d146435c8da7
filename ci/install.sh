#!/usr/bin/env bash
# Install everything gpuseg's tests need on a fresh Debian/Ubuntu machine: PoCL (OpenCL on the
# CPU) and Python's venv from Debian, then the package with its test and benchmark extras from
# PyPI into a virtual environment (.venv, reused if present). A stock Debian 12 / Ubuntu 23.04+
# Python refuses `pip install` into the system ("externally-managed-environment"), so nothing is
# ever installed outside .venv.
#
#   PYTHON=/usr/bin/python3 bash ci/install.sh     # choose the interpreter the venv is made from
#   VENV=/path/to/env bash ci/install.sh           # choose where the venv lives
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if command -v apt-get >/dev/null 2>&1; then
  echo "== installing PoCL (OpenCL CPU driver) and python3-venv from Debian"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends \
    pocl-opencl-icd ocl-icd-libopencl1 clinfo python3 python3-venv python3-dev
  # the web page's browser tests (tests/test_web.py) drive Debian's chromium headless
  $SUDO apt-get install -y -q --no-install-recommends chromium || \
    echo "== chromium not installable here: the browser tests will skip (fail with GPUSEG_REQUIRE_WEB=1)"
else
  echo "== apt-get not found: install an OpenCL driver yourself (e.g. PoCL) to use the opencl backend"
fi

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating the virtual environment $VENV with $($PY --version) ($(command -v "$PY"))"
  "$PY" -m venv "$VENV"
else
  echo "== reusing the virtual environment $VENV ($("$VENV/bin/python" --version))"
fi
VPY="$VENV/bin/python"
"$VPY" -m pip install --upgrade --quiet pip
# Do not use pyopencl[pocl]: its bundled PoCL cannot build kernels on these CPUs.
"$VPY" -m pip install --quiet -e ".[all]"
# Playwright (in the test extra) drives the system chromium: no browser download, never `playwright install`.
if command -v npm >/dev/null 2>&1; then
  echo "== building the web page (web/dist) with npm $(npm --version), node $(node --version)"
  (cd web && npm ci --no-audit --no-fund && npm run build)
else
  echo "== npm not found: the web page is not built (gpuseg serve's / says how); the browser tests will skip"
fi
echo "== done. Activate the environment with:  source $VENV/bin/activate"
