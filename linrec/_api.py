"""The public scan functions: validation, broadcasting, dtype rules and backend dispatch.

Everything here is independent of the compute backend. Inputs are checked and brought to a
canonical form (same number of dimensions, the compute dtypes, a non-negative axis), then
handed to the backend that owns the arrays' namespace: ``linrec.cpu`` for NumPy,
``linrec.cuda`` for CuPy. Backends never see T == 0 or an empty batch.
"""

import numbers

import numpy as np

from linrec import _namespace

__all__ = ["scan", "scan_vjp", "METHODS"]

METHODS = ("auto", "rows", "channels", "chunked")

_SUPPORTED = (np.float32, np.float64, np.complex64, np.complex128)


def _coerce(name, x):
    """Lists and tuples become NumPy arrays; arrays and scalars pass through."""
    if not isinstance(x, list | tuple):
        return x
    try:
        return np.asarray(x)
    except ValueError as error:
        raise ValueError(
            f"{name} is a {type(x).__name__} that is not a rectangular array of numbers "
            f"({error}); give every row the same length, or pass a NumPy array"
        ) from None


def _check_given(**named):
    """TypeError for a required argument that is None."""
    for name, x in named.items():
        if x is None:
            raise TypeError(f"{name} is None; it is required: pass an array")


def _check_flag(name, x):
    """``x`` as a bool; TypeError unless it is True or False (Python or NumPy)."""
    if not isinstance(x, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {x!r}")
    return bool(x)


def _dtype_of(name, x):
    """The dtype ``x`` takes part in promotion with (a Python scalar stays weak)."""
    if isinstance(x, bool | np.bool_):
        raise TypeError(
            f"{name} is a bool; linrec computes in floating point: pass a float instead"
        )
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic):
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
            f"{name} has dtype {dtype}; linrec supports float32, float64, complex64 and "
            f"complex128: convert it first, e.g. {name}.astype(np.float32)"
        )
    return dtype


def _result_dtype(named):
    """NumPy's promotion over (name, value) pairs, restricted to the supported dtypes."""
    dtype = np.result_type(*[_dtype_of(name, x) for name, x in named if x is not None])
    if dtype.type not in _SUPPORTED:
        dtype = np.result_type(dtype, np.float32)
    if dtype.type not in _SUPPORTED:
        raise TypeError(f"inputs promote to {dtype}, which linrec does not support")
    return dtype


def _real_dtype(dtype):
    return np.finfo(dtype).dtype


def _is_complex(x):
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic):
        return isinstance(x, complex)
    return x.dtype.kind == "c"


def _as_array(xp, name, x, dtype):
    """``x`` as an array of ``xp`` with ``dtype``, copying only when the dtype differs.

    Python and NumPy scalars become 0-d arrays of ``xp``: a NumPy scalar (``cp.float32``
    *is* ``np.float32``) must reach a CuPy kernel as a device array, never by value.
    """
    if isinstance(x, numbers.Number | np.generic):
        return xp.asarray(x, dtype=dtype)
    if x.dtype != dtype:
        return x.astype(dtype)
    return x


def _broadcast_shape(named_shapes):
    try:
        return np.broadcast_shapes(*[s for _, s in named_shapes])
    except ValueError:
        desc = ", ".join(f"{n} {tuple(s)}" for n, s in named_shapes)
        raise ValueError(
            f"shapes do not broadcast: {desc}; give a the shape of b, or size 1 on the "
            f"axes where it is constant (e.g. (C, 1) for one coefficient per channel)"
        ) from None


def _normalise_axis(axis, ndim, name="axis"):
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(
            f"{name}={axis} is out of range for arrays with {ndim} dimension(s); "
            f"use an axis in [{-ndim}, {ndim - 1}]"
        )
    return int(axis) % ndim


def _pad_dims(xp, x, ndim):
    return xp.reshape(x, (1,) * (ndim - x.ndim) + tuple(x.shape)) if x.ndim < ndim else x


def _batch_shape(shape, axis):
    return tuple(shape[:axis]) + tuple(shape[axis + 1:])


