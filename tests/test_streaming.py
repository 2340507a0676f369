"""Streaming: LRU.step / BLURBlock.step / Model.step against the full-sequence forward,
chunked forwards with the state carried, and BLUR's sliding-window predict."""

import numpy as np
import pytest

from linrec.nn import LRU, BLURBlock, Model
from linrec.testing import check_layer

F64 = dict(dtype=np.float64)
LRU_KW = dict(r_min=0.4, r_max=0.99, max_phase=3.0)


def _steps(layer, x, state=None):
    """The outputs of ``layer.step`` fed x (batch, T, ...) one step at a time, stacked
    along axis 1, and the final state."""
    outs = []
    for t in range(x.shape[1]):
        y, state = layer.step(x[:, t], state)
        outs.append(y)
    return np.stack(outs, axis=1), state


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("batch, t, h, n", [(1, 1, 1, 1), (3, 17, 5, 7), (2, 33, 4, 3)])
def test_lru_step_equals_forward(dtype, tol, batch, t, h, n):
    rng = np.random.default_rng(t)
    lru = LRU(h, n, rng=rng, dtype=dtype, **LRU_KW)
    u = rng.standard_normal((batch, t, h)).astype(dtype)
    full, _, last = lru.forward(u, return_state=True)
    stepped, state = _steps(lru, u)
    np.testing.assert_allclose(stepped, full, rtol=tol, atol=tol)
    np.testing.assert_allclose(state, last, rtol=tol, atol=tol)
    assert stepped.dtype == full.dtype == dtype


@pytest.mark.parametrize("reverse", [False, True])
def test_lru_chunks_with_state_equal_forward(reverse):
    rng = np.random.default_rng(1)
    lru = LRU(4, 6, rng=rng, reverse=reverse, **LRU_KW, **F64)
    u = rng.standard_normal((3, 23, 4))
    full = lru.forward(u)[0]
    # A forward LRU continues left to right; a reverse one from the end to the start.
    first, second = (slice(0, 9), slice(9, 23)) if not reverse else \
        (slice(9, 23), slice(0, 9))
    _, _, state = lru.forward(u[:, first], return_state=True)
    rest = lru.forward(u[:, second], state=state)[0]
    np.testing.assert_allclose(rest, full[:, second], rtol=1e-12, atol=1e-12)


class _FromState:
    """An LRU that always starts from the state ``s0``, for :func:`check_layer`."""

    def __init__(self, lru, s0):
        self.lru, self.s0 = lru, s0

    def forward(self, u):
        return self.lru.forward(u, state=self.s0)

    def backward(self, dy, cache):
        return self.lru.backward(dy, cache)

    def parameters(self):
        return self.lru.parameters()


@pytest.mark.parametrize("reverse", [False, True])
def test_lru_gradients_with_a_carried_state(reverse):
    rng = np.random.default_rng(2)
    lru = LRU(3, 4, rng=rng, reverse=reverse, **LRU_KW, **F64)
    s0 = rng.standard_normal((2, 4)) + 1j * rng.standard_normal((2, 4))
    errors = check_layer(_FromState(lru, s0), rng.standard_normal((2, 7, 3)), rng)
    assert max(errors.values()) < 1e-6, errors


def test_lru_step_refuses_reverse_and_bad_shapes():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="reverse=True"):
        LRU(2, 3, rng=rng, reverse=True).step(np.zeros((1, 2), np.float32))
    lru = LRU(2, 3, rng=rng)
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        lru.step(np.zeros((1, 5, 2), np.float32))
    with pytest.raises(ValueError, match=r"state has shape \(1, 4\)"):
        lru.step(np.zeros((1, 2), np.float32), np.zeros((1, 4), np.complex64))
    with pytest.raises(ValueError, match="state has shape"):
        lru.forward(np.zeros((2, 5, 2), np.float32), state=np.zeros((1, 3), np.complex64))


def test_block_step_equals_forward_and_refuses_bidirectional():
    rng = np.random.default_rng(4)
    block = BLURBlock(5, 3, rng=rng, bidirectional=False, **F64)
    x = rng.standard_normal((2, 11, 5))
    full = block.forward(x)[0]
    stepped, _ = _steps(block, x)
    np.testing.assert_allclose(stepped, full, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="bidirectional"):
        BLURBlock(5, 3, rng=rng, **F64).step(x[:, 0])


