"""The futex wait of ``linrec.cpu._atomic``: a thread waiting in ``wait_until_set``
sleeps (it marks the element ``WAITING``) and ``store_release`` wakes it."""

import threading
import time

import numba
import numpy as np
import pytest

from linrec.cpu import _atomic

pytestmark = pytest.mark.skipif(_atomic._FUTEX is None,
                                reason="futex waits are used on Linux x86-64/aarch64 only")


@numba.njit(nogil=True)
def _wait(flags, i):
    _atomic.wait_until_set(flags, i)
    return _atomic.load_acquire(flags, i)


@numba.njit(nogil=True)
def _publish(flags, i, value):
    _atomic.store_release(flags, i, value)


def _until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    return condition()


@pytest.mark.parametrize("i", [0, 2])
def test_a_sleeping_waiter_is_woken_by_the_store(i):
    flags = np.zeros(3, np.int64)
    _wait(np.ones(1, np.int64), 0)  # compile both before the waiter starts
    _publish(np.zeros(1, np.int64), 0, 1)
    seen = []
    waiter = threading.Thread(target=lambda: seen.append(_wait(flags, i)), daemon=True)
    waiter.start()
    assert _until(lambda: flags[i] == _atomic.WAITING), "the waiter never went to sleep"
    assert waiter.is_alive()
    _publish(flags, i, 5)
    waiter.join(10.0)
    assert not waiter.is_alive(), "the store did not wake the waiter"
    assert seen == [5] and list(np.delete(flags, i)) == [0, 0]


def test_a_store_before_the_wait_needs_no_wake():
    flags = np.zeros(2, np.int64)
    _publish(flags, 1, 3)
    assert _wait(flags, 1) == 3 and list(flags) == [0, 3]
