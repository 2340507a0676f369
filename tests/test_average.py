"""The parameter average: weighted means of known parameter sequences, its use in the
training loops (linrec's and the PyTorch peers'), resume, and bad input."""

import numpy as np
import pytest

from linrec.apps.data import ArraySet
from linrec.apps.train import ResumeError, TrainConfig, fit
from linrec.nn import Model
from linrec.nn.average import ParameterAverage


def _weighted_mean(seq, decay):
    """sum_i decay**(t-i) p_i / sum_i decay**(t-i): the definition, written out."""
    t = len(seq)
    w = [decay ** (t - 1 - i) for i in range(t)]
    return sum(wi * p for wi, p in zip(w, seq, strict=True)) / sum(w)


def test_average_of_known_sequences():
    seq = [{"a": np.array([1.0, -2.0]), "b": np.array([[3.0]])},
           {"a": np.array([5.0, 0.0]), "b": np.array([[-1.0]])},
           {"a": np.array([2.0, 4.0]), "b": np.array([[0.5]])}]
    avg = ParameterAverage(seq[0], 0.5)
    for i, p in enumerate(seq):
        avg.update(p)
        out = avg.average()
        for k in p:
            want = _weighted_mean([q[k] for q in seq[:i + 1]], 0.5)
            np.testing.assert_allclose(out[k], want, rtol=1e-12)
    # by hand, a after 3 updates: (1*[2,4] + 0.5*[5,0] + 0.25*[1,-2]) / 1.75
    np.testing.assert_allclose(avg.average()["a"], [4.75 / 1.75, 3.5 / 1.75])


def test_constant_parameters_average_to_themselves_and_state_round_trips():
    p = {"w": np.full((2, 3), 7.0, np.float32)}
    avg = ParameterAverage(p, 0.99)
    for _ in range(3):
        avg.update(p)
    np.testing.assert_allclose(avg.average()["w"], 7.0, rtol=1e-5)
    other = ParameterAverage(p, 0.99)
    other.load_state(*avg.state())
    other.update({"w": np.zeros((2, 3), np.float32)})
    avg.update({"w": np.zeros((2, 3), np.float32)})
    np.testing.assert_array_equal(other.average()["w"], avg.average()["w"])


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1, float("nan"), True, "0.9"])
def test_bad_decay(decay):
    with pytest.raises(ValueError, match="decay"):
        ParameterAverage({}, decay)
    with pytest.raises(ValueError, match="decay"):
        TrainConfig(ema=decay)


def test_average_before_any_update():
    with pytest.raises(ValueError, match="no update yet"):
        ParameterAverage({"a": np.zeros(2)}, 0.9).average()


def _data(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12, 2)).astype(np.float32)
    return ArraySet(x, np.cumsum(x[:, -3:, :1], axis=1))


TRAIN, VAL = _data(0, 24), _data(1, 8)


def _model():
    return Model(2, horizon=3, d_model=4, d_state=3, n_layers=1, dropout=0.1, seed=0)


def _config(**kw):
    return TrainConfig(**{**dict(epochs=1, batch_size=8, lr=1e-2, warmup=1, patience=10,
                                 progress=False), **kw})


def test_fit_ends_with_the_average_of_its_steps(monkeypatch):
    plain = _model()
    seen = []
    real = plain.loss_and_grad

    def record(x, y, rng=None):
        seen.append({k: v.astype(np.float64) for k, v in plain.parameters().items()})
        return real(x, y, rng)

    monkeypatch.setattr(plain, "loss_and_grad", record)
    fit(plain, TRAIN, VAL, _config())
    # the parameters after steps 1..3: those seen before steps 2 and 3, then the end
    after = seen[1:] + [{k: v.astype(np.float64) for k, v in plain.parameters().items()}]
    assert len(after) == 3
    averaged = _model()
    summary = fit(averaged, TRAIN, VAL, _config(ema=0.6))
    for k, v in averaged.parameters().items():
        np.testing.assert_allclose(v, _weighted_mean([p[k] for p in after], 0.6),
                                   rtol=1e-5, atol=1e-6)
    from linrec.nn.fit import evaluate_loss

    assert summary["best_val"] == pytest.approx(evaluate_loss(averaged, VAL), rel=1e-6)


def test_resume_with_average_is_identical(tmp_path, monkeypatch):
    cfg = _config(epochs=3, ema=0.7, checkpoint_every=1)
    full = _model()
    fit(full, TRAIN, VAL, cfg)
    crashed = _model()
    real, calls = crashed.loss_and_grad, []

    def crash(x, y, rng=None):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(x, y, rng)

    monkeypatch.setattr(crashed, "loss_and_grad", crash)
    ckpt = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        fit(crashed, TRAIN, VAL, cfg, checkpoint=ckpt)
    resumed = _model()
    fit(resumed, TRAIN, VAL, cfg, checkpoint=ckpt, resume=True)
    for k, v in full.parameters().items():
        np.testing.assert_array_equal(v, resumed.parameters()[k])
    with pytest.raises(ResumeError, match="ema=0.7 there, None now"):
        fit(_model(), TRAIN, VAL, _config(epochs=3), checkpoint=ckpt, resume=True)


def test_peer_ends_with_the_average_of_its_steps():
    torch = pytest.importorskip("torch")
    from linrec.apps.peers import fit_peer, make_peer

    x = np.random.default_rng(0).standard_normal((48, 9, 2)).astype(np.float32)
    train, val = ArraySet(x, x[:, -2:, :1].copy()), ArraySet(x[:16], x[:16, -2:, :1].copy())
    plain = make_peer("gru", 2, 2, d_model=8, seed=1)
    seen = []

    def record(module, args):
        if module.training:
            seen.append({k: p.detach().double().clone()
                         for k, p in module.named_parameters()})

    plain.register_forward_pre_hook(record)
    fit_peer(plain, train, val, _config(batch_size=16))
    after = seen[1:] + [{k: p.detach().double().clone()
                         for k, p in plain.named_parameters()}]
    assert len(after) == 3
    averaged = make_peer("gru", 2, 2, d_model=8, seed=1)
    fit_peer(averaged, train, val, _config(batch_size=16, ema=0.6))
    for k, p in averaged.named_parameters():
        want = _weighted_mean([q[k] for q in after], 0.6)
        torch.testing.assert_close(p.detach().double(), want, rtol=1e-5, atol=1e-6)
