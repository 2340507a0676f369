#!/usr/bin/env bash
# The one prepared GPU check of the CUDA backend (issue 3), for a single device call.
#
# Run from anywhere on a machine with a CUDA GPU and CuPy, Numba, pytest and hypothesis
# (PyTorch and accelerated-scan are optional peers). Installs nothing, needs no network.
# Sections, each under its own time limit so that one failure or hang leaves the rest:
#   env      nvidia-smi, versions                                   (limit 20 s)
#   warmup   compiles the Numba CPU kernels the tests compare with, one process
#            per dtype pair in parallel, into $NUMBA_CACHE_DIR      (limit 110 s)
#   tests    GPU tests: CPU/GPU agreement under hypothesis, gradients,
#            NaN-poisoned outputs, awkward lengths                  (limit 170 s)
#   bench    linrec forward/backward vs the copy floor, naive loop  (limit 110 s)
#   peers    accelerated-scan warp/Triton kernels through PyTorch   (limit 40 s)
# The limits add up to 450 s. Everything is written under $OUT (default
# ./gpu_check_out): logs, junit XML, gpu_bench.md / gpu_bench.json, summary.txt.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export LINREC_HYPOTHESIS="${LINREC_HYPOTHESIS:-quick}"
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-/tmp/linrec_cupy_cache}"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/linrec_numba_cache}"
: > "$OUT/summary.txt"

# linrec needs array_api_compat (pure Python); use a carried-along .venv copy if the
# machine's Python lacks it.
if ! "$PY" -c "import array_api_compat" 2> /dev/null; then
    for found in .venv/lib/python3*/site-packages/array_api_compat; do
        if [ -d "$found" ]; then
            mkdir -p /tmp/linrec_extra_path
            ln -sfn "$PWD/$found" /tmp/linrec_extra_path/array_api_compat
            export PYTHONPATH="$PYTHONPATH:/tmp/linrec_extra_path"
            echo "using $found" | tee -a "$OUT/summary.txt"
        fi
    done
fi

section() {
    local name=$1 limit=$2
    shift 2
    local start
    start=$(date +%s)
    echo "== $name (limit ${limit}s)"
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc in $(( $(date +%s) - start ))s" | tee -a "$OUT/summary.txt"
    tail -n 40 "$OUT/$name.log"
}

section env 20 bash -c "nvidia-smi; $PY - <<'PY'
import importlib, sys
print(sys.version)
for name in ('numpy', 'numba', 'cupy', 'pytest', 'hypothesis', 'array_api_compat',
             'torch', 'accelerated_scan'):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, '__version__', '?'))
    except Exception as err:
        print(name, 'MISSING:', err)
import cupy
print(cupy.cuda.runtime.getDeviceProperties(0)['name'])
PY"

warm_cpu() {
    local pair
    for pair in 0 1 2 3 4 5; do
        "$PY" benchmarks/gpu_bench.py --warm-cpu "$pair" &
    done
    wait
}
export -f warm_cpu
export PY
section warmup 110 bash -c warm_cpu

section tests 170 "$PY" -m pytest tests/test_cuda_gpu.py -q -rs -p no:cacheprovider \
    --junitxml="$OUT/tests.xml"

section bench 110 "$PY" benchmarks/gpu_bench.py --out "$OUT" --no-peers

section peers 40 "$PY" benchmarks/gpu_bench.py --out "$OUT/peers" --peers-only

echo "== summary"
cat "$OUT/summary.txt"
[ -f "$OUT/gpu_bench.md" ] && cat "$OUT/gpu_bench.md"
[ -f "$OUT/peers/gpu_bench_peers.md" ] && cat "$OUT/peers/gpu_bench_peers.md"
exit 0
