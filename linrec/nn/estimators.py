"""scikit-learn estimators around :class:`~linrec.nn.Model`: :class:`BLURClassifier` and
:class:`BLURRegressor` (``bidirectional=False``: the unidirectional LRU).

Input: X of shape ``(n, T, F)`` (n sequences of T steps of F features), or ``(n, T)``,
read as T steps of one feature. scikit-learn counts the columns of a 2-D X as its
features, so for a 2-D X ``n_features_in_`` is T and ``predict`` wants the same T; for a
3-D X ``n_features_in_`` is F and any length T >= 1 is accepted (a 3-D X with F = 1 is
also accepted by an estimator fitted on a 2-D X). X is standardised inside (each feature
by its mean and standard deviation over the training samples and steps), and so are the
regressor's targets (per column; predictions are given back in the targets' units).

Training: Adam (AdamW) with gradient clipping and a cosine learning-rate schedule over
``max_epochs``; ``validation_fraction`` of the samples is held out for early stopping
(``patience`` epochs without a better validation loss stop training, and the best
parameters are kept), ``max_time`` seconds stop it after the current step, ``verbose``
shows a tqdm bar. A non-finite loss or gradient stops training before its step: the
parameters of the best (or, without validation, the last) completed epoch are kept with
a ConvergenceWarning, and a ValueError is raised when none was completed. scikit-learn
and tqdm come with the 'model' extra.
"""

import math
import time
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
except ImportError as err:
    raise ImportError("linrec.nn's BLURClassifier and BLURRegressor need scikit-learn, "
                      "part of the 'model' extra: pip install 'linrec[model]'") from err

from linrec.nn.checkpoint import read_checkpoint, write_checkpoint
from linrec.nn.fit import ArraySet, evaluate_loss, require_tqdm, threads
from linrec.nn.model import Model
from linrec.nn.optim import Adam, clip_grad_norm
from linrec.nn.schedule import lr_at

__all__ = ["BLURClassifier", "BLURRegressor", "ESTIMATOR_FORMAT"]

ESTIMATOR_FORMAT = "linrec.nn.estimator/1"
_DIVERGED = "training diverged"


