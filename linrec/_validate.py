"""Checks and normalisation shared by every entry point (``linrec.scan``,
``linrec.dask``, the references) and the backends."""

__all__ = ["sum_to"]


def sum_to(xp, g, shape):
    """``g`` summed over the axes along which an operand of ``shape`` was broadcast to
    ``g``'s shape (left-padded with ones), then reshaped to ``shape``.

    ``xp`` is the namespace of ``g`` (NumPy, CuPy or ``dask.array``).
    """
    shape = tuple(shape)
    padded = (1,) * (g.ndim - len(shape)) + shape
    axes = tuple(i for i, (n, m) in enumerate(zip(padded, g.shape, strict=True))
                 if n == 1 and m != 1)
    if axes:
        g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, shape)
