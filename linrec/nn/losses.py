"""Losses as ``(value, dL/dprediction)`` pairs, averaged over every element / sample."""

__all__ = ["mse", "mae", "cross_entropy", "pinball"]


def mse(xp, pred, target):
    """Mean squared error over all elements: ``(float, grad)`` with grad of pred's shape.

    ValueError when the shapes differ.
    """
    _same_shape(pred, target)
    diff = pred - target
    return float((diff * diff).mean()), diff * (2.0 / diff.size)


def mae(xp, pred, target):
    """Mean absolute error over all elements: ``(float, grad)`` (sign subgradient)."""
    _same_shape(pred, target)
    diff = pred - target
    return float(xp.abs(diff).mean()), xp.sign(diff) / diff.size


def pinball(xp, pred, target, quantiles):
    """Pinball (quantile) loss averaged over every element of ``pred``.

    ``pred`` has shape ``target.shape + (Q,)``: one prediction per quantile in
    ``quantiles`` (Q floats in (0, 1)), along the last axis. For the error
    ``u = target - pred`` of quantile q the loss is ``max(q * u, (q - 1) * u)``; its
    minimiser over a sample is the sample's q-quantile. Returns ``(float, grad)`` with
    grad of pred's shape (at ``u = 0`` the subgradient ``-q / size``).

    ValueError when the shapes disagree.
    """
    q = xp.asarray(quantiles, dtype=pred.dtype)
    if pred.shape != tuple(target.shape) + q.shape:
        raise ValueError(f"prediction has shape {pred.shape}; need target's shape "
                         f"{tuple(target.shape)} plus one axis of {q.size} quantiles")
    u = target[..., None] - pred
    below = (u < 0).astype(pred.dtype)
    loss = float(xp.maximum(q * u, (q - 1) * u).mean())
    return loss, (below - q) / u.size


def cross_entropy(xp, logits, labels):
    """Softmax cross-entropy: logits ``(batch, C)``, integer labels ``(batch,)`` in
    [0, C). Returns ``(float mean loss, dL/dlogits)``. ValueError on bad labels."""
    n, c = logits.shape
    if labels.shape != (n,):
        raise ValueError(f"labels have shape {labels.shape}; need ({n},) for {n} samples")
    if labels.dtype.kind not in "iu" or (
            n and (int(labels.min()) < 0 or int(labels.max()) >= c)):
        raise ValueError(f"labels must be integers in [0, {c})")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    logp = shifted - log_z
    rows = xp.arange(n)
    loss = -float(logp[rows, labels].mean())
    grad = xp.exp(logp)
    grad[rows, labels] -= 1.0
    return loss, grad / n


def _same_shape(pred, target):
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction has shape {pred.shape} but target has shape {target.shape}"
        )
