"""The public scan functions: validation, broadcasting, dtype rules and backend dispatch.

Everything here is independent of the compute backend. Inputs are checked by
``linrec._validate`` (which describes the problem once, as a ``Problem``), brought to a
canonical form (same number of dimensions, the compute dtypes, zero states where none
were given), then handed with the ``Problem`` to the backend that owns the arrays'
namespace: ``linrec.cpu`` for NumPy, ``linrec.cuda`` for CuPy. Backends never see T == 0
or an empty batch.

Before all that, plain small NumPy calls (one shape and dtype, C-contiguous, at most
``SMALL_MAX`` elements; ``linrec.cpu._direct`` lists the conditions) go straight to the
CPU's small-problem kernels, where the checks would lead them anyway.
"""

import numpy as np

from linrec import _layout, _namespace, _validate
from linrec.cpu.backend import SCHEDULES

__all__ = ["scan", "scan_vjp", "METHODS"]

METHODS = ("auto", *SCHEDULES)


_direct = None


def _direct_path():
    """``linrec.cpu._direct``, imported on the first NumPy call (it imports Numba, which
    ``import linrec`` does not) and then kept."""
    global _direct
    if _direct is None:
        from linrec.cpu import _direct as module

        _direct = module
    return _direct


def _address(x):
    return x.__array_interface__["data"][0] if isinstance(x, np.ndarray) else x.data.ptr


def _unalias(xp, out, x):
    """A copy of input ``x`` if writing ``out`` could overwrite it before it is read
    (``x`` being ``out`` itself, element for element, is safe: an in-place scan).

    Overlap is judged by memory bounds only (``may_share_memory``): an exact test costs
    time and memory per element (CuPy's ``shares_memory`` sorts a pointer array of both
    arrays), while a needless copy of an interleaved input is merely slower."""
    if not xp.may_share_memory(x, out):
        return x
    if x.shape == out.shape and x.strides == out.strides and \
            _address(x) == _address(out):
        return x
    return x.copy()


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
        Force a CPU schedule (a name in ``linrec.cpu.backend.SCHEDULES``; for tests and
        benchmarks); "auto" picks one from the shape and strides. Ignored by the CUDA
        backend.

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
    :func:`linrec.testing.scan_error_bound`). On x86 CPUs the kernels flush results
    below the smallest normal number to zero (subnormal inputs are used as they are), so
    a decaying state reaches 0 instead of staying subnormal, which x86 cores compute on
    very slowly; NumPy code outside the call keeps gradual underflow. On the CPU, wherever
    the sequential loop is
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
    if type(b) is np.ndarray:
        found = _direct_path().scan(a, b, h0, axis, reverse, return_last, out, method)
        if found is not None:
            return found
    return _scan_checked(a, b, h0, axis, reverse, return_last, out, method)


def _scan_checked(a, b, h0, axis, reverse, return_last, out, method):
    """:func:`scan` by the general path: every check, then the backend."""
    _validate.check_method(method, METHODS)
    _validate.check_given(a=a, b=b)
    reverse = _validate.check_flag("reverse", reverse)
    return_last = _validate.check_flag("return_last", return_last)
    xp = _namespace.namespace_of(a=a, b=b, h0=h0, out=out)
    a, b, h0 = (_validate.coerce(n, x) for n, x in (("a", a), ("b", b), ("h0", h0)))
    p = _validate.scan_problem(a, b, h0, axis=axis, reverse=reverse, method=method)
    ndim = len(p.shape)
    a = _validate.pad_dims(xp, _validate.as_array(xp, a, p.a_dtype), ndim)
    b = _validate.pad_dims(xp, _validate.as_array(xp, b, p.dtype), ndim)
    if h0 is not None:
        h0 = _validate.pad_dims(xp, _validate.as_array(xp, h0, p.dtype), len(p.batch))
    if out is not None:
        _check_out(xp, out, p.shape, p.dtype)
        a, b = _unalias(xp, out, a), _unalias(xp, out, b)
        if h0 is not None:
            h0 = _unalias(xp, out, h0)
    if p.empty:
        h = xp.empty(p.shape, dtype=p.dtype) if out is None else out
        h_last = xp.zeros(p.batch, dtype=p.dtype)
        if h0 is not None:
            h_last = h_last + h0
        return (h, h_last) if return_last else h
    h0 = p.zero_state(xp) if h0 is None else h0
    h, h_last = _namespace.backend_for(xp).forward(p, a, b, h0, out)
    return (h, h_last) if return_last else h


