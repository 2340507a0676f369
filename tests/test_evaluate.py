"""The forecasting evaluation: folds, windows, tuning candidates, the bootstrap, and a
quick end-to-end run of ``python -m linrec evaluate``."""

import json

import numpy as np
import pytest

from linrec.apps.data.series import Series
from linrec.apps.evaluate import (
    DEFAULTS,
    LINREC_DEFAULTS,
    SPACES,
    EvalSettings,
    candidate_configs,
    fit_neural,
    fold_data,
    rolling_folds,
)
from linrec.apps.stats import block_bootstrap


def test_folds_are_disjoint_and_ordered():
    folds = rolling_folds(100 * 48, 48, 3, val_days=10, test_days=8)
    tests = [f["test"] for f in folds]
    assert tests[-1][1] == 100 * 48
    for f in folds:
        assert f["train"] == (0, f["val"][0]) and f["val"][1] == f["test"][0]
        assert f["val"][1] - f["val"][0] == 10 * 48
        assert f["test"][1] - f["test"][0] == 8 * 48
    for a, b in zip(tests, tests[1:]):
        assert a[1] == b[0]


def test_folds_refuse_too_little_training():
    with pytest.raises(ValueError, match="leave 10 days to train"):
        rolling_folds(40 * 48, 48, 3, val_days=6, test_days=8)


def _series(days=60, spd=4):
    t = np.arange(days * spd)
    values = np.stack([np.sin(t / 3.0) + 2.0, np.cos(t / 5.0)], axis=1)
    times = np.datetime64("2020-01-01T00:00") + t * np.timedelta64(6, "h")
    return Series(values, ("y", "x"), ("y",), times, spd)


def test_fold_windows_stay_in_their_periods():
    series = _series()
    bounds = rolling_folds(len(series.values), 4, 2, val_days=5, test_days=6)[0]
    data = fold_data(series, bounds, lookback=12, horizon=4)
    for split in ("val", "test"):
        s = data.sets[split].starts + 12
        covered = (s[:, None] + np.arange(4)).ravel()
        np.testing.assert_array_equal(covered, np.arange(*bounds[split]))
    train = data.sets["train"].starts
    assert train.min() == 0 and train.max() + 12 + 4 == bounds["train"][1]
    rows = series.values[slice(*bounds["train"])]
    np.testing.assert_allclose(data.scaler.mean, rows.mean(axis=0))


@pytest.mark.parametrize("model", sorted(SPACES))
def test_candidates(model):
    configs = candidate_configs(model, 5)
    assert len(configs) == 5 and configs == candidate_configs(model, 5)
    assert configs[0] == (LINREC_DEFAULTS if model in ("lru", "blur") else DEFAULTS)
    assert all(a != b for i, a in enumerate(configs) for b in configs[i + 1:])
    for hp in configs[1:]:
        assert all(hp[k] in values for k, values in SPACES[model].items())


def test_settings_need_blur_and_known_models():
    with pytest.raises(ValueError, match="must include 'blur'"):
        EvalSettings(models=("lstm", "gru"))
    with pytest.raises(ValueError, match="use names from"):
        EvalSettings(models=("blur", "mamba"))


@pytest.mark.parametrize("ema", [0.0, 1.0, 2.0])
def test_settings_refuse_a_bad_parameter_average(ema):
    with pytest.raises(ValueError, match="decay"):
        EvalSettings(ema=ema)


@pytest.mark.parametrize("model", ["blur", "lstm"])
def test_every_neural_model_trains_with_the_settings_average(model, monkeypatch):
    """The evaluation's ``ema`` reaches the training loop of linrec's models and of the
    peers alike (the comparison stays fair)."""
    if model == "lstm":
        pytest.importorskip("torch")
    import linrec.apps.peers
    import linrec.apps.train

    seen = []

    def spy(net, train, val, cfg, label):
        seen.append(cfg.ema)
        return dict(history=[dict(seconds=1.0)], best_epoch=0)

    monkeypatch.setattr(linrec.apps.train, "fit", spy)
    monkeypatch.setattr(linrec.apps.peers, "fit_peer", spy)
    series = _series()
    bounds = rolling_folds(len(series.values), 4, 1, val_days=5, test_days=6)[0]
    data = fold_data(series, bounds, lookback=12, horizon=4)
    hp = dict(LINREC_DEFAULTS if model == "blur" else DEFAULTS, d_model=8, n_layers=1)
    for ema in (0.9, None):
        fit_neural(model, hp, data, 0, EvalSettings(ema=ema, quick=True, progress=False))
    assert seen == [0.9, None]


