"""Training runs: an existing run is never overwritten by accident, a finished run
resumes as finished, a resumed run (after a time-budget stop or a real SIGKILL) ends
bit-identical to one never stopped, a changed setting is refused on resume, and NaN
gradients or validation losses stop training with a true message."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from linrec.apps.cli import main
from linrec.apps.train import CHECKPOINT_FORMAT, ResumeError, TrainConfig, fit
from linrec.nn import CheckpointError
from linrec.nn.checkpoint import read_checkpoint, write_checkpoint
from tests.test_train import TRAIN, VAL, _config, _data, _model, _params

# Fields of a checkpoint or summary that measure or cap time, not the training result.
TIMINGS = ("seconds", "samples_per_s", "epoch_seconds", "budget_seconds")


def _without_timings(meta):
    if isinstance(meta, dict):
        return {k: _without_timings(v) for k, v in meta.items() if k not in TIMINGS}
    if isinstance(meta, list):
        return [_without_timings(v) for v in meta]
    return meta


def assert_same_run(path_a, path_b):
    """Two training checkpoints hold the same state, bit for bit (timings aside)."""
    _, meta_a, arrays_a = read_checkpoint(path_a, (CHECKPOINT_FORMAT,))
    _, meta_b, arrays_b = read_checkpoint(path_b, (CHECKPOINT_FORMAT,))
    assert _without_timings(meta_a) == _without_timings(meta_b)
    assert arrays_a.keys() == arrays_b.keys()
    for k, v in arrays_a.items():
        np.testing.assert_array_equal(v, arrays_b[k], err_msg=k)


def test_existing_checkpoint_needs_resume_or_overwrite(tmp_path):
    ckpt = tmp_path / "c.npz"
    first = _model()
    fit(first, TRAIN, VAL, _config(epochs=1), checkpoint=ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(FileExistsError, match="resume=True .* overwrite=True"):
        fit(_model(), TRAIN, VAL, _config(epochs=1), checkpoint=ckpt)
    assert ckpt.read_bytes() == before
    with pytest.raises(ValueError, match="not both"):
        fit(_model(), TRAIN, VAL, _config(), checkpoint=ckpt, resume=True, overwrite=True)
    again = _model()
    summary = fit(again, TRAIN, VAL, _config(epochs=2), checkpoint=ckpt, overwrite=True)
    assert summary["epochs"] == 2
    assert read_checkpoint(ckpt, (CHECKPOINT_FORMAT,))[1]["epoch"] == 2


def test_finished_runs_resume_as_finished(tmp_path, monkeypatch):
    early = _config(epochs=30, lr=0.3, patience=1, clip=None)
    for cfg, status in ((early, "early_stopped"), (_config(epochs=2), "completed")):
        ckpt = tmp_path / f"{status}.npz"
        model = _model()
        first = fit(model, TRAIN, VAL, cfg, checkpoint=ckpt)
        assert first["status"] == status
        saved = ckpt.read_bytes()
        for _ in range(2):
            resumed = _model(seed=7)
            monkeypatch.setattr(resumed, "loss_and_grad", pytest.fail)
            again = fit(resumed, TRAIN, VAL, cfg, checkpoint=ckpt, resume=True)
            assert again["status"] == status and "had finished" in again["message"]
            assert (again["epochs"], again["steps"]) == (first["epochs"], first["steps"])
            assert again["history"] == first["history"]
            for k, v in _params(model).items():
                np.testing.assert_array_equal(resumed.parameters()[k], v)
            assert ckpt.read_bytes() == saved


def test_budget_stops_resume_exactly(tmp_path):
    """A budget of 0 s stops after every step; resuming step by step ends where an
    uninterrupted run ends, with the same number of steps."""
    full = _model()
    s_full = fit(full, TRAIN, VAL, _config(epochs=3), checkpoint=tmp_path / "full.npz")
    assert s_full["steps"] == 9
    ckpt = tmp_path / "run.npz"
    steps = []
    while True:
        model = _model()
        summary = fit(model, TRAIN, VAL, _config(epochs=3, budget_seconds=0.0),
                      checkpoint=ckpt, resume=True)
        steps.append(summary["steps"])
        if summary["status"] != "budget":
            break
    assert steps == list(range(1, 10))
    assert summary["status"] == "completed"
    assert _without_timings(summary["history"]) == _without_timings(s_full["history"])
    for k, v in _params(full).items():
        np.testing.assert_array_equal(model.parameters()[k], v)
    assert_same_run(ckpt, tmp_path / "full.npz")


@pytest.mark.parametrize("field, value", [
    ("lr", 2e-2), ("batch_size", 4), ("epochs", 5), ("seed", 1), ("clip", 0.5),
    ("weight_decay", 0.1), ("steps_per_epoch", 2), ("patience", 3), ("warmup", 1),
])
def test_resume_refuses_a_changed_setting(tmp_path, field, value):
    ckpt = tmp_path / "c.npz"
    fit(_model(), TRAIN, VAL, _config(budget_seconds=0.0), checkpoint=ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(ResumeError, match=f"{field}=.* there, {value!r} now"):
        fit(_model(), TRAIN, VAL, _config(**{field: value}), checkpoint=ckpt, resume=True)
    assert ckpt.read_bytes() == before


def test_resume_accepts_free_settings_and_refuses_other_data(tmp_path):
    ckpt = tmp_path / "c.npz"
    fit(_model(), TRAIN, VAL, _config(budget_seconds=0.0), checkpoint=ckpt)
    with pytest.raises(ResumeError, match="24 training samples, this call has 16"):
        fit(_model(), _data(0, 16), VAL, _config(), checkpoint=ckpt, resume=True)
    summary = fit(_model(), TRAIN, VAL, _config(checkpoint_every=1, progress=True),
                  checkpoint=ckpt, resume=True)
    assert summary["status"] == "completed"


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("batch_size", -4), ("steps_per_epoch", 0), ("lr", float("nan")),
    ("clip", -1.0), ("weight_decay", -0.1), ("patience", 0), ("seed", -1),
    ("checkpoint_every", 0), ("budget_seconds", float("inf")), ("warmup", "3"),
])
def test_train_config_ranges(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}="):
        TrainConfig(**{field: value})


def test_cli_resume_with_a_changed_setting_exits_2(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main([*CLI, "--epochs", "1", "--out", out]) == 0
    with pytest.raises(SystemExit) as refused:
        main([*CLI, "--epochs", "1", "--out", out, "--resume", "--lr", "0.01"])
    assert refused.value.code == 2
    assert "lr=0.006 there, 0.01 now" in capsys.readouterr().err


def test_tampered_position_is_a_checkpoint_error(tmp_path):
    ckpt = tmp_path / "c.npz"
    fit(_model(), TRAIN, VAL, _config(epochs=1), checkpoint=ckpt)
    _, meta, arrays = read_checkpoint(ckpt, (CHECKPOINT_FORMAT,))
    for change in ({"step": 2}, {"position": 5}, {"epoch": "1"}, {"finished": None},
                   {"adam_t": 7}):
        write_checkpoint(ckpt, CHECKPOINT_FORMAT, {**meta, **change}, arrays)
        with pytest.raises(CheckpointError):
            fit(_model(), TRAIN, VAL, _config(epochs=1), checkpoint=ckpt, resume=True)


def _poison(model, monkeypatch, call, what):
    """Make call number ``call`` of ``model.loss_and_grad`` return a NaN gradient
    (with a finite loss) or a NaN loss."""
    real, calls = model.loss_and_grad, []

    def poisoned(x, y, rng=None):
        calls.append(1)
        loss, grads = real(x, y, rng)
        if len(calls) == call:
            if what == "gradient":
                next(iter(grads.values()))[...] = np.nan
            else:
                loss = float("nan")
        return loss, grads

    monkeypatch.setattr(model, "loss_and_grad", poisoned)


def _check_diverged(summary, ckpt, model, err, kept_steps):
    assert summary["status"] == "diverged"
    assert f"keeps the state after {kept_steps} steps" in err
    _, meta, arrays = read_checkpoint(ckpt, (CHECKPOINT_FORMAT,))
    assert meta["step"] == kept_steps
    assert all(np.isfinite(v).all() for v in arrays.values())
    for k, v in model.parameters().items():
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(arrays[f"best/{k}"], v)


def test_nan_gradient_with_finite_loss_stops(tmp_path, monkeypatch, capsys):
    model, ckpt = _model(), tmp_path / "c.npz"
    _poison(model, monkeypatch, 5, "gradient")
    summary = fit(model, TRAIN, VAL, _config(), checkpoint=ckpt)
    assert "gradient norm became nan at step 4" in summary["message"]
    _check_diverged(summary, ckpt, model, capsys.readouterr().err, kept_steps=3)


def test_nan_validation_loss_stops(tmp_path, monkeypatch, capsys):
    model, ckpt = _model(), tmp_path / "c.npz"
    real, calls = model.loss, []

    def loss(x, y):
        calls.append(1)
        return float("nan") if len(calls) == 2 else real(x, y)

    monkeypatch.setattr(model, "loss", loss)
    summary = fit(model, TRAIN, VAL, _config(), checkpoint=ckpt)
    assert "validation loss became nan in epoch 1" in summary["message"]
    _check_diverged(summary, ckpt, model, capsys.readouterr().err, kept_steps=3)


def test_fit_without_tqdm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"pip install 'linrec\[model\]'"):
        fit(_model(), TRAIN, VAL, _config())


CLI = ["digits", "--epochs", "3", "--steps-per-epoch", "3", "--batch-size", "8",
       "--d-model", "4", "--d-state", "2", "--layers", "1", "--dropout", "0.1",
       "--checkpoint-every", "2", "--quiet"]

# Runs the CLI and SIGKILLs the process as the Adam step number argv[1] begins.
KILL_AT_STEP = """
import os, signal, sys
from linrec.apps.cli import main
from linrec.nn.optim import Adam