def _check_state(xp, name, x, batch, ndim, dtype):
    """An h0-like argument, checked against the batch shape (b's shape less the axis)."""
    if x is None:
        return None
    if getattr(x, "ndim", 0) == ndim and ndim > 0:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)} with as many dimensions as b; it must "
            f"have b's shape without the scan axis, {batch}: drop the axis, e.g. "
            f"{name}.squeeze(axis)"
        )
    shape = tuple(getattr(x, "shape", ()))
    try:
        if np.broadcast_shapes(shape, batch) != batch:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{name} has shape {shape}, which does not broadcast to b's shape without "
            f"the scan axis, {batch}"
        ) from None
    return _pad_dims(xp, _as_array(xp, name, x, dtype), len(batch))


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")


def _reduce_to(xp, g, shape):
    """Sum ``g`` over the axes where ``shape`` (left-padded) is 1 and ``g`` is not."""
    shape = tuple(shape)
    padded = (1,) * (g.ndim - len(shape)) + shape
    axes = tuple(i for i, (n, m) in enumerate(zip(padded, g.shape)) if n == 1 and m != 1)
    if axes:
        g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, shape)


def _address(x):
    return x.__array_interface__["data"][0] if isinstance(x, np.ndarray) else x.data.ptr


def _unalias(xp, out, x):
    """A copy of input ``x`` if writing ``out`` could overwrite it before it is read
    (``x`` being ``out`` itself, element for element, is safe: an in-place scan).

    Overlap is judged by memory bounds only (``may_share_memory``): an exact test costs
    time and memory per element (CuPy's ``shares_memory`` sorts a pointer array of both
    arrays), while a needless copy of an interleaved input is merely slower."""
    if x.shape == out.shape and x.strides == out.strides and \
            _address(x) == _address(out):
        return x
    return x.copy() if xp.may_share_memory(x, out) else x


