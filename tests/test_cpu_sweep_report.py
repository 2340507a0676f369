"""benchmarks/cpu_sweep.py's per-call timing: every call timed in interleaved batches,
reported as the median and the best batch."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_sweep.py"


def test_small_calls_report_a_median_and_a_best_batch_per_call():
    spec = importlib.util.spec_from_file_location("cpu_sweep_script", SCRIPT)
    cpu_sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cpu_sweep)
    small = cpu_sweep.small_calls(repeats=3, rounds=5)
    assert list(small) == ["np.multiply(a, b, out=h)", "scan(a, b)", "scan(a, b, out=h)",
                           "scan_vjp(gh, a, h)", "scan_vjp(gh, a, h, out=grads)"]
    for median, best in small.values():
        assert 0 < best <= median
