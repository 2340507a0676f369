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
- ``store_release(array, i, value)``: writes ``array[i]`` after everything written before;
- ``wait_until_set(array, i)``: returns once ``load_acquire(array, i)`` is not 0, spinning
  a little, then giving the core away (``sched_yield``) between looks: on a machine
  with more runnable threads than cores, the thread being waited for may need it.

``array`` is a 1-D int64 array, ``i`` an integer index (not checked: callers index in
range).
"""

import os

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["fetch_add", "load_acquire", "store_release", "wait_until_set"]

SPINS = 2000


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


@intrinsic
def _fetch_add(typingctx, array, i, value):
    _check(array)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return types.int64(array, types.intp, types.int64), codegen


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


@overload(fetch_add)
def _fetch_add_overload(array, i, value):
    return lambda array, i, value: _fetch_add(array, i, value)


@overload(load_acquire)
def _load_acquire_overload(array, i):
    return lambda array, i: _load_acquire(array, i)


@overload(store_release)
def _store_release_overload(array, i, value):
    return lambda array, i, value: _store_release(array, i, value)



@intrinsic
def _sched_yield(typingctx):
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(function, [])
        return context.get_dummy_value()

    return types.none(), codegen


@overload(wait_until_set)
def _wait_until_set_overload(array, i):
    def impl(array, i):
        spins = 0
        while _load_acquire(array, i) == 0:
            spins += 1
            if spins > SPINS:
                _sched_yield()
    return impl
