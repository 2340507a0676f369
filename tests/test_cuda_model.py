"""The CUDA backend's algorithm, checked on the CPU through the NumPy model of its kernels.

``linrec.scan`` / ``linrec.scan_vjp`` on NumPy arrays are routed through
``linrec.cuda.backend`` (its layouts, plans and launch arguments) with
``tests/cuda_model.py`` executing each launch like the GPU would, and compared with
``linrec.reference``. Lengths sit around every warp, tile and chunk boundary of the plan;
a small SM count forces the single-pass look-back kernels. Every output starts as
NaN, so an element the kernels forget to write fails the comparison.
"""

import functools
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import linrec
from linrec.cuda import _kernels, _plan, backend
from linrec.reference import reference_scan, reference_scan_vjp
from tests import cuda_model as _model
from tests.helpers import random_with_phase, route_numpy_to, zero_state_through_overflow

PAIRS = [pytest.param(ta, tb, id=f"{ta.name}-{tb.name}") for ta, tb in _kernels.PAIRS]
FEW_SMS = 1
MANY_SMS = 10**6


class _PoisonedNumpy:
    """NumPy, except that ``empty`` returns NaN-filled arrays."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, order="C"):
        return np.full(shape, np.nan, dtype, order=order)


def _shim(sms):
    """A backend module whose launches run on the model, with NaN-poisoned allocations."""
    xp = _PoisonedNumpy()
    return types.SimpleNamespace(
        forward=functools.partial(backend.forward_with, xp, _model.run, sms),
        backward=functools.partial(backend.backward_with, xp, _model.run, sms),
    )


@pytest.fixture
def on_model(monkeypatch):
    """``use(sms)`` routes NumPy scans through the CUDA backend run by the model."""

    def use(sms):
        route_numpy_to(monkeypatch, lambda xp: _shim(sms))

    return use


def _close(actual, expected, dtype):
    single = np.dtype(dtype) in (np.float32, np.complex64)
    scale = 1.0 + np.abs(expected).max(initial=0.0)
    atol = (1e-4 if single else 1e-10) * scale
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def _check(rng, ta, tb, a_shape, b_shape, *, axis=-1, reverse=False, h0=True,
           grad_last=True, b_view=None):
    """Forward and backward of one problem against the reference (which scans the last
    axis, so everything is moved there for it)."""
    a = random_with_phase(rng, a_shape, ta, 0.5, 1.0)
    b = random_with_phase(rng, b_shape, tb) if b_view is None else b_view
    shape = np.broadcast_shapes(a.shape, b.shape)
    batch = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    init = random_with_phase(rng, batch, tb) if h0 else None
    h, last = linrec.scan(a, b, h0=init, axis=axis, reverse=reverse, return_last=True)
    move = lambda x: np.moveaxis(np.broadcast_to(x, shape), axis, -1)  # noqa: E731
    h_ref, last_ref = reference_scan(move(a), move(b), init, reverse=reverse)
    _close(np.moveaxis(h, axis, -1), h_ref, tb)
    _close(last, last_ref, tb)
    gh = random_with_phase(rng, shape, tb)
    gl = random_with_phase(rng, batch, tb) if grad_last else None
    ga, gb, g0 = linrec.scan_vjp(gh, a, h, h0=init, axis=axis, reverse=reverse,
                                 grad_last=gl)
    ga_ref, gb_ref, g0_ref = reference_scan_vjp(move(gh), move(a), np.moveaxis(h, axis, -1),
                                                init, reverse=reverse, grad_last=gl)
    ga_ref = np.moveaxis(ga_ref, -1, axis)
    ga_ref = ga_ref if np.dtype(ta).kind == "c" else ga_ref.real
    padded = (1,) * (len(shape) - len(a.shape)) + a.shape
    summed = tuple(i for i, n in enumerate(padded) if n == 1 and shape[i] != 1)
    ga_ref = ga_ref.sum(axis=summed, keepdims=True).reshape(a.shape)
    _close(ga, ga_ref, tb)
    _close(np.moveaxis(gb, axis, -1), gb_ref, tb)
    _close(g0, g0_ref, tb)


def check_zero_state_through_overflow(ta, tb, reverse):
    """Forward and backward of ``zero_state_through_overflow`` (laid out backwards in
    memory for a reverse scan) against the sequential loops, which stay finite."""
    flip = (lambda x: np.ascontiguousarray(x[:, ::-1])) if reverse else (lambda x: x)
    forward, backward = zero_state_through_overflow(ta, tb)
    a, b = map(flip, forward)
    h, last = linrec.scan(a, b, reverse=reverse, return_last=True)
    h_ref, last_ref = reference_scan(a, b, reverse=reverse)
    assert np.isfinite(h_ref).all()
    _close(h, h_ref, tb)
    _close(last, last_ref, tb)
    a, b, gh = map(flip, backward)
    h = reference_scan(a, b, reverse=reverse)[0].astype(tb)
    got = linrec.scan_vjp(gh, a, h, reverse=reverse)
    expected = reference_scan_vjp(gh, a, h, reverse=reverse)
    for g, e in zip(got, expected, strict=True):
        assert np.isfinite(e).all()
        _close(g, e if np.asarray(g).dtype.kind == "c" else e.real, tb)


def _boundary_lengths(tb):
    tile = _plan.WARP * _plan.items_for(np.dtype(tb).itemsize)
    around = {1, 31, 32, 33, tile - 1, tile, tile + 1, 2 * tile + 1, 4 * tile - 1,
              4 * tile, 4 * tile + 1, 8 * tile + 1, 9 * tile + 3}
    return sorted(around)


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
@pytest.mark.parametrize("sms", [FEW_SMS, MANY_SMS], ids=["look-back", "tiles"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_lengths_around_every_boundary(on_model, ta, tb, sms, reverse):
    on_model(sms)
    rng = np.random.default_rng(1)
    for T in _boundary_lengths(tb):
        _check(rng, ta, tb, (3, T), (3, T), reverse=reverse)


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
def test_broadcast_a_and_time_first_layouts(on_model, ta, tb):
    """Time-first layouts: copied to time-last when chains are few, else one thread per
    chain (the channels kernels)."""
    on_model(FEW_SMS)
    rng = np.random.default_rng(2)
    tile = _plan.WARP * _plan.items_for(np.dtype(tb).itemsize)
    T = 5 * tile + 7
    _check(rng, ta, tb, (), (2, 3, T))
    _check(rng, ta, tb, (3, 1), (2, 3, T), reverse=True)
    _check(rng, ta, tb, (2, 1, T), (2, 3, T), h0=False)
    _check(rng, ta, tb, (2, 3, 1), (2, 3, T), grad_last=False)
    _check(rng, ta, tb, (T, 3), (T, 3), axis=0)
    _check(rng, ta, tb, (1, 3), (T, 3), axis=0, reverse=True)
    many = backend.CHANNEL_CHAINS_PER_SM * FEW_SMS + 1
    _check(rng, ta, tb, (40, many), (40, many), axis=0)
    _check(rng, ta, tb, (1, many), (33, many), axis=0, reverse=True)


def test_strided_inplace_and_outer_dims(on_model):
    on_model(FEW_SMS)
    rng = np.random.default_rng(3)
    T = 1100
    base = random_with_phase(rng, (2, 6, 4, T + 3), np.float32)
    _check(rng, np.float32, np.float32, (1,), None, b_view=base[:, ::2, :, 3:])
    _check(rng, np.float32, np.float32, (1,), None, b_view=base[:, :, :, ::-1],
           reverse=True)
    _check(rng, np.float32, np.float32, (4, 1), None,
           b_view=np.asfortranarray(base[0, 0]), axis=-1)
    _check(rng, np.float32, np.float32, (), None, b_view=base[0].transpose(2, 0, 1), axis=0)
    b = random_with_phase(rng, (3, T), np.complex64)
    expected = linrec.scan(np.float32(0.9), b.copy())
    assert linrec.scan(np.float32(0.9), b, out=b) is b
    _close(b, expected, np.complex64)


def test_vjp_writes_and_adds_into_given_gradients(on_model):
    on_model(FEW_SMS)
    rng = np.random.default_rng(5)
    a = random_with_phase(rng, (3, 700), np.float32, 0.5, 1.0)
    b, grad_h = (random_with_phase(rng, (3, 700), np.complex64) for _ in range(2))
    h = linrec.scan(a, b)
    grad_a, grad_b, _ = linrec.scan_vjp(grad_h, a, h)
    into = (np.full_like(grad_a, np.nan), np.full_like(grad_b, np.nan))
    got = linrec.scan_vjp(grad_h, a, h, out=into)
    assert got[0] is into[0] and got[1] is into[1]
    _close(into[0], grad_a, np.float32)
    _close(into[1], grad_b, np.complex64)
    before = (np.ones_like(grad_a), np.full_like(grad_b, 2 - 1j))
    added = tuple(x.copy() for x in before)
    linrec.scan_vjp(grad_h, a, h, out=added, accumulate=True)
    _close(added[0], before[0] + grad_a, np.float32)
    _close(added[1], before[1] + grad_b, np.complex64)


@given(
    pair=st.sampled_from(_kernels.PAIRS),
    T=st.integers(1, 1500),
    chains=st.integers(1, 9),
    reverse=st.booleans(),
    a_kind=st.sampled_from(["full", "scalar", "channel", "time-constant"]),
    sms=st.sampled_from([FEW_SMS, 2, MANY_SMS]),
)
def test_model_matches_reference(pair, T, chains, reverse, a_kind, sms):
    ta, tb = pair
    a_shape = {"full": (chains, T), "scalar": (), "channel": (1, T),
               "time-constant": (chains, 1)}[a_kind]
    with pytest.MonkeyPatch.context() as patch:
        route_numpy_to(patch, lambda xp: _shim(sms))
        _check(np.random.default_rng(T), ta, tb, a_shape, (chains, T), reverse=reverse)



@pytest.mark.parametrize(("ta", "tb"), PAIRS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_single_pass_look_back_around_tile_boundaries(on_model, ta, tb, reverse):
    """Few long chains take the look-back kernel; its model runs an adversarial schedule
    (``_model.unfinished``), so with 100+ tiles per chain the look-back folds aggregates
    over several windows of 32 before it finds a published state."""
    on_model(FEW_SMS)
    rng = np.random.default_rng(9)
    tile = _plan.tile_steps(np.dtype(tb).itemsize)
    for T in (tile - 1, tile, tile + 1, 2 * tile - 1, 33 * tile + 1, 130 * tile - 7):
        _check(rng, ta, tb, (1, T), (1, T), reverse=reverse)
    _check(rng, ta, tb, (2, 1), (2, 40 * tile + 3), reverse=reverse, h0=False)
    assert max(_model.unfinished(k) for k in range(130)) > 2 * _plan.WARP


@pytest.mark.parametrize(("ta", "tb"), PAIRS)
@pytest.mark.parametrize("sms", [FEW_SMS, MANY_SMS], ids=["look-back", "tiles"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_zero_state_through_an_overflowing_product(on_model, ta, tb, sms, reverse):
    """A state of exactly 0 carried across steps whose product of a overflows to inf
    stays 0 (inf * 0 would be NaN), in the warp scan, the chunk carries and the look-back,
    forward and backward."""
    on_model(sms)
    check_zero_state_through_overflow(ta, tb, reverse)


def test_plan_covers_the_sequence():
    for itemsize in (4, 8, 16):
        for T in (1, 33, 257, 1025, 2**20 + 3, 2**26):
            for chains in (1, 7, 5000, 10**6):
                p = _plan.tiles(T, chains, itemsize, 132)
                assert p.seg_len % p.chunk == 0
                assert (p.nseg - 1) * p.seg_len < T <= p.nseg * p.seg_len
                assert p.chain_blocks * (_plan.WARPS // p.group_warps) >= chains
                assert p.nseg < 65536


def test_plan_spreads_one_long_row_over_the_gpu():
    p = _plan.tiles(2**26, 1, 4, 132)
    assert p.nseg >= 4 * 132
    assert _plan.tiles(65536, 8 * 1536, 4, 132).nseg == 1


def test_every_kernel_is_exercised(monkeypatch):
    """The cases above reach every kernel of the module (and so does this one)."""
    launched = set()
    xp = _PoisonedNumpy()

    def record(kernel, *args):
        launched.add(kernel)
        _model.run(kernel, *args)

    shim = types.SimpleNamespace(
        forward=functools.partial(backend.forward_with, xp, record, FEW_SMS),
        backward=functools.partial(backend.backward_with, xp, record, FEW_SMS),
    )
    route_numpy_to(monkeypatch, lambda xp: shim)
    rng = np.random.default_rng(4)
    many = backend.CHANNEL_CHAINS_PER_SM * FEW_SMS + 1
    _check(rng, np.float32, np.float32, (2, 1), (2, 5000))
    _check(rng, np.float32, np.float32, (), (40, 300))
    _check(rng, np.float32, np.float32, (5, many), (5, many), axis=0)
    assert launched == set(_kernels.KERNELS)
