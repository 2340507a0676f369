"""Host-side NumPy helpers: copies to the host, widening, time-last views.

The one place that turns CuPy (or any array-like) values into NumPy arrays, for the
references and checks in ``linrec.reference`` / ``linrec.testing`` and for the model's
parameter copies.
"""

import numbers

import numpy as np

__all__ = ["to_numpy", "wide", "time_last"]


def to_numpy(x, copy=False):
    """``x`` as a NumPy array (CuPy arrays via ``.get()``); ``None`` stays ``None``.

    ``copy=True`` guarantees a new array (a NumPy ``x`` is otherwise returned as is).
    """
    if x is None:
        return None
    if hasattr(x, "get") and not isinstance(x, np.ndarray):
        return x.get()
    return np.array(x, copy=True) if copy else np.asarray(x)


def wide(x):
    """``x`` as a NumPy float64 or complex128 array."""
    x = to_numpy(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def time_last(arrays, axis):
    """Pad NumPy ``arrays`` to a common ndim and move ``axis`` of that ndim to the end.

    Returns the moved views and ``axis`` as a non-negative int. Raises ``ValueError``
    when every array is 0-d and ``numpy.exceptions.AxisError`` for a bad ``axis``.
    """
    ndim = max(x.ndim for x in arrays)
    if ndim == 0:
        raise ValueError("b must have at least one dimension: the scan axis")
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) \
            or not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(
            f"axis={axis!r} is out of range for arrays with {ndim} dimension(s)")
    axis = int(axis) % ndim
    padded = [x.reshape((1,) * (ndim - x.ndim) + x.shape) for x in arrays]
    return [np.moveaxis(x, axis, -1) for x in padded], axis
