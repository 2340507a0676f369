"""The quantile head: pinball loss and gradient, the model's quantile outputs, interval
coverage."""

import json

import numpy as np
import pytest

from linrec.apps.metrics import interval_coverage
from linrec.nn import Model, pinball
from linrec.nn.checkpoint import MODEL_FORMAT, read_checkpoint, write_checkpoint
from linrec.testing.gradients import check_model, numeric_gradient, relative_error

SMALL = dict(d_model=3, d_state=2, r_min=0.3, dtype=np.float64, n_layers=1)


def test_pinball_value_on_a_hand_made_example():
    # target 1; predictions 0 (u=1) and 3 (u=-2) at levels 0.1 and 0.9:
    # 0.1*1, 0.9*1, 0.9*2, 0.1*2 -> mean (0.1 + 0.9 + 1.8 + 0.2) / 4
    pred = np.array([[0.0, 0.0], [3.0, 3.0]])
    target = np.array([1.0, 1.0])
    loss, _ = pinball(np, pred, target, [0.1, 0.9])
    assert loss == pytest.approx((0.1 + 0.9 + 1.8 + 0.2) / 4)


def test_pinball_gradient_against_finite_differences():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((3, 5, 2, 3))
    target = rng.standard_normal((3, 5, 2))
    levels = [0.1, 0.5, 0.9]
    _, grad = pinball(np, pred, target, levels)
    num = numeric_gradient(lambda: pinball(np, pred, target, levels)[0], pred)
    assert relative_error(num, grad) < 1e-8


def test_pinball_minimiser_is_the_quantile():
    target = np.arange(1.0, 11.0)          # 1..10: the 0.3-quantile lies in [3, 4]
    grid = np.linspace(0, 11, 111)
    losses = [pinball(np, np.full((10, 1), c), target, [0.3])[0] for c in grid]
    assert 3.0 <= grid[int(np.argmin(losses))] <= 4.0


def test_pinball_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="quantiles"):
        pinball(np, np.zeros((4, 2)), np.zeros(4), [0.1, 0.5, 0.9])


@pytest.mark.parametrize("pool", ["window", "tail", "last+mean"])
def test_quantile_head_gradients(pool):
    rng = np.random.default_rng(1)
    model = Model(4, horizon=3, n_targets=2, pool=pool, quantiles=[0.1, 0.5, 0.9],
                  **SMALL)
    x = rng.standard_normal((2, 6, 4))
    y = rng.standard_normal((2, 3, 2))
    assert model.forward(x)[0].shape == (2, 3, 2, 3)
    errors = check_model(model, x, y)
    bad = {k: v for k, v in errors.items() if not v <= 1e-6}
    assert not bad, bad


def test_predict_sorts_quantiles_and_forward_does_not():
    model = Model(2, horizon=4, quantiles=[0.1, 0.5, 0.9], d_model=4, d_state=2,
                  n_layers=1, seed=3)
    x = np.random.default_rng(2).standard_normal((64, 8, 2)).astype(np.float32)
    raw = model.forward(x)[0]
    assert (np.diff(raw, axis=-1) < 0).any()   # an untrained head crosses somewhere
    out = model.predict(x)
    assert (np.diff(out, axis=-1) >= 0).all()
    np.testing.assert_array_equal(out, np.sort(raw, axis=-1))


@pytest.mark.parametrize("levels", [[0.5, 0.1], [0.0, 0.5], [0.5, 1.0], [], "0.5"])
def test_bad_quantile_levels_are_refused(levels):
    with pytest.raises(ValueError, match="quantiles"):
        Model(2, quantiles=levels)


def test_a_model_file_written_before_quantile_heads_still_loads(tmp_path):
    model = Model(2, horizon=2, d_model=4, d_state=2, n_layers=1)
    path = tmp_path / "old.npz"
    model.save(path)
    _, config, arrays = read_checkpoint(path, (MODEL_FORMAT,))
    del config["quantiles"]
    write_checkpoint(path, MODEL_FORMAT, config, arrays)
    assert "quantiles" not in json.dumps(read_checkpoint(path, (MODEL_FORMAT,))[1])
    x = np.ones((1, 5, 2), np.float32)
    np.testing.assert_array_equal(Model.load(path).predict(x), model.predict(x))


def test_quantile_model_round_trips(tmp_path):
    model = Model(2, horizon=2, quantiles=[0.25, 0.75], d_model=4, d_state=2, n_layers=1)
    model.save(tmp_path / "q.npz")
    loaded = Model.load(tmp_path / "q.npz")
    assert loaded.config["quantiles"] == [0.25, 0.75]
    x = np.ones((1, 5, 2), np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_interval_coverage_on_a_hand_made_example():
    actual = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    lower = np.array([0.0, 2.0, 3.5, 0.0, 6.0])    # inside, on the edge, above, in, below
    upper = np.array([2.0, 3.0, 4.0, 4.0, 7.0])    # -> 1, 2 and 4 covered: 3 of 5
    assert interval_coverage(lower, upper, actual) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="shape"):
        interval_coverage(lower, upper, actual[:4])
