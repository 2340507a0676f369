"""The sharded training step (linrec.nn.shards) against the whole-batch reference
(``workers=1``): same loss and gradients on awkward batch sizes and shard counts."""

import multiprocessing
import platform
import sys

import numpy as np
import pytest

from linrec.nn import Model, shards
from linrec.nn._memory import keep_freed_memory
from linrec.nn.shards import shard_slices

SMALL = dict(d_model=5, d_state=3, n_layers=2, dtype=np.float64)


@pytest.mark.parametrize("n_rows, workers", [(1, 2), (5, 2), (7, 3), (3, 8), (16, 5)])
def test_shard_slices_cover_the_batch_evenly(n_rows, workers):
    slices = shard_slices(n_rows, workers)
    assert len(slices) == min(n_rows, workers)
    rows = np.concatenate([np.arange(n_rows)[s] for s in slices])
    np.testing.assert_array_equal(rows, np.arange(n_rows))
    sizes = [s.stop - s.start for s in slices]
    assert max(sizes) - min(sizes) <= 1


def make_problem(task, batch, T=7):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, T, 4))
    if task == "classify":
        model = Model(4, task="classify", n_classes=3, seed=1, **SMALL)
        return model, x, rng.integers(0, 3, size=batch)
    quantiles = (0.1, 0.5, 0.9) if task == "quantiles" else None
    model = Model(4, horizon=3, n_targets=2, pool="window", quantiles=quantiles, seed=1,
                  **SMALL)
    return model, x, rng.standard_normal((batch, 3, 2))


@pytest.mark.parametrize("task", ["forecast", "quantiles", "classify"])
@pytest.mark.parametrize("batch, workers", [(2, 2), (5, 2), (7, 3), (3, 4)])
def test_sharded_step_matches_the_whole_batch(task, batch, workers, monkeypatch):
    model, x, y = make_problem(task, batch)
    calls = []

    original = shards.sharded_loss_and_grad

    def spy(*args):
        calls.append(args[-1])
        return original(*args)

    monkeypatch.setattr(shards, "sharded_loss_and_grad", spy)
    loss, grads = model.loss_and_grad(x, y, workers=1)
    assert calls == []
    sharded_loss, sharded = model.loss_and_grad(x, y, workers=workers)
    assert calls == [workers]
    assert set(sharded) == set(grads)
    np.testing.assert_allclose(sharded_loss, loss, rtol=1e-13)
    for k, g in grads.items():
        np.testing.assert_allclose(sharded[k], g, rtol=1e-11, atol=1e-13, err_msg=k)


def test_sharded_dropout_is_reproducible_and_active():
    model = Model(4, horizon=3, dropout=0.5, seed=1, **SMALL)
    x = np.random.default_rng(0).standard_normal((6, 7, 4))
    y = np.zeros((6, 3, 1))

    def run(seed, workers):
        return model.loss_and_grad(x, y, rng=np.random.default_rng(seed), workers=workers)

    first, again = run(3, 2), run(3, 2)
    assert first[0] == again[0]
    for k in first[1]:
        np.testing.assert_array_equal(first[1][k], again[1][k])
    assert first[0] != model.loss_and_grad(x, y, workers=2)[0]


def test_bad_input_is_refused_before_sharding():
    model, x, y = make_problem("forecast", 4)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="workers"):
            model.loss_and_grad(x, y, workers=bad)
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match="workers"):
            model.loss_and_grad(x, y, workers=bad)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.loss_and_grad(np.full_like(x, np.nan), y, workers=2)
    with pytest.raises(ValueError, match="features per step"):
        model.loss_and_grad(x[..., :2], y, workers=2)


def _sharded_loss(_):
    model, x, y = make_problem("forecast", 4)
    return model.loss_and_grad(x, y, workers=2)[0]


def test_a_forked_child_gets_its_own_shard_threads():
    loss = _sharded_loss(None)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_sharded_loss, (None,)).get(timeout=60) == loss


def test_keep_freed_memory_sets_glibc_once():
    first = keep_freed_memory()
    assert keep_freed_memory() is first
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert first is glibc
