"""What importing linrec loads: no heavy dependency until it is used.

Each import runs in a fresh interpreter, so that nothing imported by other tests counts.
The layering itself (which package may import which) is checked by ``lint-imports``
against the contracts in ``pyproject.toml``.
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("numba", "cupy", "matplotlib", "pandas", "tqdm", "dask", "xarray", "hypothesis",
         "sklearn", "torch")


def _loaded_after(statement):
    report = f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    code = f"import sys\n{statement}\n{report}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, check=True)
    return done.stdout.split()


@pytest.mark.parametrize("module", ["linrec", "linrec.testing", "linrec.nn",
                                    "linrec.reference", "linrec.apps.cli",
                                    "linrec.apps.peers"])
def test_import_loads_no_heavy_dependency(module):
    assert _loaded_after(f"import {module}") == []


def test_the_evaluation_loads_torch_only_to_train_a_peer():
    assert "torch" not in _loaded_after("import linrec.apps.evaluate, linrec.apps.report")


def test_numba_loads_on_the_first_cpu_scan():
    loaded = _loaded_after("import numpy, linrec\nlinrec.scan(0.5, numpy.ones(3))")
    assert loaded == ["numba"]
