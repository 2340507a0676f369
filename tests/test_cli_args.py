"""Every numeric flag of every subcommand has a range: a bad value exits with status 2
and argparse's usage line. A missing module of the 'model' extra names the extra."""

import argparse

import pytest

from linrec.apps.cli import MODEL_EXTRA, Bounded, build_parser, main, positive_int_list

# Rejected by every numeric flag: not finite, not a number, or negative.
ALWAYS_BAD = ("-1", "nan", "inf", "-inf", "1e999", "x", "")


def _typed_actions():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, p in sub.choices.items():
        for action in p._actions:
            if action.type is not None:
                yield command, action


def _bad_values(kind):
    """Values outside the range of an argparse ``type``, derived from its bounds."""
    bad = list(ALWAYS_BAD)
    if isinstance(kind, Bounded):
        if kind.low is not None:
            below = kind.low - 1 if kind.kind is int else kind.low - 1e-9
            bad.append(str(kind.low if kind.low_open else below))
        if kind.high is not None:
            above = kind.high + 1 if kind.kind is int else kind.high + 1e-9
            bad.append(str(kind.high if kind.high_open else above))
        if kind.kind is int:
            bad.append("1.5")
    else:  # comma-separated lists: of positive integers, of positive numbers, of names
        bad += ["0", "1,0", "2,-3"] + (["1.5"] if kind is positive_int_list else [])
    return bad


CASES = [pytest.param(command, action.option_strings[-1], bad,
                      id=f"{command}{action.option_strings[-1]}={bad}")
         for command, action in _typed_actions() for bad in _bad_values(action.type)]


def test_the_parametrisation_covers_the_flags_the_issue_names():
    flags = {(c, a.option_strings[-1]) for c, a in _typed_actions()}
    for flag in ("--epochs", "--steps-per-epoch", "--batch-size", "--d-model", "--clip",
                 "--layers", "--lr", "--threads", "--dropout"):
        assert {(c, flag) for c in ("train", "demo", "digits")} <= flags
    assert ("train", "--train-stride") in flags and ("demo", "--linear-strides") in flags


@pytest.mark.parametrize("command, flag, bad", CASES)
def test_bad_number_exits_2_with_usage(command, flag, bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, f"{flag}={bad}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and flag in err


def test_defaults_are_in_range():
    for command in ("train", "demo", "digits"):
        build_parser().parse_args([command])


@pytest.mark.parametrize("argv, match", [
    (["demo", "--r-min", "0.5", "--r-max", "0.4"], "--r-min 0.5 is above --r-max"),
    (["demo", "--lookback", "24", "--horizon", "48"], "--horizon 48 is longer"),
    (["demo", "--resume", "--overwrite"], "not allowed with"),
])
def test_inconsistent_flags_exit_2(argv, match, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("module", MODEL_EXTRA)
def test_missing_model_extra_names_it(module, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(__import__("sys").modules, module, None)
    with pytest.raises(SystemExit) as exit_:
        main(["digits", "--out", str(tmp_path / "run")])
    assert f"missing: {module}" in str(exit_.value.code)
    assert "pip install 'linrec[model]'" in str(exit_.value.code)
    assert not (tmp_path / "run").exists()
