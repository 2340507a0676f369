"""Smoke tests of ``python -m linrec`` with tiny budgets (the real runs take minutes)."""

import json

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
