"""``python -m linrec``: the forecasting application's command line
(:mod:`linrec.apps.cli`)."""

import sys

from linrec.apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