MODELS = [
    dict(pool="last"), dict(pool="mean"), dict(pool="last+mean"), dict(pool="window"),
    dict(pool="tail"), dict(task="classify", n_classes=3),
    dict(n_layers=3, projection="mlp", norm="rms"),
]


@pytest.mark.parametrize("config", MODELS, ids=lambda c: "-".join(map(str, c.values())))
def test_model_step_equals_forward_at_every_step(config):
    rng = np.random.default_rng(5)
    kwargs = dict(horizon=4, n_targets=2, d_model=6, d_state=5, n_layers=2,
                  bidirectional=False, **F64)
    model = Model(3, **{**kwargs, **config})
    x = rng.standard_normal((3, 13, 3))
    state = None
    for t in range(x.shape[1]):
        out, state = model.step(x[:, t], state)
        if config.get("pool") == "window" and t + 1 < 4:
            assert out is None      # forward() refuses fewer than horizon steps
            continue
        np.testing.assert_allclose(out, model.forward(x[:, :t + 1])[0],
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cuts", [(1,), (5,), (4, 9, 10)])
def test_model_chunked_forward_with_state(cuts):
    rng = np.random.default_rng(6)
    model = Model(2, horizon=3, d_model=8, d_state=4, bidirectional=False)
    x = rng.standard_normal((4, 12, 2)).astype(np.float32)
    state = None
    for lo, hi in zip((0,) + cuts, cuts + (12,)):
        out, cache, state = model.forward(x[:, lo:hi], state=state, return_state=True)
        assert cache is None
    np.testing.assert_allclose(out, model.forward(x)[0], rtol=1e-4, atol=1e-5)
    assert state["count"] == 12


def test_model_streaming_refuses_bidirectional_and_bad_state():
    rng = np.random.default_rng(7)
    blur = Model(2, horizon=3, d_model=4, d_state=2)
    x = rng.standard_normal((2, 5, 2))
    with pytest.raises(ValueError, match="bidirectional=False.*predict_windows"):
        blur.step(x[:, 0])
    with pytest.raises(ValueError, match="bidirectional=False"):
        blur.forward(x, return_state=True)
    lru = Model(2, horizon=3, d_model=4, d_state=2, bidirectional=False)
    _, state = lru.step(x[:, 0])
    with pytest.raises(ValueError, match="not a streaming state of this model"):
        lru.step(x[:1, 1], state)                       # batch 1, state of batch 2
    with pytest.raises(ValueError, match="not a streaming state"):
        lru.step(x[:, 1], {"count": 1})
    with pytest.raises(ValueError, match=r"\(batch, 2\), one time step"):
        lru.step(x, state)
    with pytest.raises(ValueError, match="NaN"):
        lru.step(np.full((2, 2), np.nan), state)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("window, stride", [(1, 1), (5, 2), (9, 3), (11, 1)])
def test_predict_windows_equals_forward_on_each_window(bidirectional, window, stride):
    rng = np.random.default_rng(8)
    model = Model(3, horizon=2, d_model=6, d_state=3, bidirectional=bidirectional, **F64)
    x = rng.standard_normal((2, 11, 3))
    got = model.predict_windows(x, window, stride=stride, batch_size=3)
    starts = range(0, 11 - window + 1, stride)
    assert got.shape == (2, len(starts), 2, 1)
    for k, s in enumerate(starts):
        np.testing.assert_allclose(got[:, k], model.forward(x[:, s:s + window])[0],
                                   rtol=1e-12, atol=1e-12)


def test_predict_windows_bad_arguments():
    model = Model(1, horizon=2, d_model=4, d_state=2)
    x = np.zeros((1, 6, 1), np.float32)
    for kwargs, match in ((dict(window=0), "window=0"), (dict(window=7), "window=7"),
                          (dict(window=2.0), "window=2.0"),
                          (dict(window=2, stride=0), "stride=0")):
        with pytest.raises(ValueError, match=match):
            model.predict_windows(x, **kwargs)
