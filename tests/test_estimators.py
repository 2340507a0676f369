"""BLURClassifier and BLURRegressor: scikit-learn's estimator checks, Pipeline and
GridSearchCV, pickle/joblib and .npz round trips, input layouts and errors."""

import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from linrec.nn import BLURClassifier, BLURRegressor, CheckpointError

# A small budget for scikit-learn's checks (they fit ~100 times on tables of up to 200
# rows); 40 epochs pass check_regressors_train (R^2 > 0.5 on a 10-column table read as
# 10 steps) with a margin (0.93-0.98 over seeds 0-2); the classifier's checks need fewer.
CHECKED = dict(d_model=16, d_state=8, n_layers=1, batch_size=16, lr=1e-2,
               validation_fraction=0.0, max_time=None)
TINY = dict(d_model=8, d_state=4, n_layers=1, max_epochs=15, batch_size=16, lr=1e-2,
            max_time=None, random_state=0)


@parametrize_with_checks([BLURClassifier(max_epochs=15, **CHECKED),
                          BLURRegressor(max_epochs=40, **CHECKED)])
def test_sklearn_checks(estimator, check):
    check(estimator)


def _sign_task(n, t=12, f=2, seed=0):
    """X (n, t, f); class 1 when the mean of feature 0 over time is positive."""
    x = np.random.default_rng(seed).standard_normal((n, t, f))
    return x, (x[:, :, 0].mean(axis=1) > 0).astype(int)


def _walk_task(n, t=16, k=3, seed=0):
    """Random walks (n, t) and their next k values without noise added (n, k)."""
    steps = np.random.default_rng(seed).standard_normal((n, t + k))
    walk = np.cumsum(steps, axis=1)
    return walk[:, :t], walk[:, t:]


def test_classifier_learns_3d_sequences_of_any_length():
    x, y = _sign_task(400)
    clf = BLURClassifier(**TINY).fit(x[:300], y[:300])
    assert clf.n_features_in_ == 2 and list(clf.classes_) == [0, 1]
    assert clf.score(x[300:], y[300:]) > 0.8          # held out; chance is about 0.5
    longer, y_long = _sign_task(50, t=30, seed=1)      # other lengths are fine in 3-D
    proba = clf.predict_proba(longer)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(longer), clf.classes_[proba.argmax(1)])


def test_regressor_multistep_forecast_from_2d_x():
    x, y = _walk_task(400)
    reg = BLURRegressor(bidirectional=False, **TINY).fit(x[:300], y[:300])
    assert reg.n_features_in_ == 16
    pred = reg.predict(x[300:])
    assert pred.shape == (100, 3) and pred.dtype == np.float64
    assert reg.score(x[300:], y[300:]) > 0.8          # held out; the mean scores ~0
    assert reg.predict(x[300:, :, None]).shape == (100, 3)   # (n, T, 1) also works
    one = BLURRegressor(**TINY).fit(x[:50], y[:50, 0])
    assert one.predict(x[:5]).shape == (5,)


def test_x_and_y_are_standardised_inside():
    # Shifting and scaling X, and y, changes nothing but the units of the predictions:
    # the model sees the same standardised numbers (up to rounding).
    x, y = _walk_task(80)
    reg = BLURRegressor(**TINY).fit(x, y)
    moved = BLURRegressor(**TINY).fit(1e3 * x + 5e4, 1e-3 * y - 7.0)
    np.testing.assert_allclose(moved.predict(1e3 * x[:9] + 5e4),
                               1e-3 * reg.predict(x[:9]) - 7.0, rtol=1e-3, atol=1e-4)


