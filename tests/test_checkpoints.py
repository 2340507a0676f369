"""Checkpoint files (linrec.nn.checkpoint, Model.load): every malformed file raises
CheckpointError quickly without allocating more than the file implies; files keep the
user's umask; a killed save leaves no temporary file behind after the next save."""

import io
import json
import os
import signal
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from linrec.nn import CheckpointError, Model
from linrec.nn.checkpoint import MODEL_FORMAT, read_checkpoint, write_checkpoint

CONFIG = dict(horizon=2, d_model=2, d_state=1, n_layers=1, bidirectional=False, seed=4)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``(bytes, model)`` of a small saved model."""
    path = tmp_path_factory.mktemp("saved") / "m.npz"
    model = Model(2, **CONFIG)
    model.save(path)
    return path.read_bytes(), model


def _load_or_reject(path, model):
    """Model.load(path) either raises CheckpointError or gives ``model`` back exactly."""
    try:
        loaded = Model.load(path)
    except CheckpointError:
        return "rejected"
    assert loaded.config == model.config
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(loaded.parameters()[k], v)
    return "loaded"


def _read_or_reject(path, original):
    """read_checkpoint(path) either raises CheckpointError or gives ``original`` (the
    unaltered file's ``(fmt, config, arrays)``) back exactly."""
    try:
        fmt, config, arrays = read_checkpoint(path, (MODEL_FORMAT,))
    except CheckpointError:
        return "rejected"
    assert (fmt, config) == original[:2] and arrays.keys() == original[2].keys()
    for k, v in original[2].items():
        assert arrays[k].dtype == v.dtype
        np.testing.assert_array_equal(arrays[k], v)
    return "loaded"


def _mutants(data, seed):
    """Every single-byte flip (a random non-zero XOR at each position) and every
    seventh truncation of ``data``: ``(kind, bytes)``."""
    rng = np.random.default_rng(seed)
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= int(rng.integers(1, 256))
        yield "flip", bytes(flipped)
    for n in range(0, len(data), 7):
        yield "truncation", data[:n]


def test_every_flip_or_truncation_reads_identically_or_raises(tmp_path):
    path = tmp_path / "mutant.npz"
    write_checkpoint(path, MODEL_FORMAT, {"n": 3, "x": [1.5, "s", None]},
                     {"W": np.arange(6, dtype=np.float32).reshape(2, 3),
                      "b": np.array([0.5, -2.0])})
    data = path.read_bytes()
    original = read_checkpoint(path, (MODEL_FORMAT,))
    outcomes = {"flip": [], "truncation": []}
    for kind, mutant in _mutants(data, seed=0):
        path.write_bytes(mutant)
        outcomes[kind].append(_read_or_reject(path, original))
    assert set(outcomes["truncation"]) == {"rejected"}
    assert outcomes["flip"].count("rejected") > len(data) // 2


def test_flipped_models_load_identically_or_raise(saved, tmp_path):
    data, model = saved
    path = tmp_path / "mutant.npz"
    mutants = list(_mutants(data, seed=1))
    pick = np.random.default_rng(2).choice(len(mutants), 600, replace=False)
    outcomes = []
    for i in pick:
        path.write_bytes(mutants[i][1])
        outcomes.append(_load_or_reject(path, model))
    assert outcomes.count("rejected") > len(pick) // 2


def _rewrite(tmp_path, saved, config=None, arrays=None, fmt=MODEL_FORMAT):
    """A model file like ``saved`` with its config and/or arrays replaced."""
    data, _ = saved
    src = tmp_path / "src.npz"
    src.write_bytes(data)
    _, old_config, old_arrays = read_checkpoint(src, (MODEL_FORMAT,))
    path = tmp_path / "edited.npz"
    write_checkpoint(path, fmt, old_config if config is None else config(old_config),
                     old_arrays if arrays is None else arrays(old_arrays))
    return path


@pytest.mark.parametrize("config, match", [
    (lambda c: [c], "JSON list"),
    (lambda c: "d_model", "JSON str"),
    (lambda c: {**c, "extra": 1}, "keys"),
    (lambda c: {k: v for k, v in c.items() if k != "d_state"}, "keys"),
    (lambda c: {**c, "d_model": "2"}, "invalid model config"),
    (lambda c: {**c, "n_layers": 0}, "invalid model config"),
    (lambda c: {**c, "n_layers": 2}, "blocks"),
    (lambda c: {**c, "d_state": 3}, "LRU states"),
    (lambda c: {**c, "horizon": 3}, "head"),
    (lambda c: {**c, "dtype": "complex64"}, "invalid model config"),
    (lambda c: {**c, "pool": "max"}, "invalid model config"),
])
def test_bad_config(tmp_path, saved, config, match):
    with pytest.raises(CheckpointError, match=match):
        Model.load(_rewrite(tmp_path, saved, config=config))


def test_huge_config_with_small_arrays_is_rejected_before_building(tmp_path, saved):
    path = _rewrite(tmp_path, saved, config=lambda c: {**c, "d_model": 8000})
    assert path.stat().st_size < 20_000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="input layer"):
            Model.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_npy_header_larger_than_its_data_is_rejected_without_allocating(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__format__.npy", _npy(np.array(MODEL_FORMAT)))
        zf.writestr("param/inp.W.npy", buf.getvalue() + bytes(16))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="declares 8000000000 bytes"):
            read_checkpoint(path, (MODEL_FORMAT,))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _replace(name, value):
    return lambda arrays: {**arrays, name: value}


