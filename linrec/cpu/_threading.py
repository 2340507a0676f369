"""Which Numba threading layer runs linrec's kernels, and when launches take a lock.

Numba runs ``prange`` loops on one of three threading layers, chosen once per process at
the first parallel launch (``numba.config.THREADING_LAYER`` must be set before it):

- ``tbb`` (Intel TBB): safe under ``fork`` and when many Python threads launch kernels
  at once; a work-stealing scheduler, so concurrent calls share the cores.
- ``omp`` (OpenMP): thread-safe, but GNU OpenMP (Linux) is not fork-safe: a child
  forked after any parallel launch aborts when it launches one ("fork() called from a
  process already using GNU OpenMP"), and a ``multiprocessing`` fork pool then hangs.
- ``workqueue`` (Numba's own): fork-safe, but it aborts the process when two Python
  threads launch parallel kernels at the same time.

Numba's default order is tbb, omp, workqueue. Unless you chose yourself (the environment
variables ``NUMBA_THREADING_LAYER`` or ``NUMBA_THREADING_LAYER_PRIORITY``, or
``numba.config`` before your first parallel launch), linrec asks Numba for its
``"forksafe"`` layer instead: tbb when Numba can load it, else workqueue (on macOS and
Windows also a fork-safe OpenMP).

On Linux, linrec depends on the ``tbb`` wheel. Numba looks for ``libtbb.so.12`` on the
loader path only, which a virtual environment's ``lib`` directory is not on, so before
choosing, linrec loads the wheel's library from ``sys.prefix/lib`` (if present): Numba
then finds it loaded and picks tbb. Where tbb cannot be had, workqueue runs the kernels:
as fast on large arrays, but each launch costs about 0.1 ms more (measured on a 2-core
machine: a (32, 5376) float32 scan took 2.6x as long as under tbb or OpenMP). Problems of
at most ``linrec.cpu.backend.SERIAL_MAX`` elements launch no threads under any layer.

Under workqueue, parallel launches hold one process-wide lock, so ``linrec.scan`` is safe
to call from many threads (calls then take turns, each using all cores); under tbb or
omp they run concurrently without a lock.

If your own code launched a parallel Numba kernel before linrec did, the layer is
already fixed and linrec uses it as it is.
"""

import contextlib
import ctypes
import os
import sys
import threading

import numba

__all__ = ["start", "launch_guard", "num_threads"]

_DEFAULT_PRIORITY = ["tbb", "omp", "workqueue"]

_guard = None
_start_lock = threading.Lock()


def _user_chose_layer():
    return ("NUMBA_THREADING_LAYER" in os.environ
            or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ
            or numba.config.THREADING_LAYER != "default"
            or list(numba.config.THREADING_LAYER_PRIORITY) != _DEFAULT_PRIORITY)


def _load_wheel_tbb():
    """Load the ``tbb`` wheel's ``libtbb.so.12`` (Linux), so that Numba finds it."""
    path = os.path.join(sys.prefix, "lib", "libtbb.so.12")
    if sys.platform.startswith("linux") and os.path.exists(path):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


def _layer_started():
    try:
        numba.threading_layer()
    except ValueError:
        return False
    return True


def start():
    """Choose the layer (unless chosen already) and start it; returns the launch guard.
    Call it before ``numba.set_num_threads`` or ``numba.get_num_threads``, which start
    the layer too (with Numba's default choice)."""
    global _guard
    with _start_lock:
        if _guard is None:
            if not _layer_started() and not _user_chose_layer():
                _load_wheel_tbb()
                numba.config.THREADING_LAYER = "forksafe"
            numba.get_num_threads()
            thread_safe = numba.threading_layer() != "workqueue"
            _guard = contextlib.nullcontext() if thread_safe else threading.Lock()
    return _guard


def launch_guard():
    """The context manager every parallel launch runs in: a process-wide lock under the
    workqueue layer, nothing under the thread-safe ones. Starts the layer if needed."""
    return start() if _guard is None else _guard


def num_threads():
    """``numba.get_num_threads()``, after starting the layer by linrec's policy."""
    launch_guard()
    return numba.get_num_threads()


def _after_fork_in_child():
    """A forked child has only the forking thread, so a lock another thread of the parent
    held at the fork could never be released: give the child fresh ones."""
    global _guard, _start_lock
    _start_lock = threading.Lock()
    if _guard is not None and not isinstance(_guard, contextlib.nullcontext):
        _guard = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