def test_bootstrap_of_a_constant_difference_is_that_constant():
    b = block_bootstrap([np.full(40, -3.0), np.full(25, -3.0)], block=7, samples=500)
    assert b["mean"] == pytest.approx(-3.0)
    assert b["low"] == pytest.approx(-3.0) and b["high"] == pytest.approx(-3.0)


def test_bootstrap_around_a_shifted_difference_excludes_zero():
    rng = np.random.default_rng(1)
    b = block_bootstrap([-5.0 + rng.standard_normal(120)], block=7, samples=1000)
    assert b["low"] < -5.0 < b["high"] or b["low"] < b["mean"] < b["high"]
    assert b["high"] < 0 and b["low"] > -6.0


def test_bootstrap_of_independent_noise_covers_zero():
    rng = np.random.default_rng(2)
    b = block_bootstrap([rng.standard_normal(100), rng.standard_normal(60)], block=7)
    assert b["low"] < 0 < b["high"]
    assert b["high"] - b["low"] < 1.0


def test_bootstrap_resamples_within_groups():
    # Groups of constants 0 and 10 of equal length: every resample keeps both sizes,
    # so every resampled mean is exactly 5 (a bootstrap that mixed groups would not).
    b = block_bootstrap([np.zeros(30), np.full(30, 10.0)], block=4, samples=300)
    assert b["low"] == pytest.approx(5.0) and b["high"] == pytest.approx(5.0)


def test_blocks_widen_the_interval_of_dependent_days():
    rng = np.random.default_rng(3)
    x = np.zeros(300)
    for t in range(1, 300):
        x[t] = 0.9 * x[t - 1] + rng.standard_normal()
    narrow = block_bootstrap([x], block=1, samples=2000)
    wide = block_bootstrap([x], block=20, samples=2000)
    assert wide["high"] - wide["low"] > 1.5 * (narrow["high"] - narrow["low"])


@pytest.mark.parametrize("kw, match", [
    (dict(groups=[[]]), "at least one value"),
    (dict(groups=[[1.0, np.nan]]), "only finite"),
    (dict(groups=[[1.0]], block=0), "block=0"),
    (dict(groups=[[1.0]], level=1.0), "level=1.0"),
])
def test_bootstrap_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        block_bootstrap(kw.pop("groups"), **kw)


def test_quick_run_writes_json_report_and_plots(tmp_path):
    pytest.importorskip("torch")
    from linrec.apps.cli import main
    from linrec.apps.report import PLOTS

    models = ["naive", "linear", "blur", "gru"]
    main(["evaluate", "--quick", "--quiet", "--out", str(tmp_path / "out"),
          "--report", str(tmp_path / "docs"), "--models", ",".join(models)])
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    seeds, folds = res["settings"]["seeds"], res["settings"]["folds"]
    assert res["settings"]["models"] == models and folds == 3
    for m in models:
        runs = res["runs"][m]
        per_fold = seeds if m in ("blur", "gru") else 1
        assert len(runs) == folds * per_fold
        assert sorted({r["fold"] for r in runs}) == list(range(folds))
        for r in runs:
            assert set(r["test"]["metrics"]) == {"MAE", "RMSE", "MAPE"}
            assert np.isfinite(list(r["test"]["metrics"].values())).all()
            assert len(r["test"]["per_day_mae"]) == res["settings"]["test_days"]
            assert len(r["test"]["hour_mae"]) == 24
        assert len(res["summary"][m]["folds"]) == folds
    assert set(res["tuning"]) == {"linear", "blur", "gru"}
    assert len(res["tuning"]["blur"]["candidates"]) == res["settings"]["configs"]
    for kind in ("single", "ensemble"):
        boot = res["bootstrap"][kind]
        assert set(boot) == {"naive", "linear", "gru"}
        for b in boot.values():
            assert len(b["folds"]) == folds
            assert b["all"]["low"] - 1e-9 <= b["all"]["mean"] <= b["all"]["high"] + 1e-9
    for m in ("blur", "gru"):
        c = res["costs"][m]
        assert c["probe"]["step_seconds"] > 0 and c["probe"]["peak_rss_mib"] > 0
        assert c["latency"]["batch1_ms"] > 0 and c["latency"]["batch256_ms_per_window"] > 0
        assert len(c["seconds_to_best"]) == 2
    report = (tmp_path / "docs" / "evaluation.md").read_text()
    assert "Paired block-bootstrap" in report and "BLUR minus" in report
    for name in PLOTS:
        assert (tmp_path / "docs" / "img" / name).stat().st_size > 1000
    # The report needs nothing but the JSON: rewritten from it, it is the same text.
    main(["evaluate", "--from-json", str(tmp_path / "out" / "results.json"),
          "--report", str(tmp_path / "again")])
    assert (tmp_path / "again" / "evaluation.md").read_text() == report


