"""``RawModule`` / ``RawKernel`` / ``ElementwiseKernel`` of the stand-in.

A ``RawModule`` parses the ``__global__`` functions of the source text it is given (the
text NVRTC would compile). A launch checks its arguments against the kernel's parameter
list, with the template parameters bound from the name expression, then runs the kernel
with ``tests/cuda_model.py`` (the NumPy model of linrec's kernels, found through the names
``linrec.cuda._kernels.expression`` builds).
"""

import functools
import numbers
import re

import cupy
import numpy as np
from cupy import cuda

__all__ = ["RawModule", "RawKernel", "ElementwiseKernel", "LaunchError", "Param",
           "parse_kernels"]

CXX_DTYPES = {
    "float": np.float32, "double": np.float64, "complex64": np.complex64,
    "complex128": np.complex128, "cplx<float>": np.complex64, "cplx<double>": np.complex128,
    "int": np.int32, "unsigned": np.uint32, "unsigned int": np.uint32,
    "long long": np.int64, "long long int": np.int64, "unsigned long long": np.uint64,
    "long": np.int64, "int64_t": np.int64, "int32_t": np.int32, "uint32_t": np.uint32,
    "size_t": np.uint64, "bool": np.bool_, "char": np.int8,
}
QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict"}


class LaunchError(RuntimeError):
    """A launch CuPy would reject, or that would fault or compute garbage on the GPU."""


class Param:
    """One kernel parameter: ``name``, its C type (``ctype``, qualifiers dropped) and
    whether it is a pointer."""

    def __init__(self, text):
        tokens = text.replace("*", " * ").replace("&", " & ").split()
        if not tokens or "&" in tokens:
            raise ValueError(f"cannot parse the kernel parameter {text!r}")
        self.name = tokens[-1]
        self.pointer = "*" in tokens
        self.ctype = " ".join(t for t in tokens[:-1] if t not in QUALIFIERS | {"*"})

    def __repr__(self):
        return f"{self.ctype}{'*' if self.pointer else ''} {self.name}"


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_KERNEL = re.compile(
    r"(?:template\s*<(?P<tparams>[^{};]*?)>\s*)?(?:extern\s+\"C\"\s*)?"
    r"__global__\s+void\s+(?:__launch_bounds__\s*\((?:[^()]|\([^()]*\))*\)\s*)?"
    r"(?P<name>\w+)\s*\((?P<params>[^()]*)\)\s*\{")


def _split(text):
    """Split at top-level commas (not inside ``<>`` or ``()``)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "<(" and 1 or ch in ">)" and -1 or 0
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return [*parts, last] if last else parts


@functools.cache
def parse_kernels(code):
    """``{name: (template parameter names, [Param, ...])}`` of the source's kernels."""
    kernels = {}
    for m in _KERNEL.finditer(_COMMENT.sub("", code)):
        tparams = [p.split()[-1] for p in _split(m["tparams"] or "")]
        kernels[m["name"]] = (tparams, [Param(p) for p in _split(m["params"])])
    return kernels


def _parse_expression(expression):
    """``"name<A, B, 8>"`` -> ``("name", ["A", "B", "8"])``."""
    m = re.fullmatch(r"\s*(\w+)\s*(?:<(.*)>)?\s*", expression)
    if m is None:
        raise ValueError(f"cannot parse the name expression {expression!r}")
    return m[1], _split(m[2] or "")


@functools.cache
def _model_names():
    """Name expression -> (model kernel, a dtype, b dtype), over every instantiation."""
    from linrec.cuda import _kernels

    return {_kernels.expression(k, ta, tb): (k, ta, tb)
            for k in _kernels.KERNELS for ta, tb in _kernels.PAIRS}


class RawModule:
    """Parses ``code``; ``get_function`` gives a launchable kernel for a name expression."""

    def __init__(self, code=None, path=None, options=(), backend="nvrtc",
                 translate_cucomplex=False, *, enable_cooperative_groups=False,
                 name_expressions=None, jitify=False):
        if code is None:
            with open(path) as f:
                code = f.read()
        self.code = code
        self.name_expressions = tuple(name_expressions or ())
        self.kernels = parse_kernels(code)
        for expression in self.name_expressions:
            name, targs = _parse_expression(expression)
            if name not in self.kernels:
                raise cuda.CUDARuntimeError(
                    f"NVRTC_ERROR_COMPILATION: {expression}: no kernel named {name} in the "
                    f"source (it has {sorted(self.kernels)})")
            if len(targs) != len(self.kernels[name][0]):
                raise cuda.CUDARuntimeError(
                    f"NVRTC_ERROR_COMPILATION: {expression} gives {len(targs)} template "
                    f"arguments; {name} takes {self.kernels[name][0]}")

    def get_function(self, name):
        kernel, targs = _parse_expression(name)
        if self.name_expressions and name not in self.name_expressions and targs:
            raise cuda.CUDARuntimeError(
                f"CUDA_ERROR_NOT_FOUND: {name} was not among the name_expressions "
                f"{self.name_expressions}")
        if kernel not in self.kernels:
            raise cuda.CUDARuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol {name}")
        tparams, params = self.kernels[kernel]
        return RawKernel(name, dict(zip(tparams, targs, strict=True)), params)


