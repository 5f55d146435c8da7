#!/usr/bin/env bash
# The device check: on a machine with one NVIDIA GPU, run the cuda backend's tests and the grow,
# threshold, margin, islands and surface benchmarks (cpu and cuda side by side, with their
# peers), each under a time limit so that the whole check stays under 8 minutes, and print one
# table of every result.
#
#   bash benchmarks/device_check.sh [--dry-run] [--size KxJxI|standard] [--grow-size KxJxI]
#
#   --dry-run     list the steps with their time limits and commands; run nothing, need no GPU
#   --size        volume of the threshold, margin, islands and surface benchmarks (default standard,
#                 400x512x512)
#   --grow-size   volume of the grow benchmark (default 100x256x256; the cpu side of a grow on the
#                 standard volume alone can take longer than the whole budget)
#
# Without a usable GPU (nvidia-smi, CuPy, gpuseg's cuda backend) it stops at once with exit 2 and
# says which part is missing. The tests are those marked cuda (the backend fixture's cuda case,
# compile checks) or parity (run on every backend and compared with cpu's); they run with
# GPUSEG_REQUIRE_CUDA=1, so an unusable cuda backend fails them instead of skipping them.
# Results (JSON) and logs go to $GPUSEG_BENCH_RESULTS, default a fresh folder under /tmp; the
# interpreter is $PYTHON (default python3). Exit status: 0 when every step passed, 1 when a step
# failed or ran out of time (the table still shows what finished), 2 without a usable GPU.
set -u -o pipefail

PYTHON=${PYTHON:-python3}
SIZE=standard
GROW_SIZE=100x256x256
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --size) SIZE=${2:?--size needs a value}; shift ;;
        --grow-size) GROW_SIZE=${2:?--grow-size needs a value}; shift ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "device_check: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# name | time limit (s) | command. The limits add up to 450 s, under the 8-minute budget
# with room for the start-up checks and the table. "volumes" makes (or finds cached) the
# benchmark volumes, so that the benchmarks' limits do not pay for it.
STEPS=(
    "volumes|40|$PYTHON -c \"from benchmarks.standard_volume import load, parse_size; load(parse_size('$SIZE')); load(parse_size('$GROW_SIZE'))\""
    "cuda tests|150|$PYTHON -m pytest -q -p no:cacheprovider -m 'cuda or parity' tests"
    "grow|90|$PYTHON -m benchmarks.bench_grow --size $GROW_SIZE --backends cpu,cuda"
    "threshold|35|$PYTHON -m benchmarks.bench_threshold --size $SIZE --backends cpu,cuda --repeat 5"
    "margin|40|$PYTHON -m benchmarks.bench_margin --size $SIZE --backends cpu,cuda --no-scipy"
    "islands|35|$PYTHON -m benchmarks.bench_islands --size $SIZE --backends cpu,cuda"
    "surface|60|$PYTHON -m benchmarks.bench_surface --size $SIZE --backends cpu,cuda --no-skimage --repeat 2"
)

if [ "$DRY" = 1 ]; then
    total=0
    echo "device_check steps (time limit, command):"
    for s in "${STEPS[@]}"; do
        IFS='|' read -r name limit cmd <<<"$s"
        total=$((total + limit))
        printf '  %-11s %4ss  %s\n' "$name" "$limit" "$cmd"
    done
    echo "  total time limit ${total}s (budget 480s)"
    exit 0
fi

fail() { echo "device_check: no usable GPU: $*" >&2; exit 2; }
command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi is not on PATH (no NVIDIA driver here)"
nvidia-smi -L >/dev/null 2>&1 || fail "nvidia-smi -L failed: $(nvidia-smi -L 2>&1 | head -1)"
"$PYTHON" -c "import cupy" >/dev/null 2>&1 || fail "CuPy does not import in $PYTHON (pip install 'gpuseg[cuda]')"
msg=$("$PYTHON" -c "import gpuseg; print(gpuseg.get_backend('cuda'))" 2>&1) || fail "gpuseg's cuda backend: $(echo "$msg" | tail -1)"
echo "GPU: $(nvidia-smi -L | head -1)"

export GPUSEG_REQUIRE_CUDA=1
RESULTS_DIR=${GPUSEG_BENCH_RESULTS:-$(mktemp -d /tmp/gpuseg-device-check.XXXXXX)}
export GPUSEG_BENCH_RESULTS=$RESULTS_DIR
mkdir -p "$RESULTS_DIR"
LOG=$RESULTS_DIR/steps.tsv
: >"$LOG"
status=0
t_all=$(date +%s)
for s in "${STEPS[@]}"; do
    IFS='|' read -r name limit cmd <<<"$s"
    echo "=== $name (limit ${limit}s): $cmd"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" bash -c "$cmd" >"$RESULTS_DIR/$name.log" 2>&1
    rc=$?
    dt=$(( $(date +%s) - t0 ))
    case $rc in
        0) verdict=passed ;;
        124|137) verdict="out of time"; status=1 ;;
        *) verdict="failed (exit $rc)"; status=1 ;;
    esac
    tail -3 "$RESULTS_DIR/$name.log"
    printf '%s\t%s\t%s\t%s\n' "$name" "$verdict" "$dt" "$(tail -1 "$RESULTS_DIR/$name.log" | tr '\t' ' ')" >>"$LOG"
done

echo
echo "## device check, $(nvidia-smi -L | head -1), $(( $(date +%s) - t_all )) s"
"$PYTHON" - "$RESULTS_DIR" <<'EOF'
import json
import sys
from pathlib import Path

from benchmarks.harness import Result, table

d = Path(sys.argv[1])
print("\n| step | verdict | seconds | last line |\n|---|---|---:|---|")
for line in (d / "steps.tsv").read_text().splitlines():
    name, verdict, secs, last = line.split("\t")
    print(f"| {name} | {verdict} | {secs} | {last[:100]} |")
results, baseline = [], {}
for f in sorted(d.glob("*.json")):
    data = json.loads(f.read_text())
    results += [Result(**r) for r in data["results"]]
    baseline.update(data["baseline"])
print()
print(table(results, baseline) if results else "(no benchmark results)")
print(f"\nresults and logs in {d}")
EOF
exit $status
