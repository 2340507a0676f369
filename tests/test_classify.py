"""Sequence classification: the UEA loader, digit augmentation, and the classify job."""

import importlib.util
import json
import sys

import numpy as np
import pytest

from linrec.apps.cli import main
from linrec.apps.data import load_digits_sequences
from linrec.apps.data.digits import shifted_copies
from linrec.apps.data.uea import cropped_copies, load_uea, resample

TINY = ["--epochs", "2", "--batch-size", "8", "--d-state", "2", "--layers", "1",
        "--widths", "8", "--quiet"]


def test_resample_keeps_ends_and_straight_lines():
    t = np.arange(7.0)
    series = np.stack([3.0 * t - 1.0, -t])  # (C=2, T=7), straight lines
    out = resample(series, 13)
    assert out.shape == (13, 2)
    grid = np.linspace(0.0, 6.0, 13)
    np.testing.assert_allclose(out, np.stack([3.0 * grid - 1.0, -grid], axis=1))
    np.testing.assert_array_equal(resample(series, 7), series.T)
    np.testing.assert_array_equal(resample(np.array([[2.0], [5.0]]), 3),
                                  [[2.0, 5.0]] * 3)


def test_japanese_vowels_unequal_lengths_become_one_length():
    pytest.importorskip("aeon")
    from aeon.datasets import load_classification

    raw, labels = load_classification("JapaneseVowels", split="train")
    lengths = [s.shape[1] for s in raw]
    assert min(lengths) < max(lengths)  # the archive is unequal-length
    sets, classes = load_uea("JapaneseVowels")
    assert classes == [str(c) for c in range(1, 10)]
    assert len(sets["train"]) + len(sets["val"]) == len(raw) == 270
    assert len(sets["test"]) == 370
    for d in sets.values():
        assert d.x.shape[1:] == (max(lengths), 12) and d.x.dtype == np.float32
        assert d.y.dtype == np.int64 and set(d.y) <= set(range(9))
        assert np.isfinite(d.x).all()
    # stratified: every class in the validation split, in proportion
    np.testing.assert_array_equal(np.bincount(sets["val"].y, minlength=9), [6] * 9)
    # standardised with the training statistics
    x = sets["train"].x.astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=(0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 1)), 1.0, atol=1e-5)
    assert load_uea("JapaneseVowels", length=40)[0]["test"].x.shape == (370, 40, 12)


def test_basic_motions_keeps_its_series_and_labels():
    pytest.importorskip("aeon")
    from aeon.datasets import load_classification

    raw, labels = load_classification("BasicMotions", split="test")
    sets, classes = load_uea("BasicMotions", seed=3)
    assert classes == ["badminton", "running", "standing", "walking"]
    assert sets["test"].x.shape == (40, 100, 6)
    np.testing.assert_array_equal(np.array(classes)[sets["test"].y], labels)
    # equal-length series are not resampled, only standardised: per channel, x is a
    # positive affine map of the raw values
    x = sets["test"].x.astype(np.float64)
    corr = [np.corrcoef(x[:, :, c].ravel(), raw[:, c, :].ravel())[0, 1] for c in range(6)]
    np.testing.assert_allclose(corr, 1.0, atol=1e-6)
    other = load_uea("BasicMotions", seed=4)[0]
    assert not np.array_equal(other["val"].x, sets["val"].x)  # the seed moves the holdout


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="Cricket"), "not one of"),
    (dict(name="BasicMotions", val_fraction=1.0), "val_fraction"),
    (dict(name="BasicMotions", length=0), "length"),
])
def test_loader_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_uea(**kwargs)


