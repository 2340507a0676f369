"""The checks every entry point shares, and the one normalised problem they produce.

:func:`scan_problem` and :func:`vjp_problem` check the arguments of a scan or of its
gradient (dtypes, shapes, axis, the state arguments' shapes) and describe the problem as a
:class:`Problem`: the compute dtypes, the broadcast shape, a non-negative axis, the batch
shape, the direction and the CPU schedule. ``linrec.scan`` / ``linrec.scan_vjp`` and
``linrec.dask`` call them on whatever they were given (NumPy, CuPy or dask arrays,
scalars), then convert the arguments in their own way; the backends receive the
:class:`Problem` and never recompute it. Only shapes and dtypes are read here, so nothing
is computed or copied.
"""

import functools
import numbers
from typing import NamedTuple

import numpy as np

from linrec import _dtypes

__all__ = ["Problem", "scan_problem", "vjp_problem", "coerce", "check_given",
           "check_flag", "check_method", "as_array", "pad_dims", "is_complex", "sum_to"]

_SUPPORTED = tuple(d.type for d in _dtypes.SUPPORTED)
_NATIVE = frozenset(_dtypes.SUPPORTED)


class Problem(NamedTuple):
    """One scan (or its gradient), checked.

    ``dtype`` is the compute dtype of ``b``, ``h`` and the states; ``a_dtype`` that of
    ``a`` (``dtype``, or its real counterpart for a real ``a``); ``shape`` the broadcast
    shape (``h``'s); ``axis`` the non-negative time axis; ``method`` the CPU schedule
    asked for ("auto" or a name in ``linrec.cpu.backend.SCHEDULES``).
    """

    dtype: np.dtype
    a_dtype: np.dtype
    shape: tuple
    axis: int
    reverse: bool
    method: str

    @property
    def T(self):
        """The number of steps."""
        return self.shape[self.axis]

    @property
    def batch(self):
        """``shape`` without ``axis``: the shape of a state."""
        return self.shape[:self.axis] + self.shape[self.axis + 1:]

    @property
    def empty(self):
        """No step, or no chain: nothing for a backend to compute."""
        return self.T == 0 or 0 in self.batch

    def zero_state(self, xp):
        """A zero state of namespace ``xp`` that broadcasts to ``batch`` (the default of
        ``h0`` and ``grad_last``)."""
        return xp.zeros((1,) * (len(self.shape) - 1), self.dtype)


def coerce(name, x):
    """Lists and tuples become NumPy arrays; arrays and scalars pass through."""
    if type(x) is np.ndarray or not isinstance(x, list | tuple):
        return x
    try:
        return np.asarray(x)
    except ValueError as error:
        raise ValueError(
            f"{name} is a {type(x).__name__} that is not a rectangular array of numbers "
            f"({error}); give every row the same length, or pass a NumPy array"
        ) from None


def check_given(**named):
    """TypeError for a required argument that is None."""
    for name, x in named.items():
        if x is None:
            raise TypeError(f"{name} is None; it is required: pass an array")