class _BLUREstimator(BaseEstimator):
    """What both estimators share; see the module docstring and the subclasses."""

    def __init__(self, *, d_model=32, d_state=32, n_layers=2, bidirectional=True,
                 dropout=0.0, lr=3e-3, weight_decay=0.05, batch_size=32, max_epochs=100,
                 patience=5, validation_fraction=0.1, max_time=60.0, n_threads=1,
                 random_state=None, verbose=False):
        self.d_model = d_model
        self.d_state = d_state
        self.n_layers = n_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_time = max_time
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def _check_params(self):
        """ValueError naming the first constructor argument out of range."""
        checks = {name: _is_int(getattr(self, name), 1) for name in (
            "d_model", "d_state", "n_layers", "batch_size", "max_epochs", "patience")}
        checks.update({
            "dropout": _is_real(self.dropout) and 0 <= self.dropout < 1,
            "lr": _is_real(self.lr) and self.lr > 0,
            "weight_decay": _is_real(self.weight_decay) and self.weight_decay >= 0,
            "validation_fraction": _is_real(self.validation_fraction)
            and 0 <= self.validation_fraction < 1,
            "max_time": self.max_time is None
            or _is_real(self.max_time) and self.max_time > 0,
            "n_threads": self.n_threads is None or _is_int(self.n_threads, 1),
        })
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{type(self).__name__}({name}={getattr(self, name)!r}): "
                                 f"out of range; see the class docstring")

    def _sequences(self, X, reset):
        """X as standardised float32 ``(n, T, F)``; records (``reset``) or checks the
        input layout (see the module docstring)."""
        X = check_array(X, allow_nd=True, dtype=[np.float64, np.float32], input_name="X")
        if X.ndim > 3 or 0 in X.shape:
            raise ValueError(f"X has shape {X.shape}; pass (n, T, F) or (n, T) with "
                             f"n, T, F >= 1")
        x = X[:, :, None] if X.ndim == 2 else X
        if reset:
            self.n_features_in_ = X.shape[1] if X.ndim == 2 else X.shape[2]
            self._table = X.ndim == 2
            mean = x.mean(axis=(0, 1), dtype=np.float64)
            std = x.std(axis=(0, 1), dtype=np.float64)
            self._x_mean, self._x_std = mean, np.where(std > 0, std, 1.0)
        else:
            name, f = type(self).__name__, len(self._x_mean)
            if X.ndim == 2 and self._table and X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                                 f"{self.n_features_in_} features as input (a 2-D X is "
                                 f"read as (n, T), T steps of one feature; pass "
                                 f"(n, T, 1) for other lengths)")
            if x.shape[2] != f:
                raise ValueError(f"X has {x.shape[2]} features, but {name} is expecting "
                                 f"{f} features as input (per step of (n, T, F))")
        return ((x - self._x_mean) / self._x_std).astype(np.float32)

    def _model(self, n_features, seed, **head):
        return Model(n_features, d_model=self.d_model, d_state=self.d_state,
                     n_layers=self.n_layers, bidirectional=self.bidirectional,
                     dropout=self.dropout, seed=seed, **head)

    def _fit(self, x, y, **head):
        """Check the constructor arguments, then :meth:`_train` with ``n_threads``."""
        self._check_params()
        with threads(self.n_threads):
            return self._train(x, y, **head)

    def _train(self, x, y, **head):
        """Build ``model_`` and train it on ``x`` (standardised) and ``y`` (the model's
        targets); see the module docstring."""
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        rng = np.random.default_rng(seed)
        self.model_ = model = self._model(x.shape[2], seed, **head)
        order = rng.permutation(len(x))
        n_val = int(self.validation_fraction * len(x))
        n_val = n_val if 0 < n_val < len(x) else 0
        val, train = order[:n_val], order[n_val:]
        opt = Adam(model.parameters(), groups=model.param_groups(), lr=self.lr,
                   weight_decay=self.weight_decay, lr_scale={"recurrence": 0.5})
        per_epoch = math.ceil(len(train) / self.batch_size)
        total = self.max_epochs * per_epoch
        schedule = dict(base_lr=self.lr, total_steps=total, warmup=min(50, total // 10))
        bar = require_tqdm(type(self).__name__)(total=total, disable=not self.verbose,
                                                desc=type(self).__name__, leave=False)
        best, keep, bad, step, start = math.inf, None, 0, 0, time.perf_counter()
        self.stop_reason_ = f"trained max_epochs={self.max_epochs} epochs"
        for epoch in range(self.max_epochs):
            self.n_iter_ = epoch + 1
            step, reason = self._epoch(x, y, train[rng.permutation(len(train))], opt,
                                       rng, step, schedule, bar, start)
            if reason is None and not n_val:
                keep = model.host_parameters()      # kept should a later epoch diverge
            elif reason is None:
                val_loss = evaluate_loss(model, ArraySet(x[val], y[val]))
                if not math.isfinite(val_loss):
                    reason = f"{_DIVERGED} (validation loss {val_loss})"
                elif val_loss < best:
                    best, keep, bad = val_loss, model.host_parameters(), 0
                elif (bad := bad + 1) >= self.patience:
                    reason = (f"no better validation loss for patience={self.patience} "
                              f"epochs")
            if reason is not None:
                self.stop_reason_ = reason
                break
        bar.close()
        if self.stop_reason_.startswith(_DIVERGED):
            if keep is None:
                raise ValueError(f"{type(self).__name__}: {self.stop_reason_} in epoch "
                                 f"{self.n_iter_ - 1}, before any epoch to fall back on; "
                                 f"lower lr or check the data")
            warnings.warn(f"{type(self).__name__}: {self.stop_reason_} in epoch "
                          f"{self.n_iter_ - 1}; kept the parameters of an earlier epoch",
                          ConvergenceWarning, stacklevel=4)
        if keep is not None and (n_val or self.stop_reason_.startswith(_DIVERGED)):
            model.set_parameters(keep)
        return self

    def _epoch(self, x, y, order, opt, rng, step, schedule, bar, start):
        """One pass over the samples ``order``: ``(steps so far, reason)``, where
        reason (str) says why training must stop now (None: go on). A non-finite loss
        or gradient norm stops before its step is applied."""
        model = self.model_
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            loss, grads = model.loss_and_grad(x[idx], y[idx],
                                              rng=rng if self.dropout else None)
            norm = clip_grad_norm(grads, 1.0)
            if not (math.isfinite(loss) and math.isfinite(norm)):
                return step, f"{_DIVERGED} (loss {loss}, gradient norm {norm})"
            opt.step(grads, lr_at(step, **schedule))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if self.max_time is not None and time.perf_counter() - start > self.max_time:
                return step, f"max_time={self.max_time} s reached"
        return step, None

    def __getstate__(self):
        """Pickle state: the model as its config and NumPy parameters (a model holds
        its array module, which does not pickle)."""
        state = dict(super().__getstate__())
        if "model_" in state:
            model = state["model_"]
            state["model_"] = dict(config=model.config, params=model.host_parameters())
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), dict):
            state = dict(state, model_=Model.from_arrays(**state["model_"]))
        super().__setstate__(state)

    def _outputs(self, X):
        """The model's outputs (NumPy) for X."""
        check_is_fitted(self, "model_")
        x = self._sequences(X, reset=False)
        with threads(self.n_threads):
            return np.asarray(self.model_.predict(x), dtype=np.float64)

    def save(self, path):
        """Write the fitted estimator to ``path`` (.npz, no pickle; see
        :mod:`linrec.nn.checkpoint`); :meth:`load` reads it back."""
        check_is_fitted(self, "model_")
        params = self.get_params()
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None
        extra, arrays = self._state()
        arrays.update({f"param/{k}": v for k, v in self.model_.host_parameters().items()})
        arrays.update(x_mean=self._x_mean, x_std=self._x_std)
        meta = dict(estimator=type(self).__name__, params=params, model=self.model_.config,
                    n_features_in=self.n_features_in_, table=self._table,
                    n_iter=self.n_iter_, stop_reason=self.stop_reason_, **extra)
        write_checkpoint(path, ESTIMATOR_FORMAT, meta, arrays)

    @classmethod
    def load(cls, path):
        """The fitted estimator :meth:`save` wrote to ``path``.

        Raises
        ------
        FileNotFoundError
            No such file.
        CheckpointError
            A malformed file, or one written by the other estimator class.
        """
        from linrec.nn.checkpoint import CheckpointError

        _, meta, arrays = read_checkpoint(path, (ESTIMATOR_FORMAT,))
        if meta.get("estimator") != cls.__name__:
            raise CheckpointError(f"{path} holds a {meta.get('estimator')}; load it with "
                                  f"that class, not {cls.__name__}")
        est = cls(**meta["params"])
        params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
        est.model_ = Model.from_arrays(meta["model"], params, source=path)
        est.n_features_in_, est._table = meta["n_features_in"], meta["table"]
        est.n_iter_, est.stop_reason_ = meta["n_iter"], meta["stop_reason"]
        est._x_mean, est._x_std = arrays["x_mean"], arrays["x_std"]
        est._set_state(meta, arrays)
        return est


