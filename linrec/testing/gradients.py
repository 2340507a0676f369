"""Gradient checking by central finite differences, real and complex.

The convention is the one :func:`linrec.scan_vjp` uses: the gradient of a real loss L
with respect to a complex input ``z`` is ``dL/dRe(z) + 1j * dL/dIm(z)``. For a real
input only the real part of the given gradient is checked.

:func:`check_gradients` checks a function ``fn(*inputs) -> (loss, grads)``;
:func:`check_layer` and :func:`check_model` check the layers and models of
:mod:`linrec.nn` (anything with ``forward`` / ``backward`` / ``parameters``), whose
parameters they perturb in place. All of them take their differences from one
:func:`numeric_gradient`-style central difference.
"""

import numpy as np

from linrec._host import to_numpy, wide

__all__ = ["check_gradients", "check_layer", "check_model", "numeric_gradient",
           "relative_error"]

_SHOWN = 5


def _wide_input(x):
    """Float inputs as float64 / complex128 NumPy copies; others unchanged."""
    if isinstance(x, float | complex | np.floating | np.complexfloating) or (
            hasattr(x, "dtype") and np.dtype(x.dtype).kind in "fc"):
        return wide(x)
    return x


def _real_scalar(value):
    value = to_numpy(value)
    if value.size != 1 or value.dtype.kind not in "fiu":
        raise TypeError(
            f"fn must return (loss, grads) with a real scalar loss; got a loss of dtype "
            f"{value.dtype} and shape {value.shape}")
    return float(value.reshape(()))


def _call(fn, inputs):
    """``fn`` on copies of ``inputs``, so that ``fn`` cannot change the point checked."""
    return fn(*[x.copy() if isinstance(x, np.ndarray) else x for x in inputs])


def _loss(fn, inputs):
    return _real_scalar(_call(fn, inputs)[0])


def _central_difference(loss, x, index, direction, step):
    """``d loss() / d x[index]`` along ``direction`` (1 or 1j) by a central difference of
    ``step``, perturbing ``x`` in place (restored afterwards)."""
    old = x[index]
    values = []
    for sign in (1.0, -1.0):
        x[index] = old + sign * step * direction
        values.append(loss())
    x[index] = old
    return (values[0] - values[1]) / (2 * step)


def _finite_difference(fn, inputs, i, index, direction, eps):
    """Central difference of the loss along ``direction`` (1 or 1j) at element ``index``
    of input ``i`` (a float64 / complex128 copy, so it may be perturbed in place)."""
    x = inputs[i]
    step = eps * max(1.0, abs(x[index]))
    return _central_difference(lambda: _loss(fn, inputs), x, index, direction, step)


def _checked_indices(shape, max_elements):
    size = int(np.prod(shape))
    flat = np.arange(size)
    if size > max_elements:
        flat = np.sort(np.random.default_rng(0).choice(size, max_elements, replace=False))
    return [np.unravel_index(int(j), shape) for j in flat]


def _mismatches(fn, inputs, i, grad, eps, atol, rtol, max_elements):
    """Descriptions of the elements of input ``i`` where ``grad`` fails the check."""
    x = inputs[i]
    directions = (1.0, 1j) if x.dtype.kind == "c" else (1.0,)
    found = []
    for index in _checked_indices(x.shape, max_elements):
        for direction in directions:
            fd = _finite_difference(fn, inputs, i, index, direction, eps)
            g = grad[index].real if direction == 1.0 else grad[index].imag
            if not abs(fd - g) <= atol + rtol * abs(fd):
                part = "real" if direction == 1.0 else "imaginary"
                where = tuple(int(k) for k in index)
                found.append(f"input {i}, element {where}, {part} part: gradient {g!r}, "
                             f"finite difference {fd!r}")
    return found


