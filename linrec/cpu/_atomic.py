"""Atomic operations on int64 array elements, for kernels whose threads hand values to one
another inside one parallel region.

Numba has no CPU atomics, so each operation is an LLVM atomic instruction (an
``intrinsic``) behind a plain Python function of the same meaning: Numba compiles the
intrinsic, and under ``NUMBA_DISABLE_JIT=1`` the Python function runs (one thread, so no
atomicity is needed).

- ``fetch_add(array, i, value)``: adds ``value`` to ``array[i]`` and returns the old value
  (sequentially consistent);
- ``load_acquire(array, i)``: reads ``array[i]``; whatever the writer stored before its
  ``store_release`` of that value is visible after it;
- ``store_release(array, i, value)``: writes ``value`` (not 0, not -1) to ``array[i]``
  after everything written before, and wakes a thread asleep in ``wait_until_set`` on it;
- ``wait_until_set(array, i)``: returns once ``array[i]`` holds a value given to
  ``store_release``, seen through ``load_acquire``. It spins ``SPINS`` looks, then
  sleeps until woken (Linux on x86-64 and aarch64: a futex on the element, which it
  marks -1 while it sleeps), elsewhere gives the core away (``sched_yield``) between
  looks. Each sleep lasts at most ``WAIT_TIMEOUT_NS`` before the thread looks again, so
  a wake-up that never came would cost that much time, not a hang.

Why sleep rather than yield: on a machine with more runnable threads than cores, the
thread being waited for may need the core. ``sched_yield`` hands it to whichever thread
runs next, and Linux's scheduler (EEVDF, since 6.6) pushes a yielding thread's deadline
back by a time slice at every yield, so a thread that yielded through a long wait runs
last among its session's threads once the value arrives: beside one or two busy
threads of the same session, the chunked schedule's two threads took up to 10x the
time of one thread (``docs/benchmarks/oversubscribed.md``). A futex sleeper takes no
turns while it waits and runs as soon as it is woken.

``array`` is a 1-D int64 array, ``i`` an integer index (not checked: callers index in
range).
"""

import os
import platform
import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["fetch_add", "load_acquire", "store_release", "wait_until_set"]

SPINS = 2000
WAITING = -1
WAIT_TIMEOUT_NS = 10_000_000
_FUTEX_CALLS = {"x86_64": 202, "aarch64": 98}
_FUTEX = (_FUTEX_CALLS.get(platform.machine()) if sys.platform.startswith("linux")
          and sys.byteorder == "little" else None)
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129


def fetch_add(array, i, value):
    old = array[i]
    array[i] = old + value
    return old


def load_acquire(array, i):
    return array[i]


def store_release(array, i, value):
    array[i] = value


def wait_until_set(array, i):
    while array[i] == 0:
        os.sched_yield()


def _pointer(context, builder, array_type, array, index):
    view = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, view, [index])


def _check(array):
    if not (isinstance(array, types.Array) and array.ndim == 1
            and array.dtype == types.int64):
        raise TypeError(f"linrec.cpu._atomic: a 1-D int64 array is needed, got {array}")


def _read_modify_write(operation):
    """An intrinsic ``(array, i, value)`` doing LLVM's atomic ``operation`` on ``array[i]``
    with ``value`` and returning the old value (sequentially consistent)."""
    @intrinsic
    def read_modify_write(typingctx, array, i, value):
        _check(array)

        def codegen(context, builder, signature, args):
            ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
            return builder.atomic_rmw(operation, ptr, args[2], "seq_cst")

        return types.int64(array, types.intp, types.int64), codegen
    return read_modify_write


_fetch_add = _read_modify_write("add")
_exchange = _read_modify_write("xchg")  # writes value, returns the old one


@intrinsic
def _mark_waiting(typingctx, array, i):
    """Writes ``WAITING`` to ``array[i]`` if it holds 0; returns the value it held."""
    _check(array)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
        i64 = ir.IntType(64)
        pair = builder.cmpxchg(ptr, ir.Constant(i64, 0), ir.Constant(i64, WAITING),
                               "seq_cst", "seq_cst")
        return builder.extract_value(pair, 0)

    return types.int64(array, types.intp), codegen


