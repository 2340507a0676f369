"""Forecast accuracy in the data's own units."""

import math

import numpy as np

__all__ = ["forecast_metrics", "interval_coverage"]


def forecast_metrics(pred, actual):
    """``{"MAE", "RMSE", "MAPE"}`` (MAPE in percent) over every element of NumPy arrays of
    equal shape. MAPE is NaN (undefined) when ``actual`` has a zero. ValueError when the
    shapes differ."""
    pred, actual = np.asarray(pred, np.float64), np.asarray(actual, np.float64)
    if pred.shape != actual.shape:
        raise ValueError(f"prediction {pred.shape} and actual {actual.shape} differ")
    err = pred - actual
    mape = math.nan if np.any(actual == 0) else float(100.0 * np.abs(err / actual).mean())
    return {
        "MAE": float(np.abs(err).mean()),
        "RMSE": float(np.sqrt((err * err).mean())),
        "MAPE": mape,
    }


def interval_coverage(lower, upper, actual):
    """The fraction of ``actual`` values inside ``[lower, upper]`` (edges included), over
    every element of NumPy arrays of equal shape. ValueError when the shapes differ."""
    lower, upper, actual = (np.asarray(a, np.float64) for a in (lower, upper, actual))
    if not lower.shape == upper.shape == actual.shape:
        raise ValueError(f"lower {lower.shape}, upper {upper.shape} and actual "
                         f"{actual.shape}: the shapes differ")
    return float(((lower <= actual) & (actual <= upper)).mean())
