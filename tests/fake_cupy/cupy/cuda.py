"""``cupy.cuda`` of the stand-in: devices, streams, events, the runtime API.

``LINREC_FAKE_CUPY_DEVICES`` (default 1) devices of ``LINREC_FAKE_CUPY_SMS`` (default 132,
an H200's) multiprocessors each. Kernels run synchronously; streams only keep a current
stream, events record host time.
"""

import os
import time

__all__ = ["Device", "Stream", "Event", "get_current_stream", "get_elapsed_time",
           "runtime", "CUDARuntimeError"]

DEVICES = int(os.environ.get("LINREC_FAKE_CUPY_DEVICES", "1"))
SMS = int(os.environ.get("LINREC_FAKE_CUPY_SMS", "132"))
_current = [0]


class CUDARuntimeError(RuntimeError):
    pass


class Device:
    """A device; as a context manager, makes it current for the ``with`` block."""

    def __init__(self, device=None):
        device = _current[0] if device is None else int(device)
        if not 0 <= device < DEVICES:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        self.id = device
        self._previous = []

    def __int__(self):
        return self.id

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"

    def __enter__(self):
        self._previous.append(_current[0])
        _current[0] = self.id
        return self

    def __exit__(self, *exc):
        _current[0] = self._previous.pop()

    def use(self):
        _current[0] = self.id

    def synchronize(self):
        pass

    @property
    def attributes(self):
        return {"MultiProcessorCount": SMS, "MaxThreadsPerBlock": 1024,
                "MaxGridDimX": 2**31 - 1, "MaxGridDimY": 65535, "MaxGridDimZ": 65535,
                "WarpSize": 32}

    @property
    def compute_capability(self):
        return "90"


class _Runtime:
    """The few ``cupy.cuda.runtime`` calls linrec and its benchmark make."""

    CUDARuntimeError = CUDARuntimeError

    @staticmethod
    def getDeviceCount():  # noqa: N802 (CuPy's names)
        return DEVICES

    @staticmethod
    def getDevice():  # noqa: N802
        return _current[0]

    @staticmethod
    def setDevice(device):  # noqa: N802
        Device(device).use()

    @staticmethod
    def getDeviceProperties(device):  # noqa: N802
        Device(device)
        return {"name": b"CuPy stand-in (CPU)", "multiProcessorCount": SMS,
                "totalGlobalMem": 16 * 2**30, "l2CacheSize": 50 * 2**20, "major": 9,
                "minor": 0}

    @staticmethod
    def memGetInfo():  # noqa: N802
        return 8 * 2**30, 16 * 2**30

    @staticmethod
    def runtimeGetVersion():  # noqa: N802
        return 13000

    @staticmethod
    def driverGetVersion():  # noqa: N802
        return 13000


runtime = _Runtime()


class Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = ptr
        self._previous = []

    def __enter__(self):
        self._previous.append(_stream[0])
        _stream[0] = self
        return self

    def __exit__(self, *exc):
        _stream[0] = self._previous.pop()

    def use(self):
        _stream[0] = self
        return self

    def synchronize(self):
        pass


Stream.null = Stream(null=True)
_stream = [Stream.null]


def get_current_stream(device_id=None):
    return _stream[0]


class Event:
    """Records the host time; kernels run synchronously, so it is their time too."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        pass

    def query(self):
        return True


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events."""
    return 1e3 * (end_event.time - start_event.time)
