"""A trained forecasting model with everything prediction needs, saved as one file.

A :class:`Forecaster` holds the :class:`~linrec.nn.Model`, the normalisation statistics
of the training rows, and a spec: the time column, the columns in order with their roles
(targets, computed calendar features, the columns known ahead of time when the model
reads the forecast steps), lookback, horizon, the data's frequency and the calendar's
time zone (the quantile levels are in the model's config). :meth:`Forecaster.predict_table`
forecasts from the last rows of any CSV (or DataFrame) with those columns.

File format ``linrec.apps.Forecaster/1``: a checkpoint (:mod:`linrec.nn.checkpoint`, read
by its strict reader) whose config is ``{"model": <Model config>, "forecast": <spec>}``
and whose arrays are the model's ``param/*`` and ``scaler/mean``, ``scaler/std``.
``Model.load`` reads ``linrec.nn.Model/1`` files only; use :func:`Forecaster.load` here.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linrec._host import to_numpy
from linrec.apps.data.calendar import CALENDAR_NAMES, calendar_features
from linrec.apps.data.csv import frequency, local_times, read_table
from linrec.apps.data.windows import Standardiser, WindowSet
from linrec.nn.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from linrec.nn.model import Model

__all__ = ["Forecaster", "FORECASTER_FORMAT", "quantile_columns"]

FORECASTER_FORMAT = "linrec.apps.Forecaster/1"
SPEC_TYPES = {"time": str, "timezone": (str, type(None)), "freq": str, "names": list,
              "targets": list, "calendar": list, "known_future": (list, type(None)),
              "lookback": int, "horizon": int}


def quantile_columns(target, quantiles):
    """Output column names: ``target`` alone, or ``target_p10``, ... per level."""
    if quantiles is None:
        return [target]
    return [f"{target}_p{100 * q:g}" for q in quantiles]


@dataclass
class Forecaster:
    """A model, its normalisation and its data spec (see the module docstring).

    Attributes
    ----------
    model : linrec.nn.Model
    scaler : linrec.apps.data.Standardiser
        Fitted on the training rows, over every column of ``spec["names"]``.
    spec : dict
        ``time``, ``timezone``, ``freq`` (pandas frequency string), ``names``,
        ``targets``, ``calendar``, ``known_future`` (None: the model reads the past
        only), ``lookback``, ``horizon``.
    """

    model: Model
    scaler: Standardiser
    spec: dict

    @classmethod
    def from_data(cls, model, data, known_future=()):
        """The forecaster of ``model`` trained on ``data`` (a
        :class:`~linrec.apps.data.ForecastData`); ``known_future``: the columns its
        input windows extend over the forecast steps with (empty: none)."""
        s = data.series
        spec = dict(time=s.time_name, timezone=s.timezone,
                    freq=frequency(s.times[1] - s.times[0]), names=list(s.names),
                    targets=list(s.targets), calendar=list(s.calendar),
                    known_future=list(known_future) or None, lookback=data.lookback,
                    horizon=data.horizon)
        return cls(model, data.scaler, spec)

    @property
    def quantiles(self):
        """The model's quantile levels (list) or None."""
        return self.model.config["quantiles"]

    @property
    def step(self):
        """The time between rows (pandas.Timedelta)."""
        return pd.Timedelta(pd.tseries.frequencies.to_offset(self.spec["freq"]))

    def to_units(self, out):
        """Normalised forecasts (..., n_targets) or (..., n_targets, Q) in data units."""
        columns = [self.spec["names"].index(t) for t in self.spec["targets"]]
        if self.quantiles is None:
            return self.scaler.inverse(out, columns)
        return np.moveaxis(self.scaler.inverse(np.moveaxis(out, -1, 0), columns), 0, -1)

    def forecast_windows(self, x):
        """``(point, interval)`` in data units for normalised input windows x (n, steps,
        F) (NumPy): point (n, horizon, n_targets); with quantiles, the level nearest 0.5
        and ``interval = (lowest level, highest level)``, else ``interval = None``."""
        out = self.to_units(to_numpy(self.model.predict(self.model.xp.asarray(x))))
        if self.quantiles is None:
            return out, None
        mid = int(np.argmin(np.abs(np.asarray(self.quantiles) - 0.5)))
        return out[..., mid], (out[..., 0], out[..., -1])

    def _raw_columns(self):
        return [n for n in self.spec["names"] if n not in self.spec["calendar"]]

    def _future_columns(self):
        """Columns read from the table over the forecast steps."""
        known = self.spec["known_future"] or []
        return [c for c in self._raw_columns() if c in known]

    def inputs_from_table(self, source, *, fill="none"):
        """``(x, future_times)``: the model input (1, steps, F) built from the last rows
        of ``source`` (a CSV path or DataFrame with the spec's columns), and the
        forecast's time stamps (horizon,) datetime64[ns] UTC.

        The last ``lookback`` rows are the history. A model that reads known-future
        columns other than the calendar needs ``horizon`` more rows after them: the
        forecast steps, with those columns filled (the others may be empty).

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            Missing columns, too few rows, another frequency, or any problem
            :func:`~linrec.apps.data.csv.read_table` finds.
        """
        spec, step = self.spec, self.step
        lookback, horizon = spec["lookback"], spec["horizon"]
        future_columns = self._future_columns()
        n_future = horizon if future_columns else 0
        times, values, data_step = read_table(
            source, spec["time"], self._raw_columns(), fill=fill, future_rows=n_future,
            future_columns=future_columns)
        if data_step != step:
            raise ValueError(f"the data's time step is {data_step}, the model was trained "
                             f"on a step of {step}; resample the data to {spec['freq']}")
        if len(times) < lookback + n_future:
            extra = (f" followed by {horizon} forecast rows with {future_columns} filled"
                     if n_future else "")
            raise ValueError(f"the data has {len(times)} rows; the model needs the last "
                             f"{lookback} observed rows{extra}")
        times, values = times[len(times) - lookback - n_future:], \
            values[len(values) - lookback - n_future:]
        targets = [self._raw_columns().index(t) for t in spec["targets"]]
        if n_future and not np.isnan(values[lookback:, targets]).all():
            raise ValueError(f"the model reads {future_columns} over the forecast steps: "
                             f"end the data with the {horizon} rows of the forecast, "
                             f"{future_columns} filled and {spec['targets']} empty")
        if not n_future:
            ahead = times[-1] + step.to_timedelta64() * np.arange(1, horizon + 1)
            times = np.concatenate([times, ahead])
            values = np.concatenate([values, np.full((horizon, values.shape[1]), np.nan)])
        calendar = calendar_features(local_times(times, spec["timezone"]))
        raw = self._raw_columns()
        full = np.column_stack([
            calendar[:, CALENDAR_NAMES.index(n)] if n in spec["calendar"]
            else values[:, raw.index(n)] for n in spec["names"]])
        inputs = self.scaler.transform(full)
        inputs[np.isnan(inputs)] = 0.0  # forecast steps of columns the model never reads
        known = None if spec["known_future"] is None else \
            np.isin(spec["names"], spec["known_future"])
        window = WindowSet(inputs.astype(self.model.dtype),
                           np.zeros((len(inputs), len(spec["targets"])), self.model.dtype),
                           np.array([0]), lookback, horizon, known)
        return window.batch(np.array([0]))[0], times[lookback:]

    def predict_table(self, source, *, fill="none"):
        """The forecast from the last rows of ``source`` (see
        :meth:`inputs_from_table`) as a DataFrame: the time column (UTC), then per
        target one column, or one per quantile level (``Demand_p10``, ...), sorted so
        they never cross."""
        x, times = self.inputs_from_table(source, fill=fill)
        out = self.to_units(to_numpy(self.model.predict(self.model.xp.asarray(x))))[0]
        table = {self.spec["time"]: pd.DatetimeIndex(times)}
        for j, target in enumerate(self.spec["targets"]):
            columns = quantile_columns(target, self.quantiles)
            block = out[:, j, None] if self.quantiles is None else out[:, j]
            table.update({c: block[:, k] for k, c in enumerate(columns)})
        return pd.DataFrame(table)

    def save(self, path):
        """Write the forecaster to ``path`` (atomically, see the module docstring)."""
        arrays = {f"param/{k}": v for k, v in self.model.host_parameters().items()}
        arrays.update({"scaler/mean": self.scaler.mean, "scaler/std": self.scaler.std})
        write_checkpoint(path, FORECASTER_FORMAT,
                         {"model": self.model.config, "forecast": self.spec}, arrays)

    @classmethod
    def load(cls, path, xp=np):
        """The forecaster saved in ``path``.

        Raises
        ------
        FileNotFoundError
            No such file.
        CheckpointError
            Not a forecaster file, or a malformed one (a spec with missing or wrong
            fields, statistics or parameters that do not match the spec or model).
        """
        _, config, arrays = read_checkpoint(path, (FORECASTER_FORMAT,))
        if set(config) != {"model", "forecast"}:
            raise CheckpointError(f"{path}: the config must have the keys 'model' and "
                                  f"'forecast', got {sorted(config)}")
        spec = config["forecast"]
        _check_spec(spec, path)
        params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
        model = Model.from_arrays(config["model"], params, xp=xp, source=path)
        mc, n = model.config, len(spec["names"])
        if mc["task"] != "forecast" or mc["horizon"] != spec["horizon"] or \
                mc["n_targets"] != len(spec["targets"]) or \
                mc["n_features"] != n + (spec["known_future"] is not None):
            raise CheckpointError(f"{path}: the model config does not match the spec")
        try:
            scaler = Standardiser.from_stats(arrays.get("scaler/mean"),
                                             arrays.get("scaler/std"))
        except ValueError as err:
            raise CheckpointError(f"{path}: bad normalisation statistics ({err})") from None
        if scaler.mean.shape != (n,):
            raise CheckpointError(f"{path}: normalisation statistics for "
                                  f"{scaler.mean.shape} columns, the spec names {n}")
        return cls(model, scaler, spec)


