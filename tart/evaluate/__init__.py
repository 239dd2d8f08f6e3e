"""`tart evaluate`: every few-shot method (tart.methods) on the same seeds and splits.

- splits.py: datasets to evaluate on (text or vectors) and the seeded support / test draws.
- runner.py: the run loop: embed once, fit and score every method for every seed and k.
- report.py: a report's results, its Markdown table, plot and per-prediction records.
- compare.py: every method × embedder × k over many datasets, in one table.
"""
from tart.evaluate.runner import evaluate
from tart.evaluate.splits import EvalData, load_eval_data

__all__ = ["EvalData", "evaluate", "load_eval_data"]
