"""The whole model: gradients, losses, Adam, save/load and the errors on bad input."""

import numpy as np
import pytest

from linrec.nn import Adam, CheckpointError, Model, clip_grad_norm, cross_entropy, mse
from linrec.nn.schedule import lr_at
from linrec.testing.gradients import check_model, numeric_gradient, relative_error

SMALL = dict(d_model=3, d_state=2, r_min=0.3, dtype=np.float64)


@pytest.mark.parametrize("config", [
    dict(horizon=3, n_targets=2, n_layers=2),
    dict(horizon=3, bidirectional=False, pool="last", n_layers=1),
    dict(horizon=3, pool="window", n_layers=1),
    dict(horizon=4, pool="tail", merge="concat", projection="mlp", norm="rms", n_layers=1),
    dict(task="classify", n_classes=3, n_layers=1),
    dict(horizon=3, pool="window", n_layers=1, source_width=2, sources=[[0, 3], [1, 2]]),
    dict(horizon=2, bidirectional=False, n_layers=1, source_width=1),
])
def test_model_gradients(config):
    rng = np.random.default_rng(0)
    model = Model(4, **config, **SMALL)
    x = rng.standard_normal((2, 6, 4))
    if config.get("task") == "classify":
        y = rng.integers(0, 3, size=2)
    else:
        y = rng.standard_normal((2, config["horizon"], config.get("n_targets", 1)))
    errors = check_model(model, x, y)
    assert set(errors) == set(model.parameters())
    bad = {k: v for k, v in errors.items() if not v <= 1e-6}
    assert not bad, bad


def test_loss_gradients():
    rng = np.random.default_rng(1)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    _, g = mse(np, pred, target)
    num = numeric_gradient(lambda: mse(np, pred, target)[0], pred)
    assert relative_error(num, g) < 1e-8
    labels = np.array([0, 2, 1, 2])
    _, g = cross_entropy(np, pred, labels)
    num = numeric_gradient(lambda: cross_entropy(np, pred, labels)[0], pred)
    assert relative_error(num, g) < 1e-8
    with pytest.raises(ValueError, match="labels"):
        cross_entropy(np, pred, np.array([0, 3, 1, 1]))


def test_float32_model_uses_float32():
    model = Model(3, horizon=2, d_model=4, d_state=2, n_layers=1)
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    loss, grads = model.loss_and_grad(x, np.zeros((2, 2, 1), np.float32))
    assert np.isfinite(loss)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.predict(x).dtype == np.float32


def test_adam_first_step_and_weight_decay_rules():
    model = Model(2, horizon=1, d_model=2, d_state=2, n_layers=1, dtype=np.float64)
    params = model.parameters()
    before = {k: p.copy() for k, p in params.items()}
    grads = {k: np.ones_like(p) for k, p in params.items()}
    opt = Adam(params, groups=model.param_groups(), lr=0.1, weight_decay=0.5,
               lr_scale={"recurrence": 0.1})
    opt.step(grads)
    for k, p in params.items():
        step = before[k] - p
        if k.endswith(("nu_log", "theta_log", "gamma_log")):
            np.testing.assert_allclose(step, 0.01, rtol=1e-6)
            assert not opt.decays(k)
        elif p.ndim >= 2:
            np.testing.assert_allclose(step, 0.1 + 0.1 * 0.5 * before[k], rtol=1e-6)
        else:
            np.testing.assert_allclose(step, 0.1, rtol=1e-6)


def test_adam_follows_the_groups_it_is_given_not_parameter_names():
    params = {"nu_log": np.ones(2), "w": np.ones((2, 2)), "b": np.ones(2)}
    grads = {k: np.ones_like(p) for k, p in params.items()}
    opt = Adam(params, lr=0.1, weight_decay=0.5, lr_scale={"recurrence": 0.1})
    opt.step(grads)
    np.testing.assert_allclose(1.0 - params["nu_log"], 0.1, rtol=1e-6)
    np.testing.assert_allclose(1.0 - params["w"], 0.1 + 0.1 * 0.5, rtol=1e-6)
    params = {"b": np.ones(2)}
    opt = Adam(params, groups={"b": "slow"}, lr=0.1, lr_scale={"slow": 0.5})
    opt.step({"b": np.ones(2)})
    np.testing.assert_allclose(1.0 - params["b"], 0.05, rtol=1e-6)
    with pytest.raises(ValueError, match="groups must name exactly the parameters"):
        Adam(params, groups={"w": "decay"})


