"""The CPU backend under processes, threads, read-only installs and ``NUMBA_DISABLE_JIT``:
multiprocessing children after a call in the parent, the threading-layer policy, a compile
that must not block other threads, the disk-cache fallback, and the pure-Python mode.

Most tests run a script in a fresh interpreter (the threading layer is chosen once per
process) and kill its whole process group when it runs past its timeout, so a hang fails
the test instead of blocking the suite."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numba
import numpy as np
import pytest
from numba.core.compiler_lock import global_compiler_lock
from numba.core.dispatcher import Dispatcher

import linrec
from linrec.cpu import _dispatch
from tests.helpers import ref_scan

ROOT = Path(__file__).resolve().parents[1]

# 4 x 2**15 = 2**17 elements: above linrec.cpu.backend.SERIAL_MAX, so kernels use threads.
PARALLEL_PROBLEM = """
import numpy as np
import linrec
from linrec.testing import reference_scan

def max_error(seed):
    rng = np.random.default_rng(seed)
    a = 0.9 * rng.uniform(-1, 1, (4, 2**15))
    b = rng.uniform(-1, 1, (4, 2**15))
    return float(np.abs(linrec.scan(a, b) - reference_scan(a, b)[0]).max())
"""


def run_script(tmp_path, body, *, env=None, timeout=180, prefix=()):
    """Run ``body`` as a script file in a new session; its stdout (asserting exit 0)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environ = {key: value for key, value in environ.items() if value is not None}
    process = subprocess.Popen([*prefix, sys.executable, str(script)], cwd=tmp_path,
                               env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"timed out after {timeout} s (a hang)\n{out}\n{err[-3000:]}")
    assert process.returncode == 0, err[-3000:]
    return out, err


POOLS = {
    "fork Pool": """
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(2) as pool:
            errors = pool.map(max_error, range(4))
    """,
    "spawn Pool": """
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            errors = pool.map(max_error, range(4))
    """,
    "fork ProcessPoolExecutor": """
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(2, mp_context=context) as executor:
            errors = list(executor.map(max_error, range(4)))
    """,
    "default ProcessPoolExecutor": """
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(2) as executor:
            errors = list(executor.map(max_error, range(4)))
    """,
    "joblib default backend": """
        import joblib
        errors = joblib.Parallel(n_jobs=2)(joblib.delayed(max_error)(i) for i in range(4))
    """,
}


@pytest.mark.parametrize("pool", POOLS)
def test_process_pools_whose_children_call_linrec_after_the_parent_did(tmp_path, pool):
    if pool.startswith("joblib"):
        pytest.importorskip("joblib")
    body = PARALLEL_PROBLEM + textwrap.dedent("""
        if __name__ == "__main__":
            assert max_error(99) < 1e-12
    """) + textwrap.indent(textwrap.dedent(POOLS[pool]), "    ") + (
        "    print(max(errors))\n")
    out, _ = run_script(tmp_path, body)
    assert float(out) < 1e-12


def test_a_fork_while_another_thread_holds_the_launch_lock_leaves_the_child_working(
        tmp_path):
    # Under workqueue, launches take a lock; a child forked while another thread of the
    # parent is inside a launch inherits it locked and must not wait for it forever.
    body = PARALLEL_PROBLEM + """
if __name__ == "__main__":
    import multiprocessing
    from linrec.cpu import _threading
    assert max_error(99) < 1e-12
    with _threading.launch_guard():
        with multiprocessing.get_context("fork").Pool(1) as pool:
            print(pool.apply(max_error, (1,)))
"""
    out, _ = run_script(tmp_path, body, env={"NUMBA_THREADING_LAYER": "workqueue"})
    assert float(out) < 1e-12


LAYER_AND_THREADS = PARALLEL_PROBLEM + """
if __name__ == "__main__":
    import threading
    import numba
    errors = [None] * 4
    def work(i):
        errors[i] = max(max_error(i) for _ in range(3))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(numba.threading_layer(), max(errors))
"""


