"""The small-problem path: one sequential kernel, straight from the checked problem.

A small scan (a (4, 256) float32 array takes about a microsecond to compute) would
spend most of its time in the general launcher (``linrec.cpu.backend``): a strided view
per operand, the schedule, per-chain views, the choice of a compiled variant, the thread
count. Problems of at most ``SMALL_MAX`` elements (``linrec._tuning``) with method
"auto" and the common layouts skip all that: each operand is reshaped (a view, never a
copy) to a C-contiguous 2-D ``(chains, time)`` or ``(time, chains)`` array and one
sequential ``nogil`` Numba kernel runs the whole problem on the calling thread. The
layouts taken here:

- the time axis first or last, and every array of the full shape (``b``, ``h``,
  ``grad_h``, the outputs) C-contiguous;
- ``a``, ``h0`` and ``grad_last`` C-contiguous and either of the full batch shape or
  broadcast along leading batch axes only (shape ``(1, ..., 1, *batch[k:])`` without
  the time axis, e.g. ``(C, 1)`` against ``(B, C, T)``, or a scalar): chain ``i`` then
  reads their row ``i % rows``. ``a`` may be constant in time (extent 1).

:func:`forward` and :func:`backward` return None for anything else, which the general
path then computes. The kernels run the recurrence and its adjoint step by step, in
order, as the general path's ``rows`` and ``channels`` schedules do (the sum over time
of the gradient of a constant ``a`` in float64 or complex128, rounded once);
``tests/test_small_path.py`` compares the two paths and the reference.
"""

import numpy as np

from linrec._tuning import SMALL_MAX
from linrec.cpu import _fpmode, backend
from linrec.cpu._jit import njit
from linrec.cpu._lanes import wide_zero
from linrec.cpu.kernels import as_grad

__all__ = ["forward", "backward", "forward_kernel", "backward_kernel"]


@njit(nogil=True)
def _forward_rows(a, b, h, h0, h_last, first, step):
    """Time-last ``(n, T)`` arrays: time innermost, four chains interleaved (one
    chain is a chain of dependent multiply-adds; four keep the core busy), then the
    rest one by one."""
    n, T = h.shape
    na, Ta = a.shape
    n0 = h0.shape[0]
    quads = n - n % 4
    for i in range(0, quads, 4):
        r0, r1, r2, r3 = i % na, (i + 1) % na, (i + 2) % na, (i + 3) % na
        s0, s1, s2, s3 = h0[i % n0], h0[(i + 1) % n0], h0[(i + 2) % n0], h0[(i + 3) % n0]
        for k in range(T):
            t = first + step * k
            ta = t if Ta > 1 else 0
            s0 = a[r0, ta] * s0 + b[i, t]
            s1 = a[r1, ta] * s1 + b[i + 1, t]
            s2 = a[r2, ta] * s2 + b[i + 2, t]
            s3 = a[r3, ta] * s3 + b[i + 3, t]
            h[i, t], h[i + 1, t], h[i + 2, t], h[i + 3, t] = s0, s1, s2, s3
        h_last[i], h_last[i + 1], h_last[i + 2], h_last[i + 3] = s0, s1, s2, s3
    for i in range(quads, n):
        r = i % na
        s = h0[i % n0]
        for k in range(T):
            t = first + step * k
            s = a[r, t if Ta > 1 else 0] * s + b[i, t]
            h[i, t] = s
        h_last[i] = s


@njit(nogil=True)
def _forward_columns(a, b, h, h0, h_last, first, step):
    """Time-first ``(T, n)`` arrays: the chains innermost (contiguous), their states
    kept in ``h_last``."""
    T, n = h.shape
    Ta, na = a.shape
    n0 = h0.shape[0]
    for i in range(n):
        h_last[i] = h0[i % n0]
    for k in range(T):
        t = first + step * k
        ta = t if Ta > 1 else 0
        for j in range(0, n, na):
            for r in range(na):
                i = j + r
                s = a[ta, r] * h_last[i] + b[t, i]
                h_last[i] = s
                h[t, i] = s


@njit(nogil=True)
def forward_kernel(a, b, h, h0, h_last, reverse, time_last):
    """``h`` and ``h_last`` of the chains of ``b`` (``h`` may be ``b``).

    With ``time_last``, ``b`` and ``h`` are ``(n, T)`` and ``a`` is ``(na, Ta)``;
    otherwise all three are transposed (``(T, n)``, ``(Ta, na)``). ``Ta`` is 1 or T;
    chain i reads ``a``'s row ``i % na`` and starts from ``h0[i % n0]`` (``h0`` is
    ``(n0,)``); ``h_last`` is ``(n,)``. Every array is C-contiguous (one compiled
    variant per dtype pair), so time is innermost in the first case, the chains in the
    other.
    """
    T = h.shape[1] if time_last else h.shape[0]
    first, step = (T - 1, -1) if reverse else (0, 1)
    mode = _fpmode.flush_to_zero()
    if time_last:
        _forward_rows(a, b, h, h0, h_last, first, step)
    else:
        _forward_columns(a, b, h, h0, h_last, first, step)
    _fpmode.restore_mode(mode)


