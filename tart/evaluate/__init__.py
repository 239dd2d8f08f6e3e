"""Evaluation: few-shot methods side by side on the same seeds and splits, and the head on its own tasks.

- splits.py: datasets to evaluate on (text or vectors) and the seeded support / test draws.
- runner.py: `tart evaluate`'s run loop: embed once, fit and score every method for every seed and k.
- report.py: a report's results, its Markdown table, plot and per-prediction records.
- compare.py: `tart compare`, every method × embedder × k over many datasets, in one table.
- dev_suite.py: the suite where choices about the head are made (held-out tasks, paired seeds).
- synthetic.py / prior_families.py: the head on fresh synthetic tasks / on each family of its prior.
"""
from tart.evaluate.runner import evaluate
from tart.evaluate.splits import EvalData, load_eval_data

__all__ = ["EvalData", "evaluate", "load_eval_data"]
