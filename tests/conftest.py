"""Shared test configuration: hypothesis profiles and the GPU marker.

Profiles: ``quick`` (default, a few minutes for the whole suite on 2 cores) and
``thorough`` (many more examples): select with ``LINREC_HYPOTHESIS=thorough``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "quick", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("LINREC_HYPOTHESIS", "quick"))