def test_cropped_copies_cut_and_stretch():
    t = np.arange(11.0)
    series = [np.stack([2.0 * t + 1.0, -t]), np.stack([t[:5], t[:5] ** 2])]
    out = cropped_copies(series, 7, 3, 0.2, np.random.default_rng(5))
    assert out.shape == (6, 7, 2)
    # the copies are in the outer order: copy k of series i is row k * 2 + i
    for k in range(3):
        first = out[2 * k]  # a straight line stays one: each channel, evenly spaced
        steps = np.diff(first[:, 1])
        np.testing.assert_allclose(steps, steps[0])
        start, end = -first[0, 1], -first[-1, 1]
        assert 0.0 <= start <= 0.2 * 10 and 10 - 0.2 * 10 <= end <= 10
        np.testing.assert_allclose(first[:, 0], 2.0 * np.linspace(start, end, 7) + 1.0)
        assert start > 0.0 and end < 10.0  # the cuts are random, not zero
    again = cropped_copies(series, 7, 3, 0.2, np.random.default_rng(5))
    np.testing.assert_array_equal(out, again)  # a seed fixes the cuts
    other = cropped_copies(series, 7, 3, 0.2, np.random.default_rng(6))
    assert not np.array_equal(out, other)
    plain = cropped_copies(series, 7, 2, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(plain[1], resample(series[1], 7))  # no cut: resample
    assert cropped_copies(series, 7, 0, 0.2, np.random.default_rng(0)).shape == (0, 7, 2)
    for kwargs, match in [(dict(copies=-1), "copies"), (dict(copies=1.5), "copies"),
                          (dict(max_crop=0.5), "max_crop")]:
        args = dict(copies=1, max_crop=0.1) | kwargs
        with pytest.raises(ValueError, match=match):
            cropped_copies(series, 7, rng=np.random.default_rng(0), **args)


def test_uea_augmentation_touches_training_only():
    pytest.importorskip("aeon")
    plain = load_uea("JapaneseVowels")[0]
    aug = load_uea("JapaneseVowels", copies=2)[0]
    n = len(plain["train"])
    assert aug["train"].x.shape == (3 * n, 26, 12) and aug["train"].x.dtype == np.float32
    np.testing.assert_array_equal(aug["train"].y, np.tile(plain["train"].y, 3))
    np.testing.assert_array_equal(aug["train"].x[:n], plain["train"].x)  # originals first
    assert not np.array_equal(aug["train"].x[n:2 * n], plain["train"].x)
    for split in ("val", "test"):
        np.testing.assert_array_equal(aug[split].x, plain[split].x)
        np.testing.assert_array_equal(aug[split].y, plain[split].y)
    # the copies are standardised with the originals' statistics: close to, not exactly,
    # zero mean and unit deviation
    x = aug["train"].x[n:].astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=(0, 1)), 0.0, atol=0.1)
    np.testing.assert_allclose(x.std(axis=(0, 1)), 1.0, atol=0.1)
    np.testing.assert_array_equal(load_uea("JapaneseVowels", copies=2)[0]["train"].x,
                                  aug["train"].x)


def test_missing_aeon_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "aeon", None)
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'linrec\[data\]'"):
        load_uea("BasicMotions")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "aeon" else real(name, *a))
    with pytest.raises(SystemExit, match=r"'data' extra: pip install 'linrec\[data\]'"):
        main(["classify", "--dataset", "BasicMotions", "--out", str(tmp_path), *TINY])


def test_shifted_copies_move_a_pixel():
    image = np.zeros((1, 8, 8), np.float32)
    image[0, 2, 6] = 1.0
    out = shifted_copies(image, 2)
    assert out.shape == (25, 8, 8)
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    for copy, (dy, dx) in zip(out, shifts, strict=True):
        want = np.zeros((8, 8), np.float32)
        if 0 <= 6 + dx < 8:
            want[2 + dy, 6 + dx] = 1.0
        np.testing.assert_array_equal(copy, want)
    np.testing.assert_array_equal(shifted_copies(image, 0), image)
    with pytest.raises(ValueError, match="max_shift"):
        shifted_copies(image, 8)


def test_digits_augmentation_touches_training_only():
    pytest.importorskip("sklearn")
    plain = load_digits_sequences()
    aug = load_digits_sequences(max_shift=1)
    assert len(aug["train"]) == 9 * len(plain["train"])
    np.testing.assert_array_equal(aug["train"].y, np.tile(plain["train"].y, 9))
    np.testing.assert_array_equal(aug["train"].x[4 * len(plain["train"]):][:len(
        plain["train"])], plain["train"].x)  # the unshifted copy
    for split in ("val", "test"):
        np.testing.assert_array_equal(aug[split].x, plain[split].x)