def scan(a, b, *, h0=None, axis=-1, reverse=False, return_last=False, out=None,
         method="auto"):
    """Diagonal linear recurrence along one axis, computed with parallel scans.

    forward (default): ``h[t] = a[t] * h[t-1] + b[t]``, with ``h[-1] = h0``;
    ``reverse=True``:  ``h[t] = a[t] * h[t+1] + b[t]``, with ``h[T] = h0``.

    Parameters
    ----------
    a : array_like or scalar
        Coefficients. Broadcasts against ``b`` with NumPy's rules: a Python scalar, a
        per-channel constant such as shape ``(C, 1)`` for ``b`` of shape ``(C, T)``, or a
        full array. A broadcast ``a`` is read with stride 0, never materialised. Arrays
        are NumPy or CuPy arrays (lists and tuples count as NumPy arrays); scalars are
        Python ``int``, ``float`` or ``complex`` or NumPy scalars.
    b : array
        Inputs, at least one dimension; the scan runs along ``axis``. ``b`` may also
        broadcast against ``a`` (it is then read with stride 0). NumPy masked arrays are
        rejected, for any argument: their mask would be ignored. Fill the masked
        entries first (``b.filled(0.0)`` makes a masked step add nothing).
    h0 : array_like or scalar, optional
        Initial state: the broadcast shape of ``a`` and ``b`` without ``axis`` (or
        anything that broadcasts to it). Zero when omitted.
    axis : int
        The time axis; negative values count from the end.
    reverse : bool
        Run the recurrence from the last step to the first.
    return_last : bool
        Also return the final state (``h`` at the last step taken; ``h0`` when T == 0).
    out : array, optional
        Array to write ``h`` into: the broadcast shape and the result dtype exactly. It
        may be ``b`` itself (an in-place scan); inputs that overlap it otherwise are
        copied first. Its own elements must not overlap: an ``out`` with a stride 0 on a
        dimension longer than 1, or an ``as_strided`` view whose strides do not keep its
        elements apart (checked conservatively, with the dimensions sorted by stride), is
        rejected.
    method : {"auto", "rows", "channels", "chunked"}
        Force a CPU strategy (for tests and benchmarks); "auto" picks one from the shape
        and strides. Ignored by the CUDA backend.

    Returns
    -------
    h : array, the broadcast shape of ``a`` and ``b``
        Same kind of array as the inputs (NumPy in, NumPy out; CuPy in, CuPy out). Its
        dtype follows NumPy's promotion of ``a``, ``b`` and ``h0`` (Python scalars are
        weak, so ``scan(0.9, b32)`` is float32): float32, float64, complex64 or
        complex128. A real ``a`` with a complex ``b`` stays real in the kernel.
    h_last : array, shape of ``h`` without ``axis``
        Only when ``return_last=True``.

    Raises
    ------
    TypeError
        Integer, bool, float16 or other unsupported dtypes (convert with ``.astype``); a
        mix of NumPy and CuPy arrays or arrays on different GPUs; other array types,
        masked arrays, scalars such as ``Fraction`` (convert with ``float``); ``a`` or
        ``b`` None; ``out`` that is not an array; ``reverse`` or ``return_last`` not a
        bool.
    ValueError
        Shapes that do not broadcast; ``b`` with no dimension; ragged lists; ``h0`` of
        the wrong shape; ``out`` of the wrong shape or dtype, read-only or overlapping
        itself; an unknown ``method``.
    numpy.exceptions.AxisError
        ``axis`` out of range (a subclass of ValueError).

    Notes
    -----
    NaN and inf propagate as IEEE arithmetic says: a NaN at step t poisons every later
    step it reaches (``0 * nan`` is nan, so even ``a[t] == 0`` does not stop it), and
    ``|h|`` overflows to inf when the partial products of ``|a|`` grow without bound.
    The parallel algorithms reassociate the products of ``a``, so results may differ from
    a sequential loop by a few units in the last place (within
    :func:`linrec.testing.scan_error_bound`). On the CPU, wherever the sequential loop is
    finite so is every ``method``'s result (and :func:`linrec.dask.scan`'s): the
    ``chunked`` schedule carries a state across a chunk as ``A * state + B`` (``A`` the
    product of ``a`` over the chunk), but uses ``B`` alone for a state of exactly 0, even
    where ``A`` overflowed to inf, and replays the chunk from the state where a finite
    state would become inf or NaN. Where ``A`` underflows (below the smallest normal
    number ``tiny``), the part of the state it carries is rounded at that scale: an
    absolute error up to about ``|state| * T * u * tiny`` (``u`` the unit roundoff),
    times any later growth of the products of ``|a|`` in the chunk; that is within the
    bound above while ``|state| < 2 / (u * T)``. On the GPU (CuPy arrays) a state that is
    exactly 0 because ``h0`` and ``b`` are zero up to some step is carried exactly in the
    same way, however far the products of ``a`` overflow, but nothing is replayed: where
    the product of ``a`` over a span of steps that the kernels combine overflows (or is
    inf times an underflowed 0) and the state entering the span is finite and nonzero,
    the result may be inf or NaN where the sequential loop stays finite (see the CUDA
    backend's documentation).
    """
    _check_method(method)
    _check_given(a=a, b=b)
    reverse, return_last = _check_flag("reverse", reverse), _check_flag("return_last",
                                                                        return_last)
    xp = _namespace.namespace_of(a=a, b=b, h0=h0, out=out)
    a, b, h0 = _coerce("a", a), _coerce("b", b), _coerce("h0", h0)
    b_dtype = _dtype_of("b", b)
    if isinstance(b_dtype, numbers.Number) or getattr(b, "ndim", 0) == 0:
        raise ValueError("b must have at least one dimension: the scan axis")
    dtype = _result_dtype([("a", a), ("b", b), ("h0", h0)])
    a_dtype = dtype if _is_complex(a) else _real_dtype(dtype)
    a = _as_array(xp, "a", a, a_dtype)
    b = _as_array(xp, "b", b, dtype)
    shape = _broadcast_shape([("a", a.shape), ("b", b.shape)])
    ndim = len(shape)
    axis = _normalise_axis(axis, ndim)
    a, b = _pad_dims(xp, a, ndim), _pad_dims(xp, b, ndim)
    batch = _batch_shape(shape, axis)
    h0 = _check_state(xp, "h0", h0, batch, ndim, dtype)
    if out is not None:
        _check_out(xp, out, shape, dtype)
        a, b = _unalias(xp, out, a), _unalias(xp, out, b)
        if h0 is not None:
            h0 = _unalias(xp, out, h0)
    if shape[axis] == 0 or 0 in batch:
        h = xp.empty(shape, dtype=dtype) if out is None else out
        h_last = xp.zeros(batch, dtype=dtype)
        if h0 is not None:
            h_last = h_last + h0
        return (h, h_last) if return_last else h
    backend = _namespace.backend_for(xp)
    h, h_last = backend.forward(a, b, h0, out, axis=axis, reverse=reverse, method=method)
    return (h, h_last) if return_last else h


