"""Checkpoint files: atomic writing and a strict reader that rejects every malformed file.

A checkpoint is an uncompressed ``.npz`` (a zip of ``.npy`` members) holding a
``__format__`` string naming what wrote it, ``__config__`` (a JSON object) and named
float32/float64 arrays. Both strings are NumPy unicode scalars, so nothing is pickled.

Writing goes through a temporary file ``<name>.<pid>-<hex>.tmp`` in the same folder
(created with the user's umask, flushed and fsynced), then ``os.replace``: a reader sees
the old file or the new one, never a partial one. A save killed half-way leaves its
temporary file behind; the next save to the same path removes it once its process is gone.

Reading parses the zip and every ``.npy`` header itself and checks each member's declared
size against the bytes actually in the file before reading it, so a tampered file costs no
more memory than its own size. Any malformed file raises :class:`CheckpointError`.
"""

import json
import math
import os
import re
import secrets
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

__all__ = [
    "CheckpointError", "MODEL_FORMAT", "read_checkpoint", "write_checkpoint",
]

MODEL_FORMAT = "linrec.nn.Model/1"

# What a corrupt zip or .npy can raise from zipfile, zlib, struct and numpy's header parser.
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, OverflowError,
                NotImplementedError, RuntimeError, SyntaxError, zipfile.BadZipFile,
                zlib.error, struct.error)


class CheckpointError(ValueError):
    """A file that is not a valid linrec checkpoint of the expected kind."""


def write_checkpoint(path, fmt, config, arrays):
    """Write ``arrays`` (name -> NumPy array) with format tag ``fmt`` and the JSON-ready
    dict ``config`` to ``path`` atomically (see the module docstring); the folder is
    created if needed. Stale temporary files of earlier killed saves to ``path`` are
    removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    payload = {"__format__": np.array(fmt), "__config__": np.array(json.dumps(config))}
    payload.update(arrays)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _remove_stale_temporaries(path):
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)-[0-9a-f]{8}\.tmp")
    for tmp in path.parent.iterdir():
        match = pattern.fullmatch(tmp.name)
        if match and not _process_alive(int(match[1])):
            tmp.unlink(missing_ok=True)


def _process_alive(pid):
    if pid == os.getpid():
        return False  # a save of this process never leaves its temporary file behind
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # folders cannot be opened on some platforms: nothing to sync then
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint(path, formats):
    """``(fmt, config, arrays)`` from a file written by :func:`write_checkpoint`.

    ``fmt`` is one of ``formats``, ``config`` a dict, ``arrays`` name -> NumPy array
    (float32 or float64, all finite).

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Anything else: not a zip of ``.npy`` members as written by
        :func:`write_checkpoint` (corrupt, truncated, compressed, pickled content, sizes
        that disagree), a missing or unknown format tag, a config that is not a JSON
        object, or an array that is not real floating point or holds NaN or inf.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        arrays = _read_npz(path)
    except CheckpointError as err:
        raise CheckpointError(f"{path} is not a readable linrec checkpoint ({err})") \
            from None
    except (_READ_ERRORS + (RecursionError, MemoryError)) as err:
        raise CheckpointError(f"{path} is not a readable linrec checkpoint "
                              f"({type(err).__name__}: {err})") from None
    fmt = arrays.pop("__format__", None)
    fmt = str(fmt) if fmt is not None and fmt.dtype.kind == "U" and fmt.ndim == 0 else ""
    if fmt not in formats:
        raise CheckpointError(f"{path} is not a linrec checkpoint of kind "
                              f"{' or '.join(formats)} (format tag {fmt!r})")
    config = arrays.pop("__config__", None)
    try:
        if config is None or config.dtype.kind != "U" or config.ndim != 0:
            raise ValueError("missing or not a string")
        config = json.loads(str(config))
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"{path} has no valid __config__ ({err})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: __config__ is a JSON {type(config).__name__}, "
                              f"not an object")
    for name, a in arrays.items():
        if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
            raise CheckpointError(f"{path}: array {name!r} has dtype {a.dtype}; "
                                  f"checkpoints hold float32 or float64 arrays only")
        if not np.isfinite(a).all():
            raise CheckpointError(f"{path}: array {name!r} holds NaN or inf")
    return fmt, config, arrays


def _read_npz(path):
    with open(path, "rb") as fp, zipfile.ZipFile(fp) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise CheckpointError("duplicate members")
        for info in infos:
            if not info.filename.endswith(".npy") or info.flag_bits & 0x9 or \
                    info.compress_type != zipfile.ZIP_STORED or \
                    info.file_size != info.compress_size:
                raise CheckpointError(f"member {info.filename!r} is not a stored .npy")
        _check_layout(fp, zf, infos, path.stat().st_size)
        return {info.filename[:-4]: _read_npy(zf, info) for info in infos}


def _check_layout(fp, zf, infos, size):
    """CheckpointError unless every byte of the file belongs to exactly one member (local
    header, name, extra field, data), the central directory or its end record: so no
    member's size or the directory's can be altered without notice."""
    pos = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        fp.seek(info.header_offset)
        header = fp.read(30)
        if info.header_offset != pos or len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise CheckpointError(f"member {info.filename!r} is not where the directory "
                                  f"says")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        pos += 30 + name_len + extra_len + info.compress_size
    directory = sum(46 + len(i.orig_filename.encode("utf-8" if i.flag_bits & 0x800
                                                    else "cp437"))
                    + len(i.extra) + len(i.comment) for i in infos)
    if pos != zf.start_dir or zf.start_dir + directory + 22 + len(zf.comment) != size:
        raise CheckpointError("the zip directory does not account for the whole file")


def _read_npy(zf, info):
    """One ``.npy`` member; its header's shape and dtype must account for its size."""
    with zf.open(info) as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise CheckpointError(f"member {info.filename!r} has .npy version {version}")
        if dtype.hasobject or dtype.kind not in "fU":
            raise CheckpointError(f"member {info.filename!r} has dtype {dtype}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - f.tell():
            raise CheckpointError(f"member {info.filename!r}: its header declares "
                                  f"{nbytes} bytes, the file holds "
                                  f"{info.file_size - f.tell()}")
        data = f.read(nbytes)
        if len(data) != nbytes or f.read(1):
            raise CheckpointError(f"member {info.filename!r} is truncated")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype).reshape(shape, order=order).astype(
        dtype.newbyteorder("="))