real, calls = Adam.step, []

def step(self, grads, lr=None):
    calls.append(1)
    if len(calls) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, grads, lr)

Adam.step = step
main(sys.argv[2:])
"""


def _cli(kill_at, *args):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, "-c", KILL_AT_STEP, str(kill_at), *args],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The output folder of the CLI run never killed."""
    out = tmp_path_factory.mktemp("cli") / "full"
    assert _cli(0, *CLI, "--out", str(out)).returncode == 0
    return out


@pytest.mark.parametrize("kill_at, saved", [(2, False), (6, True), (9, True)])
def test_run_killed_at_a_step_resumes_bit_identical(tmp_path, full_run, kill_at, saved,
                                                     capsys):
    """A real SIGKILL of the CLI as Adam step ``kill_at`` (of 9) begins (checkpoints are
    written after 2, 3, 4, 6, 8 and 9 steps), then ``--resume``: the same checkpoint,
    results and history as a run never killed. Without a checkpoint yet, a plain rerun
    is allowed; with one, it is refused."""
    full, killed = full_run, tmp_path / "killed"
    run = _cli(kill_at, *CLI, "--out", str(killed))
    assert run.returncode == -signal.SIGKILL
    assert (killed / "blur_checkpoint.npz").exists() == saved
    assert not list(killed.glob("*.tmp"))
    if saved:
        with pytest.raises(SystemExit) as refused:
            main([*CLI, "--out", str(killed)])
        assert refused.value.code == 2
        assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    resumed = _cli(0, *CLI, "--out", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(full / "blur_checkpoint.npz", killed / "blur_checkpoint.npz")
    results = [json.loads((d / "results.json").read_text()) for d in (full, killed)]
    assert _without_timings(results[0]) == _without_timings(results[1])
