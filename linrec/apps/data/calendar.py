"""Calendar features as sin/cos pairs: time of day, day of week, day of year."""

import numpy as np
import pandas as pd

__all__ = ["calendar_features", "CALENDAR_NAMES"]

CALENDAR_NAMES = ("tod_sin", "tod_cos", "dow_sin", "dow_cos", "doy_sin", "doy_cos")


def calendar_features(local_times):
    """Array (T, 6) float64 of ``CALENDAR_NAMES`` for a pandas DatetimeIndex/Series of
    local (wall-clock) times."""
    t = pd.DatetimeIndex(local_times)
    fractions = [
        (t.hour * 60 + t.minute) / 1440.0,
        t.day_of_week / 7.0,
        (t.day_of_year - 1) / 365.25,
    ]
    cols = []
    for frac in fractions:
        angle = 2.0 * np.pi * np.asarray(frac, dtype=np.float64)
        cols += [np.sin(angle), np.cos(angle)]
    return np.stack(cols, axis=1)
