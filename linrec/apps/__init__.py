"""The forecasting application built on the library: command line, training loop,
datasets, baselines, metrics and plots.

The library (``linrec``, ``linrec.nn``, ``linrec.testing``) never imports this package.
"""
