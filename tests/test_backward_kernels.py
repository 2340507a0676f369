"""The fused backward kernels of every CPU schedule against the sequential reference, at
the sizes where their structure changes: the three adjoint lanes of ``rows`` and
``chunked`` (chains or chunks left over), the lanes' skew (on from ``8 * SKEW`` steps
per lane), the channel loop run from the highest channel down (one block, two blocks),
the chunked schedule's groups of three chunks and its short last chunk, T of 1, 2 and 3;
for every combination of the two flags the kernels compile in as constants (``a``
constant in time: grad_a summed; ``accumulate=True``: adding into ``out``), forwards and
reversed, real and complex."""

import numpy as np
import pytest

import linrec
from linrec._tuning import CHUNK_MIN
from linrec.cpu._lanes import SKEW
from tests.helpers import assert_close, random_with_phase, ref_vjp

SKEW_LANE = 8 * SKEW  # lanes of at least this many steps run skewed (``_lanes._skew``)

# (method, h shape, axis): time-last chains for rows (1 to 7 chains: 0, 1 or 2 left over
# by the lanes), time-first channels (fewer than a block, odd, split in two blocks),
# one or two long chains for chunked (groups of three chunks, with and without a short
# last chunk).
CASES = [
    ("rows", (1, 1), -1), ("rows", (2, 2), -1), ("rows", (3, 3), -1),
    ("rows", (4, 37), -1), ("rows", (5, SKEW_LANE), -1), ("rows", (6, SKEW_LANE + 1), -1),
    ("rows", (7, SKEW_LANE + 2), -1), ("rows", (3, 1000), 0),
    ("channels", (1, 5), 0), ("channels", (2, 9), 0), ("channels", (3, 15), 0),
    ("channels", (40, 37), 0), ("channels", (1, 5, 2051), 1), ("channels", (2, 3, 7), 1),
    ("chunked", (1, 1), -1), ("chunked", (1, 3), -1),
    ("chunked", (1, 3 * SKEW_LANE + 1), -1), ("chunked", (1, 2 * CHUNK_MIN + 1), -1),
    ("chunked", (1, 2 * CHUNK_MIN + 3), -1), ("chunked", (2, 3 * CHUNK_MIN + 2), -1),
]


def _a_shape(shape, axis, kind):
    if kind == "full":
        return shape
    if kind == "constant in time":  # grad_a summed over time
        return tuple(1 if i == axis % len(shape) else n for i, n in enumerate(shape))
    # broadcast over every batch axis
    return tuple(n if i == axis % len(shape) else 1 for i, n in enumerate(shape))


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("a_kind", ["full", "constant in time", "broadcast"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("reverse", [False, True])
def test_backward_kernels_match_reference(case, a_kind, dtype, reverse):
    method, shape, axis = case
    rng = np.random.default_rng(sum(shape) + len(a_kind))
    a = random_with_phase(rng, _a_shape(shape, axis, a_kind), dtype, 0.5, 1.0)
    b = random_with_phase(rng, shape, dtype)
    h0 = random_with_phase(rng, np.delete(shape, axis), dtype)
    grad_last = random_with_phase(rng, np.delete(shape, axis), dtype)
    h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
    grad_h = random_with_phase(rng, shape, dtype)
    kw = dict(h0=h0, axis=axis, reverse=reverse, grad_last=grad_last, method=method)
    want_a, want_b, want_h0 = ref_vjp(grad_h, a, h, h0, axis, reverse, grad_last)
    T = shape[axis]
    terms = T * h.size // a.size

    got_a, got_b, got_h0 = linrec.scan_vjp(grad_h, a, h, **kw)
    assert_close(got_a, want_a, dtype, terms)
    assert_close(got_b, want_b, dtype, T)
    assert_close(got_h0, want_h0, dtype, T)

    old_a = random_with_phase(rng, a.shape, dtype)
    old_b = random_with_phase(rng, shape, dtype)
    out = (old_a.copy(), old_b.copy())
    got_a, got_b, got_h0 = linrec.scan_vjp(grad_h, a, h, out=out, accumulate=True, **kw)
    assert_close(got_a, old_a + want_a, dtype, terms)
    assert_close(got_b, old_b + want_b, dtype, T)
    assert_close(got_h0, want_h0, dtype, T)
