"""Finite-difference checks (float64) of every layer's backward pass, and |lambda| < 1."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linrec.nn import GLU, LRU, MLP, BLURBlock, LayerNorm, Linear, RMSNorm
from linrec.nn.encoder import SourceEncoder, check_sources
from linrec.nn.gate import GatedMerge
from linrec.nn.lru import NU_MIN, ring_init
from linrec.testing import check_layer

TOL = 1e-6
F64 = dict(dtype=np.float64)


def _assert_small(errors):
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, f"gradient errors above {TOL}: {bad}"


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_linear(shape):
    rng = np.random.default_rng(1)
    layer = Linear(shape[-1], 3, rng=rng, **F64)
    _assert_small(check_layer(layer, rng.standard_normal(shape), rng))


@pytest.mark.parametrize("shape", [(6,), (2, 5, 6), (3, 1, 2)])
def test_gated_merge(shape):
    rng = np.random.default_rng(7)
    layer = GatedMerge(shape[-1] // 2, rng=rng, scale=1.0, **F64)
    _assert_small(check_layer(layer, rng.standard_normal(shape), rng))


def test_gated_merge_mixes_the_halves_by_its_gate():
    rng = np.random.default_rng(8)
    layer = GatedMerge(3, rng=rng, **F64)
    x = rng.standard_normal((2, 4, 6))
    for value, want in ((-50.0, x[..., 3:]), (50.0, x[..., :3]),
                        (0.0, 0.5 * (x[..., :3] + x[..., 3:]))):
        layer.children["gate"].params["W"][...] = 0.0
        layer.children["gate"].params["b"][...] = value
        np.testing.assert_allclose(layer.forward(x)[0], want, atol=1e-12)


@pytest.mark.parametrize("cls", [LayerNorm, RMSNorm])
def test_norms(cls):
    rng = np.random.default_rng(2)
    layer = cls(5, **F64)
    for p in layer.params.values():
        p += rng.standard_normal(p.shape)
    _assert_small(check_layer(layer, rng.standard_normal((2, 3, 5)), rng))


@pytest.mark.parametrize("cls", [GLU, MLP])
def test_projections(cls):
    rng = np.random.default_rng(3)
    layer = cls(4, rng=rng, **F64)
    _assert_small(check_layer(layer, rng.standard_normal((2, 3, 4)), rng))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dims", [(3, 4, 7), (5, 2, 1), (2, 6, 13)])
def test_lru(reverse, dims):
    h, n, t = dims
    rng = np.random.default_rng(4)
    layer = LRU(h, n, rng=rng, reverse=reverse, r_min=0.4, r_max=0.95, max_phase=3.0,
                **F64)
    _assert_small(check_layer(layer, rng.standard_normal((2, t, h)), rng))


@pytest.mark.parametrize("config", [
    dict(),
    dict(merge="concat"),
    dict(merge="gate"),
    dict(projection="mlp", norm="rms"),
    dict(bidirectional=False),
])
def test_blur_block(config):
    rng = np.random.default_rng(5)
    block = BLURBlock(4, 3, rng=rng, r_min=0.3, **config, **F64)
    _assert_small(check_layer(block, rng.standard_normal((2, 6, 4)), rng))


def test_blur_block_dropout_only_with_rng():
    rng = np.random.default_rng(6)
    block = BLURBlock(4, 3, rng=rng, dropout=0.5, **F64)
    x = rng.standard_normal((2, 6, 4))
    np.testing.assert_array_equal(block.forward(x)[0], block.forward(x)[0])
    y1 = block.forward(x, np.random.default_rng(0))[0]
    y2 = block.forward(x, np.random.default_rng(0))[0]
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(y1, block.forward(x)[0])


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
@given(nu_log=st.floats(-1e4, 1e4), theta_log=st.floats(-50.0, 80.0),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_lambda_inside_unit_circle_for_every_parameter(nu_log, theta_log, dtype):
    layer = LRU(2, 3, rng=np.random.default_rng(0), dtype=dtype)
    layer.params["nu_log"][...] = nu_log
    layer.params["theta_log"][...] = theta_log
    lam, _ = layer.eigenvalues()
    assert np.all(np.abs(lam) < 1.0)
    assert np.all(np.abs(lam) <= np.exp(-NU_MIN) * (1 + 1e-6))


@given(r_min=st.floats(0.0, 0.98), width=st.floats(0.0, 1.0),
       max_phase=st.floats(1e-3, 2 * np.pi))
def test_ring_init(r_min, width, max_phase):
    r_max = r_min + width * (0.999 - r_min)
    nu_log, theta_log = ring_init(np.random.default_rng(0), 64, r_min, r_max, max_phase)
    r = np.exp(-np.exp(nu_log))
    assert np.all(r <= r_max + 1e-9) and np.all(r >= r_min - 1e-9)
    assert np.all(np.exp(theta_log) <= max_phase * (1 + 1e-12))


def test_lru_gamma_normalises_initial_state_variance():
    layer = LRU(4, 8, rng=np.random.default_rng(0), r_min=0.5, r_max=0.9, **F64)
    lam, _ = layer.eigenvalues()
    gamma = np.exp(layer.params["gamma_log"])
    np.testing.assert_allclose(gamma, np.sqrt(1 - np.abs(lam) ** 2))


@pytest.mark.parametrize("kw", [dict(r_min=0.5, r_max=0.4), dict(r_max=1.0),
                                dict(max_phase=0.0)])
def test_ring_init_rejects_bad_ranges(kw):
    with pytest.raises(ValueError):
        LRU(2, 2, rng=np.random.default_rng(0), **kw)


@pytest.mark.parametrize("sources", [None, [[0, 2], [1], [3]], [[3, 0, 1, 2]]])
@pytest.mark.parametrize("shape", [(4,), (2, 5, 4)])
def test_source_encoder(sources, shape):
    rng = np.random.default_rng(9)
    layer = SourceEncoder(4, 3, 2, sources=sources, rng=rng, **F64)
    layer.params["c"] += rng.standard_normal(layer.params["c"].shape)
    _assert_small(check_layer(layer, rng.standard_normal(shape), rng))


def test_source_encoder_keeps_sources_apart():
    """A source's units see only its own columns: changing the other columns changes
    nothing in them, even when U holds values outside the blocks (a loaded array)."""
    rng = np.random.default_rng(10)
    layer = SourceEncoder(5, 3, 4, sources=[[4, 1], [0, 2, 3]], rng=rng, **F64)
    layer.params["U"] += rng.standard_normal(layer.params["U"].shape)
    layer.params["V"][4:] = 0.0  # only the first source's units reach y
    x = rng.standard_normal((3, 5))
    moved = x.copy()
    moved[:, [0, 2, 3]] += rng.standard_normal((3, 3))
    np.testing.assert_allclose(layer.forward(moved)[0], layer.forward(x)[0], atol=1e-12)
    _, grads = layer.backward(np.ones((3, 3)), layer.forward(x)[1])
    assert not grads["U"][[0, 2, 3], :4].any() and not grads["U"][[4, 1], 4:].any()


@pytest.mark.parametrize("sources", [[[0], [1]], [[0, 1], [1, 2]], [[0, 1, 2], []],
                                     [[0, 1.0, 2]], [[0, 1, 3]], 3, [[True, 1, 2]]])
def test_check_sources_rejects(sources):
    with pytest.raises(ValueError, match="exactly once"):
        check_sources(sources, 3)
