"""The CUDA kernels' own source, run on the CPU under a thread-per-CUDA-thread emulation.

``scan.cu`` (exactly the text NVRTC gets) is compiled as C++20 with a small header that
maps the CUDA built-ins it uses onto host threads: one ``std::thread`` per CUDA thread,
blocks run one after another, ``__shared__`` arrays become statics shared by the block,
``__syncthreads`` / ``__syncwarp`` are ``std::barrier``s (whole warps dawdle after some
block barriers, to expose shared-memory races across them), and the warp shuffles
exchange values through a per-warp buffer between two warp barriers. The backend then
drives these compiled kernels with the very arguments it would give CuPy, and the
results are compared with ``linrec.reference`` as in ``test_cuda_model.py``. This checks
the kernels' code itself (indexing, masks, barriers, template instantiations), not only
a model of it; it cannot check GPU-only behaviour (memory coalescing, timing, real warp
scheduling, memory ordering between blocks). Skipped with a reason when no C++ compiler
is found.
"""

import ctypes
import shutil
import subprocess
import types

import numpy as np
import pytest

from linrec import _namespace
from linrec.cuda import _kernels, _plan, backend
from tests.test_cuda_model import FEW_SMS, MANY_SMS, PAIRS, _check, _PoisonedNumpy

EMULATION = r"""
#include <barrier>
#include <chrono>
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

template <typename... Args, std::size_t... I>
void invoke(void (*kernel)(Args...), void** argv, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<Args>>*>(argv[I])...);
}

template <typename... Args>
void launch(void (*kernel)(Args...), int gx, int gy, int bx, void** argv) {
    gridDim = dim3{(unsigned)gx, (unsigned)gy, 1};
    blockDim = dim3{(unsigned)bx, 1, 1};
    for (int y = 0; y < gy; ++y) {
        for (int x = 0; x < gx; ++x) {
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
}
"""


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
        for kernel in _kernels.KERNELS:
            symbol = f"linrec_emulated_{len(names)}"
            names[(kernel, ta, tb)] = symbol
            exports.append(
                f'extern "C" void {symbol}(int gx, int gy, int bx, void** argv) '
                f"{{ launch(&{_kernels.expression(kernel, ta, tb)}, gx, gy, bx, argv); }}")
    folder = tmp_path_factory.mktemp("emulated")
    unit = folder / "emulated.cpp"
    unit.write_text(EMULATION + _kernels.source_text() + "\n".join(exports) + "\n")
    library = folder / "emulated.so"
    result = subprocess.run(
        [_cxx(), "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-w", str(unit),
         "-o", str(library)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0 and "barrier" in result.stderr and "No such file" in \
            result.stderr:
        pytest.skip("the C++ compiler has no C++20 <barrier>")
    assert result.returncode == 0, result.stderr[-5000:]
    lib = ctypes.CDLL(str(library))

    def run(kernel, ta, tb, grid, block, args):
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
            ctypes.c_int(grid[0]), ctypes.c_int(gy), ctypes.c_int(block[0]), argv)

    return run


@pytest.fixture
def on_emulator(monkeypatch, emulated):
    """``use(sms)`` routes NumPy scans through the backend and the emulated kernels."""

    def use(sms):
        xp = _PoisonedNumpy()
        shim = types.SimpleNamespace(
            forward=lambda a, b, h0, out, *, axis, reverse, method: backend.forward_with(
                xp, emulated, sms, a, b, h0, out, axis=axis, reverse=reverse),
            backward=lambda gh, a, h, h0, gl, *, axis, reverse, method:
                backend.backward_with(xp, emulated, sms, gh, a, h, h0, gl, axis=axis,
                                      reverse=reverse),
        )
        monkeypatch.setattr(_namespace, "backend_for", lambda xp: shim)

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
    several_chunks_per_segment = 20 * _plan.WARPS * tile + 5
    _check(rng, ta, tb, (1, 1), (1, several_chunks_per_segment), reverse=reverse)
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
