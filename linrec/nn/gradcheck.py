"""Central finite-difference checks of hand-written gradients (use float64 layers).

The error reported for each parameter is ``max |numeric - analytic| / max |numeric|``
over its elements, so 1e-6 means six correct digits on the largest entry.
"""

import numpy as np

__all__ = ["numeric_gradient", "relative_error", "check_layer", "check_model"]


def numeric_gradient(loss, p, eps=1e-6):
    """d loss() / d p by central differences, perturbing ``p`` (a NumPy array) in place
    one element at a time (restored afterwards)."""
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + eps
        up = loss()
        p[i] = old - eps
        down = loss()
        p[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def relative_error(numeric, analytic):
    """``max |numeric - analytic| / max(max |numeric|, 1e-12)``."""
    scale = max(float(np.abs(numeric).max(initial=0.0)), 1e-12)
    return float(np.abs(numeric - analytic).max(initial=0.0)) / scale


def check_layer(layer, x, rng, eps=1e-6):
    """name -> relative error for every parameter of ``layer`` and for its input ("x"),
    with the loss ``sum(forward(x) * w)`` for a fixed random ``w``."""
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
    """name -> relative error for every parameter of ``model`` under its own loss."""
    _, grads = model.loss_and_grad(x, y)

    def loss():
        return model.loss(x, y)

    return {k: relative_error(numeric_gradient(loss, p, eps), grads[k])
            for k, p in model.parameters().items()}
