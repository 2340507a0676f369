"""A multivariate time series: the one shape every forecasting loader returns."""

from dataclasses import dataclass

import numpy as np

__all__ = ["Series"]


@dataclass(frozen=True)
class Series:
    """Evenly spaced observations of several sources.

    Attributes
    ----------
    values : numpy.ndarray, float64, shape (T, F)
        One row per time step, one column per feature.
    names : tuple of str
        The F column names.
    targets : tuple of str
        The columns to forecast (a subset of ``names``).
    times : numpy.ndarray, datetime64, shape (T,)
        The time stamp of each row (UTC).
    steps_per_day : int
        Rows per day (48 for half-hourly data).
    known_future : tuple of str
        The columns known ahead of time (calendar, holidays): what the forecasting
        inputs may extend over the forecast steps with (``--known-future``).
    calendar : tuple of str
        The columns computed from the time stamps by
        :func:`~linrec.apps.data.calendar.calendar_features` (a subset of ``names``);
        the others are read from the data.
    timezone : str or None
        The zone whose wall-clock time the calendar columns follow (None: UTC).
    time_name : str
        The name of the time column in the data's table.

    Raises
    ------
    ValueError
        Shapes that disagree, unknown target names, or NaN/inf anywhere in ``values``
        (the message names the columns and the first bad row).
    """

    values: np.ndarray
    names: tuple
    targets: tuple
    times: np.ndarray
    steps_per_day: int
    known_future: tuple = ()
    calendar: tuple = ()
    timezone: str | None = None
    time_name: str = "time"

    def __post_init__(self):
        v = self.values
        if v.ndim != 2 or v.shape[1] != len(self.names) or len(self.times) != v.shape[0]:
            raise ValueError(
                f"values {v.shape}, {len(self.names)} names and {len(self.times)} times "
                f"disagree; need values (T, F) with F names and T times"
            )
        unknown = [t for t in self.targets if t not in self.names]
        if unknown or not self.targets:
            raise ValueError(f"targets {unknown or '()'} are not columns of {self.names}")
        for field in ("known_future", "calendar"):
            unknown = [c for c in getattr(self, field) if c not in self.names]
            if unknown:
                raise ValueError(f"{field} {unknown} are not columns of {self.names}")
        bad = ~np.isfinite(v)
        if bad.any():
            cols = [self.names[j] for j in np.flatnonzero(bad.any(axis=0))]
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise ValueError(
                f"the series has NaN or inf in column(s) {cols} (first at row {row}, "
                f"{self.times[row]}); fill or drop them before windowing"
            )

    def sources(self):
        """The columns grouped by source, as lists of indices into ``names``: each
        column read from the data is a source of its own, and the calendar columns
        (computed from the time stamps) form one source together."""
        own = [[j] for j, n in enumerate(self.names) if n not in self.calendar]
        calendar = [j for j, n in enumerate(self.names) if n in self.calendar]
        return own + ([calendar] if calendar else [])

    @property
    def target_columns(self):
        """Indices of the target columns in ``names``."""
        return [self.names.index(t) for t in self.targets]
