"""Atomic ``.npz`` writing and safe reading (``allow_pickle=False``) with clear errors.

Every file carries a ``__format__`` string naming what wrote it, and ``__config__``, a JSON
string; both are stored as NumPy unicode scalars, so no pickling is ever needed.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save_npz_atomic", "load_npz", "CheckpointError"]


class CheckpointError(ValueError):
    """A file that is not a readable linrec checkpoint of the expected kind and shape."""


def save_npz_atomic(path, fmt, config, arrays):
    """Write ``arrays`` (name -> NumPy array) plus format tag and JSON ``config`` to
    ``path`` via a temporary file in the same folder and ``os.replace``: a reader sees
    the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"__format__": np.array(fmt), "__config__": np.array(json.dumps(config))}
    payload.update(arrays)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path, formats):
    """``(fmt, config, arrays)`` from a file written by :func:`save_npz_atomic`.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Not a readable ``.npz`` (corrupt, truncated, pickled content), or its format tag
        is missing or not one of ``formats``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({err})") from None
    fmt = str(arrays.pop("__format__", ""))
    if fmt not in formats:
        raise CheckpointError(
            f"{path} is not a linrec checkpoint of kind {' or '.join(formats)} "
            f"(format tag {fmt!r})"
        )
    try:
        config = json.loads(str(arrays.pop("__config__")))
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} has no valid __config__ ({err})") from None
    return fmt, config, arrays