@pytest.mark.parametrize("arrays, match", [
    (_replace("param/inp.W", np.ones((2, 2), np.complex64)), "complex64"),
    (_replace("param/inp.W", np.full((2, 2), np.nan, np.float32)), "NaN"),
    (_replace("param/inp.b", np.array(["a", "b"])), "<U1"),
    (_replace("param/inp.b", np.ones(2, np.int64)), "int64"),
    (_replace("param/inp.b", np.ones(2, np.float16)), "float16"),
    (_replace("param/inp.b", np.ones(3, np.float32)), "wrong shape"),
    (_replace("param/extra", np.ones(2, np.float32)), "unexpected"),
    (lambda a: {k: v for k, v in a.items() if k != "param/head.b"}, "missing"),
])
def test_bad_arrays(tmp_path, saved, arrays, match):
    with pytest.raises(CheckpointError, match=match):
        Model.load(_rewrite(tmp_path, saved, arrays=arrays))


def test_compressed_and_pickled_files_are_rejected(tmp_path, saved):
    data, _ = saved
    src = tmp_path / "src.npz"
    src.write_bytes(data)
    _, config, arrays = read_checkpoint(src, (MODEL_FORMAT,))
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, __format__=np.array(MODEL_FORMAT),
                        __config__=np.array(json.dumps(config)), **arrays)
    with pytest.raises(CheckpointError, match="not a stored .npy"):
        Model.load(path)
    np.savez(path, __format__=np.array(MODEL_FORMAT),
             __config__=np.array([config], dtype=object), **arrays)
    with pytest.raises(CheckpointError, match="dtype object"):
        Model.load(path)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_saved_files_keep_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
        Model(2, **CONFIG).save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode == plain.stat().st_mode


KILLED_SAVE = """
import os, signal, sys
import numpy as np
from linrec.nn import Model

def savez(f, **arrays):
    f.write(b"PK partial")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

np.savez = savez
Model(2, horizon=2, d_model=2, d_state=1, n_layers=1).save(sys.argv[1])
"""


def test_killed_save_leaves_no_temporary_file_after_the_next_save(tmp_path):
    path = tmp_path / "m.npz"
    model = Model(2, **CONFIG)
    model.save(path)
    run = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)],
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=300)
    assert run.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob("m.npz.*.tmp"))) == 1
    assert _load_or_reject(path, model) == "loaded"
    with subprocess.Popen(["sleep", "60"]) as alive:
        other = tmp_path / f"m.npz.{alive.pid}-0123abcd.tmp"
        other.write_bytes(b"another process is still writing this")
        model.save(path)
        alive.kill()
    assert [p.name for p in tmp_path.glob("m.npz.*.tmp")] == [other.name]
    assert _load_or_reject(path, model) == "loaded"