@njit(nogil=True)
def _put(out, i, t, value, add):
    """``out[i, t] = value`` (``+=`` when ``add``), its real part for a real ``out``."""
    if add:
        out[i, t] += as_grad(value, out)
    else:
        out[i, t] = as_grad(value, out)


@njit(nogil=True)
def _adjoint_rows(grad_h, a, h, h0, grad_a, grad_b, carry, total, first, step,
                  accumulate, add):
    """Time-last ``(n, T)`` arrays: time innermost, two chains (i and i + 1)
    interleaved, then a last odd one. Written out: a helper taking arrays would cost a
    reference count per step."""
    n, T = h.shape
    na, Ta = a.shape
    n0 = h0.shape[0]
    for i in range(0, n - 1, 2):
        r, q = i % na, (i + 1) % na
        c, d = carry[i], carry[i + 1]
        z, y = total[i], total[i + 1]
        for k in range(T - 1, -1, -1):
            t = first + step * k
            ta = t if Ta > 1 else 0
            g = grad_h[i, t] + c
            e = grad_h[i + 1, t] + d
            if add:
                grad_b[i, t] += as_grad(g, grad_b)
                grad_b[i + 1, t] += as_grad(e, grad_b)
            else:
                grad_b[i, t] = as_grad(g, grad_b)
                grad_b[i + 1, t] = as_grad(e, grad_b)
            pg = g * np.conj(h[i, t - step] if k > 0 else h0[i % n0])
            pe = e * np.conj(h[i + 1, t - step] if k > 0 else h0[(i + 1) % n0])
            if accumulate:
                z += pg
                y += pe
            elif add:
                grad_a[i, t] += as_grad(pg, grad_a)
                grad_a[i + 1, t] += as_grad(pe, grad_a)
            else:
                grad_a[i, t] = as_grad(pg, grad_a)
                grad_a[i + 1, t] = as_grad(pe, grad_a)
            c = np.conj(a[r, ta]) * g
            d = np.conj(a[q, ta]) * e
        carry[i], total[i], carry[i + 1], total[i + 1] = c, z, d, y
    if n % 2:
        i = n - 1
        r = i % na
        c, z = carry[i], total[i]
        for k in range(T - 1, -1, -1):
            t = first + step * k
            g = grad_h[i, t] + c
            _put(grad_b, i, t, g, add)
            pg = g * np.conj(h[i, t - step] if k > 0 else h0[i % n0])
            if accumulate:
                z += pg
            else:
                _put(grad_a, i, t, pg, add)
            c = np.conj(a[r, t if Ta > 1 else 0]) * g
        carry[i], total[i] = c, z


@njit(nogil=True)
def _adjoint_columns(grad_h, a, h, h0, grad_a, grad_b, carry, total, first, step,
                     accumulate, add):
    """Time-first ``(T, n)`` arrays: the chains innermost (contiguous)."""
    T, n = h.shape
    Ta, na = a.shape
    n0 = h0.shape[0]
    for k in range(T - 1, -1, -1):
        t = first + step * k
        ta = t if Ta > 1 else 0
        for j in range(0, n, na):
            for r in range(na):
                i = j + r
                g = grad_h[t, i] + carry[i]
                _put(grad_b, t, i, g, add)
                pg = g * np.conj(h[t - step, i] if k > 0 else h0[i % n0])
                if accumulate:
                    total[i] += pg
                else:
                    _put(grad_a, t, i, pg, add)
                carry[i] = np.conj(a[ta, r]) * g


@njit(nogil=True)
def backward_kernel(grad_h, a, h, h0, grad_last, grad_a, grad_b, grad_h0, reverse, add,
                    time_last):
    """The fused adjoint of :func:`forward_kernel`, from its last step to its first.

    ``grad_h``, ``h`` and ``grad_b`` are shaped as ``h`` there, ``a`` and ``grad_a`` as
    ``a``; ``grad_last`` ``(ng,)`` is read as ``h0``; ``grad_h0`` is ``(n,)``. A
    ``grad_a`` of time extent 1 receives the sum over time, accumulated in float64 or
    complex128 and rounded once. ``add`` adds into ``grad_a`` and ``grad_b`` instead of
    writing them.
    """
    T = h.shape[1] if time_last else h.shape[0]
    n = grad_h0.shape[0]
    ng = grad_last.shape[0]
    accumulate = (grad_a.shape[1] if time_last else grad_a.shape[0]) != T
    first, step = (T - 1, -1) if reverse else (0, 1)
    carry = np.empty(n, grad_h0.dtype)
    total = np.full(n, wide_zero(grad_h0))
    for i in range(n):
        carry[i] = grad_last[i % ng]
    mode = _fpmode.flush_to_zero()
    if time_last:
        _adjoint_rows(grad_h, a, h, h0, grad_a, grad_b, carry, total, first, step,
                      accumulate, add)
    else:
        _adjoint_columns(grad_h, a, h, h0, grad_a, grad_b, carry, total, first, step,
                         accumulate, add)
    for i in range(n):
        grad_h0[i] = carry[i]
        if accumulate:
            if time_last:
                _put(grad_a, i, 0, total[i], add)
            else:
                _put(grad_a, 0, i, total[i], add)
    _fpmode.restore_mode(mode)


