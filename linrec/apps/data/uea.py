"""UEA multivariate archives bundled in aeon's wheel: JapaneseVowels and BasicMotions.

Each channel is one source; a sample is ``(T, C)``: C channels read together at each of T
steps. The archive's test split stays the test split; a stratified ``val_fraction`` of
its training split (shuffled with ``seed``) is held out for validation. Channels are
standardised with the mean and standard deviation of the remaining training samples.

Unequal lengths (JapaneseVowels: 7 to 29 frames): every series is resampled by linear
interpolation onto ``length`` evenly spaced points spanning it (default: the longest
training series), so each sample is seen whole at one length and no padding enters the
bidirectional recurrences or the mean pooling. What is lost is the series' own length;
the choice is documented in ``docs/classification.md``. Equal-length archives
(BasicMotions: 100 steps) are resampled only when ``length`` differs from theirs.
"""

from pathlib import Path

import numpy as np

from linrec.apps.data.digits import ArraySet

__all__ = ["UEA_DATASETS", "load_uea", "resample", "cropped_copies"]

UEA_DATASETS = ("JapaneseVowels", "BasicMotions")


def _aeon():
    try:
        import aeon.datasets
    except ImportError:
        raise ImportError("the UEA archives need aeon, the 'data' extra: "
                          "pip install 'linrec[data]'") from None
    return aeon.datasets


def _read(name, split):
    """``(series, labels)`` of one split as aeon reads it offline from the data in its
    wheel: a list of (C, T_i) float arrays and string labels."""
    datasets = _aeon()
    folder = Path(datasets.__file__).parent / "data"
    if not (folder / name / f"{name}_{split.upper()}.ts").is_file():
        raise FileNotFoundError(f"aeon's wheel has no {name} under {folder}; "
                                f"reinstall 'linrec[data]' (aeon>=1.0)")
    x, y = datasets.load_from_ts_file(str(folder / name / f"{name}_{split.upper()}.ts"))
    return [np.asarray(s, dtype=np.float64) for s in x], np.asarray(y)


def resample(series, length):
    """``(length, C)``: the ``(C, T)`` series linearly interpolated onto ``length``
    evenly spaced points from its first to its last step (a series of one step is
    repeated)."""
    c, t = series.shape
    if t == 1:
        return np.repeat(series.T, length, axis=0)
    return _interp(series, np.linspace(0.0, t - 1, length))


def _interp(series, grid):
    """``(len(grid), C)``: the ``(C, T)`` series linearly interpolated at the
    (fractional) steps ``grid``."""
    return np.stack([np.interp(grid, np.arange(series.shape[1]), row)
                     for row in series], axis=1)


def cropped_copies(series, length, copies, max_crop, rng):
    """``(copies * n, length, C)``: each of the n ``(C, T_i)`` arrays of ``series``
    resampled ``copies`` times like :func:`resample`, but from a random start to a
    random end: up to ``max_crop`` of the series' span is cut at each end (uniformly at
    random, independently), and the rest stretched onto ``length`` points. The copies
    are in the outer order, the series inner; ``rng`` (a NumPy Generator) draws the
    cuts. ValueError unless ``copies`` is a non-negative integer and
    ``0 <= max_crop < 0.5``."""
    if int(copies) != copies or copies < 0:
        raise ValueError(f"copies={copies}; use a non-negative integer")
    if not 0.0 <= max_crop < 0.5:
        raise ValueError(f"max_crop={max_crop}; use a fraction in [0, 0.5)")
    out = []
    for _ in range(copies):
        for s in series:
            start, cut = rng.uniform(0.0, max_crop * (s.shape[1] - 1), size=2)
            out.append(_interp(s, np.linspace(start, s.shape[1] - 1 - cut, length)))
    return np.stack(out) if out else np.zeros((0, length, len(series[0])))


def _stratified_holdout(labels, fraction, rng):
    """Indices ``(keep, held)``: ``fraction`` of each class (at least one sample of
    every class with two or more) held out at random."""
    keep, held = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        held.extend(idx[:n])
        keep.extend(idx[n:])
    return np.sort(np.array(keep, dtype=int)), np.sort(np.array(held, dtype=int))


def load_uea(name, *, val_fraction=0.2, seed=0, length=None, copies=0, max_crop=0.1,
             dtype=np.float32):
    """``(sets, classes)``: ``sets`` maps "train", "val", "test" to
    :class:`~linrec.apps.data.ArraySet` of x ``(n, length, C)`` ``dtype`` and integer
    labels ``(n,)`` int64 indexing ``classes`` (the sorted label strings).

    ``copies > 0`` augments the training split alone (after the validation holdout)
    with that many :func:`cropped_copies` of each of its series (up to ``max_crop``
    cut at each end, drawn with ``seed``), standardised with the statistics of the
    original training series; the originals come first.

    Raises
    ------
    ValueError
        An unknown ``name`` (naming :data:`UEA_DATASETS`), ``val_fraction`` outside
        (0, 1), ``length`` not a positive integer, or ``copies`` / ``max_crop`` as
        :func:`cropped_copies` refuses them.
    ImportError
        aeon (the ``data`` extra) is not installed.
    """
    if name not in UEA_DATASETS:
        raise ValueError(f"dataset {name!r} is not one of {UEA_DATASETS}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction}; use a fraction in (0, 1)")
    if length is not None and (int(length) != length or length < 1):
        raise ValueError(f"length={length}; use a positive integer or None")
    raw = {split: _read(name, split) for split in ("train", "test")}
    classes = sorted(str(label) for label in set(raw["train"][1]))
    length = int(length or max(s.shape[1] for s in raw["train"][0]))
    xs, ys = {}, {}
    for split, (series, labels) in raw.items():
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise ValueError(f"{name} {split} has labels {unknown} absent from training")
        xs[split] = np.stack([resample(s, length) for s in series])
        ys[split] = np.searchsorted(classes, labels).astype(np.int64)
    rng = np.random.default_rng(seed)
    keep, held = _stratified_holdout(ys["train"], val_fraction, rng)
    parts = {"train": (xs["train"][keep], ys["train"][keep]),
             "val": (xs["train"][held], ys["train"][held]),
             "test": (xs["test"], ys["test"])}
    mean = parts["train"][0].mean(axis=(0, 1))
    std = parts["train"][0].std(axis=(0, 1))
    std[std == 0] = 1.0
    extra = cropped_copies([raw["train"][0][i] for i in keep], length, copies,
                           max_crop, rng)
    parts["train"] = (np.concatenate([parts["train"][0], extra]),
                      np.tile(parts["train"][1], copies + 1))
    sets = {split: ArraySet(((x - mean) / std).astype(dtype), y)
            for split, (x, y) in parts.items()}
    return sets, classes
