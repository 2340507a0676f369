"""Plain sequential NumPy loops: the ground truth every fast path is tested against.

These functions are slow (a Python loop over time) and simple on purpose. They compute in
float64 / complex128 whatever the input precision, so they serve as the high-precision
reference for float32 kernels too.

All functions scan along the last axis. Shapes: ``a`` broadcasts against ``b`` of shape
``(..., T)``; ``h0`` broadcasts against ``b.shape[:-1]``.
"""

import numpy as np

__all__ = ["reference_scan", "reference_scan_vjp"]


def _wide(x):
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def reference_scan(a, b, h0=None, reverse=False):
    """Sequential recurrence along the last axis.

    forward: ``h[t] = a[t] * h[t-1] + b[t]`` with ``h[-1] = h0``;
    reverse: ``h[t] = a[t] * h[t+1] + b[t]`` with ``h[T] = h0``.

    Parameters
    ----------
    a, b : array_like
        ``a`` broadcasts against ``b``; the scan runs along the last axis of ``b``.
    h0 : array_like, optional
        Initial state, broadcasting against ``b.shape[:-1]``; zero by default.
    reverse : bool
        Scan from the last step to the first.

    Returns
    -------
    h : ndarray, float64 or complex128, shape of ``np.broadcast(a, b)``
    h_last : ndarray, the final state (``h[..., -1]`` forward, ``h[..., 0]`` reverse,
        ``h0`` when T == 0).
    """
    a, b = np.broadcast_arrays(_wide(a), _wide(b))
    dtype = np.result_type(a, b, _wide(0.0 if h0 is None else h0))
    h = np.zeros(b.shape, dtype)
    state = np.zeros(b.shape[:-1], dtype)
    if h0 is not None:
        state = state + _wide(h0)
    steps = range(b.shape[-1] - 1, -1, -1) if reverse else range(b.shape[-1])
    for t in steps:
        state = a[..., t] * state + b[..., t]
        h[..., t] = state
    return h, state


def reference_scan_vjp(grad_h, a, h, h0=None, reverse=False, grad_last=None):
    """Vector-Jacobian product of :func:`reference_scan`, by the sequential adjoint loop.

    Complex inputs use the convention ``dL/dRe(z) + 1j * dL/dIm(z)``.

    Returns
    -------
    grad_a : ndarray with the broadcast shape of ``a`` and ``b`` (not reduced to ``a``'s
        shape; sum over the broadcast axes to get that).
    grad_b : ndarray, shape of ``h``.
    grad_h0 : ndarray, shape ``h.shape[:-1]``.
    """
    grad_h, h = _wide(grad_h), _wide(h)
    a = np.broadcast_to(_wide(a), h.shape)
    dtype = np.result_type(grad_h, a, h)
    h0 = np.zeros(h.shape[:-1], dtype) + (0 if h0 is None else _wide(h0))
    carry = np.zeros(h.shape[:-1], dtype)
    if grad_last is not None:
        carry = carry + _wide(grad_last)
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