class BLURClassifier(ClassifierMixin, _BLUREstimator):
    """Sequence classification with BLUR (or the LRU with ``bidirectional=False``).

    Parameters
    ----------
    d_model, d_state, n_layers : int
        Width H, LRU state size N and number of blocks of the :class:`~linrec.nn.Model`.
    bidirectional : bool
        BLUR (True) or the unidirectional LRU (False).
    dropout : float in [0, 1)
    lr, weight_decay : float
        Adam's peak learning rate (cosine schedule, short warm-up) and AdamW decay.
    batch_size, max_epochs : int
    patience : int
        Epochs without a better validation loss before training stops.
    validation_fraction : float in [0, 1)
        Share of the samples held out for early stopping (0, or too few samples for one:
        no early stopping, the parameters after the last epoch are kept).
    max_time : float or None
        Seconds after which training stops (after the current step).
    n_threads : int or None
        Numba and BLAS threads while fitting and predicting, restored afterwards
        (default 1: on a busy machine more threads wait for each other, and a training
        step took 20x as long with 2 threads as with 1); None leaves them as they are.
    random_state : int, RandomState or None
        Seeds the initial parameters, the split and the shuffling.
    verbose : bool
        Show a tqdm progress bar.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    n_features_in_ : int
        F for a 3-D X, T for a 2-D X (see :mod:`linrec.nn.estimators`).
    model_ : linrec.nn.Model
        The trained model (it reads standardised X).
    n_iter_ : int
        Epochs run (the last one possibly cut short).
    stop_reason_ : str

    X is ``(n, T, F)`` or ``(n, T)``; y is ``(n,)`` of any labels (at least 2 classes).
    ``score(X, y)`` is the accuracy (scikit-learn's ``ClassifierMixin``).
    """

    def fit(self, X, y):
        """Train on X ``(n, T, F)`` or ``(n, T)`` and labels y ``(n,)``; returns self."""
        X, y = check_X_y(X, y, allow_nd=True, dtype=None, ensure_all_finite=False)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes in y, got "
                             f"1 class ({self.classes_[0]!r})")
        x = self._sequences(X, reset=True)
        return self._fit(x, labels, task="classify", n_classes=len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)`` (float64), columns in ``classes_``
        order."""
        logits = self._outputs(X)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each sequence, ``(n,)``."""
        best = np.argmax(self._outputs(X), axis=1)
        return self.classes_[best]

    def _state(self):
        if self.classes_.dtype.kind not in "biufU":
            raise TypeError("save: classes_ of dtype object cannot be written to .npz; "
                            "use pickle or joblib for this estimator")
        meta = dict(classes=self.classes_.tolist(), classes_dtype=self.classes_.dtype.str)
        return meta, {}

    def _set_state(self, meta, arrays):
        self.classes_ = np.asarray(meta["classes"], dtype=meta["classes_dtype"])