@intrinsic
def _load_acquire(typingctx, array, i):
    _check(array)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(array, types.intp), codegen


@intrinsic
def _store_release(typingctx, array, i, value):
    _check(array)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return types.none(array, types.intp, types.int64), codegen


def _futex_call(context, builder, array_type, array, index, operation, value, timeout):
    """Emits ``syscall(SYS_futex, &array[index], operation, value, timeout, NULL, 0)`` on
    the low 32 bits of ``array[index]`` (little-endian); ``timeout`` is an i8* (a
    ``struct timespec``) or None. The result is ignored: callers look again."""
    ptr = _pointer(context, builder, array_type, array, index)
    i64, i32, byte_ptr = ir.IntType(64), ir.IntType(32), ir.IntType(8).as_pointer()
    syscall = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall")
    null = ir.Constant(byte_ptr, None)
    builder.call(syscall, [ir.Constant(i64, _FUTEX), builder.bitcast(ptr, byte_ptr),
                           ir.Constant(i32, operation), builder.trunc(value, i32),
                           null if timeout is None else timeout, null,
                           ir.Constant(i32, 0)])


@intrinsic
def _futex_wait(typingctx, array, i, value, timeout_ns):
    """Sleeps while the low 32 bits of ``array[i]`` equal ``value``'s, until woken or
    ``timeout_ns`` (below one second) has passed."""
    _check(array)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        timespec = cgutils.alloca_once(builder, ir.LiteralStructType([i64, i64]))
        builder.store(ir.Constant(i64, 0), cgutils.gep_inbounds(builder, timespec, 0, 0))
        builder.store(args[3], cgutils.gep_inbounds(builder, timespec, 0, 1))
        _futex_call(context, builder, signature.args[0], args[0], args[1],
                    _FUTEX_WAIT_PRIVATE, args[2],
                    builder.bitcast(timespec, ir.IntType(8).as_pointer()))
        return context.get_dummy_value()

    return types.none(array, types.intp, types.int64, types.int64), codegen


@intrinsic
def _futex_wake_all(typingctx, array, i):
    """Wakes every thread asleep in ``_futex_wait`` on ``array[i]``."""
    _check(array)

    def codegen(context, builder, signature, args):
        _futex_call(context, builder, signature.args[0], args[0], args[1],
                    _FUTEX_WAKE_PRIVATE, ir.Constant(ir.IntType(64), 2**31 - 1), None)
        return context.get_dummy_value()

    return types.none(array, types.intp), codegen


@intrinsic
def _sched_yield(typingctx):
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(function, [])
        return context.get_dummy_value()

    return types.none(), codegen


@overload(fetch_add)
def _fetch_add_overload(array, i, value):
    return lambda array, i, value: _fetch_add(array, i, value)


@overload(load_acquire)
def _load_acquire_overload(array, i):
    return lambda array, i: _load_acquire(array, i)


@overload(store_release)
def _store_release_overload(array, i, value):
    if _FUTEX is None:
        return lambda array, i, value: _store_release(array, i, value)

    def impl(array, i, value):
        if _exchange(array, i, value) == WAITING:
            _futex_wake_all(array, i)
    return impl


@overload(wait_until_set)
def _wait_until_set_overload(array, i):
    if _FUTEX is None:
        def impl(array, i):
            spins = 0
            while _load_acquire(array, i) == 0:
                spins += 1
                if spins > SPINS:
                    _sched_yield()
        return impl

    def impl(array, i):
        spins = 0
        seen = _load_acquire(array, i)
        while seen == 0 or seen == WAITING:
            spins += 1
            if spins > SPINS and (seen == WAITING or _mark_waiting(array, i) == 0):
                _futex_wait(array, i, WAITING, WAIT_TIMEOUT_NS)
            seen = _load_acquire(array, i)
    return impl