def _overlaps_itself(x):
    """Whether elements of ``x`` may share memory: False when, with the dimensions
    longer than 1 sorted by ``|stride|``, each stride clears the extent of the ones
    before it (sufficient for distinct elements; only ``as_strided`` views fail it
    without overlapping)."""
    if x.size == 0:
        return False
    extent = x.itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(x.strides, x.shape) if n > 1):
        if stride < extent:
            return True
        extent += stride * (n - 1)
    return False


def _check_out(xp, out, shape, dtype):
    if not isinstance(out, xp.ndarray):
        raise TypeError(
            f"out is a {type(out).__name__}; pass an array of the inputs' kind to write "
            f"into, e.g. out={xp.__name__}.empty({tuple(shape)}, dtype={xp.__name__}."
            f"{dtype})"
        )
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype:
        raise ValueError(
            f"out has shape {tuple(out.shape)} and dtype {out.dtype}; it must have the "
            f"result's shape {tuple(shape)} and dtype {dtype}"
        )
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError("out is read-only; pass a writeable array")
    if _overlaps_itself(out):
        raise ValueError(
            f"out has strides {tuple(out.strides)} for shape {tuple(out.shape)}, which "
            f"may make its elements share memory (a stride 0, or an as_strided view: "
            f"with its dimensions sorted by stride, each stride must clear the extent "
            f"of those before it); pass an array whose elements are distinct, e.g. a "
            f"fresh one"
        )