class BLURRegressor(RegressorMixin, _BLUREstimator):
    """Sequence regression and multi-step forecasting with BLUR (or the LRU with
    ``bidirectional=False``).

    y is ``(n,)`` (one value per sequence) or ``(n, k)`` (k values, e.g. a k-step
    forecast); ``predict`` returns the same layout (float64). The model's head reads the
    last step and the time mean of the final features. ``score(X, y)`` is R^2
    (scikit-learn's ``RegressorMixin``). Parameters and attributes as
    :class:`BLURClassifier` (without ``classes_``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Train on X ``(n, T, F)`` or ``(n, T)`` and y ``(n,)`` or ``(n, k)``; returns
        self."""
        X, y = check_X_y(X, y, allow_nd=True, dtype=None, multi_output=True,
                         y_numeric=True, ensure_all_finite=False)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        self._y_1d = y.ndim == 1
        y2 = y[:, None] if y.ndim == 1 else y
        mean, std = y2.mean(axis=0), y2.std(axis=0)
        self._y_mean, self._y_std = mean, np.where(std > 0, std, 1.0)
        x = self._sequences(X, reset=True)
        target = ((y2 - self._y_mean) / self._y_std).astype(np.float32)[:, :, None]
        return self._fit(x, target, task="forecast", horizon=y2.shape[1], n_targets=1)

    def predict(self, X):
        """Predictions ``(n,)`` or ``(n, k)`` (as y at fit), float64."""
        out = self._outputs(X)[:, :, 0] * self._y_std + self._y_mean
        return out[:, 0] if self._y_1d else out

    def _state(self):
        return dict(y_1d=self._y_1d), dict(y_mean=self._y_mean, y_std=self._y_std)

    def _set_state(self, meta, arrays):
        self._y_1d = meta["y_1d"]
        self._y_mean, self._y_std = arrays["y_mean"], arrays["y_std"]


def _is_int(value, low):
    return isinstance(value, int | np.integer) and not isinstance(value, bool) \
        and value >= low


def _is_real(value):
    return isinstance(value, int | float | np.number) and not isinstance(value, bool) \
        and math.isfinite(value)
