"""A CPU stand-in for CuPy 14, to rehearse the GPU tests and the benchmark without a GPU.

``install()`` (or ``LINREC_FAKE_CUPY=1`` for pytest, see ``tests/conftest.py``) puts the
package ``cupy`` of this folder first on ``sys.path``. It imitates CuPy's array API as far
as linrec, its tests and ``benchmarks/gpu_bench.py`` use it, including the places where
CuPy differs from NumPy and bit linrec before:

* ``ndarray.flags`` has only ``c_contiguous``, ``f_contiguous`` and ``owndata``;
* ``cupy.float32`` *is* ``numpy.float32``, and ``cupy.reshape`` of a NumPy scalar returns
  a NumPy array; NumPy arrays are refused wherever CuPy refuses them (arithmetic,
  ``asnumpy`` aside, implicit conversion with ``numpy.asarray``);
* a kernel launch takes CuPy arrays as pointers; a NumPy array of size 1 would be passed
  *by value* (the kernel then dereferences its bytes as an address): refused here with
  the illegal memory access it would cause;
* ``shares_memory`` is exact and, in CuPy 14, builds and sorts a pointer array per
  element of both arrays: refused here on anything but small arrays;
* devices (``cuda.Device``), streams and events exist, with one fake device by default.

Every launch of a ``RawModule`` kernel is checked against the kernel's parameter list,
parsed from the very source text the module was given (count; pointers get arrays of the
parameter's element type, aligned as CUDA needs, on the current device; scalars get
NumPy scalars of exactly the parameter's type), then executed by the NumPy model of the
kernels, ``tests/cuda_model.py``. The stand-in cannot prove the kernels fast or right on
silicon; it makes the Python side fail here before it fails on a GPU.
"""

import os
import pathlib
import sys

__all__ = ["ENV", "PATH", "enabled", "install"]

ENV = "LINREC_FAKE_CUPY"
PATH = pathlib.Path(__file__).parent


def enabled():
    """Whether the environment asks for the stand-in (``LINREC_FAKE_CUPY=1``)."""
    return os.environ.get(ENV, "0") not in ("", "0")


def install():
    """Make ``import cupy`` import the stand-in (before anything imported a real one)."""
    loaded = sys.modules.get("cupy")
    if loaded is not None and not getattr(loaded, "IS_FAKE", False):
        raise RuntimeError("a real CuPy is already imported; the stand-in cannot replace "
                           "it")
    if str(PATH) not in sys.path:
        sys.path.insert(0, str(PATH))
    import cupy

    if not getattr(cupy, "IS_FAKE", False):
        raise RuntimeError(f"import cupy found {cupy.__file__}, not the stand-in in {PATH}")
    return cupy