@pytest.mark.parametrize("chosen", [None, "omp", "workqueue"])
def test_threading_layer_is_fork_safe_unless_the_user_chose_one(tmp_path, chosen):
    out, _ = run_script(tmp_path, LAYER_AND_THREADS,
                        env={"NUMBA_THREADING_LAYER": chosen,
                             "NUMBA_THREADING_LAYER_PRIORITY": None})
    layer, error = out.split()
    if chosen is None:
        assert layer in ("tbb", "workqueue")
    else:
        assert layer == chosen
    assert float(error) < 1e-12


def test_the_cli_thread_limit_starts_the_fork_safe_layer(tmp_path):
    # numba.set_num_threads starts the layer too: the CLI must apply the policy first.
    pytest.importorskip("threadpoolctl")
    out, _ = run_script(tmp_path, """
import numba
from linrec.apps.cli import _limit_threads
_limit_threads(1)
print(numba.threading_layer())
""", env={"NUMBA_THREADING_LAYER": None, "NUMBA_THREADING_LAYER_PRIORITY": None})
    assert out.strip() in ("tbb", "workqueue")


def test_compiling_a_new_dtype_does_not_block_a_compiled_call_in_another_thread(
        monkeypatch):
    rng = np.random.default_rng(6)
    a, b = 0.9 * rng.uniform(-1, 1, (4, 2**15)), rng.uniform(-1, 1, (4, 2**15))
    expected = ref_scan(a, b)[0]
    np.testing.assert_allclose(linrec.scan(a, b), expected, atol=1e-12)
    # Forget the float32 variants so thread A's float32 call compiles, and hold that
    # compilation (with Numba's compiler lock) until thread B's float64 call has finished.
    monkeypatch.setattr(_dispatch, "_ENTRY_POINTS", {
        key: value for key, value in _dispatch._ENTRY_POINTS.items()
        if not any(isinstance(part, tuple) and part[0] == "f" for part in key)})
    compiling, release = threading.Event(), threading.Event()
    original_compile = Dispatcher.compile

    def held_compile(self, signature):
        if any(getattr(kind, "dtype", None) == numba.float32 for kind in signature):
            with global_compiler_lock:  # held as during a real compilation
                compiling.set()
                release.wait(120)
        return original_compile(self, signature)

    monkeypatch.setattr(Dispatcher, "compile", held_compile)
    results = {}
    thread_a = threading.Thread(target=lambda: results.setdefault(
        "a", linrec.scan(a.astype(np.float32), b.astype(np.float32))))
    thread_b = threading.Thread(target=lambda: results.setdefault("b", linrec.scan(a, b)))
    thread_a.start()
    try:
        assert compiling.wait(120)
        thread_b.start()
        thread_b.join(60)
        assert not thread_b.is_alive(), "a compiled call waited for another's compile"
    finally:
        release.set()
        thread_a.join()
        if thread_b.ident is not None:
            thread_b.join()
    np.testing.assert_allclose(results["b"], expected, atol=1e-12)
    np.testing.assert_allclose(results["a"], expected, rtol=1e-4, atol=1e-4)


def _user_namespaces_work():
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


READ_ONLY_SCRIPT = """
import warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import linrec
    from linrec.cpu import CacheWarning, gufuncs
    from linrec.testing import reference_scan
    a, b = np.full((2, 50), 0.5), np.ones((2, 50))
    h = linrec.scan(a, b, method="rows")
    g = gufuncs.scan(a, b, 0.0)
cache_warnings = [str(w.message) for w in caught if w.category is CacheWarning]
assert len(cache_warnings) == 1, cache_warnings
assert "NUMBA_CACHE_DIR" in cache_warnings[0]
print(float(np.abs(h - reference_scan(a, b)[0]).max()),
      float(np.abs(g - reference_scan(a, b)[0]).max()))
"""


