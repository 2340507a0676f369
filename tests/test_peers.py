"""The PyTorch peers: shapes, determinism, learning, input errors, the missing extra."""

import sys

import numpy as np
import pytest

from linrec.apps.peers import PEERS, fit_peer, make_peer, predict_peer
from linrec.apps.train import TrainConfig
from linrec.nn.fit import ArraySet


def _forecast_data(n, steps=13, features=3, horizon=2, seed=0):
    """y is a fixed linear function of the last input step: learnable by every peer."""
    x = np.random.default_rng(seed).standard_normal((n, steps, features))
    w = np.random.default_rng(99).standard_normal((features, horizon))
    x, w = x.astype(np.float32), w.astype(np.float32)
    return ArraySet(x, (x[:, -1] @ w)[:, :, None])


def _config(**kw):
    base = dict(epochs=4, batch_size=16, lr=1e-2, warmup=1, patience=10, progress=False)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("kind", PEERS)
@pytest.mark.parametrize("pool", ["last", "mean", "window"])
def test_output_shape(kind, pool):
    pytest.importorskip("torch")
    model = make_peer(kind, 3, 7, d_model=8, n_heads=2, pool=pool, window=4)
    x = np.random.default_rng(1).standard_normal((5, 11, 3)).astype(np.float32)
    out = predict_peer(model, x, batch_size=2)
    assert out.shape == (5, 7) and out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.parametrize("kind", PEERS)
def test_same_seed_same_run(kind):
    pytest.importorskip("torch")
    train, val = _forecast_data(48), _forecast_data(16, seed=1)
    runs = []
    for _ in range(2):
        model = make_peer(kind, 3, 2, d_model=8, n_heads=2, seed=3)
        summary = fit_peer(model, train, val, _config(epochs=2, seed=5))
        runs.append((summary["best_val"], predict_peer(model, val.x)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = make_peer(kind, 3, 2, d_model=8, n_heads=2, seed=4)
    assert not np.array_equal(predict_peer(other, val.x), runs[0][1])


@pytest.mark.parametrize("kind", PEERS)
def test_loss_decreases(kind):
    pytest.importorskip("torch")
    train, val = _forecast_data(256), _forecast_data(64, seed=1)
    model = make_peer(kind, 3, 2, d_model=16, n_heads=2)
    summary = fit_peer(model, train, val, _config(epochs=6))
    first, best = summary["history"][0]["val_loss"], summary["best_val"]
    assert best < 0.5 * first, summary["history"]
    assert summary["status"] == "completed" and summary["epochs"] == 6


def test_classification_learns():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    x = (rng.standard_normal((240, 9, 2)) + labels[:, None, None]).astype(np.float32)
    train, val = ArraySet(x[:180], labels[:180]), ArraySet(x[180:], labels[180:])
    model = make_peer("gru", 2, 3, d_model=8, pool="mean")
    fit_peer(model, train, val, _config(epochs=8), task="classify")
    accuracy = (predict_peer(model, val.x).argmax(axis=1) == val.y).mean()
    assert accuracy > 0.8


def test_budget_stops_training():
    pytest.importorskip("torch")
    train, val = _forecast_data(64), _forecast_data(16, seed=1)
    model = make_peer("lstm", 3, 2, d_model=8)
    summary = fit_peer(model, train, val, _config(epochs=50, budget_seconds=1e-9))
    assert summary["status"] == "budget" and summary["steps"] == 1
    assert summary["epochs"] == 1 and np.isfinite(summary["best_val"])


@pytest.mark.parametrize("kw, match", [
    (dict(kind="rnn"), "kind='rnn'"),
    (dict(pool="max"), "pool='max'"),
    (dict(d_model=0), "d_model=0"),
    (dict(kind="transformer", d_model=10, n_heads=4), "not divisible"),
    (dict(dropout=1.0), "dropout=1.0"),
])
def test_bad_settings(kw, match):
    args = dict(kind="lstm", n_features=3, n_outputs=2) | kw
    with pytest.raises(ValueError, match=match):
        make_peer(args.pop("kind"), args.pop("n_features"), args.pop("n_outputs"), **args)


def test_bad_task_and_input_shape():
    pytest.importorskip("torch")
    model = make_peer("gru", 3, 2, d_model=8, pool="window", window=5)
    data = _forecast_data(32)
    with pytest.raises(ValueError, match="task='regress'"):
        fit_peer(model, data, data, _config(), task="regress")
    with pytest.raises(ValueError, match=r"expected \(n, T, 3\)"):
        predict_peer(model, np.zeros((2, 6, 4), np.float32))
    with pytest.raises(ValueError, match="window=5"):
        predict_peer(model, np.zeros((2, 4, 3), np.float32))


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install 'linrec\[peers\]'"):
        make_peer("lstm", 3, 2)
