"""CuPy, imported on first use, with errors that say how to get a working GPU setup."""

import functools

__all__ = ["require", "sm_count", "INSTALL_HINT"]

INSTALL_HINT = (
    "install CuPy for your CUDA version: pip install 'linrec[cuda12]' (CUDA 12.x) or "
    "pip install 'linrec[cuda13]' (CUDA 13.x)"
)


def require():
    """The ``cupy`` module, checked to see at least one usable GPU.

    Raises
    ------
    ImportError
        CuPy is not installed.
    RuntimeError
        CuPy is installed but finds no GPU or no working driver.
    """
    try:
        import cupy
    except ImportError as err:
        raise ImportError(
            f"linrec's GPU backend needs CuPy, which is not installed: {INSTALL_HINT}"
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        raise RuntimeError(
            f"CuPy is installed but cannot use a GPU ({err}); check that `nvidia-smi` "
            f"works and that the CuPy package matches the driver's CUDA version: "
            f"{INSTALL_HINT}"
        ) from err
    if count == 0:
        raise RuntimeError(f"CuPy finds no CUDA GPU on this machine; {INSTALL_HINT}")
    return cupy


@functools.cache
def _sm_count(device_id):
    import cupy

    return int(cupy.cuda.Device(device_id).attributes["MultiProcessorCount"])


def sm_count(cupy):
    """Multiprocessors of the current device."""
    return _sm_count(cupy.cuda.Device().id)
