"""Benchmarks: scripts that print numbers (ratios against a baseline measured in the same run). Run each from
the repository root as a module, e.g. `python -m benchmarks.serve_load`."""
