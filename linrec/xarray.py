"""Linear recurrences on xarray DataArrays, along a named dimension.

NumPy-backed DataArrays go to :func:`linrec.scan`; Dask-backed ones (chunked in any way,
including along the scanned dimension) go to :func:`linrec.dask.scan` and stay lazy.
Importing this module imports xarray; ``import linrec`` does not.
"""

import numbers

import numpy as np
import xarray as xr

import linrec
from linrec import _namespace, _validate

__all__ = ["scan"]


def _is_dask(x):
    return type(x).__module__.split(".")[0] == "dask"


def _scan_last_axis(b, a, h0, *, a_has_time, reverse):
    """``scan`` along the last axis of ``b``; ``a`` gets a time axis if it has none, and
    ``b`` is broadcast (stride 0) over the batch dimensions only ``h0`` has."""
    if not a_has_time and not isinstance(a, numbers.Number):
        a = a[..., np.newaxis]
    batch = np.broadcast_shapes(np.shape(a)[:-1], b.shape[:-1], np.shape(h0))
    if batch != b.shape[:-1]:
        b = np.broadcast_to(b, batch + b.shape[-1:])
    if any(_is_dask(x) for x in (a, b, h0)):
        from linrec import dask as linrec_dask

        return linrec_dask.scan(a, b, h0=h0, axis=-1, reverse=reverse)
    return linrec.scan(a, b, h0=h0, axis=-1, reverse=reverse)


def _named(name, x, dims, sizes):
    """``x`` as a DataArray or scalar: a plain array (NumPy, CuPy, Dask, list) gets names
    by NumPy's rule, its trailing dimensions matched with the trailing ones of ``dims``
    (as xarray names the plain operand of ``DataArray + ndarray``); its size-1
    dimensions are dropped. Other objects and masked arrays raise TypeError."""
    if isinstance(x, xr.DataArray | numbers.Number):
        return x
    if not _is_dask(x):
        _namespace.namespace_of(**{name: x})
    x = _validate.coerce(name, x)
    shape = x.shape
    names = dims[len(dims) - len(shape):] if len(shape) <= len(dims) else None
    if names is None or any(n not in (1, sizes[d]) for n, d in zip(shape, names)):
        raise ValueError(
            f"{name} is a plain array of shape {tuple(shape)}, which does not broadcast "
            f"against dims {dims} of sizes {tuple(sizes[d] for d in dims)}; wrap it in a "
            f"DataArray with named dims, e.g. xarray.DataArray({name}, dims=(...))"
        )
    kept = [i for i, n in enumerate(shape) if n != 1]
    return xr.DataArray(x.reshape([shape[i] for i in kept]), dims=[names[i] for i in kept])


def scan(da_a, da_b, dim="time", *, h0=None, reverse=False):
    """Diagonal linear recurrence along dimension ``dim`` of DataArrays.

    forward: ``h[t] = a[t] * h[t-1] + b[t]`` with ``h[-1] = h0``; ``reverse=True`` runs
    from the last label of ``dim`` to the first (``h[T] = h0``).

    Parameters
    ----------
    da_a : xarray.DataArray, scalar or array
        Coefficients. Broadcast by dimension name against ``da_b``: it may lack ``dim``
        (constant in time) or any other dimension (shared across it). A plain (NumPy,
        Dask, CuPy) array or list is named as xarray names the plain operand of
        ``da_b * array``: NumPy's broadcasting against ``da_b``'s dimensions, matched
        from the last.
    da_b : xarray.DataArray
        Inputs; must have ``dim``. NumPy- or Dask-backed; Dask chunks may split ``dim``.
    dim : str
        The dimension to scan along.
    h0 : xarray.DataArray, scalar or array, optional
        Initial state, without ``dim``; broadcast by name. It may have dimensions that
        ``da_b`` lacks: the result gets them (``da_b`` is broadcast over them). A plain
        array broadcasts against ``da_b``'s dimensions other than ``dim``, matched from
        the last. Zero when omitted.
    reverse : bool
        Scan from the last step to the first.

    Returns
    -------
    h : xarray.DataArray
        Dimensions of ``da_b`` in ``da_b``'s order (then any dimension only ``da_a`` or
        ``h0`` has), with the coordinates of all inputs, ``da_b``'s name and attributes.
        NumPy-backed if every input is, else a lazy Dask-backed array. dtype as
        :func:`linrec.scan`.

    Raises
    ------
    TypeError
        ``da_b`` is not a DataArray; ``da_a`` None, of another array library or a NumPy
        masked array (as :func:`linrec.scan`); ``reverse`` not a bool; unsupported
        dtypes.
    ValueError
        ``dim`` missing from ``da_b``, or present in ``h0``; a plain ``da_a`` or ``h0``
        that does not broadcast against ``da_b`` (wrap it in a DataArray with named
        dims); indexes of the inputs that differ (they are aligned with
        ``join="exact"``: a recurrence must not silently drop steps; use
        ``xarray.align`` first); others as :func:`linrec.scan`.
    """
    if not isinstance(da_b, xr.DataArray):
        raise TypeError(
            f"da_b is a {type(da_b).__name__}; pass an xarray.DataArray, or use "
            f"linrec.scan for plain arrays"
        )
    if dim not in da_b.dims:
        raise ValueError(f"da_b has dims {da_b.dims}, without dim={dim!r} to scan along")
    _validate.check_given(da_a=da_a)
    reverse = _validate.check_flag("reverse", reverse)
    da_a = _named("da_a", da_a, da_b.dims, da_b.sizes)
    if h0 is not None:
        h0 = _named("h0", h0, tuple(d for d in da_b.dims if d != dim), da_b.sizes)
    if isinstance(h0, xr.DataArray) and dim in h0.dims:
        raise ValueError(f"h0 has dim {dim!r}; the initial state must not have the scan "
                         f"dimension: select one step, e.g. h0.isel({dim}=0)")
    a_has_time = isinstance(da_a, xr.DataArray) and dim in da_a.dims
    result = xr.apply_ufunc(
        _scan_last_axis, da_b, da_a, h0,
        input_core_dims=[[dim], [dim] if a_has_time else [], []],
        output_core_dims=[[dim]],
        kwargs={"a_has_time": a_has_time, "reverse": reverse},
        dask="allowed", join="exact", keep_attrs="drop",
    )
    result = result.transpose(*da_b.dims, ...)
    result.attrs = dict(da_b.attrs)
    return result.rename(da_b.name)
