"""The training loop: determinism, identical resume, NaN stop, early stopping, budget."""

import numpy as np
import pytest

from linrec.apps.data import ArraySet
from linrec.apps.train import ResumeError, TrainConfig, fit, load_best
from linrec.nn import CheckpointError, Model


def _data(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12, 2)).astype(np.float32)
    y = np.cumsum(x[:, -3:, :1], axis=1)
    return ArraySet(x, y)


TRAIN, VAL = _data(0, 24), _data(1, 8)


def _model(seed=0, **kw):
    return Model(2, horizon=3, d_model=4, d_state=3, n_layers=1, dropout=0.1, seed=seed,
                 **kw)


def _config(**kw):
    base = dict(epochs=4, batch_size=8, lr=1e-2, warmup=2, patience=10, progress=False)
    return TrainConfig(**{**base, **kw})


def _params(model):
    return {k: v.copy() for k, v in model.parameters().items()}


def test_fixed_seed_gives_identical_runs():
    a, b = _model(), _model()
    sa, sb = fit(a, TRAIN, VAL, _config()), fit(b, TRAIN, VAL, _config())
    assert [h["train_loss"] for h in sa["history"]] == \
        [h["train_loss"] for h in sb["history"]]
    for k, v in _params(a).items():
        np.testing.assert_array_equal(v, b.parameters()[k])
    c = _model()
    fit(c, TRAIN, VAL, _config(seed=1))
    assert any(not np.array_equal(v, c.parameters()[k]) for k, v in _params(a).items())


def test_resume_continues_identically(tmp_path, monkeypatch):
    full = _model()
    s_full = fit(full, TRAIN, VAL, _config(), checkpoint=tmp_path / "full.npz")
    crashed = _model()
    real, calls = crashed.loss_and_grad, []

    def crash_in_third_epoch(x, y, rng=None):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return real(x, y, rng)

    monkeypatch.setattr(crashed, "loss_and_grad", crash_in_third_epoch)
    ckpt = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        fit(crashed, TRAIN, VAL, _config(), checkpoint=ckpt)
    resumed = _model(seed=5)
    s_res = fit(resumed, TRAIN, VAL, _config(), checkpoint=ckpt, resume=True)
    assert s_res["epochs"] == 4 and s_res["steps"] == s_full["steps"]
    assert [h["val_loss"] for h in s_res["history"]] == \
        [h["val_loss"] for h in s_full["history"]]
    for k, v in full.parameters().items():
        np.testing.assert_array_equal(v, resumed.parameters()[k])
    loaded = load_best(tmp_path / "full.npz")
    np.testing.assert_array_equal(loaded.predict(VAL.x), full.predict(VAL.x))


def test_resume_rejects_other_model_and_foreign_file(tmp_path):
    ckpt = tmp_path / "c.npz"
    fit(_model(), TRAIN, VAL, _config(epochs=1), checkpoint=ckpt)
    with pytest.raises(ResumeError, match="merge='sum' there, 'concat' now"):
        fit(_model(merge="concat"), TRAIN, VAL, _config(), checkpoint=ckpt, resume=True)
    foreign = tmp_path / "f.npz"
    np.savez(foreign, x=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a linrec checkpoint"):
        fit(_model(), TRAIN, VAL, _config(), checkpoint=foreign, resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    model = _model()
    ckpt = tmp_path / "c.npz"
    real = model.loss_and_grad
    calls = []

    def poisoned(x, y, rng=None):
        calls.append(1)
        loss, grads = real(x, y, rng)
        return (float("nan") if len(calls) == 5 else loss), grads

    monkeypatch.setattr(model, "loss_and_grad", poisoned)
    summary = fit(model, TRAIN, VAL, _config(), checkpoint=ckpt)
    assert summary["status"] == "diverged" and "nan" in summary["message"]
    assert "the checkpoint keeps the state after 3 steps" in capsys.readouterr().err
    assert summary["epochs"] == 1
    assert all(np.isfinite(v).all() for v in model.parameters().values())
    np.testing.assert_array_equal(load_best(ckpt).predict(VAL.x), model.predict(VAL.x))


def test_the_model_reads_its_own_files_and_training_reads_its_checkpoints(tmp_path):
    model = _model()
    ckpt = tmp_path / "run.npz"
    fit(model, TRAIN, VAL, _config(epochs=1), checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="linrec.nn.Model/1"):
        Model.load(ckpt)
    np.testing.assert_array_equal(load_best(ckpt).predict(VAL.x), model.predict(VAL.x))
    model.save(tmp_path / "model.npz")
    with pytest.raises(CheckpointError, match="linrec.train.checkpoint/1"):
        load_best(tmp_path / "model.npz")


def test_early_stopping_restores_best_parameters():
    model = _model()
    summary = fit(model, TRAIN, VAL, _config(epochs=30, lr=0.3, patience=1, clip=None))
    assert summary["status"] == "early_stopped"
    assert summary["epochs"] < 30
    best = min(h["val_loss"] for h in summary["history"])
    from linrec.apps.train import evaluate_loss

    assert evaluate_loss(model, VAL) == pytest.approx(best, rel=1e-5)


def test_budget_stops_training():
    summary = fit(_model(), TRAIN, VAL, _config(epochs=50, budget_seconds=0.0))
    assert summary["status"] == "budget" and summary["steps"] == 1
