"""Chronological splits, normalisation from training rows, and forecast windows.

A window starting at row s reads rows [s, s + lookback) as input and the target columns
of rows [s + lookback, s + lookback + horizon) as the forecast. Windows are drawn inside
one split only, so no window straddles a split boundary.
"""

import numpy as np

__all__ = ["split_bounds", "window_starts", "Standardiser", "WindowSet"]


def split_bounds(n_rows, fractions):
    """``[(start, stop), ...]`` of consecutive row ranges, one per fraction.

    ValueError unless the fractions are positive and sum to 1 (within 1e-9).
    """
    fractions = [float(f) for f in fractions]
    if any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions {fractions} must be positive and sum to 1")
    edges = np.round(np.cumsum([0.0] + fractions) * n_rows).astype(int)
    edges[-1] = n_rows
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def window_starts(bounds, lookback, horizon, stride=1):
    """Start rows of every window inside ``bounds = (start, stop)``, ``stride`` apart.

    ValueError when ``lookback + horizon`` exceeds the split's length (naming both), or
    when lookback, horizon or stride is not a positive integer.
    """
    start, stop = bounds
    for name, value in (("lookback", lookback), ("horizon", horizon), ("stride", stride)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value}; it must be a positive integer")
    need = lookback + horizon
    if need > stop - start:
        raise ValueError(
            f"lookback {lookback} + horizon {horizon} = {need} steps is longer than the "
            f"split of {stop - start} rows (rows {start}..{stop}); shorten the horizon or "
            f"lookback, or give the split more data"
        )
    return np.arange(start, stop - need + 1, stride, dtype=np.int64)


class Standardiser:
    """Per-column ``(v - mean) / std`` with mean and std fitted on given rows only.

    A constant column gets std 1 (it maps to 0), so the transform never divides by 0.
    """

    def __init__(self, rows):
        """Fit on ``rows`` (n, F) float; ValueError when empty."""
        if len(rows) == 0:
            raise ValueError("cannot fit a standardiser on zero rows")
        self.mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)

    @classmethod
    def from_stats(cls, mean, std):
        """The standardiser with the given per-column ``mean`` and ``std`` (F,) (as saved
        with a model); ValueError unless both are finite, of one shape, std > 0."""
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        finite = np.isfinite(mean).all() and np.isfinite(std).all()
        if mean.shape != std.shape or mean.ndim != 1 or not (finite and (std > 0).all()):
            raise ValueError(f"mean {mean.shape} and std {std.shape} must be finite "
                             f"vectors of one length with std > 0")
        self = cls.__new__(cls)
        self.mean, self.std = mean, std
        return self

    def transform(self, values):
        """``(values - mean) / std``; values (..., F)."""
        return (values - self.mean) / self.std

    def inverse(self, values, columns):
        """Back to data units for ``values`` (..., len(columns)) of the given columns."""
        return values * self.std[columns] + self.mean[columns]


class WindowSet:
    """Lazily gathered windows of a normalised series.

    Parameters
    ----------
    inputs : numpy.ndarray (T, F)
        Normalised input features (float32 or float64).
    targets : numpy.ndarray (T, n_targets)
        Normalised target columns.
    starts : numpy.ndarray of int
        Window start rows (from :func:`window_starts`).
    lookback, horizon : int
    known_future : numpy.ndarray of bool (F,), optional
        Columns known in advance (calendar, holidays). When given, each input window also
        covers the ``horizon`` forecast steps: the known columns keep their values there,
        the others are 0, and an extra last column flags those steps with 1. Then x has
        ``lookback + horizon`` steps and ``F + 1`` features.
    """

    def __init__(self, inputs, targets, starts, lookback, horizon, known_future=None):
        self.inputs, self.targets, self.starts = inputs, targets, np.asarray(starts)
        self.lookback, self.horizon = int(lookback), int(horizon)
        self.known_future = None if known_future is None else \
            np.asarray(known_future, dtype=inputs.dtype)

    def __len__(self):
        return len(self.starts)

    @property
    def n_features(self):
        """Features per step of the input windows."""
        return self.inputs.shape[1] + (self.known_future is not None)

    def subset(self, index):
        """The same windows restricted to ``self.starts[index]``."""
        return WindowSet(self.inputs, self.targets, self.starts[index], self.lookback,
                         self.horizon, self.known_future)

    def batch(self, index):
        """``(x, y)`` for the windows ``index`` (ints or a slice): x (b, steps,
        n_features), y (b, horizon, n_targets)."""
        s = self.starts[index]
        x = self.inputs[s[:, None] + np.arange(self.lookback)]
        future = s[:, None] + self.lookback + np.arange(self.horizon)
        y = self.targets[future]
        if self.known_future is not None:
            x_future = self.inputs[future] * self.known_future
            b, h = x_future.shape[:2]
            x = np.concatenate([
                np.concatenate([x, np.zeros((b, self.lookback, 1), x.dtype)], axis=2),
                np.concatenate([x_future, np.ones((b, h, 1), x.dtype)], axis=2),
            ], axis=1)
        return x, y

    def all(self):
        """``(x, y)`` of every window."""
        return self.batch(slice(None))
