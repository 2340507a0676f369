"""One-dimensional Numba kernels, callable from your own ``@njit`` code.

Each is a plain sequential loop over one sequence: the building block for the parallel
kernels and for the gufuncs, and what you call inside a ``numba.njit`` function of your
own. They take 1-D arrays of equal length (``a`` may be a stride-0 view from
``np.broadcast_to``), any float or complex dtype, and write into arrays you allocate.

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

import numba
import numpy as np
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


@_jit.njit(nogil=True)
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
    """
    T = h.shape[0]
    state = h0 + 0 * b.dtype.type(0)
    if reverse:
        for t in range(T - 1, -1, -1):
            state = a[t] * state + b[t]
            h[t] = state
    else:
        for t in range(T):
            state = a[t] * state + b[t]
            h[t] = state
    return state


@_jit.njit(nogil=True)
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
    """
    T = h.shape[0]
    carry = grad_last + 0 * h.dtype.type(0)
    if reverse:
        for t in range(T):
            g = grad_h[t] + carry
            grad_b[t] = as_grad(g, grad_b)
            prev = h[t + 1] if t + 1 < T else h0
            grad_a[t] = as_grad(g * np.conj(prev), grad_a)
            carry = np.conj(a[t]) * g
    else:
        for t in range(T - 1, -1, -1):
            g = grad_h[t] + carry
            grad_b[t] = as_grad(g, grad_b)
            prev = h[t - 1] if t > 0 else h0
            grad_a[t] = as_grad(g * np.conj(prev), grad_a)
            carry = np.conj(a[t]) * g
    return carry
