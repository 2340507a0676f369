"""Smoke tests of ``python -m linrec`` with tiny budgets (the real runs take minutes)."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from linrec.apps import data
from linrec.apps.cli import main

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--d-model", "4",
        "--d-state", "2", "--layers", "1", "--quiet"]


def test_forecast_job_writes_table_plots_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["demo", "--out", str(out), "--linear-strides", "96", *TINY]) == 0
    table = capsys.readouterr().out
    for name in ("seasonal naive", "linear (least squares)", "LRU (unidirectional)",
                 "BLUR", "MAE", "RMSE", "MAPE"):
        assert name in table
    results = json.loads((out / "results.json").read_text())
    assert set(results["metrics"]["test"]) == {
        "seasonal naive", "linear (least squares)", "LRU (unidirectional)", "BLUR"}
    for name in ("test_week.png", "loss_curves.png", "blur_model.npz", "lru_model.npz"):
        assert (out / name).stat().st_size > 0


def test_digits_job(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["digits", "--out", str(out), *TINY]) == 0
    assert "logistic regression" in capsys.readouterr().out
    accuracy = json.loads((out / "results.json").read_text())["accuracy"]
    assert 0.0 <= accuracy["BLUR (classification head)"] <= 1.0


def _toy_series():
    hours = np.arange(24 * 40)
    values = np.column_stack([10 + np.sin(2 * np.pi * hours / 24), np.cos(hours / 24)])
    times = np.datetime64("2020-01-01T00") + hours.astype("timedelta64[h]")
    return data.Series(values, ("load", "calendar"), ("load",), times, steps_per_day=24,
                       known_future=("calendar",))


def test_a_registered_dataset_is_offered_by_the_command_line(tmp_path, monkeypatch,
                                                             capsys):
    monkeypatch.setitem(data.DATASETS, "toy", _toy_series)
    out = tmp_path / "toy"
    argv = ["demo", "--dataset", "toy", "--lookback", "48", "--horizon", "12",
            "--linear-strides", "12", "--train-stride", "12", "--known-future",
            "--source-width", "3", "--out", str(out), *TINY]
    assert main(argv) == 0
    assert "toy: 12-step forecast" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["known_future"] == ["calendar"]
    assert results["model"]["source_width"] == 3
    with np.load(out / "blur_model.npz") as saved:
        assert saved["param/enc.U"].shape == (3, 9)  # load, calendar, future flag


def test_an_unknown_dataset_is_refused_with_the_registered_names(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "nope"])
    assert "vic_elec" in capsys.readouterr().err


def test_python_dash_m_linrec_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "linrec", "demo", "--help"],
                          capture_output=True, text=True, check=True,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    assert "--dataset" in done.stdout
