"""Sums over the small feature axis and over all rows, as matrix-vector products.

NumPy reduces a short last axis (H = 32-64 features) one row at a time and sums over
the leading axes of a ``(batch, T, H)`` array in strided passes: about 5x slower than a
BLAS matrix-vector product on the main job's shapes (``(32, 336, 48)`` float32, one
thread). These helpers compute the same sums as ``x.mean(axis=-1, keepdims=True)`` and
``x.sum(axis=(0, ..., ndim-2))`` with ``@``, in x's namespace and dtype; only the
rounding order differs.
"""

__all__ = ["mean_last", "sum_rows"]


def mean_last(xp, x):
    """The mean over the last axis, keeping it: shape ``(..., 1)``."""
    n = x.shape[-1]
    return (x @ xp.full(n, 1.0 / n, dtype=x.dtype))[..., None]


def sum_rows(xp, x):
    """The sum over every axis but the last: shape ``(x.shape[-1],)``."""
    rows = x.reshape(-1, x.shape[-1])
    return xp.ones(rows.shape[0], dtype=x.dtype) @ rows
