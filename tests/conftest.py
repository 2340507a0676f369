"""Shared test configuration: hypothesis profiles, the GPU marker and the CuPy stand-in.

Profiles: ``quick`` (default: from a fresh clone on a quiet 2-core AMD EPYC, 2026-12-02,
one run each, the main suite took 32 minutes in one process and 24 in ``make test``'s
two xdist workers, the CuPy stand-in suite 3; most of it is Numba compiling each
kernel's specialisations once, which a warm cache skips),
``thorough`` (many more examples) and ``device`` (for a GPU run: more examples, no
shrinking, so a failure costs seconds): select with ``LINREC_HYPOTHESIS=<name>``.
Fix the seed with pytest's ``--hypothesis-seed=<int>``.

``LINREC_FAKE_CUPY=1`` makes ``import cupy`` import the CPU stand-in of
``tests/fake_cupy`` (installed here, before any test module is imported), so that
``tests/test_cuda_gpu.py`` runs without a GPU.
"""

import os

from hypothesis import HealthCheck, Phase, settings

from tests import fake_cupy

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("quick", max_examples=25, deadline=None,
                          suppress_health_check=_SLOW_OK)
settings.register_profile("thorough", max_examples=400, deadline=None,
                          suppress_health_check=_SLOW_OK)
settings.register_profile(
    "device", max_examples=60, deadline=None, suppress_health_check=_SLOW_OK,
    phases=[Phase.explicit, Phase.reuse, Phase.generate], print_blob=True,
)
settings.load_profile(os.environ.get("LINREC_HYPOTHESIS", "quick"))

collect_ignore = ["fake_cupy"]  # a package for import, not tests (nor doctests)

if fake_cupy.enabled():
    fake_cupy.install()
