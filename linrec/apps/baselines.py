"""Forecasting baselines: seasonal naive and a ridge-regularised linear model."""

import numpy as np

__all__ = ["seasonal_naive", "seasonal_period", "LinearForecaster", "ALPHAS"]

ALPHAS = tuple(10.0 ** np.arange(-2.0, 5.5, 0.5))


def seasonal_naive(inputs, columns, horizon, season):
    """Repeat the value ``season`` steps back: inputs (n, lookback, F) -> (n, horizon,
    len(columns)). ValueError unless ``horizon <= season <= lookback``."""
    lookback = inputs.shape[1]
    if not horizon <= season <= lookback:
        raise ValueError(
            f"seasonal naive needs horizon {horizon} <= season {season} <= lookback "
            f"{lookback}"
        )
    start = lookback - season
    return inputs[:, start:start + horizon][:, :, columns]


def seasonal_period(steps_per_day, lookback, horizon):
    """The seasonal naive lag: one week (``7 * steps_per_day``) capped at ``lookback``;
    ``lookback`` when that is shorter than ``horizon``."""
    season = min(7 * steps_per_day, lookback)
    return season if season >= horizon else lookback


class LinearForecaster:
    """Least squares from the flattened window (plus a constant) to the whole forecast,
    with a ridge penalty ``alpha`` chosen on a validation set.

    The normal equations are accumulated in chunks, so the design matrix is never held
    in memory; one eigendecomposition then gives the solution for every ``alpha``.
    """

    def __init__(self, alphas=ALPHAS):
        self.alphas = tuple(alphas)
        self.alpha = self.weights = self.target_shape = None

    @staticmethod
    def _design(x):
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return np.concatenate([x, np.ones((len(x), 1))], axis=1)

    def fit(self, train, val, *, chunk=2048):
        """Fit on every window of ``train``, choose alpha by validation MSE.

        ``train`` and ``val`` have ``__len__`` and ``batch(index) -> (x, y)`` (normalised
        windows). Returns self.
        """
        gram = rhs = None
        for i in range(0, len(train), chunk):
            x, y = train.batch(slice(i, i + chunk))
            a = self._design(x)
            y = np.asarray(y, np.float64).reshape(len(y), -1)
            gram = a.T @ a if gram is None else gram + a.T @ a
            rhs = a.T @ y if rhs is None else rhs + a.T @ y
        evals, evecs = np.linalg.eigh(gram)
        proj = evecs.T @ rhs
        xv, yv = val.all()
        self.target_shape = tuple(yv.shape[1:])
        av, yv = self._design(xv), np.asarray(yv, np.float64).reshape(len(yv), -1)
        best = None
        for alpha in self.alphas:
            w = evecs @ (proj / (evals + alpha)[:, None])
            err = float(((av @ w - yv) ** 2).mean())
            if best is None or err < best[0]:
                best = (err, alpha, w)
        _, self.alpha, self.weights = best
        return self

    def predict(self, x):
        """Forecasts (n, horizon, n_targets) for x (n, lookback, F)."""
        if self.weights is None:
            raise RuntimeError("call fit() before predict()")
        return (self._design(x) @ self.weights).reshape((len(x),) + self.target_shape)