def _overlaps_itself(x):
    """Whether elements of ``x`` may share memory: False when, with the dimensions
    longer than 1 sorted by ``|stride|``, each stride clears the extent of the ones
    before it (sufficient for distinct elements; only ``as_strided`` views fail it
    without overlapping). Contiguous arrays pass at once."""
    if x.size == 0 or x.flags.c_contiguous or x.flags.f_contiguous:
        return False
    extent = x.itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(x.strides, x.shape) if n > 1):
        if stride < extent:
            return True
        extent += stride * (n - 1)
    return False


def _check_out(xp, out, shape, dtype, name="out"):
    if not isinstance(out, xp.ndarray):
        raise TypeError(
            f"{name} is a {type(out).__name__}; pass an array of the inputs' kind to "
            f"write into, e.g. {xp.__name__}.empty({tuple(shape)}, dtype={xp.__name__}."
            f"{dtype})"
        )
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype:
        raise ValueError(
            f"{name} has shape {tuple(out.shape)} and dtype {out.dtype}; it must have the "
            f"result's shape {tuple(shape)} and dtype {dtype}"
        )
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array")
    if _overlaps_itself(out):
        raise ValueError(
            f"{name} has strides {tuple(out.strides)} for shape {tuple(out.shape)}, "
            f"which may make its elements share memory (a stride 0, or an as_strided "
            f"view: with its dimensions sorted by stride, each stride must clear the "
            f"extent of those before it); pass an array whose elements are distinct, "
            f"e.g. a fresh one"
        )


def _vjp_out(xp, out, accumulate, a_shape, p):
    """``(out_a, out_b)`` from ``scan_vjp``'s ``out`` (each an array or None), checked:
    grad_a's shape is ``a_shape`` with dtype ``p.a_dtype``, grad_b's is ``h``'s."""
    if out is None:
        if accumulate:
            raise ValueError("accumulate=True adds into the arrays of out, but out is "
                             "None; pass out=(grad_a, grad_b) (either may be None)")
        return None, None
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise TypeError(f"out must be a pair (grad_a, grad_b), each an array or None; "
                        f"got {type(out).__name__} {_shape_of(out)}")
    out_a, out_b = out
    if out_a is not None:
        _check_out(xp, out_a, a_shape, p.a_dtype, "out[0] (grad_a)")
    if out_b is not None:
        _check_out(xp, out_b, p.shape, p.dtype, "out[1] (grad_b)")
    if out_a is not None and out_b is not None and xp.may_share_memory(out_a, out_b):
        raise ValueError("out[0] (grad_a) and out[1] (grad_b) share memory; pass two "
                         "separate arrays")
    return out_a, out_b


def _shape_of(x):
    return f"of length {len(x)}" if isinstance(x, tuple | list) else ""


def _unalias_vjp(xp, outs, grad_h, others):
    """The inputs, copied where an output in ``outs`` may overwrite them before they
    are read. Only ``grad_b`` being ``grad_h`` itself, element for element, is safe (the
    kernels read ``grad_h[t]`` before writing ``grad_b[t]``); ``h`` is read one step
    behind, so even an exact alias of it is copied."""
    given = [o for o in outs if o is not None]

    def fresh(x, exempt=None):
        if x is None or not isinstance(x, xp.ndarray):
            return x
        for o in given:
            if xp.may_share_memory(x, o) and not (
                    o is exempt and x.shape == o.shape and x.strides == o.strides and
                    _address(x) == _address(o)):
                return x.copy()
        return x

    return (fresh(grad_h, outs[1]),) + tuple(map(fresh, others))


