#!/usr/bin/env bash
# Install everything gpuseg's tests need on a fresh Debian machine: PoCL (OpenCL on the CPU)
# from Debian, then the package with its test and benchmark extras from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if command -v apt-get >/dev/null 2>&1; then
  echo "== installing PoCL (OpenCL CPU driver) from Debian"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends pocl-opencl-icd ocl-icd-libopencl1 clinfo
else
  echo "== apt-get not found: install an OpenCL driver yourself (e.g. PoCL) to use the opencl backend"
fi

PY=${PYTHON:-python3}
echo "== installing gpuseg and its extras with $($PY --version)"
$PY -m pip install --upgrade --quiet pip
# Do not use pyopencl[pocl]: its bundled PoCL cannot build kernels on these CPUs.
$PY -m pip install --quiet -e ".[all]"
echo "== done"
