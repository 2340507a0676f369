"""The CUDA kernels' own source, run on the CPU under a thread-per-CUDA-thread emulation.

``scan.cu`` (exactly the text NVRTC gets) is compiled as C++20 with a small header that
maps the CUDA built-ins it uses onto host threads: one ``std::thread`` per CUDA thread,
blocks run one after another, ``__shared__`` arrays become statics shared by the block,
``__syncthreads`` / ``__syncwarp`` are ``std::barrier``s (whole warps dawdle after some
block barriers, to expose shared-memory races across them), the warp shuffles and
ballots exchange values through a per-warp buffer between two warp barriers, and
``atomicAdd`` / ``__threadfence`` are C++ atomics. The backend then
drives these compiled kernels with the very arguments it would give CuPy, and the
results are compared with ``linrec.reference`` as in ``test_cuda_model.py``. This checks
the kernels' code itself (indexing, masks, barriers, template instantiations), not only
a model of it; it cannot check GPU-only behaviour (memory coalescing, timing, real warp
scheduling, memory ordering between blocks). Skipped with a reason when no C++ compiler
is found.

The single-pass look-back kernel takes its tile from an atomic ticket, so its blocks are
also run in shuffled launch order; and since blocks run one at a time here (a finished
predecessor has always published its state), its ``look_back`` is also driven directly,
from one emulated warp, over prepared status slots that force it to fold aggregates
across several windows of 32 tiles.
"""

import ctypes
import functools
import shutil
import subprocess
import types

import numpy as np
import pytest

from linrec import _dtypes
from linrec.cuda import _kernels, _plan, backend
from tests.helpers import random_with_phase, route_numpy_to
from tests.test_cuda_model import (
    FEW_SMS,
    MANY_SMS,
    PAIRS,
    _check,
    _close,
    _PoisonedNumpy,
    check_zero_state_through_overflow,
)

EMULATION = r"""
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <random>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

struct dim3 { unsigned x = 1, y = 1, z = 1; };
thread_local dim3 threadIdx, blockIdx;
dim3 gridDim, blockDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct Block {
    std::barrier<>* all;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    alignas(16) unsigned char exchange[32][32][16];
};
Block* block_now;

// After a block barrier some whole warps dawdle, so that a warp racing ahead into the
// next chunk would overwrite shared memory that a slow warp has yet to read.
inline void __syncthreads() {
    thread_local unsigned passed = 0;
    block_now->all->arrive_and_wait();
    const unsigned warp = threadIdx.x / 32;
    if ((warp * 7919u + passed++ * 104729u + blockIdx.x * 31u) % 3u == 0u) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}
inline void __syncwarp(unsigned = 0xffffffffu) {
    block_now->warps[threadIdx.x / 32]->arrive_and_wait();
}

template <typename T, typename Source>
T shuffle(T v, Source source) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    std::memcpy(block_now->exchange[warp][lane], &v, sizeof(T));
    __syncwarp();
    T out;
    std::memcpy(&out, block_now->exchange[warp][source(lane)], sizeof(T));
    __syncwarp();
    return out;
}

#define LINREC_EMULATED_SHUFFLES(T)                                                  \
    inline T __shfl_up_sync(unsigned, T v, int d) {                                \
        return shuffle(v, [d](unsigned l) { return (int)l >= d ? l - d : l; });     \
    }                                                                               \
    inline T __shfl_sync(unsigned, T v, int src) {                                 \
        return shuffle(v, [src](unsigned) { return (unsigned)src; });              \
    }                                                                               \
    inline T __shfl_xor_sync(unsigned, T v, int m) {                               \
        return shuffle(v, [m](unsigned l) { return l ^ (unsigned)m; });            \
    }
LINREC_EMULATED_SHUFFLES(float)
LINREC_EMULATED_SHUFFLES(double)

inline unsigned __ballot_sync(unsigned, int predicate) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    block_now->exchange[warp][lane][0] = predicate ? 1 : 0;
    __syncwarp();
    unsigned mask = 0;
    for (unsigned l = 0; l < 32; ++l) {
        mask |= (unsigned)block_now->exchange[warp][l][0] << l;
    }
    __syncwarp();
    return mask;
}
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }

template <typename... Args, std::size_t... I>
void invoke(void (*kernel)(Args...), void** argv, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<Args>>*>(argv[I])...);
}

// Blocks run one at a time, in launch order, or shuffled when `shuffle` is a nonzero seed.
template <typename... Args>
void launch(void (*kernel)(Args...), int gx, int gy, int bx, void** argv,
            unsigned shuffle) {
    gridDim = dim3{(unsigned)gx, (unsigned)gy, 1};
    blockDim = dim3{(unsigned)bx, 1, 1};
    std::vector<std::pair<int, int>> order;
    for (int y = 0; y < gy; ++y) {
        for (int x = 0; x < gx; ++x) order.emplace_back(x, y);
    }
    if (shuffle) std::shuffle(order.begin(), order.end(), std::mt19937(shuffle));
    for (auto [x, y] : order) {
        Block block;
        std::barrier<> all(bx);
        block.all = &all;
        for (int w = 0; w < bx / 32; ++w) {
            block.warps.emplace_back(std::make_unique<std::barrier<>>(32));
        }
        block_now = &block;
        std::vector<std::thread> threads;
        for (int t = 0; t < bx; ++t) {
            threads.emplace_back([=] {
                threadIdx = dim3{(unsigned)t, 0, 0};
                blockIdx = dim3{(unsigned)x, (unsigned)y, 0};
                invoke(kernel, argv, std::index_sequence_for<Args...>{});
            });
        }
        for (auto& thread : threads) thread.join();
    }
}
"""

