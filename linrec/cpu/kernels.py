"""One-dimensional Numba kernels, callable from your own ``@njit`` code.

Each is a plain sequential loop over one sequence: the building block for the parallel
kernels and for the gufuncs, and what you call inside a ``numba.njit`` function of your
own (or from Python). They take 1-D arrays of equal length (``a`` may be a stride-0 view
from ``np.broadcast_to``), any float or complex dtype, and write into arrays you allocate.
The lengths are checked once per call, before the loop: a mismatch raises ``ValueError``
naming the argument (inside ``@njit`` code as well). From Python, arguments that Numba
cannot take (not a 1-D NumPy array of floats, a non-native byte order, a read-only output,
a non-scalar state) raise ``TypeError`` or ``ValueError`` naming the argument; inside
``@njit`` code a wrong number of dimensions or a read-only output fails at compile time
with a ``TypingError`` that names it.

Example
-------
>>> import numba, numpy as np
>>> from linrec.cpu.kernels import scan_1d
>>> @numba.njit
... def smooth_rows(x, alpha):
...     out = np.empty_like(x)
...     a = np.full(x.shape[1], 1.0 - alpha)
...     for i in range(x.shape[0]):
...         scan_1d(a, alpha * x[i], 0.0, out[i], False)
...     return out
>>> smooth_rows(np.ones((2, 3)), 0.5)
array([[0.5  , 0.75 , 0.875],
       [0.5  , 0.75 , 0.875]])
"""

import numbers

import numba
import numpy as np
from numba.core.errors import TypingError
from numba.extending import overload

from linrec.cpu import _jit

__all__ = ["scan_1d", "scan_vjp_1d", "as_grad"]


def as_grad(x, like):
    """``x`` as a gradient for an array of ``like``'s dtype: its real part if real."""
    if np.iscomplexobj(like):
        return x
    return np.real(x)


@overload(as_grad, inline="always")
def _as_grad_overload(x, like):
    dtype = getattr(like, "dtype", like)
    if isinstance(dtype, numba.types.Complex):
        return lambda x, like: x
    return lambda x, like: x.real


def _check_arrays(kernel, outputs, **arrays):
    """Python-level checks of the array arguments Numba could not type, or would take as
    something else (``outputs`` are written, so they must be writeable)."""
    for name, x in arrays.items():
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{kernel}: {name} must be a NumPy array, got "
                            f"{type(x).__name__}; convert it with np.asarray")
        if x.ndim != 1:
            raise ValueError(f"{kernel}: {name} must be 1-D, got shape {x.shape}; pass "
                             f"one sequence, e.g. {name}[i], or call linrec.scan")
        if x.dtype.kind not in "fc":
            raise TypeError(f"{kernel}: {name} has dtype {x.dtype}; the kernels compute in "
                            f"floating point: convert it, e.g. {name}.astype(np.float64)")
        if not x.dtype.isnative:
            raise ValueError(f"{kernel}: {name} has non-native byte order "
                             f"({x.dtype.str}), which Numba cannot read: convert it with "
                             f"{name}.astype({name}.dtype.newbyteorder('='))")
        if name in outputs and not x.flags.writeable:
            raise ValueError(f"{kernel}: {name} is read-only; pass a writeable array")


def _check_scalars(kernel, **scalars):
    for name, x in scalars.items():
        if not isinstance(x, numbers.Number):
            raise TypeError(f"{kernel}: {name} must be a scalar (int, float or complex), "
                            f"got {type(x).__name__}; for a 0-d array pass {name}.item()")


def _check_types(kernel, outputs, **arrays):
    """The same checks at compile time, inside ``@njit`` code (Numba types)."""
    for name, x in arrays.items():
        if not isinstance(x, numba.types.Array) or x.ndim != 1:
            raise TypingError(f"{kernel}: {name} must be a 1-D array, got {x}")
        if name in outputs and not x.mutable:
            raise TypingError(f"{kernel}: {name} is read-only; pass a writeable array")


@_jit.njit(nogil=True)
def _scan_1d(a, b, h0, h, reverse):
    T = h.shape[0]
    if a.shape[0] != T:
        raise ValueError("scan_1d: a and h have different lengths; a, b and h must have "
                         "one length (broadcast a constant a with np.broadcast_to)")
    if b.shape[0] != T:
        raise ValueError("scan_1d: b and h have different lengths; a, b and h must have "
                         "one length")
    if reverse:
        return _forward_loop(a[::-1], b[::-1], h0, h[::-1])
    return _forward_loop(a, b, h0, h)


@_jit.njit(nogil=True)
def _forward_loop(a, b, h0, h):
    """The recurrence from the first step to the last; a reverse scan runs it on views
    flipped in time."""
    state = h0 + 0 * b.dtype.type(0)
    for t in range(h.shape[0]):
        state = a[t] * state + b[t]
        h[t] = state
    return state


