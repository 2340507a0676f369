"""Plain sequential NumPy loops: the ground truth every fast path is tested against.

These functions are slow (a Python loop over time) and simple on purpose. They compute in
float64 / complex128 whatever the input precision, so they serve as the high-precision
reference for float32 kernels too. Inputs may be NumPy or CuPy arrays, lists or Python
scalars (CuPy arrays are copied to the host); results are NumPy arrays. The scan runs
along ``axis`` of the broadcast shape, and the gradients come back in the shapes and
kinds :func:`linrec.scan_vjp` returns.
"""

import numpy as np

from linrec._host import time_last, to_numpy, wide
from linrec._validate import sum_to

__all__ = ["reference_scan", "reference_scan_vjp", "compose_pairs"]


def _scan_last(a, b, h0, reverse):
    """The recurrence along the last axis of ``a``, ``b`` (broadcast), widened."""
    a, b = np.broadcast_arrays(wide(a), wide(b))
    dtype = np.result_type(a, b, wide(0.0 if h0 is None else h0))
    h = np.zeros(b.shape, dtype)
    state = np.zeros(b.shape[:-1], dtype)
    if h0 is not None:
        state = state + wide(h0)
    steps = range(b.shape[-1] - 1, -1, -1) if reverse else range(b.shape[-1])
    for t in steps:
        state = a[..., t] * state + b[..., t]
        h[..., t] = state
    return h, state


def reference_scan(a, b, h0=None, reverse=False, *, axis=-1):
    """Sequential recurrence along ``axis`` in float64 / complex128.

    forward: ``h[t] = a[t] * h[t-1] + b[t]`` with ``h[-1] = h0``;
    reverse: ``h[t] = a[t] * h[t+1] + b[t]`` with ``h[T] = h0``.

    Parameters
    ----------
    a, b : array_like
        ``a`` broadcasts against ``b`` (NumPy rules); ``b`` has at least one dimension.
    h0 : array_like, optional
        Initial state, broadcasting against the broadcast shape without ``axis``; zero
        by default.
    reverse : bool
        Scan from the last step to the first.
    axis : int
        The time axis of the broadcast shape; negative counts from the end.

    Returns
    -------
    h : ndarray, float64 or complex128, the broadcast shape of ``a`` and ``b``
    h_last : ndarray, the final state (that shape without ``axis``; ``h0`` when T == 0)

    Raises
    ------
    ValueError
        Shapes that do not broadcast; ``b`` with no dimension.
    numpy.exceptions.AxisError
        ``axis`` out of range.
    """
    (a, b), axis = time_last([to_numpy(a), to_numpy(b)], axis)
    h, h_last = _scan_last(a, b, to_numpy(h0), reverse)
    return np.moveaxis(h, -1, axis), h_last


def _vjp_last(grad_h, a, h, h0, reverse, grad_last):
    """The adjoint loop along the last axis; ``grad_a`` of ``h``'s full shape."""
    grad_h, h = wide(grad_h), wide(h)
    a = np.broadcast_to(wide(a), h.shape)
    dtype = np.result_type(grad_h, a, h)
    h0 = np.zeros(h.shape[:-1], dtype) + (0 if h0 is None else wide(h0))
    carry = np.zeros(h.shape[:-1], dtype)
    if grad_last is not None:
        carry = carry + wide(grad_last)
    grad_a = np.zeros(h.shape, dtype)
    grad_b = np.zeros(h.shape, dtype)
    T = h.shape[-1]
    steps = range(T) if reverse else range(T - 1, -1, -1)
    for t in steps:
        g = grad_h[..., t] + carry
        grad_b[..., t] = g
        prev_t = t + 1 if reverse else t - 1
        h_prev = h[..., prev_t] if 0 <= prev_t < T else h0
        grad_a[..., t] = g * np.conj(h_prev)
        carry = np.conj(a[..., t]) * g
    return grad_a, grad_b, carry


def _like_input(g, x):
    """Gradient ``g`` reduced to input ``x``'s shape, real if ``x`` is real."""
    g = sum_to(np, g, x.shape)
    return g if np.iscomplexobj(x) else g.real


def reference_scan_vjp(grad_h, a, h, h0=None, reverse=False, grad_last=None, *, axis=-1):
    """Gradients through :func:`reference_scan` by the sequential adjoint loop.

    The results have the shapes and kinds :func:`linrec.scan_vjp` returns, in float64 /
    complex128: ``grad_a`` summed over the axes along which ``a`` was broadcast (a's own
    shape) and real when ``a`` is real; ``grad_b`` of ``h``'s shape; ``grad_h0`` of
    ``h0``'s shape (real when ``h0`` is real), or ``h``'s shape without ``axis`` when
    ``h0`` is None. Complex gradients use ``dL/dRe(z) + 1j * dL/dIm(z)``.

    Parameters
    ----------
    grad_h : array_like, ``dL/dh``, the shape of ``h``.
    a : array_like, the coefficients given to the scan (broadcasting against ``h``).
    h : array_like, the scan's output.
    h0 : array_like, optional, the initial state given to the scan.
    reverse : bool, the scan's direction.
    grad_last : array_like, optional, ``dL/dh_last`` (``h``'s shape without ``axis``).
    axis : int, the time axis.

    Returns
    -------
    grad_a, grad_b, grad_h0 : ndarray

    Raises
    ------
    ValueError, numpy.exceptions.AxisError
        As :func:`reference_scan`.
    """
    a_in, h0_in = to_numpy(a), to_numpy(h0)
    (grad_h, a, h), axis = time_last([to_numpy(grad_h), a_in, to_numpy(h)], axis)
    grad_a, grad_b, grad_h0 = _vjp_last(grad_h, a, h, h0_in, reverse, to_numpy(grad_last))
    grad_a = _like_input(np.moveaxis(grad_a, -1, axis), a_in)
    grad_b = np.moveaxis(grad_b, -1, axis)
    if h0_in is not None:
        grad_h0 = _like_input(grad_h0, h0_in)
    return grad_a, grad_b, grad_h0


def compose_pairs(first, second):
    """The affine map "``first``, then ``second``", in float64 / complex128.

    A pair ``(A, B)`` stands for ``h -> A * h + B``; the composition is
    ``(A2 * A1, A2 * B1 + B2)``. It is associative with identity ``(1, 0)``: the
    operator every parallel scan of the recurrence is built on.

    Parameters
    ----------
    first, second : tuple of two array_like
        ``(A1, B1)`` and ``(A2, B2)``; all four broadcast together.

    Returns
    -------
    tuple of two ndarray
    """
    (a1, b1), (a2, b2) = ([wide(x) for x in pair] for pair in (first, second))
    return a2 * a1, a2 * b1 + b2