def _scalar_dtype(arg):
    """The type CuPy passes a scalar argument as (None: not a scalar)."""
    if isinstance(arg, bool | np.bool_):
        return np.dtype(np.bool_)
    if isinstance(arg, np.generic):
        return arg.dtype
    if isinstance(arg, np.ndarray) and arg.size == 1:
        return arg.dtype  # CuPy passes size-1 NumPy arrays by value
    if isinstance(arg, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(arg, numbers.Real):
        return np.dtype(np.float64)
    if isinstance(arg, numbers.Complex):
        return np.dtype(np.complex128)
    return None


class RawKernel:
    """A kernel instantiation; calling it checks the launch and runs the NumPy model."""

    def __init__(self, expression, bindings, params):
        self.name = expression
        self.bindings = bindings
        self.params = params

    def _dtype(self, ctype):
        ctype = self.bindings.get(ctype, ctype)
        return np.dtype(CXX_DTYPES[ctype]) if ctype in CXX_DTYPES else None

    def _fail(self, message):
        raise LaunchError(f"launch of {self.name}: {message}")

    def _check_geometry(self, grid, block):
        for what, dims, limits in (("grid", grid, (2**31 - 1, 65535, 65535)),
                                   ("block", block, (1024, 1024, 64))):
            if not isinstance(dims, tuple) or not 1 <= len(dims) <= 3 or not all(
                    isinstance(d, numbers.Integral) and not isinstance(d, bool)
                    for d in dims):
                self._fail(f"{what} must be a tuple of 1 to 3 ints, got {dims!r}")
            for d, limit in zip(dims, limits):
                if not 1 <= d <= limit:
                    self._fail(f"{what} {dims} is outside 1..{limit} "
                               f"(cudaErrorInvalidValue)")
        if int(np.prod(block)) > 1024:
            self._fail(f"block {block} has more than 1024 threads")

    def _check_pointer(self, param, arg):
        if isinstance(arg, np.ndarray) and arg.size == 1:
            self._fail(
                f"{param!r} got a NumPy array of size 1, which CuPy passes by value: the "
                f"kernel would use its bytes as an address (an illegal memory access that "
                f"poisons the CUDA context); pass a CuPy array")
        if not isinstance(arg, cupy.ndarray):
            self._fail(f"{param!r} got {type(arg).__name__}; a pointer takes a CuPy array"
                       + (" (CuPy: Unsupported type numpy.ndarray)"
                          if isinstance(arg, np.ndarray) else ""))
        expected = self._dtype(param.ctype)
        if expected is not None and arg.dtype != expected:
            self._fail(f"{param!r} points to {expected} but got an array of {arg.dtype}")
        if arg.data.ptr % arg.itemsize:
            self._fail(
                f"{param!r} got an array at address {arg.data.ptr:#x}, not aligned to its "
                f"{arg.itemsize}-byte elements (cudaErrorMisalignedAddress)")
        if arg.device.id != cuda.Device().id:
            self._fail(f"{param!r} lives on device {arg.device.id} but the launch runs on "
                       f"device {cuda.Device().id} (an illegal memory access)")

    def _check_scalar(self, param, arg):
        got = _scalar_dtype(arg)
        if got is None:
            self._fail(f"{param!r} is passed by value but got {type(arg).__name__}")
        expected = self._dtype(param.ctype)
        if expected is None:
            self._fail(f"{param!r}: the stand-in does not know the C type {param.ctype}")
        if got != expected:
            self._fail(f"{param!r} takes {expected} but got {got} ({arg!r}); the kernel "
                       f"would read {expected.itemsize} bytes of a {got.itemsize}-byte "
                       f"value")

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None,
                 enable_cooperative_groups=False):
        self._check_geometry(grid, block)
        if not isinstance(args, tuple):
            self._fail(f"args must be a tuple, got {type(args).__name__}")
        if len(args) != len(self.params):
            self._fail(f"{len(args)} arguments for {len(self.params)} parameters "
                       f"({', '.join(map(repr, self.params))})")
        plain = []
        for param, arg in zip(self.params, args, strict=True):
            if param.pointer:
                self._check_pointer(param, arg)
                plain.append(arg._a)
            else:
                self._check_scalar(param, arg)
                plain.append(np.asarray(arg).reshape(()).astype(self._dtype(param.ctype))[()])
        if self.name not in _model_names():
            self._fail("the stand-in has no model of this kernel (tests/cuda_model.py)")
        from tests import cuda_model as _model

        kernel, ta, tb = _model_names()[self.name]
        _model.run(kernel, ta, tb, grid, block, plain)


class ElementwiseKernel:
    """``out = f(in)`` kernels whose operation is ``;``-separated ``name = expression``
    statements over the parameter names (enough for the benchmark's floors)."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        self.inputs = [p.split()[-1] for p in _split(in_params)]
        self.outputs = [p.split()[-1] for p in _split(out_params)]
        self.statements = [s.split("=", 1) for s in operation.split(";") if s.strip()]

    def __call__(self, *args, size=None):
        n_in = len(self.inputs)
        ins = [cupy._array(x, name) for x, name in zip(args[:n_in], self.inputs)]
        outs = list(args[n_in:])
        shape = np.broadcast_shapes(*[x.shape for x in ins])
        outs += [cupy.empty(shape, ins[0].dtype) for _ in self.outputs[len(outs):]]
        env = {name: x._a for name, x in zip(self.inputs, ins)}
        env.update({name: cupy._array(x, name)._a for name, x in zip(self.outputs, outs)})
        for target, expression in self.statements:
            env[target.strip()][...] = eval(expression, {"__builtins__": {}}, env)
        return outs[0] if len(outs) == 1 else tuple(outs)