def test_a_read_only_install_without_a_writable_cache_compiles_and_warns_once(tmp_path):
    # A copy of the package in a directory nothing can write to (not even root: a
    # read-only bind mount in a user namespace), with the user cache directory inside
    # it, so no Numba cache locator applies. Without user namespaces, the locators are
    # restricted to one that never applies (NUMBA_CACHE_LOCATOR_CLASSES), which takes
    # Numba down the same path.
    site = tmp_path / "site"
    shutil.copytree(ROOT / "linrec", site / "linrec",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "script.py").write_text(READ_ONLY_SCRIPT)
    env = {"PYTHONPATH": str(site), "NUMBA_CACHE_DIR": None,
           "XDG_CACHE_HOME": str(site / "cache")}
    if _user_namespaces_work():
        command = ["unshare", "-rm", "sh", "-c",
                   'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
                   'exec "$2" "$1/script.py"', "sh", str(site), sys.executable]
    elif hasattr(numba.config, "CACHE_LOCATOR_CLASSES"):
        env["NUMBA_CACHE_LOCATOR_CLASSES"] = "ZipCacheLocator"
        command = [sys.executable, str(site / "script.py")]
    else:
        pytest.skip("needs user namespaces (unshare -rm) or NUMBA_CACHE_LOCATOR_CLASSES")
    environ = {key: value for key, value in {**os.environ, **env}.items()
               if value is not None}
    done = subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [float(x) for x in done.stdout.split()] == [0.0, 0.0]
    assert not (site / "cache").exists()


DISABLE_JIT_SCRIPT = """
import numpy as np
import linrec
from linrec.cpu import backend, gufuncs, kernels
from linrec.testing import reference_scan, reference_scan_vjp

backend.CHUNK_MIN = 8  # several time chunks in the chunked schedule
rng = np.random.default_rng(3)
a = 0.9 * rng.uniform(-1, 1, (3, 9, 40))
b = rng.uniform(-1, 1, (3, 9, 40)) + 1j * rng.uniform(-1, 1, (3, 9, 40))
h0 = rng.uniform(-1, 1, (3, 9))
grad_h = rng.uniform(-1, 1, b.shape)
errors = []
for method in ("rows", "channels", "chunked", "auto"):
    for reverse in (False, True):
        h = linrec.scan(a, b, h0=h0, reverse=reverse, method=method)
        errors.append(np.abs(h - reference_scan(a, b, h0, reverse)[0]).max())
        got = linrec.scan_vjp(grad_h, a, h, h0=h0, reverse=reverse, method=method)
        want = reference_scan_vjp(grad_h, a, h, h0, reverse)
        errors.append(np.abs(got[0] - want[0].real).max())
        errors += [np.abs(x - y).max() for x, y in zip(got[1:], want[1:])]
        h_t = linrec.scan(a, b, axis=1, reverse=reverse, method=method)
        want_t = reference_scan(a, b, None, reverse, axis=1)[0]
        errors.append(np.abs(h_t - want_t).max())
h = np.empty(40, complex)
kernels.scan_1d(a[0, 0], b[0, 0], h0[0, 0], h, False)
errors.append(np.abs(h - reference_scan(a[0, 0], b[0, 0], h0[0, 0])[0]).max())
grad_a, grad_b = np.empty(40), np.empty(40, complex)
kernels.scan_vjp_1d(grad_h[0, 0], a[0, 0], h, h0[0, 0], 0.0, grad_a, grad_b, False)
want = reference_scan_vjp(grad_h[0, 0], a[0, 0], h, h0[0, 0])
errors += [np.abs(grad_a - want[0].real).max(), np.abs(grad_b - want[1]).max()]
for gufunc in (gufuncs.scan, gufuncs.scan_reverse):
    try:
        gufunc(a, b, h0)
    except RuntimeError as error:
        assert "NUMBA_DISABLE_JIT" in str(error), error
    else:
        raise AssertionError("a gufunc ran under NUMBA_DISABLE_JIT")
print(max(errors))
"""


def test_every_cpu_path_runs_as_plain_python_under_numba_disable_jit(tmp_path):
    # The gufuncs cannot (Numba compiles them regardless): they raise a clear error.
    out, _ = run_script(tmp_path, DISABLE_JIT_SCRIPT, env={"NUMBA_DISABLE_JIT": "1"},
                        timeout=600)
    assert float(out) < 1e-12
