"""benchmarks/cpu_scan.py rewrites only the generated part of docs/benchmarks/cpu_scan.md:
the table between two marker lines; the hand-written analysis around it stays. Its
timing helpers and its all-threads floor do what they say."""

import concurrent.futures
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_scan.py"
DOC = SCRIPT.parents[1] / "docs" / "benchmarks" / "cpu_scan.md"


@pytest.fixture(scope="module")
def cpu_scan():
    return load_script(SCRIPT, "cpu_scan_script")


def test_only_the_text_between_the_markers_is_replaced_and_reruns_keep_the_rest(
        cpu_scan, tmp_path):
    path = tmp_path / "report.md"
    before, after = "# Title\n\nintro line\n\n", "\n\n## Notes by hand\n\nkeep me\n"
    path.write_text(f"{before}{cpu_scan.BEGIN}\nold table\n{cpu_scan.END}{after}")
    for table in ("| new | table |", "| newer | table |"):
        cpu_scan.write_between_markers(path, table)
        generated = f"{cpu_scan.BEGIN}\n{table}\n{cpu_scan.END}"
        assert path.read_text() == before + generated + after


@pytest.mark.parametrize("broken", [
    "# no markers at all\n",
    "{BEGIN}\nonly the first marker\n",
    "{END}\nend before begin\n{BEGIN}\n",
    "{BEGIN}\n{END}\n{BEGIN}\n{END}\n",
])
def test_a_file_without_one_pair_of_markers_is_refused_and_left_alone(cpu_scan, tmp_path,
                                                                       broken):
    path = tmp_path / "report.md"
    text = broken.format(BEGIN=cpu_scan.BEGIN, END=cpu_scan.END)
    path.write_text(text)
    with pytest.raises(ValueError, match="needs one line"):
        cpu_scan.write_between_markers(path, "| table |")
    assert path.read_text() == text


def test_the_script_refuses_before_it_benchmarks_anything(cpu_scan, tmp_path, capsys):
    path = tmp_path / "report.md"
    path.write_text("hand-written, no markers\n")
    with pytest.raises(SystemExit) as exit_info:
        cpu_scan.main(["--output", str(path)])
    assert exit_info.value.code == 2
    assert "needs one line" in capsys.readouterr().err


def test_a_missing_file_is_created_with_a_title(cpu_scan, tmp_path):
    path = tmp_path / "new.md"
    cpu_scan.write_between_markers(path, "| table |")
    assert path.read_text() == (f"# CPU benchmark\n\n{cpu_scan.BEGIN}\n| table |\n"
                                f"{cpu_scan.END}\n")


def test_the_committed_report_has_its_markers(cpu_scan):
    text = DOC.read_text()
    assert text.count(cpu_scan.BEGIN) == 1 and text.count(cpu_scan.END) == 1
    assert text.index(cpu_scan.BEGIN) < text.index(cpu_scan.END)


def test_rounds_call_every_function_once_in_turn_and_ratios_pair_rounds(cpu_scan):
    calls = []
    times = cpu_scan.interleaved_times(
        {"x": lambda: calls.append("x"), "y": lambda: calls.append("y")}, repeats=3)
    assert calls == ["x", "y"] * 4  # one untimed call each, then three rounds
    assert [len(times[name]) for name in "xy"] == [3, 3]
    # per-round ratios 2, 0.5 and 3: their median, not the ratio of medians (4 / 2)
    paired = {"x": [2.0, 1.0, 6.0], "y": [1.0, 2.0, 2.0]}
    assert cpu_scan.ratio(paired, "x", "y") == 2.0
    with pytest.raises(ValueError):
        cpu_scan.ratio({"x": [1.0], "y": [1.0, 2.0]}, "x", "y")


@pytest.mark.parametrize("shape", [(1, 1), (3, 1001), (1001, 3), (1, 7)])
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_the_all_threads_floor_multiplies_every_element(cpu_scan, shape, parts):
    rng = np.random.default_rng(parts)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    h = np.full(shape, np.nan)
    with concurrent.futures.ThreadPoolExecutor(parts) as pool:
        cpu_scan.parallel_multiply(a, b, h, pool, parts)
    np.testing.assert_array_equal(h, a * b)


@pytest.mark.parametrize("allocations", [1, 3])
def test_each_allocation_gets_new_arrays_and_its_own_rounds(cpu_scan, monkeypatch,
                                                            allocations):
    made, original = [], cpu_scan.make_inputs

    def counting_inputs(shape, dtype, rng):
        made.append(original(shape, dtype, rng))
        return made[-1]

    monkeypatch.setattr(cpu_scan, "make_inputs", counting_inputs)
    # the script's cached @njit loop is not what this test is about (and Numba cannot
    # reload its cache into a module loaded from a file path)
    monkeypatch.setattr(cpu_scan, "njit_loop", lambda a, b, h, axis: None)
    rng = np.random.default_rng(0)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        row = cpu_scan.bench_case((3, 40), -1, np.float64, 2, rng, None, pool,
                                  allocations)
    assert len(made) == allocations
    assert all(not np.shares_memory(x[0], y[0]) for x, y in zip(made, made[1:]))
    assert {len(seconds) for seconds in row["times"].values()} == {2 * allocations}
    assert len(row["bwd out per allocation"]) == allocations
    assert set(row["peers"]) == {"njit loop", "numpy loop"}
    spread = cpu_scan._spread(row["bwd out per allocation"])
    assert (spread == "") == (allocations == 1)


def test_the_range_of_per_allocation_ratios_reads_min_to_max(cpu_scan):
    assert cpu_scan._spread([1.5, 3.25, 1.25]) == " [1.25-3.25]"
    assert cpu_scan._spread([2.0]) == ""