def _without_timings(res):
    """``res`` without what depends on the clock: costs, seconds, training times."""
    res = {k: v for k, v in res.items() if k not in ("costs", "seconds", "settings")}
    for trials in res["tuning"].values():
        for t in trials.get("candidates", []):
            t.pop("seconds")
    for runs in res["runs"].values():
        for r in runs:
            if r["train"] is not None:
                r["train"] = {k: v for k, v in r["train"].items()
                              if k not in ("seconds", "seconds_to_best")}
    return res


def test_parallel_fits_give_the_results_of_one_process():
    pytest.importorskip("torch")
    from linrec.apps.evaluate import evaluate
    from linrec.nn.fit import threads

    kw = dict(folds=2, seeds=2, val_days=5, test_days=5, lookback=16, horizon=4,
              configs=2, steps=4, steps_per_epoch=2, patience=2, quick=True,
              bootstrap_samples=50, models=("naive", "linear", "blur", "gru"),
              progress=False)
    series = _series(days=45)
    with threads(1):  # as the workers: one thread, the same rounding
        one = evaluate(series, EvalSettings(**kw))
    two = evaluate(series, EvalSettings(jobs=2, **kw))
    assert two["settings"]["jobs"] == 2
    assert len(one["runs"]["blur"]) == 4 and one["tuning"]["blur"]["candidates"]
    assert _without_timings(two) == _without_timings(one)


@pytest.mark.parametrize("jobs", [0, 1.5, "2"])
def test_settings_refuse_a_bad_number_of_jobs(jobs):
    with pytest.raises(ValueError, match="jobs"):
        EvalSettings(jobs=jobs)


def test_reused_tuning_must_cover_every_model():
    pytest.importorskip("tqdm")
    from linrec.apps.evaluate import evaluate

    settings = EvalSettings(folds=1, val_days=5, test_days=5, lookback=8, horizon=4,
                            models=("naive", "linear", "blur"), progress=False)
    tuning = {"blur": {"chosen": dict(LINREC_DEFAULTS)}}
    with pytest.raises(KeyError, match="linear"):
        evaluate(_series(days=40), settings, tuning)


def test_report_command_line_cuts_the_note():
    from linrec.apps.report import _command

    assert _command(["--seeds", "3", "--note", "a long\nparagraph", "--out", "x"]) == \
        "--seeds 3 --note '...' --out x"
    assert _command(["--seeds", "3"]) == "--seeds 3"


def test_report_findings_name_the_runs_the_time_cap_cut():
    from linrec.apps.report import _findings

    def model(mae, capped, steps):
        fold = dict(MAE=[mae, 0.0], val_MAE=[mae, 0.0])
        return (dict(folds=[fold], all=dict(MAE=[mae, 0.0])),
                dict(seconds_to_best=[10.0, 0.0], time_capped=capped),
                [dict(train=dict(steps=s)) for s in steps])

    parts = {"blur": model(100.0, 0, [40, 40]), "gru": model(120.0, 1, [40, 25]),
             "lstm": model(110.0, 0, [40, 40])}
    interval = dict(mean=-1.0, low=-2.0, high=-0.5)
    res = dict(summary={m: p[0] for m, p in parts.items()},
               costs={m: p[1] for m, p in parts.items()},
               runs={m: p[2] for m, p in parts.items()}, folds=[{}],
               bootstrap=dict(single={"gru": dict(all=interval)}, ensemble={}))
    line = [t for t in _findings(res).splitlines() if "time cap" in t]
    assert line == ["- Runs cut by the time cap (`--budget`), so trained on fewer steps "
                    "than the others: GRU 1 of 2 (25-40 steps)."]
    parts["gru"][1]["time_capped"] = 0
    assert "time cap" not in _findings(res)
