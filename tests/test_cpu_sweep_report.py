"""benchmarks/cpu_sweep.py's per-call timing: every call timed in interleaved batches,
reported as the median and the best batch."""

from pathlib import Path

from tests.helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_sweep.py"


def test_small_calls_report_a_median_and_a_best_batch_per_call():
    cpu_sweep = load_script(SCRIPT, "cpu_sweep_script")
    small = cpu_sweep.small_calls(repeats=3, rounds=5)
    assert list(small) == ["np.multiply(a, b, out=h)", "scan(a, b)", "scan(a, b, out=h)",
                           "scan_vjp(gh, a, h)", "scan_vjp(gh, a, h, out=grads)"]
    for median, best in small.values():
        assert 0 < best <= median
