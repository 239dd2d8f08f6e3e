"""Tools that explain few-shot classifiers and the language models under them.

Each module is one analysis; its `tart analyze NAME` command is tart/cli/analyze_NAME.py.
"""
