"""Which array library the inputs belong to, and which backend computes for it.

NumPy arrays (and Python scalars, lists and tuples) go to ``linrec.cpu``; CuPy arrays to
``linrec.cuda``. Neither backend, nor CuPy, is imported until first used.
"""

import numbers

import numpy as np

__all__ = ["namespace_of", "backend_for"]


def _kind(x):
    """'numpy', 'cupy' or 'scalar' for one argument; TypeError for anything else."""
    import array_api_compat as compat

    if isinstance(x, numbers.Number) or (isinstance(x, np.generic)):
        return "scalar"
    if isinstance(x, np.ma.MaskedArray):
        return "masked"
    if isinstance(x, np.ndarray):
        return "numpy"
    if compat.is_cupy_array(x):
        return "cupy"
    if compat.is_dask_array(x):
        return "dask"
    if hasattr(x, "__array_namespace__") or compat.is_torch_array(x) or \
            compat.is_jax_array(x):
        return type(x).__module__.split(".")[0]
    if isinstance(x, list | tuple):
        return "numpy"
    return type(x).__name__


# Arguments that settle nothing by themselves: NumPy arrays and Python numbers. A call
# made of these alone is NumPy's, found without the checks below.
_PLAIN = frozenset({np.ndarray, float, int, complex})


def namespace_of(**named):
    """The array module (numpy or cupy) shared by the named arguments (None ones skipped).

    Scalars go with either; lists and tuples count as NumPy arrays.

    Raises
    ------
    TypeError
        A mix of NumPy and CuPy arrays, CuPy arrays on different devices, dask arrays
        (use ``linrec.dask``), NumPy masked arrays (their mask would be ignored), or
        arrays of another library.
    """
    for x in named.values():
        if x is not None and type(x) not in _PLAIN:
            break
    else:
        return np
    kinds = {name: _kind(x) for name, x in named.items() if x is not None}
    for name, kind in kinds.items():
        if kind == "masked":
            raise TypeError(
                f"{name} is a NumPy masked array, whose mask linrec would ignore: fill "
                f"the masked entries with what a masked step means, e.g. "
                f"{name}.filled(0.0), or pass {name}.data to ignore the mask"
            )
        if kind == "dask":
            raise TypeError(
                f"{name} is a dask array; use linrec.dask.scan / linrec.dask.scan_vjp, "
                f"which keep the computation lazy and chunked"
            )
        if kind not in ("numpy", "cupy", "scalar"):
            raise TypeError(
                f"{name} is a {kind} object; linrec takes NumPy or CuPy arrays (or Python "
                f"scalars): convert it first, e.g. np.asarray({name})"
            )
    on_gpu = sorted(n for n, k in kinds.items() if k == "cupy")
    on_cpu = sorted(n for n, k in kinds.items() if k == "numpy")
    if on_gpu and on_cpu:
        raise TypeError(
            f"{', '.join(on_cpu)} are NumPy arrays but {', '.join(on_gpu)} are CuPy "
            f"arrays; put them all on one device, e.g. cupy.asarray(x) or x.get()"
        )
    if on_gpu:
        devices = {named[n].device.id for n in on_gpu}
        if len(devices) > 1:
            raise TypeError(
                f"the CuPy arrays {', '.join(on_gpu)} live on different GPUs "
                f"{sorted(devices)}; move them to one with cupy.cuda.Device(i)"
            )
        import cupy

        return cupy
    return np


_BACKENDS = {}


def backend_for(xp):
    """The backend module for namespace ``xp``: it has ``forward`` and ``backward``.
    Imported on first use, then looked up (every call of ``linrec.scan`` asks)."""
    backend = _BACKENDS.get(xp)
    if backend is None:
        if xp is np:
            from linrec.cpu import backend
        else:
            from linrec.cuda import backend
        _BACKENDS[xp] = backend
    return backend
