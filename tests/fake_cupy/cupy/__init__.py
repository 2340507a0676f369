"""The CuPy stand-in's array module (see ``tests/fake_cupy/__init__.py``).

Arrays live in host memory (NumPy arrays aligned like CuPy's pool, to 256 bytes) behind
an ``ndarray`` class that is *not* a NumPy array. Where CuPy refuses NumPy arrays, so does
this module; ``reshape`` and ``sum`` are duck-typed as in CuPy (a NumPy scalar in, a NumPy
array out).
"""

import numbers

import numpy as np
from numpy import (  # CuPy re-exports NumPy's scalar types: cupy.float32 is numpy.float32
    bool_,
    complex64,
    complex128,
    dtype,
    e,
    float16,
    float32,
    float64,
    inf,
    int8,
    int16,
    int32,
    int64,
    nan,
    newaxis,
    pi,
    uint8,
    uint32,
    uint64,
)

IS_FAKE = True
__version__ = "14.2.0+fake"

_ALIGN = 256
SHARES_MEMORY_LIMIT = 1 << 12


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _value(x):
    """An operand of arithmetic as NumPy sees it: arrays unwrapped, scalars kept. NumPy
    arrays are refused (size 1 excepted: CuPy takes those by value, as scalars)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        if x.size == 1:
            return x.reshape(()).item()
        raise _unsupported(x)
    if isinstance(x, numbers.Number | np.generic):
        return x
    raise _unsupported(x)


def _array(x, name="a"):
    """``x`` if it is an array of this module; TypeError (as Cython's typed arguments
    raise it in CuPy) otherwise."""
    if not isinstance(x, ndarray):
        raise TypeError(
            f"Argument '{name}' has incorrect type (expected cupy.ndarray, got "
            f"{type(x).__name__})"
        )
    return x


def _current_device():
    from cupy import cuda

    return cuda.Device().id


def _alloc(shape, dtype=float, order="C"):
    """Fresh memory, aligned like CuPy's pool allocations."""
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(map(int, shape))
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    flat = raw[start:start + nbytes].view(dtype)
    return ndarray._wrap(flat.reshape(shape, order="F" if order == "F" else "C"), True)


def _order_of(a, order):
    if order in ("K", "A", None):
        return "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"
    return order