def test_input_layout_errors_name_the_fix():
    x, y = _sign_task(40)
    clf = BLURClassifier(**{**TINY, "max_epochs": 1}).fit(x, y)
    with pytest.raises(ValueError, match="X has 3 features, but BLURClassifier is "
                                         "expecting 2 features"):
        clf.predict(np.zeros((2, 12, 3)))
    for shape in ((2, 12, 2, 1), (2, 12, 0), (2, 0, 2)):
        with pytest.raises(ValueError, match=r"pass \(n, T, F\) or \(n, T\)"):
            clf.predict(np.zeros(shape))
    table = BLURClassifier(**{**TINY, "max_epochs": 1}).fit(x[:, :, 0], y)
    with pytest.raises(ValueError, match=r"read as \(n, T\).*\(n, T, 1\)"):
        table.predict(np.zeros((2, 11)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        BLURClassifier(**TINY).fit(x, np.zeros(40))


@pytest.mark.parametrize("name, value", [
    ("d_model", 0), ("n_layers", 1.5), ("dropout", 1.0), ("lr", -1.0),
    ("validation_fraction", 1.0), ("max_time", 0), ("batch_size", True),
    ("n_threads", 0),
])
def test_bad_constructor_argument_names_it(name, value):
    x, y = _sign_task(20)
    with pytest.raises(ValueError, match=rf"BLURClassifier\({name}={value!r}\)"):
        BLURClassifier(**{**TINY, name: value}).fit(x, y)


def test_early_stopping_and_time_budget():
    x, y = _sign_task(60)
    # A learning rate too small to change a float32 parameter: the validation loss
    # never improves, so patience=2 stops after 1 + 2 epochs and keeps the first.
    frozen = BLURClassifier(**{**TINY, "lr": 1e-30, "patience": 2,
                               "validation_fraction": 0.25}).fit(x, y)
    assert frozen.n_iter_ == 3 and "patience=2" in frozen.stop_reason_
    quick = BLURClassifier(**{**TINY, "max_time": 1e-9}).fit(x, y)
    assert quick.n_iter_ == 1 and "max_time" in quick.stop_reason_


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow as it diverges
def test_divergence_in_the_first_epoch_is_an_error():
    x, y = _walk_task(60)
    with pytest.raises(ValueError, match="diverged.*epoch 0, before any epoch.*lower lr"):
        BLURRegressor(**{**TINY, "lr": 1e6}).fit(x, y)


def test_n_threads_applies_during_fit_and_is_restored(monkeypatch):
    numba = pytest.importorskip("numba")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from linrec.nn import Model

    seen = []
    real = Model.loss_and_grad

    def spy(self, *args, **kwargs):
        blas = {p["num_threads"] for p in threadpoolctl.threadpool_info()
                if p["user_api"] == "blas"}
        seen.append((numba.get_num_threads(), blas))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Model, "loss_and_grad", spy)
    before = numba.get_num_threads(), threadpoolctl.threadpool_info()
    BLURClassifier(**{**TINY, "max_epochs": 1}).fit(*_sign_task(40))
    assert seen and all(s == (1, {1}) for s in seen)
    assert (numba.get_num_threads(), threadpoolctl.threadpool_info()) == before


def test_verbose_shows_a_progress_bar(capsys):
    x, y = _sign_task(40)
    BLURClassifier(**{**TINY, "max_epochs": 2, "verbose": True}).fit(x, y)
    assert "BLURClassifier" in capsys.readouterr().err


def test_pipeline_and_grid_search():
    x, y = _walk_task(120)
    pipe = make_pipeline(StandardScaler(), BLURRegressor(**TINY))
    grid = GridSearchCV(pipe, {"blurregressor__d_model": [4, 8]}, cv=2).fit(x, y)
    assert grid.best_params_["blurregressor__d_model"] in (4, 8)
    assert grid.predict(x[:7]).shape == (7, 3)


@pytest.mark.parametrize("make", [
    lambda: BLURClassifier(**TINY).fit(*_sign_task(60)),
    lambda: BLURClassifier(**TINY).fit(_sign_task(60)[0],
                                       np.array(["no", "yes"])[_sign_task(60)[1]]),
    lambda: BLURRegressor(**TINY).fit(*_walk_task(60)),
])
def test_round_trips(make, tmp_path):
    est = make()
    x = _sign_task(9)[0] if isinstance(est, BLURClassifier) else _walk_task(9)[0]
    expected = est.predict(x)
    pickled = pickle.loads(pickle.dumps(est))
    joblib.dump(est, tmp_path / "est.joblib")
    est.save(tmp_path / "est.npz")
    for other in (pickled, joblib.load(tmp_path / "est.joblib"),
                  type(est).load(tmp_path / "est.npz")):
        np.testing.assert_array_equal(other.predict(x), expected)
        assert other.get_params() == est.get_params()
    np.testing.assert_array_equal(est.predict(x), expected)   # pickling left it intact
    wrong = BLURRegressor if isinstance(est, BLURClassifier) else BLURClassifier
    with pytest.raises(CheckpointError, match=f"holds a {type(est).__name__}"):
        wrong.load(tmp_path / "est.npz")


def test_linrec_nn_imports_without_sklearn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import linrec.nn\n"
            "try:\n"
            "    linrec.nn.BLURClassifier\n"
            "except ImportError as err:\n"
            "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'linrec[model]'" in out