def _check_spec(spec, path):
    """CheckpointError unless ``spec`` has exactly the fields of SPEC_TYPES, of their
    types, with column roles that refer to its names."""
    if not isinstance(spec, dict) or set(spec) != set(SPEC_TYPES):
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise CheckpointError(f"{path}: the forecast spec must have the fields "
                              f"{sorted(SPEC_TYPES)}, got {got}")
    wrong = [k for k, t in SPEC_TYPES.items()
             if not isinstance(spec[k], t) or isinstance(spec[k], bool)]
    if not wrong:
        names = spec["names"]
        roles = spec["targets"] + spec["calendar"] + (spec["known_future"] or [])
        wrong += [k for k, ok in (
            ("names", all(isinstance(c, str) for c in names) and
             len(set(names)) == len(names) and spec["time"] not in names),
            ("roles", all(c in names for c in roles) and spec["targets"]
             and set(spec["calendar"]) <= set(CALENDAR_NAMES)),
            ("lookback", spec["lookback"] >= 1 and spec["horizon"] >= 1)) if not ok]
        try:
            pd.tseries.frequencies.to_offset(spec["freq"])
        except ValueError:
            wrong.append("freq")
    if wrong:
        raise CheckpointError(f"{path}: invalid forecast spec field(s) {wrong}")