# A test-only kernel, compiled after scan.cu: one warp runs look_back and reports.
PROBE_SOURCE = r"""
template <typename TA, typename TB>
__global__ void look_back_probe(const int* flags, const TA* agg_a, const TB* agg_b,
                                const TB* inc, long long first, long long stride,
                                long long m, const TB* start, TB* out) {
    const TB v = look_back(flags, agg_a, agg_b, inc, first, stride, m, *start,
                           (int)(threadIdx.x % 32));
    if (threadIdx.x == 0) *out = v;
}
"""

PROBE = "look_back_probe"


def _cxx():
    return shutil.which("g++") or shutil.which("clang++")


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """``run(kernel, ta, tb, grid, block, args)`` backed by the compiled source."""
    if _cxx() is None:
        pytest.skip("no C++ compiler (g++ or clang++) found")
    names = {}
    exports = []
    for ta, tb in _kernels.PAIRS:
        probe = f"{PROBE}<{_dtypes.cxx_name(ta)}, {_dtypes.cxx_name(tb)}>"
        for kernel, expression in [(k, _kernels.expression(k, ta, tb))
                                   for k in _kernels.KERNELS] + [(PROBE, probe)]:
            symbol = f"linrec_emulated_{len(names)}"
            names[(kernel, ta, tb)] = symbol
            exports.append(
                f'extern "C" void {symbol}(int gx, int gy, int bx, void** argv, '
                f"unsigned shuffle) "
                f"{{ launch(&{expression}, gx, gy, bx, argv, shuffle); }}")
    folder = tmp_path_factory.mktemp("emulated")
    unit = folder / "emulated.cpp"
    unit.write_text(EMULATION + _kernels.source_text() + PROBE_SOURCE + "\n".join(exports)
                    + "\n")
    library = folder / "emulated.so"
    result = subprocess.run(
        [_cxx(), "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-w", str(unit),
         "-o", str(library)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0 and "barrier" in result.stderr and "No such file" in \
            result.stderr:
        pytest.skip("the C++ compiler has no C++20 <barrier>")
    assert result.returncode == 0, result.stderr[-5000:]
    lib = ctypes.CDLL(str(library))

    def run(kernel, ta, tb, grid, block, args, shuffle=0):
        held = []
        for x in args:
            if isinstance(x, np.ndarray):
                held.append(ctypes.c_void_p(x.ctypes.data))
            elif isinstance(x, np.int64):
                held.append(ctypes.c_longlong(int(x)))
            elif isinstance(x, np.int32):
                held.append(ctypes.c_int(int(x)))
            else:
                raise TypeError(f"unexpected kernel argument {x!r}")
        argv = (ctypes.c_void_p * len(held))(
            *[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in held])
        gy = grid[1] if len(grid) > 1 else 1
        getattr(lib, names[(kernel, np.dtype(ta), np.dtype(tb))])(
            ctypes.c_int(grid[0]), ctypes.c_int(gy), ctypes.c_int(block[0]), argv,
            ctypes.c_uint(shuffle))

    return run


@pytest.fixture
def on_emulator(monkeypatch, emulated):
    """``use(sms, shuffle=0)`` routes NumPy scans through the backend and the emulated
    kernels, their blocks run in launch order or shuffled with seed ``shuffle``."""

    def use(sms, shuffle=0):
        xp = _PoisonedNumpy()
        launch = functools.partial(emulated, shuffle=shuffle)
        shim = types.SimpleNamespace(
            forward=functools.partial(backend.forward_with, xp, launch, sms),
            backward=functools.partial(backend.backward_with, xp, launch, sms),
        )
        route_numpy_to(monkeypatch, lambda xp: shim)

    return use


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_emulated_kernels_around_boundaries(on_emulator, ta, tb, reverse):
    on_emulator(FEW_SMS)
    rng = np.random.default_rng(5)
    tile = _plan.WARP * _plan.items_for(np.dtype(tb).itemsize)
    for T in (1, 33, tile + 1, 2 * tile + 1, 9 * tile + 3):
        _check(rng, ta, tb, (2, T), (2, T), reverse=reverse)
    _check(rng, ta, tb, (2, 1), (2, 4 * tile + 5), reverse=reverse, h0=False)
    many_tiles = 20 * _plan.WARPS * tile + 5
    _check(rng, ta, tb, (1, 1), (1, many_tiles), reverse=reverse)
    on_emulator(MANY_SMS)
    _check(rng, ta, tb, (3, 13 * tile + 1), (3, 13 * tile + 1), reverse=reverse)


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
def test_emulated_kernels_layouts(on_emulator, ta, tb):
    on_emulator(MANY_SMS)
    rng = np.random.default_rng(6)
    _check(rng, ta, tb, (), (5, 3, 300))
    _check(rng, ta, tb, (3, 1), (2, 3, 77), reverse=True)
    on_emulator(FEW_SMS)
    many = backend.CHANNEL_CHAINS_PER_SM * FEW_SMS + 1
    _check(rng, ta, tb, (9, many), (9, many), axis=0)
    _check(rng, ta, tb, (1, many), (7, many), axis=0, reverse=True)


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_emulated_look_back_in_shuffled_launch_order(on_emulator, ta, tb, reverse):
    """One and three long rows on the single-pass kernel, blocks launched shuffled: the
    ticket, not blockIdx, decides each block's tile, at lengths around tile boundaries."""
    tile = _plan.tile_steps(np.dtype(tb).itemsize)
    rng = np.random.default_rng(7)
    for seed, T in enumerate((tile - 1, tile + 1, 5 * tile, 7 * tile + 3), start=1):
        on_emulator(FEW_SMS, shuffle=seed)
        _check(rng, ta, tb, (1, T), (1, T), reverse=reverse)
    _check(rng, ta, tb, (3, 1), (3, 6 * tile - 5), reverse=reverse, h0=False)


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
@pytest.mark.parametrize("sms", [FEW_SMS, MANY_SMS], ids=["look-back", "tiles"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_emulated_zero_state_through_an_overflowing_product(on_emulator, ta, tb, sms,
                                                           reverse):
    """A state of exactly 0 carried across steps whose product of a overflows to inf
    (inside a warp's steps, across warps, chunks and look-back tiles) stays 0 as in the
    sequential loop, instead of becoming inf * 0 = NaN: forward and backward."""
    on_emulator(sms)
    check_zero_state_through_overflow(ta, tb, reverse)


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
@pytest.mark.parametrize("inclusive_upto", [-1, 0, 4, 38, 68])
def test_emulated_look_back_folds_aggregates_across_windows(emulated, ta, tb,
                                                            inclusive_upto):
    """``look_back`` itself, for tile m = 70 of chain 1 of 3: tiles up to
    ``inclusive_upto`` have published their state, the later ones only their pair, so the
    warp folds 69 - inclusive_upto aggregates over up to three windows of 32 (-1: none has,
    it reaches the chain's start)."""
    rng = np.random.default_rng(8)
    chains, chain, m = 3, 1, 70
    slots = chains * (m + 1)
    agg_a = random_with_phase(rng, slots, ta, 0.5, 1.0)
    agg_b = random_with_phase(rng, slots, tb)
    inc = random_with_phase(rng, slots, tb)
    start = random_with_phase(rng, 1, tb)
    flags = np.zeros(slots, np.int32)
    tiles = chain + chains * np.arange(m)
    flags[tiles] = np.where(np.arange(m) <= inclusive_upto, 2, 1)
    out = np.full(1, np.nan, tb)
    emulated(PROBE, ta, tb, (1,), (32,),
             [flags, agg_a, agg_b, inc, *(np.int64(v) for v in (chain, chains, m)), start,
              out])
    state = start[0] if inclusive_upto < 0 else inc[tiles[inclusive_upto]]
    for k in tiles[inclusive_upto + 1:]:
        state = agg_a[k] * state + agg_b[k]
    _close(out, np.asarray([state]), tb)


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
def test_emulated_channels_kernels_at_every_remainder(on_emulator, ta, tb):
    """The channels kernels load LINREC_CHANNEL_STEPS = 4 steps at a time and finish the
    rest one by one (backward: whole groups only while every step has a successor in h):
    lengths 1 to 9 cover every remainder, both directions, with and without h0."""
    on_emulator(FEW_SMS)
    rng = np.random.default_rng(10)
    many = backend.CHANNEL_CHAINS_PER_SM * FEW_SMS + 1
    for T in range(1, 10):
        _check(rng, ta, tb, (T, many), (T, many), axis=0, reverse=bool(T % 2),
               h0=T % 3 != 0)
    _check(rng, ta, tb, (1, many), (6, many), axis=0)
