"""Your own CSV: train on it, save, predict from a fresh process; the messages for bad
files; interpolation on request; the forecaster file's checks."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from linrec.apps.baselines import seasonal_period
from linrec.apps.cli import main
from linrec.apps.data import make_forecast_data
from linrec.apps.data.csv import load_csv, read_table
from linrec.apps.forecaster import FORECASTER_FORMAT, Forecaster
from linrec.apps.metrics import forecast_metrics
from linrec.nn import CheckpointError, Model
from linrec.nn.checkpoint import read_checkpoint, write_checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--d-model", "4",
        "--d-state", "2", "--layers", "1", "--quiet", "--lookback", "48", "--horizon",
        "12", "--train-stride", "12", "--linear-strides", "12"]


def shop_frame(days=30):
    """Hourly sales with a temperature (past only) and a promotion flag (known ahead)."""
    rng = np.random.default_rng(0)
    t = pd.date_range("2021-03-01", periods=24 * days, freq="h")
    hours = np.arange(len(t))
    temp = 10 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, len(t))
    promo = (rng.random(len(t)) < 0.1).astype(float)
    sales = 50 + 10 * np.sin(2 * np.pi * hours / 24) + 5 * promo + rng.normal(0, 1, len(t))
    return pd.DataFrame({"when": t.strftime("%Y-%m-%d %H:%M"), "sales": sales,
                         "temp": temp, "promo": promo})


def _predict_in_fresh_process(model, csv, out):
    subprocess.run([sys.executable, "-m", "linrec", "predict", "--model", str(model),
                    "--csv", str(csv), "--out", str(out)], check=True, cwd=ROOT,
                   capture_output=True, text=True)
    return pd.read_csv(out)


@pytest.mark.parametrize("known", [False, True], ids=["past-only", "known-future"])
def test_train_on_a_csv_then_predict_from_a_fresh_process(tmp_path, capsys, known):
    frame = shop_frame()
    frame.to_csv(tmp_path / "shop.csv", index=False)
    run = tmp_path / "run"
    roles = ["--features", "temp"] + (["--known-future", "promo"] if known else
                                      ["promo"])
    argv = ["demo", "--csv", str(tmp_path / "shop.csv"), "--time", "when", "--target",
            "sales", *roles, "--out", str(run), *TINY]
    if known:
        argv += ["--quantiles", "0.1,0.5,0.9"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "shop.csv: 12-step forecast" in table and "BLUR" in table
    # The in-process forecast: the training pipeline's last test window.
    series = load_csv(tmp_path / "shop.csv", time="when", targets=["sales"],
                      features=["temp"] + ["promo"] * (not known),
                      known_future=["promo"] * known)
    data = make_forecast_data(series, lookback=48, horizon=12,
                              known_future=series.known_future if known else ())
    test = data.sets["test"]
    start = int(test.starts[-1])
    forecaster = Forecaster.load(run / "blur_model.npz")
    point, band = forecaster.forecast_windows(test.batch(np.array([len(test) - 1]))[0])
    # What a user would hand to predict: the data up to the forecast time (plus, for a
    # model that reads promo ahead, the forecast rows with promo filled, the rest empty).
    rows = frame.iloc[:start + 48 + 12 * known].copy()
    if known:
        rows.loc[rows.index[-12:], ["sales", "temp"]] = np.nan
    rows.to_csv(tmp_path / "recent.csv", index=False)
    got = _predict_in_fresh_process(run / "blur_model.npz", tmp_path / "recent.csv",
                                    tmp_path / "forecast.csv")
    want_times = pd.to_datetime(frame["when"].iloc[start + 48:start + 60]).to_numpy()
    np.testing.assert_array_equal(pd.to_datetime(got["when"]).to_numpy(), want_times)
    if known:
        assert list(got.columns) == ["when", "sales_p10", "sales_p50", "sales_p90"]
        np.testing.assert_allclose(got["sales_p50"], point[0, :, 0], rtol=1e-6)
        np.testing.assert_allclose(got["sales_p10"], band[0][0, :, 0], rtol=1e-6)
        np.testing.assert_allclose(got["sales_p90"], band[1][0, :, 0], rtol=1e-6)
        coverage = json.loads((run / "results.json").read_text())["metrics"]["test"]
        assert 0.0 <= coverage["BLUR"]["coverage"] <= 1.0
        assert "interval covers" in table
    else:
        assert list(got.columns) == ["when", "sales"]
        np.testing.assert_allclose(got["sales"], point[0, :, 0], rtol=1e-6)


def _bad(frame, change):
    frame = frame.copy()
    change(frame)
    return frame


BAD = {
    "missing column": (lambda f: f.drop(columns="temp", inplace=True),
                       ["no column(s) ['temp']", "its columns are"]),
    "time does not parse": (lambda f: f.loc.__setitem__((5, "when"), "yesterday"),
                            ["'when'", "line 7", "'yesterday'", "not a date/time"]),
    "gap": (lambda f: f.drop(index=[10, 11], inplace=True),
            ["'when'", "2 missing time step(s)", "line 11", "line 12",
             "--fill interpolate"]),
    "duplicate": (lambda f: f.loc.__setitem__((4, "when"), f.loc[3, "when"]),
                  ["duplicate time stamps", "line 6", "line 5", "drop or aggregate"]),
    "unsorted": (lambda f: f.loc.__setitem__((4, "when"), "2021-03-01 01:30"),
                 ["unsorted", "line 6 (2021-03-01 01:30:00) after line 5",
                  "sort the file by 'when'"]),
    "uneven": (lambda f: f.loc.__setitem__((4, "when"), "2021-03-01 03:30"),
               ["line 6", "not a multiple of the series' step", "resample"]),
    "NaN": (lambda f: f.loc.__setitem__((8, "temp"), np.nan),
            ["column 'temp'", "1 missing value(s)", "line 10", "--fill interpolate"]),
    "not a number": (lambda f: f.__setitem__("sales", f["sales"].astype(object))
                     or f.loc.__setitem__((3, "sales"), "12,5"),
                     ["column 'sales'", "line 5", "'12,5'", "not a finite number"]),
    "inf": (lambda f: f.loc.__setitem__((6, "sales"), np.inf),
            ["column 'sales'", "line 8", "not a finite number"]),
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_csv_gets_a_message_naming_column_line_and_fix(tmp_path, name):
    change, words = BAD[name]
    _bad(shop_frame(days=3), change).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError) as err:
        load_csv(tmp_path / "bad.csv", time="when", targets=["sales"],
                 features=["temp"])
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_the_command_line_reports_a_bad_csv_without_a_traceback(tmp_path):
    _bad(shop_frame(days=3), BAD["NaN"][0]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SystemExit, match="column 'temp': 1 missing value"):
        main(["demo", "--csv", str(tmp_path / "bad.csv"), "--time", "when", "--target",
              "sales", "--features", "temp", "--out", str(tmp_path / "run"), *TINY])


@pytest.mark.parametrize("argv, words", [
    (["--csv", "x.csv", "--target", "sales"], "--csv needs --time"),
    (["--time", "when"], "--time name columns of --csv"),
    (["--fill", "interpolate"], "--fill name columns of --csv"),
    (["--quantiles", "0.1,0.9"], "with 0.5"),
    (["--quantiles", "0.5,0.9"], "on each side"),
])
def test_inconsistent_csv_arguments_are_refused(argv, words, capsys):
    with pytest.raises(SystemExit) as err:
        main(["demo", *argv])
    assert err.value.code == 2
    assert words in capsys.readouterr().err


def test_roles_given_twice_or_named_like_calendar_columns_are_refused():
    frame = shop_frame(days=3)
    with pytest.raises(ValueError, match=r"\['temp'\] are named more than once"):
        load_csv(frame, time="when", targets=["sales"], features=["temp"],
                 known_future=["temp"])
    with pytest.raises(ValueError, match="names of calendar features"):
        load_csv(frame.rename(columns={"temp": "tod_sin"}), time="when",
                 targets=["sales"], features=["tod_sin"])


def test_fill_interpolate_fills_gaps_and_missing_values_linearly_in_time():
    frame = pd.DataFrame({"t": ["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 04:00",
                                "2020-01-01 05:00", "2020-01-01 06:00"],
                          "v": [0.0, 1.0, 4.0, np.nan, 10.0]})
    times, values, step = read_table(frame, "t", ["v"], fill="interpolate")
    assert step == pd.Timedelta("1h")
    np.testing.assert_array_equal(times, pd.date_range("2020-01-01", periods=7,
                                                       freq="h").to_numpy())
    np.testing.assert_array_equal(values[:, 0], [0, 1, 2, 3, 4, 7, 10])


def test_predict_refuses_data_it_cannot_use(tmp_path):
    frame = shop_frame(days=20)
    series = load_csv(frame, time="when", targets=["sales"], features=["temp"],
                      known_future=["promo"])
    data = make_forecast_data(series, lookback=48, horizon=12,
                              known_future=series.known_future)
    model = Model(data.n_features, horizon=12, pool="tail", d_model=4, d_state=2,
                  n_layers=1)
    forecaster = Forecaster.from_data(model, data, series.known_future)
    with pytest.raises(ValueError, match=r"reads \['promo'\] over the forecast steps"):
        forecaster.predict_table(frame)
    with pytest.raises(ValueError, match="needs the last 48 observed rows followed by 12"):
        forecaster.predict_table(frame.iloc[:30])
    daily = frame.iloc[::24].copy()
    with pytest.raises(ValueError, match="trained on a step of 0 days 01:00:00"):
        forecaster.predict_table(daily)
    with pytest.raises(ValueError, match=r"no column\(s\) \['promo'\]"):
        forecaster.predict_table(frame.drop(columns="promo"))


def test_forecaster_file_round_trip_and_strict_reading(tmp_path):
    series = load_csv(shop_frame(days=20), time="when", targets=["sales"],
                      features=["temp", "promo"], timezone="Europe/Paris")
    data = make_forecast_data(series, lookback=48, horizon=12)
    model = Model(data.n_features, horizon=12, pool="window", d_model=4, d_state=2,
                  n_layers=1, quantiles=[0.1, 0.5, 0.9])
    path = tmp_path / "f.npz"
    Forecaster.from_data(model, data).save(path)
    loaded = Forecaster.load(path)
    assert loaded.spec["timezone"] == "Europe/Paris" and loaded.spec["freq"] == "h"
    assert loaded.quantiles == [0.1, 0.5, 0.9]
    x = data.sets["test"].all()[0]
    np.testing.assert_array_equal(loaded.model.predict(x), model.predict(x))
    with pytest.raises(CheckpointError, match="linrec.nn.Model/1"):
        Model.load(path)
    _, config, arrays = read_checkpoint(path, (FORECASTER_FORMAT,))
    for field, value in (("lookback", "48"), ("targets", ["nope"]), ("freq", "bogus")):
        broken = json.loads(json.dumps(config))
        broken["forecast"][field] = value
        write_checkpoint(tmp_path / "bad.npz", FORECASTER_FORMAT, broken, arrays)
        with pytest.raises(CheckpointError, match=field if field != "targets" else "roles"):
            Forecaster.load(tmp_path / "bad.npz")
    short = {**arrays, "scaler/std": arrays["scaler/std"][:-1]}
    write_checkpoint(tmp_path / "bad.npz", FORECASTER_FORMAT, config, short)
    with pytest.raises(CheckpointError, match="normalisation statistics"):
        Forecaster.load(tmp_path / "bad.npz")


def test_seasonal_period_and_mape_with_zeros():
    assert seasonal_period(48, 336, 48) == 336
    assert seasonal_period(24, 48, 12) == 48
    assert seasonal_period(1, 28, 14) == 28    # daily data, two-week horizon
    assert seasonal_period(1, 28, 7) == 7
    m = forecast_metrics(np.array([1.0, 2.0]), np.array([0.0, 2.0]))
    assert m["MAE"] == 0.5 and np.isnan(m["MAPE"])


def test_predict_command_names_what_is_wrong(tmp_path):
    Model(3, horizon=2, d_model=4, d_state=2, n_layers=1).save(tmp_path / "bare.npz")
    shop_frame(days=3).to_csv(tmp_path / "shop.csv", index=False)
    argv = ["predict", "--csv", str(tmp_path / "shop.csv"), "--out",
            str(tmp_path / "f.csv")]
    with pytest.raises(SystemExit, match="kind linrec.apps.Forecaster/1"):
        main([*argv, "--model", str(tmp_path / "bare.npz")])
    with pytest.raises(SystemExit, match="does not exist"):
        main([*argv, "--model", str(tmp_path / "nope.npz")])
    assert not (tmp_path / "f.csv").exists()


def test_an_unknown_timezone_is_refused():
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a known time zone"):
        load_csv(shop_frame(days=3), time="when", targets=["sales"],
                 timezone="Mars/Olympus")


@pytest.mark.parametrize("known, ahead", [(False, False), (False, True), (True, True)],
                         ids=["past-only", "calendar-ahead", "promo-and-calendar-ahead"])
def test_predict_inputs_equal_the_training_window_in_a_time_zone(known, ahead):
    frame = shop_frame(days=20)
    frame["when"] = pd.to_datetime(frame["when"]).dt.strftime("%Y-%m-%dT%H:%M:00+01:00")
    series = load_csv(frame, time="when", targets=["sales"],
                      features=["temp"] + ["promo"] * (not known),
                      known_future=["promo"] * known, timezone="Australia/Melbourne")
    known_future = series.known_future if ahead else ()
    data = make_forecast_data(series, lookback=48, horizon=12, known_future=known_future)
    model = Model(data.n_features, horizon=12, pool="tail" if ahead else "window",
                  d_model=4, d_state=2, n_layers=1)
    forecaster = Forecaster.from_data(model, data, known_future)
    test = data.sets["test"]
    i = len(test) // 2
    start = int(test.starts[i])
    rows = frame.iloc[:start + 48 + 12 * known].copy()
    if known:
        rows.loc[rows.index[-12:], ["sales", "temp"]] = np.nan
    x, times = forecaster.inputs_from_table(rows)
    np.testing.assert_array_equal(x, test.batch(np.array([i]))[0])
    np.testing.assert_array_equal(times, series.times[start + 48:start + 60])