def scan_vjp(grad_h, a, h, *, h0=None, axis=-1, reverse=False, grad_last=None,
             method="auto"):
    """Gradients of a loss through :func:`scan` (the vector-Jacobian product).

    Given ``h = scan(a, b, h0=h0, axis=axis, reverse=reverse)`` and ``grad_h = dL/dh``
    (plus ``grad_last = dL/dh_last`` if the final state was used), returns the gradients
    of L with respect to ``a``, ``b`` and ``h0``. For the forward direction:

        g[t] = grad_h[t] + conj(a[t+1]) * g[t+1]     (g[T-1] = grad_h[T-1] + grad_last)
        grad_b[t] = g[t];  grad_a[t] = g[t] * conj(h[t-1]);  grad_h0 = conj(a[0]) * g[0]

    computed in one fused reverse pass; the reverse direction mirrors it.

    Complex gradients follow the convention ``dL/dRe(z) + 1j * dL/dIm(z)`` (the one
    gradient descent uses: ``z -= lr * grad``), which puts ``conj`` where shown above.
    A real ``a`` (or ``h0``) gets the real part of its gradient.

    Parameters
    ----------
    grad_h : array
        ``dL/dh``, exactly the shape of ``h``.
    a : array_like or scalar
        The coefficients given to :func:`scan` (same broadcasting rules).
    h : array
        The output of :func:`scan`.
    h0 : array_like or scalar, optional
        The initial state given to :func:`scan`.
    axis, reverse : as given to :func:`scan`.
    grad_last : array_like or scalar, optional
        ``dL/dh_last``, shape of ``h`` without ``axis`` (broadcasting allowed).
    method : as in :func:`scan`.

    Returns
    -------
    grad_a : array, ``a``'s own shape (summed over the axes along which ``a`` was
        broadcast); a 0-d array for a scalar ``a``. Real if ``a`` is real.
    grad_b : array, shape and dtype of ``h`` (take ``.real`` if your ``b`` was real and
        ``h`` complex; sum over broadcast axes if ``b`` was broadcast).
    grad_h0 : array, ``h0``'s shape, or ``h``'s shape without ``axis`` when ``h0`` is
        None (the gradient with respect to a zero initial state).

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`scan`; also a ``grad_h`` whose shape differs from ``h``'s, and
        ``grad_h``, ``a`` or ``h`` None (TypeError).

    Notes
    -----
    For an ``a`` constant in time (extent 1 along ``axis``: a scalar, or ``(C, 1)`` for
    ``h`` of shape ``(C, T)``), ``grad_a`` sums the T terms ``g[t] * conj(h[t-1])``. On
    the CPU every ``method`` accumulates that sum in float64 (complex128) and rounds it
    once, so the summation adds at most ``(u + T * 2**-53) * sum_t |g[t] h[t-1]|`` to the
    error of the terms, with ``u`` the unit roundoff of the dtype (``2**-24`` for float32
    and complex64): no error grows like ``T * u``. Each term is within ``sqrt(5) * u``
    (``u`` for real ``a``) of the product of the computed ``g`` and ``h``; ``g`` is a
    scan of ``grad_h`` and carries that scan's error
    (:func:`linrec.testing.scan_error_bound`). The sum over broadcast batch axes (a
    scalar ``a``) is NumPy's pairwise sum in ``a``'s dtype. The overflow guarantees of
    :func:`scan` hold for the gradients too.
    """
    _check_method(method)
    _check_given(grad_h=grad_h, a=a, h=h)
    reverse = _check_flag("reverse", reverse)
    xp = _namespace.namespace_of(grad_h=grad_h, a=a, h=h, h0=h0, grad_last=grad_last)
    grad_h, a, h = _coerce("grad_h", grad_h), _coerce("a", a), _coerce("h", h)
    h0, grad_last = _coerce("h0", h0), _coerce("grad_last", grad_last)
    for name, x in (("grad_h", grad_h), ("h", h)):
        if isinstance(_dtype_of(name, x), numbers.Number) or x.ndim == 0:
            raise ValueError(f"{name} must be an array with at least one dimension")
    if tuple(grad_h.shape) != tuple(h.shape):
        raise ValueError(
            f"grad_h has shape {tuple(grad_h.shape)} but h has shape {tuple(h.shape)}; "
            f"grad_h must be dL/dh, exactly h's shape"
        )
    dtype = _result_dtype([("grad_h", grad_h), ("a", a), ("h", h), ("h0", h0),
                           ("grad_last", grad_last)])
    a_shape = tuple(getattr(a, "shape", ()))
    a_complex = _is_complex(a)
    h0_shape = None if h0 is None else tuple(getattr(h0, "shape", ()))
    h0_complex = h0 is not None and _is_complex(h0)
    a = _as_array(xp, "a", a, dtype if a_complex else _real_dtype(dtype))
    shape = tuple(h.shape)
    if _broadcast_shape([("a", a.shape), ("h", shape)]) != shape:
        raise ValueError(
            f"a has shape {a_shape}, which does not broadcast to h's shape {shape}"
        )
    ndim = len(shape)
    axis = _normalise_axis(axis, ndim)
    a = _pad_dims(xp, a, ndim)
    batch = _batch_shape(shape, axis)
    grad_h = _as_array(xp, "grad_h", grad_h, dtype)
    h = _as_array(xp, "h", h, dtype)
    h0_arr = _check_state(xp, "h0", h0, batch, ndim, dtype)
    grad_last = _check_state(xp, "grad_last", grad_last, batch, ndim, dtype)
    if shape[axis] == 0 or 0 in batch:
        grad_a = xp.zeros(a.shape, dtype=a.dtype)
        grad_b = xp.zeros(shape, dtype=dtype)
        grad_h0 = xp.zeros(batch, dtype=dtype)
        if grad_last is not None:
            grad_h0 = grad_h0 + grad_last
    else:
        backend = _namespace.backend_for(xp)
        grad_a, grad_b, grad_h0 = backend.backward(
            grad_h, a, h, h0_arr, grad_last, axis=axis, reverse=reverse, method=method)
    grad_a = _reduce_to(xp, grad_a, a_shape)
    if h0 is None:
        return grad_a, grad_b, grad_h0
    if not h0_complex and grad_h0.dtype.kind == "c":
        grad_h0 = grad_h0.real
    return grad_a, grad_b, _reduce_to(xp, grad_h0, h0_shape)