def test_model_declares_the_recurrence_group():
    model = Model(2, horizon=1, d_model=2, d_state=2, n_layers=1)
    groups = model.param_groups()
    assert set(groups) == set(model.parameters())
    assert {k for k, g in groups.items() if g == "recurrence"} == {
        f"blocks.0.{d}.{n}" for d in ("fwd", "bwd")
        for n in ("nu_log", "theta_log", "gamma_log")}


def test_clip_grad_norm():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt(grads["a"] ** 2 + grads["b"][0] ** 2) == pytest.approx(1.0)


def test_schedules():
    assert lr_at(0, base_lr=1.0, total_steps=100, warmup=10) == pytest.approx(0.1)
    assert lr_at(99, base_lr=1.0, total_steps=100, min_ratio=0.0) < 1e-3
    assert lr_at(25, base_lr=1.0, total_steps=100, kind="step", step_every=10,
                 step_gamma=0.5) == 0.25
    with pytest.raises(ValueError):
        lr_at(0, base_lr=1.0, total_steps=1, kind="bogus")


@pytest.mark.parametrize("kw", [
    dict(n_layers=2, merge="concat", seed=3),
    dict(n_layers=1, source_width=2, sources=[[2], [0, 1]], seed=4),
])
def test_save_load_round_trip(tmp_path, kw):
    model = Model(3, horizon=2, d_model=4, d_state=2, **kw)
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = Model.load(path)
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    with np.load(path, allow_pickle=False) as f:
        assert "__format__" in f.files


def test_checkpoints_before_source_encoders_and_lying_configs(tmp_path):
    model = Model(3, horizon=2, d_model=4, d_state=2, n_layers=1, source_width=2,
                  sources=[[2], [0, 1]], seed=4)
    assert model.parameters()["enc.U"].shape == (3, 4)
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    old = tmp_path / "old.npz"  # written before source encoders: no such config keys
    plain = Model(3, horizon=2, d_model=4, d_state=2, n_layers=1)
    from linrec.nn.checkpoint import write_checkpoint

    config = {k: v for k, v in plain.config.items() if k not in ("source_width", "sources")}
    write_checkpoint(old, "linrec.nn.Model/1", config,
                     {f"param/{k}": v for k, v in plain.host_parameters().items()})
    np.testing.assert_array_equal(Model.load(old).predict(x), plain.predict(x))
    lying = tmp_path / "lying.npz"  # a config claiming more sources than U holds
    write_checkpoint(lying, "linrec.nn.Model/1", {**model.config, "sources": None},
                     {f"param/{k}": v for k, v in model.host_parameters().items()})
    with pytest.raises(CheckpointError, match="source encoder"):
        Model.load(lying)


def test_bad_inputs():
    model = Model(3, horizon=2, d_model=4, d_state=2, n_layers=1)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ValueError, match="3 features"):
        model.predict(np.zeros((5, 3), np.float32))
    x = np.zeros((2, 5, 3), np.float32)
    x[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(x)
    with pytest.raises(ValueError, match="shape"):
        model.loss_and_grad(np.zeros((2, 5, 3)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="merge"):
        Model(3, merge="max")
    with pytest.raises(ValueError, match="source_width"):
        Model(3, source_width=-1)
    with pytest.raises(ValueError, match="needs source_width"):
        Model(3, sources=[[0, 1, 2]])
    with pytest.raises(ValueError, match="exactly once"):
        Model(3, source_width=2, sources=[[0, 1]])


def test_foreign_and_corrupt_checkpoints(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, W=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a linrec checkpoint"):
        Model.load(foreign)
    corrupt = tmp_path / "corrupt.npz"
    Model(3, horizon=2, d_model=4, d_state=2, n_layers=1).save(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable"):
        Model.load(corrupt)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        Model.load(text)
    with pytest.raises(FileNotFoundError):
        Model.load(tmp_path / "missing.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __format__=np.array("linrec.nn.Model/1"),
             __config__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        Model.load(pickled)


def test_checkpoint_of_another_shape(tmp_path):
    path = tmp_path / "m.npz"
    Model(3, horizon=2, d_model=4, d_state=2, n_layers=1).save(path)
    other = Model(3, horizon=2, d_model=6, d_state=2, n_layers=1)
    before = {k: v.copy() for k, v in other.parameters().items()}
    from linrec.nn.checkpoint import read_checkpoint as load_npz

    _, _, arrays = load_npz(path, ("linrec.nn.Model/1",))
    with pytest.raises(CheckpointError, match="another model shape"):
        other.set_parameters({k[6:]: v for k, v in arrays.items()}, source=str(path))
    for k, v in other.parameters().items():
        np.testing.assert_array_equal(v, before[k])