def _broadcasts_by_rows(shape, batch):
    """Whether an operand of batch shape ``shape`` is read right as row ``i % rows``
    by chain i: ``shape`` is ``batch`` broadcast along leading axes only."""
    if shape == batch:
        return True
    k = 0
    while k < len(shape) and shape[k] == 1:
        k += 1
    return shape[k:] == batch[len(batch) - len(shape) + k:]


def _as_chains(x, rows, T, time_last):
    """``x`` as a ``(rows, T)`` view, or ``(T, rows)`` unless ``time_last`` (-1 rows:
    as many as needed)."""
    return x.reshape(rows, T) if time_last else x.reshape(T, rows)


def _layout(problem, full, broadcast):
    """``(time_last, n, T)`` when the small path takes the problem, else None.

    ``full`` are the arrays of the full shape, ``broadcast`` ``(array, has time axis)``
    pairs for the others; every array must be C-contiguous, and the others must
    broadcast as the module docstring says."""
    p = problem
    shape, axis = p.shape, p.axis
    last = len(shape) - 1
    if p.method != "auto" or (axis != last and axis != 0):
        return None
    size = full[0].size
    if size > SMALL_MAX:
        return None
    for x in full:
        if x.shape != shape or not x.flags.c_contiguous:
            return None
    time_last = axis == last
    batch = shape[:-1] if time_last else shape[1:]
    for x, timed in broadcast:
        if not x.flags.c_contiguous:
            return None
        x_shape = x.shape
        if x_shape == (shape if timed else batch) or x.size == 1:
            continue
        x_batch = (x_shape[:-1] if time_last else x_shape[1:]) if timed else x_shape
        if not _broadcasts_by_rows(x_batch, batch):
            return None
    T = shape[axis]
    return time_last, size // T, T


def _state(x):
    """A batch-only operand as a ``(rows,)`` view."""
    return x if x.ndim == 1 else x.reshape(-1)


def forward(problem, a, b, h0, out):
    """``(h, h_last)`` as ``linrec.cpu.backend.forward`` computes them, or None when
    the small path does not take the problem (arguments as there)."""
    h = out
    full = (b,) if h is None else (b, h)
    layout = _layout(problem, full, ((a, True), (h0, False)))
    if layout is None:
        return None
    time_last, n, T = layout
    p = problem
    if h is None:
        h = np.empty(p.shape, p.dtype)
    h_last = np.empty(p.batch, p.dtype)
    forward_kernel(_as_chains(a, -1, a.shape[p.axis], time_last),
                   _as_chains(b, n, T, time_last), _as_chains(h, n, T, time_last),
                   _state(h0), _state(h_last), p.reverse, time_last)
    return h, h_last


def backward(problem, grad_h, a, h, h0, grad_last, grad_a, grad_b, add):
    """``(grad_a, grad_b, grad_h0)`` as ``linrec.cpu.backend.backward`` computes them,
    or None when the small path does not take the problem (arguments as there)."""
    p = problem
    full = (h, grad_h) if grad_b is None else (h, grad_h, grad_b)
    broadcast = ((a, True), (h0, False), (grad_last, False))
    if grad_a is not None:
        broadcast += ((grad_a, True),)
    layout = _layout(p, full, broadcast)
    if layout is None:
        return None
    time_last, n, T = layout
    Ta = a.shape[p.axis]
    ga_shape = p.shape[:p.axis] + (Ta,) + p.shape[p.axis + 1:]
    grad_a = backend.output(grad_a, h, ga_shape, a.dtype, add)
    grad_b = backend.output(grad_b, h, p.shape, p.dtype, add)
    grad_h0 = np.empty(p.batch, p.dtype)
    backward_kernel(
        _as_chains(grad_h, n, T, time_last), _as_chains(a, -1, Ta, time_last),
        _as_chains(h, n, T, time_last), _state(h0), _state(grad_last),
        _as_chains(grad_a, n, Ta, time_last), _as_chains(grad_b, n, T, time_last),
        _state(grad_h0), p.reverse, add, time_last)
    return grad_a, grad_b, grad_h0
