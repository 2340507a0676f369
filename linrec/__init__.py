"""linrec: fast diagonal linear recurrences h[t] = a[t] * h[t-1] + b[t], NumPy and CuPy."""

from linrec._api import scan, scan_vjp

__all__ = ["scan", "scan_vjp"]
__version__ = "0.1.0"