class _Flags:
    """CuPy 14's flags: only these three (no ``writeable``, no ``aligned``)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, a, owndata):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = owndata

    def __getitem__(self, name):
        key = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous",
               "OWNDATA": "owndata"}.get(name)
        if key is None:
            raise KeyError(f"{name} is not defined for cupy.ndarray.flags")
        return getattr(self, key)


class _MemoryPointer:
    __slots__ = ("ptr", "device_id")

    def __init__(self, ptr, device_id):
        self.ptr = ptr
        self.device_id = device_id


def _binary(op, reflected=False):
    def method(self, other):
        other = _value(other)
        return ndarray._wrap(op(other, self._a) if reflected else op(self._a, other))
    return method


def _inplace(op):
    def method(self, other):
        op(self._a, _value(other), out=self._a)
        return self
    return method


def _unary(op):
    def method(self):
        return ndarray._wrap(op(self._a))
    return method


class ndarray:  # noqa: N801 (CuPy's name)
    """A CuPy array: device memory (here host memory) with NumPy's shape and strides."""

    __array_ufunc__ = None
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the stand-in does not take memptr or strides")
        self._set(_alloc(shape, dtype, order)._a, True)

    def _set(self, a, owndata, device_id=None):
        self._a = a
        self._owndata = owndata
        self._device_id = _current_device() if device_id is None else device_id

    @classmethod
    def _wrap(cls, a, owndata=None, device_id=None):
        """A stand-in array around the NumPy array ``a`` (its memory is the device's)."""
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        obj = cls.__new__(cls)
        obj._set(a, a.base is None if owndata is None else owndata, device_id)
        return obj

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
            "construct a NumPy array explicitly."
        )

    def __repr__(self):
        return f"fake_cupy.ndarray({self._a!r}, device={self._device_id})"

    shape = property(lambda self: self._a.shape)
    strides = property(lambda self: self._a.strides)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    dtype = property(lambda self: self._a.dtype)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: _Flags(self._a, self._owndata))
    data = property(lambda self: _MemoryPointer(self._a.ctypes.data, self._device_id))

    @property
    def device(self):
        from cupy import cuda

        return cuda.Device(self._device_id)

    @property
    def T(self):  # noqa: N802
        return self.transpose()

    @property
    def real(self):
        return self._view(self._a.real)

    @property
    def imag(self):
        return self._view(self._a.imag)

    def _view(self, a):
        return ndarray._wrap(a, False, self._device_id)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def _index(self, key):
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(k._a if isinstance(k, ndarray) else k for k in key)
        if not any(k is Ellipsis for k in key):
            key = (*key, Ellipsis)  # integer indices give a 0-d array, not a scalar
        return key

    def __getitem__(self, key):
        key = self._index(key)
        out = self._a[key]
        basic = all(isinstance(k, numbers.Integral | slice) or k is None or k is Ellipsis
                    for k in key)
        return self._view(out) if basic else ndarray._wrap(out, True, self._device_id)

    def __setitem__(self, key, value):
        self._a[self._index(key)] = _value(value)

    def get(self, stream=None, order="C", out=None):
        return np.array(self._a, order=order)

    def item(self):
        return self._a.item()

    def copy(self, order="C"):
        out = _alloc(self.shape, self.dtype, _order_of(self, order))
        np.copyto(out._a, self._a)
        return out

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        out = _alloc(self.shape, dtype, _order_of(self, order))
        np.copyto(out._a, self._a, casting="unsafe")
        return out

    def view(self, dtype=None):
        return self._view(self._a if dtype is None else self._a.view(dtype))

    def reshape(self, *shape, order="C"):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        out = self._a.reshape(shape, order=order)
        return self._view(out) if np.may_share_memory(out, self._a) else ndarray._wrap(out)

    def ravel(self, order="C"):
        return self.reshape(-1, order=order)

    def transpose(self, *axes):
        return self._view(self._a.transpose(*axes))

    def swapaxes(self, a1, a2):
        return self._view(self._a.swapaxes(a1, a2))

    def squeeze(self, axis=None):
        return self._view(self._a.squeeze(axis))

    def fill(self, value):
        self._a.fill(_value(value))

    def conj(self):
        return ndarray._wrap(np.conj(self._a))

    conjugate = conj

    def _reduce(name):  # noqa: N805 (a helper building methods)
        def method(self, axis=None, dtype=None, out=None, keepdims=False):
            kwargs = {} if dtype is None else {"dtype": dtype}
            result = getattr(np, name)(self._a, axis=axis, keepdims=keepdims, **kwargs)
            result = ndarray._wrap(np.asarray(result), True, self._device_id)
            if out is not None:
                out[...] = result
                return out
            return result
        return method

    sum = _reduce("sum")
    prod = _reduce("prod")
    mean = _reduce("mean")
    max = _reduce("max")
    min = _reduce("min")
    all = _reduce("all")
    any = _reduce("any")
    del _reduce

    __add__, __radd__ = _binary(np.add), _binary(np.add, True)
    __sub__, __rsub__ = _binary(np.subtract), _binary(np.subtract, True)
    __mul__, __rmul__ = _binary(np.multiply), _binary(np.multiply, True)
    __truediv__, __rtruediv__ = _binary(np.true_divide), _binary(np.true_divide, True)
    __floordiv__ = _binary(np.floor_divide)
    __pow__, __rpow__ = _binary(np.power), _binary(np.power, True)
    __matmul__ = _binary(np.matmul)
    __and__, __or__, __xor__ = _binary(np.bitwise_and), _binary(np.bitwise_or), \
        _binary(np.bitwise_xor)
    __iadd__, __isub__ = _inplace(np.add), _inplace(np.subtract)
    __imul__, __itruediv__ = _inplace(np.multiply), _inplace(np.true_divide)
    __lt__, __le__ = _binary(np.less), _binary(np.less_equal)
    __gt__, __ge__ = _binary(np.greater), _binary(np.greater_equal)
    __eq__, __ne__ = _binary(np.equal), _binary(np.not_equal)
    __neg__, __abs__, __invert__ = _unary(np.negative), _unary(np.abs), _unary(np.invert)


