"""Tools that explain few-shot classifiers and the language models under them.

Each module is one analysis with a `tart analyze NAME` command (registered in tart/cli/analyze.py).
"""