def check_flag(name, x):
    """``x`` as a bool; TypeError unless it is True or False (Python or NumPy)."""
    if not isinstance(x, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {x!r}")
    return bool(x)


def check_method(method, methods):
    """ValueError unless ``method`` is one of ``methods``."""
    if method not in methods:
        raise ValueError(f"method={method!r} is not one of {methods}")


def _is_scalar(x):
    return type(x) is not np.ndarray and isinstance(x, numbers.Number) and \
        not isinstance(x, np.generic)


def _dtype_of(name, x):
    """The dtype ``x`` takes part in promotion with (a Python scalar stays weak)."""
    if type(x) is np.ndarray and x.dtype in _NATIVE:
        return x.dtype
    if isinstance(x, bool | np.bool_):
        raise TypeError(
            f"{name} is a bool; linrec computes in floating point: pass a float instead"
        )
    if _is_scalar(x):
        if not isinstance(x, int | float | complex):
            raise TypeError(
                f"{name} is a {type(x).__name__}; linrec takes Python int, float or "
                f"complex scalars: convert it first, e.g. float({name})"
            )
        return x
    dtype = x.dtype
    if dtype.kind in "biu":
        raise TypeError(
            f"{name} has integer or bool dtype {dtype}; linrec computes in floating "
            f"point: convert it first, e.g. {name}.astype(np.float64)"
        )
    if dtype.kind not in "fc" or dtype.type not in _SUPPORTED:
        raise TypeError(
            f"{name} has dtype {dtype}; linrec supports {', '.join(_dtypes.NAMES)}: "
            f"convert it first, e.g. {name}.astype(np.float32)"
        )
    return dtype


_WEAK = {complex: 0j, float: 0.0, int: 0}


def _result_dtype(named):
    """NumPy's promotion over (name, value) pairs, restricted to the supported dtypes.

    Promotion depends only on the arrays' dtypes and the Python scalars' types (NEP 50:
    scalars are weak, their values do not matter), so it is cached by those."""
    key = []
    for name, x in named:
        if x is not None:
            dtype = _dtype_of(name, x)
            key.append(dtype if isinstance(dtype, np.dtype) else
                       next(t for t in _WEAK if isinstance(dtype, t)))
    return _promote(tuple(key))


@functools.lru_cache(maxsize=256)
def _promote(key):
    """:func:`_result_dtype` of dtypes and Python scalar types (``key``), cached."""
    dtype = np.result_type(*[_WEAK.get(k, k) for k in key])
    if dtype.type not in _SUPPORTED:
        dtype = np.result_type(dtype, np.float32)
    if dtype.type not in _SUPPORTED:
        raise TypeError(f"inputs promote to {dtype}, which linrec does not support")
    return dtype


def is_complex(x):
    """Whether ``x`` (an array or a scalar) is complex."""
    if _is_scalar(x):
        return isinstance(x, complex)
    return x.dtype.kind == "c"


def _shape(x):
    return tuple(getattr(x, "shape", ()))


def _broadcast_shape(named_shapes):
    """The broadcast shape of two ``(name, shape)`` pairs; ValueError naming both."""
    (_, first), (_, second) = named_shapes
    if first == second:
        return first
    try:
        return np.broadcast_shapes(*[s for _, s in named_shapes])
    except ValueError:
        desc = ", ".join(f"{n} {tuple(s)}" for n, s in named_shapes)
        raise ValueError(
            f"shapes do not broadcast: {desc}; give a the shape of b, or size 1 on the "
            f"axes where it is constant (e.g. (C, 1) for one coefficient per channel)"
        ) from None


def _normalise_axis(axis, ndim, name="axis"):
    if type(axis) is int and -ndim <= axis < ndim:
        return axis % ndim
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(
            f"{name}={axis} is out of range for arrays with {ndim} dimension(s); "
            f"use an axis in [{-ndim}, {ndim - 1}]"
        )
    return int(axis) % ndim


def _check_state(name, x, problem):
    """ValueError unless the h0-like argument ``x`` broadcasts to the batch shape."""
    if x is None:
        return
    batch, ndim = problem.batch, len(problem.shape)
    if getattr(x, "ndim", 0) == ndim:
        raise ValueError(
            f"{name} has shape {_shape(x)} with as many dimensions as b; it must "
            f"have b's shape without the scan axis, {batch}: drop the axis, e.g. "
            f"{name}.squeeze(axis)"
        )
    try:
        if np.broadcast_shapes(_shape(x), batch) != batch:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{name} has shape {_shape(x)}, which does not broadcast to b's shape "
            f"without the scan axis, {batch}"
        ) from None


def _a_dtype(a, dtype):
    return dtype if is_complex(a) else _dtypes.real_of(dtype)