@pytest.mark.parametrize("dataset", ["BasicMotions", "digits"])
def test_classify_job(tmp_path, capsys, dataset):
    pytest.importorskip("torch")
    if dataset != "digits":
        pytest.importorskip("aeon")
    out = tmp_path / dataset
    extra = ["--steps-per-epoch", "3"] if dataset == "digits" else []
    assert main(["classify", "--dataset", dataset, "--seeds", "2", "--out", str(out),
                 "--models", "blur,lstm", "--lrs", "0.01,0.003", *extra, *TINY]) == 0
    table = capsys.readouterr().out
    for name in ("BLUR (linrec)", "LSTM (PyTorch)", "logistic regression", "± "):
        assert name in table
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1] and set(results["accuracy"]) == {"blur", "lstm"}
    for kind, runs in results["runs"].items():
        assert len(runs) == 2 and len(results["accuracy"][kind]["per_seed"]) == 2
        for run in runs:
            tried = run["candidates"]
            assert [t["lr"] for t in tried] == [0.01, 0.003]
            best = max(tried, key=lambda t: (t["val_accuracy"], -t["val_loss"]))
            assert (run["lr"], run["val_accuracy"]) == (best["lr"], best["val_accuracy"])
            assert 0.0 <= run["test_accuracy"] <= 1.0
        assert 0.0 <= results["ensemble"][kind] <= 1.0


@pytest.mark.parametrize("argv, match", [
    (["--dataset", "BasicMotions", "--max-shift", "1"], "--max-shift is for"),
    (["--dataset", "digits", "--max-shift", "8"], "off the image"),
    (["--dataset", "digits", "--copies", "1"], "--copies is for"),
    (["--dataset", "BasicMotions", "--max-crop", "0.5"], "--max-crop 0.5"),
    (["--ema", "1"], "--ema"),
    (["--models", "blur,rnn"], "distinct names"),
    (["--lrs", "0.01,-1"], "not a finite number"),
])
def test_classify_bad_arguments(tmp_path, capsys, argv, match):
    with pytest.raises(SystemExit) as err:
        main(["classify", "--out", str(tmp_path), *argv, *TINY])
    assert err.value.code == 2
    assert match in capsys.readouterr().err


def test_classify_validation_only_reads_no_test(tmp_path, capsys, monkeypatch):
    pytest.importorskip("aeon")
    from linrec.apps import classify

    monkeypatch.setattr(classify, "_logistic", lambda sets: pytest.fail("test read"))
    out = tmp_path / "val"
    assert main(["classify", "--dataset", "BasicMotions", "--models", "blur",
                 "--seeds", "2", "--validation-only", "--pool", "last+mean",
                 "--copies", "1", "--ema", "0.9", "--lrs", "0.01,0.003", "--out", str(out),
                 *TINY]) == 0
    assert "validation accuracy (%) of 8 samples" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["validation_only"] and "accuracy" not in results
    assert "ensemble" not in results and "logistic" not in results
    assert results["model"]["pool"] == "last+mean" and results["copies"] == 1
    assert results["train"]["ema"] == 0.9
    assert results["sizes"]["train"] == 2 * 32
    runs = results["runs"]["blur"]
    assert [r["seed"] for r in runs] == [0, 1]
    for run in runs:
        assert "test_accuracy" not in run
        best = max(run["candidates"], key=lambda t: (t["val_accuracy"], -t["val_loss"]))
        assert (run["lr"], run["val_loss"]) == (best["lr"], best["val_loss"])
    val = results["validation"]["blur"]
    assert val["accuracy"]["per_seed"] == [r["val_accuracy"] for r in runs]
    assert val["loss"]["mean"] == pytest.approx(np.mean([r["val_loss"] for r in runs]))


def test_classify_refuses_resume(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["classify", "--dataset", "digits", "--models", "blur", "--resume",
              "--out", str(tmp_path), *TINY])
    assert "--overwrite" in capsys.readouterr().err
