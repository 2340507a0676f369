"""Element strides of the shared ``(*outer, R, T, C)`` views (``linrec._layout``), in
the form the CUDA kernels take them."""

__all__ = ["element_strides"]


def element_strides(view):
    """Element strides of a view, 0 along size-1 dims (what the kernels take).

    Raises
    ------
    ValueError
        A stride that is not a multiple of the item size (a byte-offset view).
    """
    out = []
    for n, s in zip(view.shape, view.strides, strict=True):
        if s % view.itemsize:
            raise ValueError(
                f"an array has a stride of {s} bytes, not a multiple of its item size "
                f"{view.itemsize}; pass a copy, e.g. x.copy()"
            )
        out.append(0 if n == 1 else s // view.itemsize)
    return tuple(out)
