"""Robustness of the CPU kernels (issue 10, items 1, 3, 4 and big-endian input).

- The public 1-D kernels check lengths before their loop (a mismatch once read and wrote
  past the arrays' ends) and name the argument; the gufuncs too.
- A chunk whose product of ``a`` overflows or underflows, meeting a carry of exactly 0 (or
  a carry the product cannot represent), agrees with the sequential loop in every schedule
  and in the Dask path, forwards and backwards.
- The gradient of an ``a`` constant in time meets one stated bound in every schedule,
  float32 included, at T = 2**22.
"""

import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from linrec.cpu import gufuncs
from linrec.cpu.kernels import scan_1d, scan_vjp_1d


def _run_isolated(code):
    """Run ``code`` in a fresh interpreter: a crash there cannot take pytest with it."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


# -- item 1: lengths are checked before the loop ------------------------------------------

@pytest.mark.parametrize("call, argument", [
    # the issue's reproducers: garbage in h[4:], a segfault, a corrupted heap
    ("scan_1d(np.full(4, .5), np.ones(4), 0.0, np.empty(8), False)", "a"),
    ("scan_1d(np.full(4, .5), np.ones(4), 0.0, np.empty(1 << 26), False)", "a"),
    ("scan_vjp_1d(np.ones(10), np.full(10, .5), np.ones(10), 0.0, 0.0, np.zeros(1), "
     "np.zeros(1), False)", "grad_a"),
])
def test_issue_reproducers_raise_instead_of_reading_past_the_end(call, argument):
    result = _run_isolated(f"""
        import numpy as np
        from linrec.cpu.kernels import scan_1d, scan_vjp_1d
        try:
            {call}
        except ValueError as error:
            print("ValueError:", error)
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ValueError: {call.split('(')[0]}: {argument} ")


def _vjp_args(T, short):
    args = dict(grad_h=np.ones(T), a=np.full(T, 0.5), h=np.ones(T), h0=0.0, grad_last=0.0,
                grad_a=np.zeros(T), grad_b=np.zeros(T), reverse=False)
    args[short] = np.zeros(T - 1)
    return args


@pytest.mark.parametrize("short", ["a", "b"])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_1d_names_the_short_argument(short, reverse):
    args = dict(a=np.full(6, 0.5), b=np.ones(6), h0=0.0, h=np.empty(6), reverse=reverse)
    args[short] = np.ones(5)
    with pytest.raises(ValueError, match=f"scan_1d: {short} and h have different"):
        scan_1d(**args)


@pytest.mark.parametrize("short", ["grad_h", "a", "grad_a", "grad_b"])
def test_scan_vjp_1d_names_the_short_argument(short):
    with pytest.raises(ValueError, match=f"scan_vjp_1d: {short} and h have different"):
        scan_vjp_1d(**_vjp_args(6, short))


def test_lengths_are_checked_inside_user_njit_code():
    @numba.njit
    def smooth(a, b, h):
        return scan_1d(a, b, 0.0, h, False)

    @numba.njit
    def gradient(grad_h, a, h, grad_a, grad_b):
        return scan_vjp_1d(grad_h, a, h, 0.0, 0.0, grad_a, grad_b, False)

    assert smooth(np.full(3, 0.5), np.ones(3), np.empty(3)) == 1.75
    with pytest.raises(ValueError, match="scan_1d: a and h have different lengths"):
        smooth(np.full(3, 0.5), np.ones(3), np.empty(5))
    with pytest.raises(ValueError, match="scan_vjp_1d: grad_b and h have different"):
        gradient(np.ones(4), np.full(4, 0.5), np.ones(4), np.zeros(4), np.zeros(2))


def test_wrong_dimensions_or_read_only_output_name_the_argument_inside_njit_code():
    @numba.njit
    def smooth(a, b, h):
        return scan_1d(a, b, 0.0, h, False)

    with pytest.raises(numba.core.errors.TypingError, match="scan_1d: h must be a 1-D"):
        smooth(np.ones(3), np.ones(3), np.empty((3, 1)))
    read_only = np.empty(3)
    read_only.flags.writeable = False
    with pytest.raises(numba.core.errors.TypingError, match="scan_1d: h is read-only"):
        smooth(np.ones(3), np.ones(3), read_only)


@pytest.mark.parametrize("bad, error, message", [
    (dict(a=np.ones((2, 4))), ValueError, "scan_1d: a must be 1-D"),
    (dict(b=[1.0, 1.0, 1.0, 1.0]), TypeError, "scan_1d: b must be a NumPy array"),
    (dict(b=np.ones(4, np.int64)), TypeError, "scan_1d: b has dtype int64"),
    (dict(h=np.empty(4, ">f8")), ValueError, "scan_1d: h has non-native byte order"),
    (dict(h0=np.zeros(())), TypeError, "scan_1d: h0 must be a scalar"),
])
def test_python_calls_with_arguments_numba_cannot_take_name_them(bad, error, message):
    args = dict(a=np.full(4, 0.5), b=np.ones(4), h0=0.0, h=np.empty(4), reverse=False)
    args.update(bad)
    with pytest.raises(error, match=message):
        scan_1d(**args)


def test_read_only_gradient_output_is_refused():
    args = _vjp_args(4, "grad_b")
    args["grad_b"] = np.zeros(4)
    args["grad_b"].flags.writeable = False
    with pytest.raises(ValueError, match="scan_vjp_1d: grad_b is read-only"):
        scan_vjp_1d(**args)


@pytest.mark.parametrize("argument", ["a", "b"])
def test_big_endian_input_names_the_argument_and_the_fix(argument):
    args = dict(a=np.full(4, 0.5), b=np.ones(4), h0=0.0, h=np.empty(4), reverse=False)
    args[argument] = args[argument].astype(">f8")
    with pytest.raises(ValueError, match=f"{argument}.astype"):
        scan_1d(**args)
    args[argument] = args[argument].astype(args[argument].dtype.newbyteorder("="))
    assert scan_1d(**args) == 1.875


def test_gufuncs_check_core_lengths_and_take_big_endian_input():
    a, b = np.full(4, 0.5), np.ones((2, 4))
    with pytest.raises(ValueError, match="core dimension"):
        gufuncs.scan(a, np.ones((2, 5)), 0.0)
    with pytest.raises(ValueError, match="core dimension"):
        gufuncs.scan_reverse(a, b, 0.0, out=np.empty((2, 8)))
    expected = gufuncs.scan(a, b, 0.0)
    np.testing.assert_array_equal(expected[0], [1.0, 1.5, 1.75, 1.875])
    np.testing.assert_array_equal(gufuncs.scan(a.astype(">f8"), b.astype(">f8"), 0.0),
                                  expected)
