"""Your own data: a CSV file (or a pandas DataFrame) read as a forecasting series.

:func:`read_table` reads and checks the columns it is asked for; :func:`load_csv` turns
them into a :class:`~linrec.apps.data.series.Series` with calendar features, as the
``vic_elec`` loader does. Every problem is a ``ValueError`` naming the column, the line
of the file (the header is line 1) and what to do: missing columns, time stamps that do
not parse, are duplicated, unsorted or unevenly spaced, gaps in the time index, values
that are not numbers, and missing values. Gaps and missing values may instead be filled
by linear interpolation in time (``fill="interpolate"``, ``--fill interpolate``).

Time stamps without a zone are read as written; ones with a UTC offset are converted to
UTC. Calendar features follow the wall-clock time of ``timezone`` (None: the time stamps
as read).
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from linrec.apps.data.calendar import CALENDAR_NAMES, calendar_features
from linrec.apps.data.series import Series

__all__ = ["FILLS", "load_csv", "read_table", "local_times", "frequency", "steps_per_day"]

FILLS = ("none", "interpolate")
DAY = pd.Timedelta(days=1)


def _line(row):
    """The file line of data row ``row`` (the header is line 1)."""
    return int(row) + 2


def _stamp(t):
    return str(pd.Timestamp(t))


def _read_frame(source, time, columns):
    if isinstance(source, pd.DataFrame):
        frame, where = source.reset_index(drop=True), "the table"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"CSV file {path} does not exist")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a readable CSV file ({err})") from None
        where = str(path)
    missing = [c for c in [time, *columns] if c not in frame.columns]
    if missing:
        raise ValueError(f"{where} has no column(s) {missing}; its columns are "
                         f"{list(frame.columns)} (name them with --time, --target, "
                         f"--features, --known-future)")
    if len(frame) < 2:
        raise ValueError(f"{where} has {len(frame)} data row(s); a series needs at least 2")
    return frame, where


def _parse_times(frame, time, where):
    """UTC time stamps as datetime64[ns] (T,); ValueError naming the first line whose
    time does not parse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
        parsed = pd.to_datetime(frame[time], utc=True, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        row = bad[0]
        raise ValueError(f"{where}, column {time!r}, line {_line(row)}: "
                         f"{frame[time].iloc[row]!r} is not a date/time (in the format of "
                         f"the first rows); {len(bad)} such line(s); fix or drop them")
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def _check_spacing(times, where, time, step, fill):
    """The series' step (a Timedelta) after checking that ``times`` increase by it,
    with only whole missing steps (gaps) allowed when ``fill`` is "interpolate"."""
    diffs = np.diff(times)
    for kind, rows in (("duplicate", np.flatnonzero(diffs == np.timedelta64(0))),
                       ("unsorted", np.flatnonzero(diffs < np.timedelta64(0)))):
        if len(rows):
            r = rows[0]
            fix = ("drop or aggregate the duplicates" if kind == "duplicate"
                   else f"sort the file by {time!r}")
            raise ValueError(f"{where}, column {time!r}: {kind} time stamps: line "
                             f"{_line(r + 1)} ({_stamp(times[r + 1])}) after line "
                             f"{_line(r)} ({_stamp(times[r])}); {fix}")
    if step is None:
        values, counts = np.unique(diffs, return_counts=True)
        step = values[np.argmax(counts)]
    step = pd.Timedelta(step)
    nanos = diffs.astype(np.int64)
    uneven = np.flatnonzero(nanos % step.value != 0)
    if len(uneven):
        r = uneven[0]
        raise ValueError(f"{where}, column {time!r}: line {_line(r)} "
                         f"({_stamp(times[r])}) to line {_line(r + 1)} "
                         f"({_stamp(times[r + 1])}) is {pd.Timedelta(diffs[r])}, not a "
                         f"multiple of the series' step {step}; resample the data to one "
                         f"fixed frequency")
    gaps = np.flatnonzero(nanos > step.value)
    if len(gaps) and fill != "interpolate":
        r = gaps[0]
        missing = int(nanos[r] // step.value) - 1
        raise ValueError(f"{where}, column {time!r}: {missing} missing time step(s) of "
                         f"{step} between line {_line(r)} ({_stamp(times[r])}) and "
                         f"line {_line(r + 1)} ({_stamp(times[r + 1])}), {len(gaps)} "
                         f"gap(s) in all; add "
                         f"the rows, or pass --fill interpolate (fill='interpolate') to "
                         f"fill them linearly in time")
    return step


def _numbers(frame, column, where):
    """The column as float64 (bool as 0/1, empty cells as NaN); ValueError naming the
    first line that holds something else than a number, or inf."""
    raw = frame[column]
    if raw.dtype == bool:
        return raw.to_numpy(np.float64)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero((np.isnan(values) & raw.notna().to_numpy()) | np.isinf(values))
    if len(bad):
        row = bad[0]
        raise ValueError(f"{where}, column {column!r}, line {_line(row)}: "
                         f"{raw.iloc[row]!r} is not a finite number ({len(bad)} such "
                         f"line(s)); use numbers only, an empty cell for a missing value")
    return values


def read_table(source, time, columns, *, fill="none", step=None, future_rows=0,
               future_columns=()):
    """Read and check ``columns`` of a CSV file or DataFrame against its time column.

    Parameters
    ----------
    source : path or pandas.DataFrame
    time : str
        The time column.
    columns : sequence of str
        The value columns to read, in order.
    fill : {"none", "interpolate"}
        "interpolate" adds the rows of gaps in the time index and fills missing values
        linearly in time (constant before the first and after the last value).
    step : pandas.Timedelta, optional
        The expected step between rows (default: the most common one).
    future_rows : int
        The last ``future_rows`` rows may leave every column but ``future_columns``
        empty (forecast steps with values known ahead); they are not filled.

    Returns
    -------
    times : numpy.ndarray datetime64[ns] (T,), UTC
    values : numpy.ndarray float64 (T, len(columns)), NaN only in the future rows
    step : pandas.Timedelta

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Anything else wrong with the data, naming the column, the line and the fix.
    """
    if fill not in FILLS:
        raise ValueError(f"fill={fill!r}; use one of {FILLS}")
    frame, where = _read_frame(source, time, columns)
    times = _parse_times(frame, time, where)
    step = _check_spacing(times, where, time, step, fill)
    values = np.column_stack([_numbers(frame, c, where) for c in columns])
    lines = np.arange(len(times))
    if fill == "interpolate":
        grid = np.arange(times[0], times[-1] + step.to_timedelta64(), step.to_timedelta64())
        index = ((times - times[0]) // step.to_timedelta64()).astype(np.int64)
        full = np.full((len(grid), len(columns)), np.nan)
        full[index] = values
        times, values, lines = grid, full, np.full(len(grid), -1)
        lines[index] = np.arange(len(index))
    history = len(times) - future_rows
    needed = np.ones_like(values, dtype=bool)
    needed[history:] = np.isin(columns, future_columns)
    for j, column in enumerate(columns):
        rows = np.flatnonzero(np.isnan(values[:, j]) & needed[:, j])
        if not len(rows):
            continue
        if fill == "interpolate":
            span = slice(None) if needed[-1, j] else slice(0, history)
            known = np.flatnonzero(~np.isnan(values[span, j]))
            if not len(known):
                raise ValueError(f"{where}, column {column!r}: no values to interpolate "
                                 f"from")
            x = np.arange(len(values[span, j]))
            values[span, j] = np.interp(x, known, values[span, j][known])
            continue
        r = rows[0]
        raise ValueError(f"{where}, column {column!r}: {len(rows)} missing value(s), the "
                         f"first on line {_line(lines[r])} ({_stamp(times[r])}); fill "
                         f"them in the file, or pass --fill interpolate "
                         f"(fill='interpolate') to fill them linearly in time")
    return times, values, step


def local_times(times, timezone):
    """Wall-clock times of UTC ``times`` in ``timezone`` (None: unchanged); ValueError
    for an unknown zone."""
    if timezone is None:
        return pd.DatetimeIndex(times)
    try:
        return pd.DatetimeIndex(times).tz_localize("UTC").tz_convert(timezone) \
            .tz_localize(None)
    except Exception as err:  # noqa: BLE001 - pytz and zoneinfo raise different errors
        raise ValueError(f"timezone {timezone!r} is not a known time zone ({err}); use an "
                         f"IANA name such as 'Europe/Paris'") from None


def frequency(step):
    """The pandas frequency string of a step (``"30min"``, ``"h"``, ``"24h"``)."""
    return to_offset(pd.Timedelta(step)).freqstr


def steps_per_day(step):
    """Rows per day for a step that divides a day, else 1."""
    step = pd.Timedelta(step)
    return int(DAY // step) if step <= DAY and DAY % step == pd.Timedelta(0) else 1


def load_csv(source, *, time, targets, features=(), known_future=(), fill="none",
             timezone=None):
    """A :class:`~linrec.apps.data.series.Series` from a CSV file or DataFrame.

    Columns, in order: ``targets`` (forecast), ``features`` (observed up to the forecast
    time only), ``known_future`` (known ahead, e.g. planned events), then the calendar
    features ``CALENDAR_NAMES`` of ``timezone``'s wall-clock time. The series'
    ``known_future`` is ``known_future`` plus the calendar.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        No target, a column named twice or named like a calendar feature, and every
        problem :func:`read_table` finds.
    """
    targets, features, known_future = (tuple(c) for c in (targets, features,
                                                           known_future))
    if not targets:
        raise ValueError("name at least one target column (--target)")
    columns = targets + features + known_future
    twice = sorted({c for c in columns if columns.count(c) > 1} | ({time} & set(columns)))
    if twice:
        raise ValueError(f"column(s) {twice} are named more than once among --time, "
                         f"--target, --features and --known-future; give each one role")
    clash = sorted(set(columns) & set(CALENDAR_NAMES))
    if clash:
        raise ValueError(f"column(s) {clash} have the names of calendar features, which "
                         f"are computed from the time stamps; rename them")
    times, values, step = read_table(source, time, columns, fill=fill)
    calendar = calendar_features(local_times(times, timezone))
    return Series(values=np.column_stack([values, calendar]),
                  names=columns + CALENDAR_NAMES, targets=targets, times=times,
                  steps_per_day=steps_per_day(step),
                  known_future=known_future + CALENDAR_NAMES, calendar=CALENDAR_NAMES,
                  timezone=timezone, time_name=time)
