"""Flush-to-zero while a kernel runs: a state below the smallest normal number becomes 0.

A decaying state (|a| < 1, no new input) falls into the subnormal range, and there it
stays: a subnormal times an ``a`` with |a| > 1/2 rounds back to a subnormal, never to 0.
On Intel cores every operation with a subnormal operand or result takes a microcode
assist of a hundred cycles or more, in the scan and in whatever reads its output (a
matrix product in BLAS). Measured once (ad-hoc probe) on a 2-vCPU Intel Xeon, (256,
65536) float32, ``a = 0.9``, ``b`` one at the first step and zero after: ``linrec.scan``
took 328 ms against 11 ms on random data; in the model's training step, the backward
pass of a block whose output gradient is zero before the pooling window ran 10x slower
than the other blocks'. An AMD EPYC (family 25) showed no such penalty.

The kernels therefore set the FTZ bit (flush to zero) of the thread's MXCSR register at
the start of each task and restore the caller's register at its end: a result that
would be subnormal is 0 instead. The error this adds to one operation is below the
smallest normal number, the absolute underflow term of the forward-error bound
(``linrec.testing.bounds``). Subnormal *inputs* are still used as they are (DAZ, which
would treat them as zero, stays off): a tiny ``a`` times a large state is not lost.
The calling thread's floating-point mode is unchanged when a kernel returns, and NumPy
code outside linrec's kernels keeps gradual underflow.

Only x86 has the register (and the penalty); elsewhere, and under ``NUMBA_DISABLE_JIT``,
both functions do nothing.
"""

import platform

import numba
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["flush_to_zero", "restore_mode"]

_FTZ = 0x8000  # MXCSR bit 15
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def flush_to_zero():
    """Set the calling thread's flush-to-zero mode; returns the mode to restore (an
    integer for :func:`restore_mode`)."""
    return 0


def restore_mode(saved):
    """Put back the mode :func:`flush_to_zero` returned."""


def _mxcsr_access(builder):
    """The ``stmxcsr`` and ``ldmxcsr`` intrinsics and a 4-byte slot they address,
    allocated once in the function's entry block (an ``alloca`` inside a loop would take
    new stack space on every iteration until the function returns)."""
    byte_ptr = ir.IntType(8).as_pointer()
    signature = ir.FunctionType(ir.VoidType(), [byte_ptr])
    store = builder.module.declare_intrinsic("llvm.x86.sse.stmxcsr", fnty=signature)
    load = builder.module.declare_intrinsic("llvm.x86.sse.ldmxcsr", fnty=signature)
    slot = cgutils.alloca_once(builder, ir.IntType(32))
    return store, load, slot, builder.bitcast(slot, byte_ptr)


@intrinsic
def _set_ftz(typingctx):
    def codegen(context, builder, signature, args):
        store, load, slot, address = _mxcsr_access(builder)
        builder.call(store, [address])
        saved = builder.load(slot)
        builder.store(builder.or_(saved, ir.Constant(ir.IntType(32), _FTZ)), slot)
        builder.call(load, [address])
        return builder.zext(saved, ir.IntType(64))
    return numba.types.uint64(), codegen


@intrinsic
def _set_mxcsr(typingctx, saved):
    def codegen(context, builder, signature, args):
        _, load, slot, address = _mxcsr_access(builder)
        builder.store(builder.trunc(args[0], ir.IntType(32)), slot)
        builder.call(load, [address])
        return context.get_dummy_value()
    return numba.types.none(numba.types.uint64), codegen


@overload(flush_to_zero, inline="always")
def _flush_to_zero_overload():
    if _X86:
        return lambda: _set_ftz()
    return lambda: numba.uint64(0)


@overload(restore_mode, inline="always")
def _restore_mode_overload(saved):
    if _X86:
        return lambda saved: _set_mxcsr(numba.uint64(saved))
    return lambda saved: None
