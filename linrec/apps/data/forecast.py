"""The forecasting task: a series cut into chronological splits of normalised windows."""

from dataclasses import dataclass

import numpy as np

from linrec.apps.data.series import Series
from linrec.apps.data.windows import Standardiser, WindowSet, split_bounds, window_starts

__all__ = ["ForecastData", "make_forecast_data"]

SPLITS = ("train", "val", "test")


@dataclass
class ForecastData:
    """Windows of one series for train / val / test, plus what is needed to undo the
    normalisation. ``sets[split]`` is a :class:`WindowSet`; ``raw`` the unnormalised
    series; ``bounds[split]`` its row range."""

    series: Series
    sets: dict
    bounds: dict
    scaler: Standardiser
    lookback: int
    horizon: int

    @property
    def n_features(self):
        """Features per step of the model inputs."""
        return self.sets["train"].n_features

    def sources(self):
        """The model input columns grouped by source (lists of indices): the series'
        :meth:`~linrec.apps.data.series.Series.sources`, and with known-future inputs
        their extra last column (1 on the forecast steps) as a source of its own."""
        groups = self.series.sources()
        n = len(self.series.names)
        return groups + [[n]] if self.n_features > n else groups

    def to_units(self, y):
        """Normalised targets (..., n_targets) back to the data's units."""
        return self.scaler.inverse(y, self.series.target_columns)

    def raw_inputs(self, split):
        """Unnormalised input windows of ``split``: (n, lookback, F) float64."""
        s = self.sets[split].starts
        return self.series.values[s[:, None] + np.arange(self.lookback)]


def make_forecast_data(series, *, lookback=336, horizon=48, fractions=(0.7, 0.15, 0.15),
                       train_stride=1, eval_stride=None, known_future=(), dtype=np.float32):
    """Split ``series`` chronologically, normalise with training rows only, and window.

    Split boundaries fall on whole days (multiples of ``series.steps_per_day`` rows), so
    with a lookback of whole days every evaluation forecast starts at the same time of
    day as the series' first row.

    Training windows start every ``train_stride`` rows; validation and test windows
    every ``eval_stride`` rows (default: ``horizon``, one forecast per horizon).
    ``known_future`` names columns known ahead of time (e.g. calendar features): when
    not empty, input windows extend over the forecast steps with only those columns
    (see :class:`~linrec.apps.data.windows.WindowSet`).

    Raises
    ------
    ValueError
        A horizon or lookback longer than a split, bad fractions or strides, an unknown
        column in ``known_future``.
    """
    if not isinstance(series, Series):
        raise TypeError(f"series must be a Series, got {type(series).__name__}")
    if len(fractions) != 3:
        raise ValueError(f"fractions {fractions}: give three, for train, val and test")
    eval_stride = eval_stride or horizon
    day = series.steps_per_day
    days = split_bounds(len(series.values) // day, fractions)
    rows = [(a * day, b * day) for a, b in days]
    rows[-1] = (rows[-1][0], len(series.values))
    bounds = dict(zip(SPLITS, rows, strict=True))
    scaler = Standardiser(series.values[slice(*bounds["train"])])
    inputs = scaler.transform(series.values).astype(dtype)
    targets = inputs[:, series.target_columns]
    unknown = [c for c in known_future if c not in series.names]
    if unknown:
        raise ValueError(f"known_future names {unknown}, not columns of {series.names}")
    known = np.isin(series.names, known_future) if known_future else None
    sets = {}
    for split in SPLITS:
        stride = train_stride if split == "train" else eval_stride
        starts = window_starts(bounds[split], lookback, horizon, stride)
        sets[split] = WindowSet(inputs, targets, starts, lookback, horizon, known)
    return ForecastData(series, sets, bounds, scaler, lookback, horizon)
