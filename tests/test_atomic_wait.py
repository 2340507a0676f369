"""The futex wait of ``linrec.cpu._atomic``: a thread waiting in ``wait_until_set``
sleeps (it marks the element ``WAITING``), ``store_release`` wakes it, and a wake-up that
never comes costs a timeout, not a hang."""

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


def test_a_lost_wake_up_costs_a_timeout_not_a_hang():
    flags = np.zeros(1, np.int64)
    _wait(np.ones(1, np.int64), 0)
    seen = []
    waiter = threading.Thread(target=lambda: seen.append(_wait(flags, 0)), daemon=True)
    waiter.start()
    assert _until(lambda: flags[0] == _atomic.WAITING), "the waiter never went to sleep"
    time.sleep(0.05)  # several timeouts: the sleeper wakes, finds WAITING, sleeps again
    assert waiter.is_alive(), "the waiter returned before any value was stored"
    flags[0] = 7  # a plain store: no futex wake
    waiter.join(100 * _atomic.WAIT_TIMEOUT_NS / 1e9)
    if waiter.is_alive():
        _publish(flags, 0, 7)  # release it, so the failure does not hang the test run
    assert not waiter.is_alive(), "a sleeper without a wake-up never looked again"
    assert seen == [7]
