"""Datasets and windowing: loaders return a :class:`Series`; :func:`make_forecast_data`
turns one into normalised train / val / test windows.

To add a dataset, write a loader that returns a :class:`Series` and register it in
``DATASETS``.
"""

from linrec.apps.data.digits import ArraySet, load_digits_sequences
from linrec.apps.data.forecast import ForecastData, make_forecast_data
from linrec.apps.data.series import Series
from linrec.apps.data.vic_elec import load_vic_elec
from linrec.apps.data.windows import Standardiser, WindowSet, split_bounds, window_starts

DATASETS = {"vic_elec": load_vic_elec}

__all__ = [
    "ArraySet", "DATASETS", "ForecastData", "Series", "Standardiser", "WindowSet",
    "load_digits_sequences", "load_vic_elec", "make_forecast_data", "split_bounds",
    "window_starts",
]
