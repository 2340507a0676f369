"""Tools to test recurrences the way linrec tests itself.

- reference checks (NumPy only): :func:`reference_scan`, :func:`reference_scan_vjp`,
  :func:`compose_pairs`, :func:`scan_error_bound`, :func:`assert_scan_close`;
- gradient checking: :func:`check_gradients`, and :func:`check_layer` /
  :func:`check_model` for layers and models of :mod:`linrec.nn`;
- awkward sizes: :data:`BOUNDARIES`, :func:`awkward_sizes`;
- hypothesis strategies: :func:`recurrences`, :func:`pair_triples`, :class:`Recurrence`.

The strategies need hypothesis (``pip install linrec[testing]``); they are imported on
first use, so everything else here works without it.
"""

from linrec.reference import compose_pairs, reference_scan, reference_scan_vjp
from linrec.testing.bounds import assert_scan_close, scan_error_bound
from linrec.testing.gradients import check_gradients, check_layer, check_model
from linrec.testing.sizes import BOUNDARIES, awkward_sizes

__all__ = [
    "reference_scan", "reference_scan_vjp", "compose_pairs", "scan_error_bound",
    "assert_scan_close", "check_gradients", "check_layer", "check_model", "BOUNDARIES",
    "awkward_sizes",
    "recurrences", "pair_triples", "Recurrence",
]

_STRATEGIES = ("recurrences", "pair_triples", "Recurrence")


def __getattr__(name):
    if name in _STRATEGIES:
        try:
            from linrec.testing import strategies
        except ImportError as error:
            raise ImportError(
                f"linrec.testing.{name} needs hypothesis: pip install 'linrec[testing]'"
            ) from error
        return getattr(strategies, name)
    raise AttributeError(f"module 'linrec.testing' has no attribute {name!r}")