def scan_1d(a, b, h0, h, reverse):
    """``h[t] = a[t] * h[t-1] + b[t]`` (or ``h[t+1]`` when ``reverse``) over 1-D arrays.

    Parameters
    ----------
    a, b : 1-D arrays of length T (float or complex; ``a`` may be real with complex ``b``)
    h0 : scalar, the initial state
    h : 1-D array of length T, written (it may be ``b`` itself)
    reverse : bool

    Returns
    -------
    The final state (``h0`` when T == 0).

    Raises
    ------
    ValueError
        ``a`` or ``b`` of another length than ``h``; from Python also a non-1-D array, a
        non-native byte order or a read-only ``h``.
    TypeError
        From Python: an argument that is not a NumPy float or complex array, or an
        ``h0`` that is not a scalar.
    """
    _check_arrays("scan_1d", ("h",), a=a, b=b, h=h)
    _check_scalars("scan_1d", h0=h0)
    return _scan_1d(a, b, h0, h, reverse)


@overload(scan_1d)
def _scan_1d_overload(a, b, h0, h, reverse):
    _check_types("scan_1d", ("h",), a=a, b=b, h=h)
    return lambda a, b, h0, h, reverse: _scan_1d(a, b, h0, h, reverse)


@_jit.njit(nogil=True)
def _scan_vjp_1d(grad_h, a, h, h0, grad_last, grad_a, grad_b, reverse):
    T = h.shape[0]
    if grad_h.shape[0] != T:
        raise ValueError("scan_vjp_1d: grad_h and h have different lengths; grad_h, a, "
                         "h, grad_a and grad_b must have one length")
    if a.shape[0] != T:
        raise ValueError("scan_vjp_1d: a and h have different lengths; grad_h, a, h, "
                         "grad_a and grad_b must have one length (broadcast a constant "
                         "a with np.broadcast_to)")
    if grad_a.shape[0] != T:
        raise ValueError("scan_vjp_1d: grad_a and h have different lengths; grad_h, a, "
                         "h, grad_a and grad_b must have one length")
    if grad_b.shape[0] != T:
        raise ValueError("scan_vjp_1d: grad_b and h have different lengths; grad_h, a, "
                         "h, grad_a and grad_b must have one length")
    if reverse:
        return _adjoint_loop(grad_h[::-1], a[::-1], h[::-1], h0, grad_last,
                             grad_a[::-1], grad_b[::-1])
    return _adjoint_loop(grad_h, a, h, h0, grad_last, grad_a, grad_b)


@_jit.njit(nogil=True)
def _adjoint_loop(grad_h, a, h, h0, grad_last, grad_a, grad_b):
    """The adjoint of :func:`_forward_loop`, from the last step to the first; that of a
    reverse scan runs it on views flipped in time."""
    carry = grad_last + 0 * h.dtype.type(0)
    for t in range(h.shape[0] - 1, -1, -1):
        g = grad_h[t] + carry
        grad_b[t] = as_grad(g, grad_b)
        prev = h[t - 1] if t > 0 else h0
        grad_a[t] = as_grad(g * np.conj(prev), grad_a)
        carry = np.conj(a[t]) * g
    return carry


def scan_vjp_1d(grad_h, a, h, h0, grad_last, grad_a, grad_b, reverse):
    """Gradients through :func:`scan_1d` in one reverse pass over 1-D arrays.

    Convention for complex values: ``dL/dRe + 1j * dL/dIm``.

    Parameters
    ----------
    grad_h, a, h : 1-D arrays of length T (``h`` is scan_1d's output)
    h0, grad_last : scalars (the initial state; dL/d(final state))
    grad_a, grad_b : 1-D arrays of length T, written; a real ``grad_a`` receives the real
        part of the gradient
    reverse : bool

    Returns
    -------
    dL/dh0 (a scalar).

    Raises
    ------
    ValueError, TypeError
        As :func:`scan_1d`: any array of another length than ``h``, and from Python the
        checks of every argument.
    """
    _check_arrays("scan_vjp_1d", ("grad_a", "grad_b"), grad_h=grad_h, a=a, h=h,
                  grad_a=grad_a, grad_b=grad_b)
    _check_scalars("scan_vjp_1d", h0=h0, grad_last=grad_last)
    return _scan_vjp_1d(grad_h, a, h, h0, grad_last, grad_a, grad_b, reverse)


@overload(scan_vjp_1d)
def _scan_vjp_1d_overload(grad_h, a, h, h0, grad_last, grad_a, grad_b, reverse):
    _check_types("scan_vjp_1d", ("grad_a", "grad_b"), grad_h=grad_h, a=a, h=h,
                 grad_a=grad_a, grad_b=grad_b)
    return lambda grad_h, a, h, h0, grad_last, grad_a, grad_b, reverse: _scan_vjp_1d(
        grad_h, a, h, h0, grad_last, grad_a, grad_b, reverse)