def scan_vjp(grad_h, a, h, *, h0=None, axis=-1, reverse=False, grad_last=None,
             out=None, accumulate=False, method="auto"):
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
    out : pair ``(grad_a, grad_b)``, optional
        Arrays to write the gradients into (either may be None): ``grad_a`` with
        exactly the shape and dtype this function returns for it (``a``'s own shape;
        ``a``'s compute dtype, real for a real ``a``), ``grad_b`` with ``h``'s shape and
        dtype. They are returned in place of fresh arrays, so a training loop can reuse
        them every step. On the CPU the kernels write into them directly (no gradient
        array is allocated, except a small per-chain one for an ``a`` broadcast over
        batch axes). They must not share memory with each other or overlap themselves;
        inputs they overlap are copied first (only ``grad_b`` being ``grad_h`` itself,
        element for element, is computed in place).
    accumulate : bool
        Add the gradients to the arrays in ``out`` (``out += gradient``) instead of
        overwriting them, e.g. to sum a parameter's gradient over several uses. Needs
        ``out``.
    method : as in :func:`scan`.

    Returns
    -------
    grad_a : array, ``a``'s own shape (summed over the axes along which ``a`` was
        broadcast); a 0-d array for a scalar ``a``. Real if ``a`` is real. ``out[0]``
        when given.
    grad_b : array, shape and dtype of ``h`` (take ``.real`` if your ``b`` was real and
        ``h`` complex; sum over broadcast axes if ``b`` was broadcast). ``out[1]`` when
        given.
    grad_h0 : array, ``h0``'s shape, or ``h``'s shape without ``axis`` when ``h0`` is
        None (the gradient with respect to a zero initial state).

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`scan`; also a ``grad_h`` whose shape differs from ``h``'s, and
        ``grad_h``, ``a`` or ``h`` None (TypeError); ``out`` not a pair (TypeError), an
        array in it of the wrong shape or dtype, read-only, overlapping itself or the
        other one, or ``accumulate=True`` without ``out`` (ValueError).

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
    :func:`scan` hold for the gradients too, and so does its flush to zero on x86 CPUs
    (an adjoint decaying back from the last step the loss reads reaches 0).
    """
    if type(h) is np.ndarray:
        found = _direct_path().scan_vjp(grad_h, a, h, h0, axis, reverse, grad_last, out,
                                        accumulate, method)
        if found is not None:
            return found
    return _scan_vjp_checked(grad_h, a, h, h0, axis, reverse, grad_last, out,
                             accumulate, method)


def _scan_vjp_checked(grad_h, a, h, h0, axis, reverse, grad_last, out, accumulate,
                      method):
    """:func:`scan_vjp` by the general path: every check, then the backend."""
    _validate.check_method(method, METHODS)
    _validate.check_given(grad_h=grad_h, a=a, h=h)
    reverse = _validate.check_flag("reverse", reverse)
    accumulate = _validate.check_flag("accumulate", accumulate)
    pair = out if isinstance(out, tuple | list) and len(out) == 2 else (None, None)
    xp = _namespace.namespace_of(grad_h=grad_h, a=a, h=h, h0=h0, grad_last=grad_last,
                                 out_grad_a=pair[0], out_grad_b=pair[1])
    grad_h, a, h, h0, grad_last = (
        _validate.coerce(n, x) for n, x in (("grad_h", grad_h), ("a", a), ("h", h),
                                            ("h0", h0), ("grad_last", grad_last)))
    p = _validate.vjp_problem(grad_h, a, h, h0, grad_last, axis=axis, reverse=reverse,
                              method=method)
    a_shape = np.shape(a)
    out_a, out_b = _vjp_out(xp, out, accumulate, a_shape, p)
    a = _validate.pad_dims(xp, _validate.as_array(xp, a, p.a_dtype), len(p.shape))
    grad_h, h = _validate.as_array(xp, grad_h, p.dtype), _validate.as_array(xp, h, p.dtype)
    h0_arr, grad_last = (
        None if x is None else
        _validate.pad_dims(xp, _validate.as_array(xp, x, p.dtype), len(p.batch))
        for x in (h0, grad_last))
    if out_a is not None or out_b is not None:
        grad_h, a, h, h0_arr, grad_last = _unalias_vjp(xp, (out_a, out_b), grad_h,
                                                       (a, h, h0_arr, grad_last))
    ga_shape = p.shape[:p.axis] + (a.shape[p.axis],) + p.shape[p.axis + 1:]
    direct_a = None
    if out_a is not None and tuple(a.shape) == ga_shape:
        direct_a = _validate.pad_dims(xp, out_a, len(p.shape))
    if p.empty:
        grad_a = xp.zeros(ga_shape, dtype=a.dtype)
        grad_b = xp.zeros(p.shape, dtype=p.dtype)
        grad_h0 = xp.zeros(p.batch, dtype=p.dtype)
        if grad_last is not None:
            grad_h0 = grad_h0 + grad_last
        grad_b = _layout.write_into(out_b, grad_b, accumulate)
    else:
        zero = p.zero_state(xp) if h0_arr is None or grad_last is None else None
        grad_a, grad_b, grad_h0 = _namespace.backend_for(xp).backward(
            p, grad_h, a, h, zero if h0_arr is None else h0_arr,
            zero if grad_last is None else grad_last,
            grad_a=direct_a, grad_b=out_b, add=accumulate)
    if direct_a is not None and not p.empty:
        grad_a = out_a
    else:
        grad_a = _validate.sum_to(xp, grad_a, a_shape)
        grad_a = _layout.write_into(out_a, grad_a, accumulate)
    if h0 is None:
        return grad_a, grad_b, grad_h0
    if not _validate.is_complex(h0) and grad_h0.dtype.kind == "c":
        grad_h0 = grad_h0.real
    return grad_a, grad_b, _validate.sum_to(xp, grad_h0, np.shape(h0))