def scan_problem(a, b, h0, *, axis, reverse, method):
    """The :class:`Problem` of ``scan(a, b, h0=h0, axis=axis, ...)``.

    ``a``, ``b`` and ``h0`` are the arguments after :func:`coerce`: arrays of any kind
    with ``shape`` and ``dtype``, or scalars (``h0`` may be None).

    Raises
    ------
    TypeError
        Unsupported dtypes or scalars.
    ValueError
        ``b`` without a dimension, shapes that do not broadcast, an ``h0`` that does not
        broadcast to the batch shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.
    """
    if not isinstance(_dtype_of("b", b), np.dtype) or b.ndim == 0:
        raise ValueError("b must have at least one dimension: the scan axis")
    dtype = _result_dtype([("a", a), ("b", b), ("h0", h0)])
    shape = _broadcast_shape([("a", _shape(a)), ("b", _shape(b))])
    problem = Problem(dtype, _a_dtype(a, dtype), shape, _normalise_axis(axis, len(shape)),
                      reverse, method)
    _check_state("h0", h0, problem)
    return problem


def vjp_problem(grad_h, a, h, h0, grad_last, *, axis, reverse, method):
    """The :class:`Problem` of ``scan_vjp(grad_h, a, h, h0=h0, grad_last=grad_last,
    axis=axis, ...)``; arguments as for :func:`scan_problem`.

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`scan_problem`; also ``grad_h`` or ``h`` without a dimension, a
        ``grad_h`` of another shape than ``h``, an ``a`` that does not broadcast to it.
    """
    for name, x in (("grad_h", grad_h), ("h", h)):
        if not isinstance(_dtype_of(name, x), np.dtype) or x.ndim == 0:
            raise ValueError(f"{name} must be an array with at least one dimension")
    shape = _shape(h)
    if _shape(grad_h) != shape:
        raise ValueError(
            f"grad_h has shape {_shape(grad_h)} but h has shape {shape}; "
            f"grad_h must be dL/dh, exactly h's shape"
        )
    dtype = _result_dtype([("grad_h", grad_h), ("a", a), ("h", h), ("h0", h0),
                           ("grad_last", grad_last)])
    if _broadcast_shape([("a", _shape(a)), ("h", shape)]) != shape:
        raise ValueError(
            f"a has shape {_shape(a)}, which does not broadcast to h's shape {shape}"
        )
    problem = Problem(dtype, _a_dtype(a, dtype), shape, _normalise_axis(axis, len(shape)),
                      reverse, method)
    _check_state("h0", h0, problem)
    _check_state("grad_last", grad_last, problem)
    return problem


def as_array(xp, x, dtype):
    """``x`` as an array of ``xp`` with ``dtype``, copying only when the dtype differs.

    Python and NumPy scalars become 0-d arrays of ``xp``: a NumPy scalar (``cp.float32``
    *is* ``np.float32``) must reach a CuPy kernel as a device array, never by value.
    """
    if type(x) is not np.ndarray and isinstance(x, numbers.Number | np.generic):
        return xp.asarray(x, dtype=dtype)
    if x.dtype != dtype:
        return x.astype(dtype)
    return x


def pad_dims(xp, x, ndim):
    """``x`` with leading size-1 dimensions up to ``ndim`` (a view)."""
    return xp.reshape(x, (1,) * (ndim - x.ndim) + tuple(x.shape)) if x.ndim < ndim else x


def sum_to(xp, g, shape):
    """``g`` summed over the axes along which an operand of ``shape`` was broadcast to
    ``g``'s shape (left-padded with ones), then reshaped to ``shape``.

    ``xp`` is the namespace of ``g`` (NumPy, CuPy or ``dask.array``).
    """
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    padded = (1,) * (g.ndim - len(shape)) + shape
    axes = tuple(i for i, (n, m) in enumerate(zip(padded, g.shape, strict=True))
                 if n == 1 and m != 1)
    if axes:
        g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, shape)