def check_gradients(fn, inputs, *, eps=1e-6, rtol=1e-5, atol=1e-8, max_elements=64):
    """Compare the gradients ``fn`` returns with central finite differences of its loss.

    Parameters
    ----------
    fn : callable
        ``fn(*inputs) -> (loss, grads)``: ``loss`` a real scalar, ``grads`` a sequence
        with one entry per input, the gradient of ``loss`` with respect to it (its shape,
        in the convention ``dL/dRe + 1j * dL/dIm`` for complex inputs), or ``None`` for
        an input not to check. Typically a forward pass with :func:`linrec.scan` and a
        backward pass with :func:`linrec.scan_vjp`.
    inputs : sequence
        The point to check at. Float and complex arrays and scalars (NumPy or CuPy) are
        passed to ``fn`` as float64 / complex128 NumPy arrays, so that the finite
        differences are accurate; anything else is passed through unchanged.
    eps : float
        Relative step: element ``x`` moves by ``eps * max(1, |x|)`` each way.
    rtol, atol : float
        The check per element is ``|fd - g| <= atol * max(1, |loss|) + rtol * |fd|``.
    max_elements : int
        Check at most this many elements per input (a fixed pseudo-random subset).

    Raises
    ------
    AssertionError
        ``grads`` has the wrong length or a gradient the wrong shape, or a gradient
        differs from the finite differences (the message names input, element, both
        values and how many elements failed).
    TypeError
        The loss is not a real scalar.
    """
    inputs = [_wide_input(x) for x in inputs]
    loss, grads = _call(fn, inputs)
    grads = list(grads)
    if len(grads) != len(inputs):
        raise AssertionError(
            f"fn returned {len(grads)} gradients for {len(inputs)} inputs")
    scale = max(1.0, abs(_real_scalar(loss)))
    failures = []
    for i, (x, grad) in enumerate(zip(inputs, grads, strict=True)):
        if grad is None:
            continue
        grad = to_numpy(grad)
        if grad.shape != x.shape:
            raise AssertionError(
                f"gradient {i} has shape {grad.shape}; input {i} has shape {x.shape} "
                f"(sum over the axes along which the input was broadcast)")
        failures += _mismatches(fn, inputs, i, grad, eps, atol * scale, rtol,
                                max_elements)
    if failures:
        shown = "\n".join(failures[:_SHOWN])
        raise AssertionError(
            f"{len(failures)} gradient element(s) differ from central finite differences "
            f"(rtol={rtol}, atol={atol}):\n{shown}")


def numeric_gradient(loss, p, eps=1e-6):
    """``d loss() / d p`` by central differences of step ``eps``, perturbing the real
    NumPy array ``p`` in place one element at a time (restored afterwards)."""
    g = np.zeros_like(p)
    for index in np.ndindex(p.shape):
        g[index] = _central_difference(loss, p, index, 1.0, eps)
    return g


def relative_error(numeric, analytic):
    """``max |numeric - analytic| / max(max |numeric|, 1e-12)``: 1e-6 means six correct
    digits on the largest entry."""
    scale = max(float(np.abs(numeric).max(initial=0.0)), 1e-12)
    return float(np.abs(numeric - analytic).max(initial=0.0)) / scale


def check_layer(layer, x, rng, eps=1e-6):
    """name -> :func:`relative_error` for every parameter of ``layer`` and for its input
    ("x"), with the loss ``sum(forward(x) * w)`` for a fixed random ``w``.

    ``layer`` has ``forward(x) -> (y, cache)``, ``backward(dy, cache) -> (dx, grads)``
    and ``parameters()`` (name -> NumPy array); use float64 parameters and ``x``.
    """
    y, cache = layer.forward(x)
    w = rng.standard_normal(y.shape)
    dx, grads = layer.backward(w, cache)

    def loss():
        return float((layer.forward(x)[0] * w).sum())

    errors = {k: relative_error(numeric_gradient(loss, p, eps), grads[k])
              for k, p in layer.parameters().items()}
    errors["x"] = relative_error(numeric_gradient(loss, x, eps), dx)
    return errors


def check_model(model, x, y, eps=1e-6):
    """name -> :func:`relative_error` for every parameter of ``model`` under its own loss
    (``model.loss(x, y)`` and ``model.loss_and_grad(x, y)``; float64 parameters)."""
    _, grads = model.loss_and_grad(x, y)

    def loss():
        return model.loss(x, y)

    return {k: relative_error(numeric_gradient(loss, p, eps), grads[k])
            for k, p in model.parameters().items()}