def _elementwise(np_func):
    def func(*args, **kwargs):
        return ndarray._wrap(np.asarray(np_func(*[_value(x) for x in args], **kwargs)))
    func.__name__ = np_func.__name__
    return func


for _name in ("abs", "absolute", "exp", "log", "sqrt", "isnan", "isfinite", "isinf",
              "maximum", "minimum", "where", "real", "imag", "conj", "conjugate", "sin",
              "cos", "tanh", "sign", "square", "negative", "add", "subtract", "multiply",
              "true_divide", "divide"):
    globals()[_name] = _elementwise(getattr(np, _name))
del _name


def asarray(a, dtype=None, order=None, *, blocking=False):
    """``a`` on the device: arrays of this module as they are (cast if ``dtype``
    differs); NumPy arrays, scalars and lists copied from the host."""
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype, copy=False)
    return array(a, dtype=dtype, order=order or "K")


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        host = obj._a
    else:
        host = np.asarray(obj, dtype=dtype)
        if host.dtype == object:
            raise ValueError("Unsupported dtype object")
    host = host if dtype is None else host.astype(dtype, copy=False)
    if host.ndim < ndmin:
        host = host.reshape((1,) * (ndmin - host.ndim) + host.shape)
    out = _alloc(host.shape, host.dtype, "F" if order == "F" or (
        order in ("K", "A") and host.flags.f_contiguous and not host.flags.c_contiguous)
        else "C")
    np.copyto(out._a, host)
    return out


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A host copy of ``a`` (NumPy arrays and scalars are returned as NumPy arrays)."""
    host = a.get(order=order) if isinstance(a, ndarray) else np.asarray(a, order=order)
    if out is not None:
        out[...] = host
        return out
    return host


def empty(shape, dtype=float, order="C"):
    return _alloc(shape, dtype, order)


def zeros(shape, dtype=float, order="C"):
    out = _alloc(shape, dtype, order)
    out._a.fill(0)
    return out


def ones(shape, dtype=float, order="C"):
    return full(shape, 1, dtype, order)


def full(shape, fill_value, dtype=None, order="C"):
    value = _value(fill_value)
    out = _alloc(shape, np.result_type(value) if dtype is None else dtype, order)
    out._a.fill(value)
    return out


def _like(maker):
    def func(a, dtype=None, order="K", subok=None, shape=None, **kwargs):
        a = _array(a)
        return maker(a.shape if shape is None else shape, *kwargs.values(),
                     dtype=a.dtype if dtype is None else dtype, order=_order_of(a, order))
    return func


empty_like = _like(empty)
zeros_like = _like(zeros)
ones_like = _like(ones)


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    a = _array(a)
    return full(a.shape if shape is None else shape, fill_value,
                a.dtype if dtype is None else dtype, _order_of(a, order))


def arange(start, stop=None, step=1, dtype=None):
    return array(np.arange(start, stop, step, dtype=dtype))


def reshape(a, newshape, order="C"):
    """Duck-typed as in CuPy: ``a.reshape(...)``, so a NumPy scalar gives a NumPy array."""
    return a.reshape(newshape, order=order)


def sum(a, axis=None, dtype=None, out=None, keepdims=False):  # noqa: A001
    """Duck-typed as in CuPy: ``a.sum(...)``."""
    return a.sum(axis=axis, dtype=dtype, out=out, keepdims=keepdims)


def expand_dims(a, axis):
    return _array(a)._view(np.expand_dims(a._a, axis))


def moveaxis(a, source, destination):
    return _array(a)._view(np.moveaxis(a._a, source, destination))


def transpose(a, axes=None):
    return _array(a).transpose(*(() if axes is None else axes))


def squeeze(a, axis=None):
    return _array(a).squeeze(axis)


def broadcast_to(array, shape):
    return _array(array, "array")._view(np.broadcast_to(array._a, shape))


def ascontiguousarray(a, dtype=None):
    a = _array(a)
    if a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    out = _alloc(a.shape, a.dtype if dtype is None else dtype)
    np.copyto(out._a, a._a, casting="unsafe")
    return out


def asfortranarray(a, dtype=None):
    a = _array(a)
    if a.flags.f_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    out = _alloc(a.shape, a.dtype if dtype is None else dtype, "F")
    np.copyto(out._a, a._a, casting="unsafe")
    return out


def concatenate(arrays, axis=0):
    return ndarray._wrap(np.concatenate([_array(x)._a for x in arrays], axis=axis))


def stack(arrays, axis=0):
    return ndarray._wrap(np.stack([_array(x)._a for x in arrays], axis=axis))


def copyto(dst, src, casting="same_kind"):
    np.copyto(_array(dst, "dst")._a, _value(src), casting=casting)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    close = np.allclose(_value(a), _value(b), rtol, atol, equal_nan)
    return ndarray._wrap(np.asarray(close))


def array_equal(a1, a2):
    return ndarray._wrap(np.asarray(np.array_equal(_value(a1), _value(a2))))


def may_share_memory(a, b, max_work=None):
    """Whether the memory bounds of ``a`` and ``b`` overlap (cheap, as in CuPy)."""
    return bool(np.may_share_memory(_array(a)._a, _array(b, "b")._a))


def shares_memory(a, b, max_work=None):
    """Exact overlap. CuPy 14 builds and sorts a pointer array for every element of both
    arrays (seconds and tens of GB at 10**9 elements, even for disjoint arrays): the
    stand-in refuses it on more than ``SHARES_MEMORY_LIMIT`` elements in all."""
    a, b = _array(a), _array(b, "b")
    if a.size + b.size > SHARES_MEMORY_LIMIT:
        raise RuntimeError(
            f"cupy.shares_memory on arrays of {a.size} and {b.size} elements: CuPy 14 "
            f"builds and sorts a pointer array per element (seconds and GBs on large "
            f"arrays); use cupy.may_share_memory (bounds only)"
        )
    return bool(np.shares_memory(a._a, b._a))


class _MemoryPool:
    def free_all_blocks(self, stream=None):
        pass

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


def get_default_pinned_memory_pool():
    return _POOL


from cupy import cuda, random  # noqa: E402 (they import this module's names)
from cupy._raw import ElementwiseKernel, RawKernel, RawModule  # noqa: E402
from cupy.lib import stride_tricks  # noqa: E402, F401

__all__ = [
    "IS_FAKE", "ndarray", "asarray", "array", "asnumpy", "empty", "zeros", "ones", "full",
    "empty_like", "zeros_like", "ones_like", "full_like", "arange", "reshape", "sum",
    "expand_dims", "moveaxis", "transpose", "squeeze", "broadcast_to",
    "ascontiguousarray", "asfortranarray", "concatenate", "stack", "copyto", "allclose",
    "array_equal", "may_share_memory", "shares_memory", "get_default_memory_pool",
    "get_default_pinned_memory_pool", "cuda", "random", "ElementwiseKernel", "RawKernel",
    "RawModule", "bool_", "complex64", "complex128", "dtype", "e", "float16", "float32",
    "float64", "inf", "int8", "int16", "int32", "int64", "nan", "newaxis", "pi", "uint8",
    "uint32", "uint64",
]
