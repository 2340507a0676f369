"""linrec.dask on a real ``dask.distributed`` cluster started here: 2 worker processes on
loopback, each with a memory limit smaller than the array scanned.

The oracle is :func:`linrec.scan` in float64 called block by block in this process,
carrying the final state from one time block to the next (a sequential chunked scan that
never holds the whole array); the cluster's float32 result must be within a float32
error bound of it (derived in ``_expected_blocks``).
"""

import logging
import os
import signal
import sys

import cloudpickle
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import linrec  # noqa: E402
import linrec.dask as ld  # noqa: E402

# A worker holds about 300 MiB after importing linrec and loading its compiled kernels
# (measured: 306 MiB peak RSS after one forward and one reverse scan of the workers'
# block); dask pauses a worker at 80% of its limit, so the limit leaves that headroom.
MEMORY_LIMIT = 600 * 2**20
STEPS_PER_CHUNK = 524_288
CHANNELS = 4
A = np.linspace(0.99, 0.9999, CHANNELS, dtype=np.float32)[:, None]
H0 = np.arange(CHANNELS, dtype=np.float32)


pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def client():
    _fill_numba_cache()
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0", memory_limit=MEMORY_LIMIT, silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as client:
        yield client
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _fill_numba_cache():
    """Compile the kernels the workers will use here, into Numba's on-disk cache.

    The block has the workers' shape, so that the same schedule (and so the same kernels)
    is chosen. Workers then load them instead of compiling, which takes more memory than
    their limit leaves (a worker compiling near its limit is paused or restarted, again and
    again, until the test times out).
    """
    block = np.ones((CHANNELS, STEPS_PER_CHUNK), np.float32)  # the workers' schedule
    for reverse in (False, True):
        h, _ = linrec.scan(A, block, h0=H0, reverse=reverse, return_last=True)
        linrec.scan(A, block, reverse=reverse, return_last=True)
        linrec.scan(A, block, h0=h[:, -1], reverse=reverse)


def _inputs(seed, chunks_in_time, steps_per_chunk=STEPS_PER_CHUNK):
    shape = (CHANNELS, steps_per_chunk * chunks_in_time)
    return da.random.default_rng(seed).random(
        shape, chunks=(CHANNELS, steps_per_chunk), dtype=np.float32) - 0.5


def _expected_blocks(b):
    """``linrec.scan(A, b, h0=H0)`` in float64 one time block at a time, in this process,
    with a bound on the error of a float32 result.

    A float32 step rounds ``A * h[t-1]`` and the sum (u = 2**-24 each), so to first order
    the error obeys ``e[t] <= A * e[t-1] + u * (A * |h[t-1]| + |h[t]|)``: a scan of
    ``A``. The bound takes 4u instead of u, for linrec's reassociation within and between
    blocks (the carry ``A**L * state + B``: a few more roundings of terms no larger than
    these) and the second-order terms. The state carried into a block brings the previous
    block's bound at its last step."""
    a = A.astype(np.float64)  # exact: A is float32
    state = H0.astype(np.float64)
    carried = np.zeros(CHANNELS)
    for k in range(b.numblocks[1]):
        block = b.blocks[0, k].compute(scheduler="sync").astype(np.float64)
        want, last = linrec.scan(a, block, h0=state, return_last=True)
        previous = np.concatenate([state[:, None], want[:, :-1]], axis=1)
        bound = linrec.scan(a, 4 * 2.0**-24 * (a * np.abs(previous) + np.abs(want)),
                            h0=carried)
        state, carried = last, bound[:, -1]
        yield k, want, bound


def test_scan_larger_than_a_worker_memory_limit(client, tmp_path):
    b = _inputs(seed=7, chunks_in_time=160)
    assert b.nbytes >= 2 * MEMORY_LIMIT
    pids = client.run(os.getpid)
    da.to_npy_stack(tmp_path, ld.scan(A, b, h0=H0), axis=1)
    assert client.run(os.getpid) == pids, "a worker died (out of memory?) and restarted"
    for k, want, bound in _expected_blocks(b):
        error = np.abs(np.load(tmp_path / f"{k}.npy") - want)
        assert (error <= bound).all(), (
            f"block {k}: error {error.max():.3g} over the bound (worst ratio "
            f"{(error / bound).max():.3g})")


def test_same_graph_on_the_cluster_gives_same_bytes(client):
    h = ld.scan(A, _inputs(seed=8, chunks_in_time=6), h0=H0, reverse=True)
    assert h.compute().tobytes() == h.compute().tobytes()


def _die_once(x, marker, block_id=None):
    """Identity, except that the first call on block (0, 3) kills its worker process."""
    if block_id == (0, 3) and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_worker_killed_mid_run_gives_the_right_answer(client, tmp_path):
    marker = str(tmp_path / "killed")
    # Small blocks (same schedule): after the kill, one restarted worker may have to
    # gather the whole result within its memory limit next to its own imports.
    b = _inputs(seed=9, chunks_in_time=8, steps_per_chunk=STEPS_PER_CHUNK // 8)
    h = ld.scan(A, b.map_blocks(_die_once, marker, dtype=b.dtype), h0=H0)
    pids = client.run(os.getpid)
    got = h.compute()
    assert os.path.exists(marker) and client.run(os.getpid) != pids, "no worker was killed"
    blocks = list(_expected_blocks(b))
    want = np.concatenate([w for _, w, _ in blocks], axis=1)
    bound = np.concatenate([e for _, _, e in blocks], axis=1)
    assert (np.abs(got - want) <= bound).all()
