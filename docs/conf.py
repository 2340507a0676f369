"""Sphinx configuration: MyST Markdown pages, numpydoc docstrings, the PyData theme."""

project = "linrec"
author = "the linrec developers"
copyright = "2026, the linrec developers"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_mock_imports = ["cupy"]
html_theme = "pydata_sphinx_theme"
html_title = "linrec"
