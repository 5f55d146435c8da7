#!/usr/bin/env bash
# Run the test suite the way CI does: OpenCL must be present (a missing PoCL fails instead
# of skipping), and the whole run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
# The venv made by ci/install.sh, unless PYTHON names another interpreter (one with gpuseg's
# dependencies installed: PYTHON=/usr/bin/python3 here would find none of them).
if [ -z "${PYTHON:-}" ] && [ -x "${VENV:-.venv}/bin/python" ]; then PYTHON="${VENV:-.venv}/bin/python"; fi
PY=${PYTHON:-python3}
export PATH="$(dirname "$($PY -c 'import sys; print(sys.executable)')"):$PATH"

echo "== environment"
$PY --version
$PY -c "import numpy, numba; print('numpy', numpy.__version__, '| numba', numba.__version__)"
if command -v clinfo >/dev/null 2>&1; then clinfo -l || true; fi
if command -v nvcc >/dev/null 2>&1; then nvcc --version | tail -n 2; else echo "nvcc: not found (CUDA compile tests will skip)"; fi
$PY -m gpuseg backends

export GPUSEG_REQUIRE_OPENCL=${GPUSEG_REQUIRE_OPENCL:-1}
export GPUSEG_REQUIRE_WEB=${GPUSEG_REQUIRE_WEB:-1}  # chromium and the built web page must be there
echo "== tests"
set +e
timeout --signal=INT 4800 $PY -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = "5" ]; then
  echo "pytest collected no tests: that is a failure here"
  exit 1
fi
exit "$rc"
