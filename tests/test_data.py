"""Data loading, splits, normalisation and windows."""

import numpy as np
import pandas as pd
import pytest

from linrec.apps.data import (
    Series,
    Standardiser,
    load_digits_sequences,
    load_vic_elec,
    make_forecast_data,
    split_bounds,
    window_starts,
)


@pytest.fixture(scope="module")
def vic_elec():
    return load_vic_elec()


def _toy_series(n=600, nan_at=None):
    rng = np.random.default_rng(0)
    values = np.column_stack([np.arange(n, dtype=float), rng.standard_normal(n)])
    if nan_at is not None:
        values[nan_at, 1] = np.nan
    times = np.arange(n).astype("datetime64[h]")
    return Series(values, ("y", "z"), ("y",), times, steps_per_day=24)


def test_series_known_future_must_name_columns():
    s = _toy_series()
    with pytest.raises(ValueError, match="known_future"):
        Series(s.values, s.names, s.targets, s.times, s.steps_per_day,
               known_future=("holiday",))


def test_vic_elec_columns_and_calendar(vic_elec):
    assert vic_elec.values.shape == (52608, 9)
    assert vic_elec.names[:3] == ("Demand", "Temperature", "Holiday")
    assert vic_elec.target_columns == [0]
    assert np.isfinite(vic_elec.values).all()
    tod = np.arctan2(vic_elec.values[:, 3], vic_elec.values[:, 4]) % (2 * np.pi)
    assert tod[0] == pytest.approx(0.0)
    assert tod[1] == pytest.approx(2 * np.pi / 48)
    assert set(np.unique(vic_elec.values[:, 2])) == {0.0, 1.0}
    assert vic_elec.sources() == [[0], [1], [2], [3, 4, 5, 6, 7, 8]]


def test_sources_without_calendar_columns():
    assert _toy_series().sources() == [[0], [1]]


def test_splits_are_chronological_and_windows_never_straddle(vic_elec):
    data = make_forecast_data(vic_elec, lookback=336, horizon=48)
    bounds = [data.bounds[s] for s in ("train", "val", "test")]
    assert bounds[0][0] == 0 and bounds[-1][1] == len(vic_elec.values)
    assert all(a[1] == b[0] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    for split, (lo, hi) in data.bounds.items():
        starts = data.sets[split].starts
        assert starts.min() >= lo and starts.max() + 336 + 48 <= hi
    x, y = data.sets["val"].batch(np.array([0, 3]))
    assert x.shape == (2, 336, 9) and y.shape == (2, 48, 1)
    s = data.sets["val"].starts[3]
    np.testing.assert_allclose(data.to_units(y[1]), vic_elec.values[s + 336:s + 384, :1],
                               rtol=1e-5)


def test_normalisation_uses_training_rows_only(vic_elec):
    data = make_forecast_data(vic_elec)
    lo, hi = data.bounds["train"]
    np.testing.assert_allclose(data.scaler.mean, vic_elec.values[lo:hi].mean(axis=0))
    train_inputs = data.sets["train"].inputs[lo:hi]
    np.testing.assert_allclose(train_inputs.mean(axis=0), 0.0, atol=1e-4)
    assert abs(data.sets["test"].inputs[data.bounds["test"][0]:].mean()) > 1e-3


def test_known_future_windows():
    data = make_forecast_data(_toy_series(), lookback=48, horizon=24,
                              fractions=(0.5, 0.25, 0.25), known_future=("z",))
    x, y = data.sets["train"].batch(np.array([0]))
    assert x.shape == (1, 72, 3) and data.n_features == 3
    assert np.all(x[0, 48:, 0] == 0) and np.all(x[0, 48:, 2] == 1)
    assert np.all(x[0, :48, 2] == 0)
    np.testing.assert_array_equal(x[0, 48:, 1], data.sets["train"].inputs[48:72, 1])


def test_horizon_longer_than_split():
    with pytest.raises(ValueError, match="horizon 500"):
        make_forecast_data(_toy_series(), lookback=48, horizon=500)
    with pytest.raises(ValueError, match="positive integer"):
        window_starts((0, 100), 10, 0)


def test_nan_in_data_is_an_error():
    with pytest.raises(ValueError, match=r"NaN or inf in column\(s\) \['z'\]"):
        _toy_series(nan_at=17)
    frame = pd.DataFrame({"Time": ["2012-01-01T00:00:00Z", "2012-01-01T00:30:00Z"],
                          "Demand": [1.0, np.nan], "Temperature": [1.0, 2.0],
                          "Holiday": [True, False]})
    with pytest.raises(ValueError, match="Demand"):
        load_vic_elec(frame)
    with pytest.raises(ValueError, match="lacks"):
        load_vic_elec(frame.drop(columns="Temperature"))


def test_split_bounds_and_standardiser():
    assert split_bounds(10, (0.5, 0.3, 0.2)) == [(0, 5), (5, 8), (8, 10)]
    with pytest.raises(ValueError):
        split_bounds(10, (0.5, 0.6))
    s = Standardiser(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(s.transform(np.array([[2.0, 5.0]])), [[0.0, 0.0]])


def test_digits():
    sets = load_digits_sequences(seed=0)
    x, y = sets["train"].all()
    assert x.shape[1:] == (64, 1) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    assert sum(len(s) for s in sets.values()) == 1797
    assert set(np.unique(y)) == set(range(10))
