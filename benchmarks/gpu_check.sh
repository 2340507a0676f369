#!/usr/bin/env bash
# The one-call GPU check of the CUDA backend: tests, benchmark and peers in one device run.
#
# The device (see docs/cuda.md for the exact call) has Python 3.12 with CuPy, NumPy,
# Numba, PyTorch, Triton, pytest and hypothesis, no network, and returns at most 8 files
# from $OUT. The pure-Python packages it lacks come as wheels in .whl/ (`make gpu-wheels`),
# installed with --no-index into a temporary site directory. Everything is written to a
# temporary folder; $OUT gets gpu_check.tar.gz (all of it) plus summary.txt, env.log,
# tests.log, tests.xml, gpu_bench.md, gpu_bench.json: 7 files.
#
# Sections, each under its own time limit (seconds), so one failure or hang leaves the rest:
#   install   wheels from .whl/ into a temporary --target                        10
#   env       versions, nvidia-smi (the accelerated_scan.warp extension starts
#             compiling in the background here: 1-2 minutes)                     20
#   warmup    NVRTC compiles the six kernel modules and Numba the CPU kernels the
#             tests compare with, one process each per dtype pair, in parallel   80
#   tests     tests/test_cuda_gpu.py, hypothesis profile "device" (no shrinking),
#             seed $SEED, 120 s per test when pytest-timeout is importable      170
#   bench     linrec vs the copy floor and the targets                          100
#   (wait)    for the warp extension's build, if still running                   30
#   peers     accelerated-scan warp and scalar (Triton)                          50
# The limits add up to 460 s (+10 s grace each at most), inside the call's 540 s.
#
# GPU_CHECK_STAND_IN=1 rehearses the script here, without a GPU: CuPy is the CPU stand-in
# of tests/fake_cupy, the benchmark runs tiny shapes, and TEST_ARGS (default: none) may
# narrow the tests, e.g. TEST_ARGS="-k small".
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT="${OUT:-$REPO/gpu_check_out}"
PY="${PYTHON:-python3}"
SEED="${SEED:-20261130}"
STAND_IN="${GPU_CHECK_STAND_IN:-0}"
WORK=$(mktemp -d /tmp/linrec_gpu_check.XXXXXX)
mkdir -p "$OUT" "$WORK/site"
export PYTHONPATH="$WORK/site:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export LINREC_HYPOTHESIS="${LINREC_HYPOTHESIS:-device}"
export CUPY_CACHE_DIR="$WORK/cupy_cache" NUMBA_CACHE_DIR="$WORK/numba_cache"
export TORCH_EXTENSIONS_DIR="$WORK/torch_extensions"
BENCH_ARGS=()
if [ "$STAND_IN" = 1 ]; then
    export LINREC_FAKE_CUPY=1 LINREC_FAKE_CUPY_SMS="${LINREC_FAKE_CUPY_SMS:-4}"
    export PYTHONPATH="$REPO/tests/fake_cupy:$PYTHONPATH"
    export LINREC_HYPOTHESIS="${GPU_CHECK_PROFILE:-quick}"
    BENCH_ARGS=(--small --quick)
fi
SUMMARY="$WORK/summary.txt"
echo "linrec GPU check, $(date -u +%FT%TZ), seed $SEED, work dir $WORK" > "$SUMMARY"

section() {
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    echo "== $name (limit ${limit}s)"
    timeout -k 10 "$limit" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    echo "$name: rc=$rc in $(( $(date +%s) - start ))s" | tee -a "$SUMMARY"
    tail -n 25 "$WORK/$name.log"
}

install_wheels() {
    ls .whl/*.whl && "$PY" -m pip install --no-index --no-deps --no-compile \
        --disable-pip-version-check --target "$WORK/site" .whl/*.whl
}
export -f install_wheels
export PY WORK
section install 10 bash -c install_wheels

warp_extension() {
    "$PY" -c "import accelerated_scan.warp; print('accelerated_scan.warp compiled')"
}
if [ "$STAND_IN" != 1 ]; then
    export -f warp_extension
    timeout -k 10 170 bash -c warp_extension > "$WORK/warp_build.log" 2>&1 &
    WARP_BUILD=$!
fi

environment() {
    nvidia-smi || echo "nvidia-smi: not available"
    "$PY" - <<'PY'
import importlib, sys
print(sys.version)
for name in ('numpy', 'numba', 'cupy', 'pytest', 'hypothesis', 'array_api_compat',
             'pytest_timeout', 'torch', 'triton', 'accelerated_scan'):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, '__version__', '?'), getattr(m, '__file__', ''))
    except Exception as err:
        print(name, 'MISSING:', err)
import cupy
props = cupy.cuda.runtime.getDeviceProperties(0)
print(props['name'], props['multiProcessorCount'], 'SMs; CUDA runtime',
      cupy.cuda.runtime.runtimeGetVersion())
PY
}
export -f environment
section env 20 bash -c environment

warm_up() {
    local pair
    for pair in 0 1 2 3 4 5; do
        "$PY" benchmarks/gpu_bench.py --warm-cpu "$pair" &
        "$PY" benchmarks/gpu_bench.py --warm-gpu "$pair" &
    done
    wait
}
export -f warm_up
section warmup 80 bash -c warm_up

TIMEOUT_ARGS=()
if "$PY" -c "import pytest_timeout" 2> /dev/null; then
    TIMEOUT_ARGS=(--timeout=120)
else
    echo "pytest-timeout missing: no per-test timeouts" | tee -a "$SUMMARY"
fi
# shellcheck disable=SC2086  # TEST_ARGS is a list of words on purpose
section tests 170 "$PY" -m pytest tests/test_cuda_gpu.py -q -rs -p no:cacheprovider \
    --hypothesis-seed="$SEED" "${TIMEOUT_ARGS[@]}" --junitxml="$WORK/tests.xml" \
    ${TEST_ARGS:-}
grep -E "passed|failed|error" "$WORK/tests.log" | tail -n 1 | sed 's/^/tests: /' >> "$SUMMARY"

section bench 100 "$PY" benchmarks/gpu_bench.py --out "$WORK" --no-peers "${BENCH_ARGS[@]}"

if [ "$STAND_IN" != 1 ]; then
    timeout 30 tail --pid="$WARP_BUILD" -f /dev/null
    section peers 50 "$PY" benchmarks/gpu_bench.py --out "$WORK/peers" --peers-only
fi

echo "== summary"
for f in gpu_bench.md peers/gpu_bench_peers.md; do
    [ -f "$WORK/$f" ] && { echo; cat "$WORK/$f"; } >> "$SUMMARY"
done
cat "$SUMMARY"
cat "$WORK/install.log" >> "$WORK/env.log" 2> /dev/null
tar -czf "$OUT/gpu_check.tar.gz" -C "$WORK" --exclude=site --exclude=cupy_cache \
    --exclude=numba_cache --exclude=torch_extensions .
for f in summary.txt env.log tests.log tests.xml gpu_bench.md gpu_bench.json; do
    [ -f "$WORK/$f" ] && cp "$WORK/$f" "$OUT/"
done
ls -la "$OUT"
exit 0
