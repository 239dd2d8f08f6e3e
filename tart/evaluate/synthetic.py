"""`tart eval-synthetic`: the head against logistic regression and the true-w oracle on fresh tasks.

All three methods see the same tasks: the head and logistic regression read the first k context
points of each task, and all are scored on the same query points (sampled labels, so the oracle is
not 1.0). Two logistic-regression baselines, both with an intercept only when the tasks have one
(TART's reference tasks do not):
- `logreg`: a per-task oracle, the best C for each task (from 0.1 to 10000) chosen on that task's own
  queries. Its grid holds `logreg_cv`'s and both refit the same way, so it is >= `logreg_cv` on every
  task by construction: an upper bound that favours the baseline. (Reports written before this used
  one C per k for all tasks, which was not an upper bound.)
- `logreg_cv`: C from {1, 100, 10000} chosen per task by stratified cross-validation on its k support
  points alone (what a user could do), then refitted on all k.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

from tart.head.ensemble import positive_probability
from tart.head.model import TartReasoningModel
from tart.tasks.synthetic import make_generator, sample_tasks

LOGREG_C = (1.0, 100.0, 10000.0)
LOGREG_C_BEST = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)  # `logreg` picks on the queries: a wider grid


def sample_eval_tasks(n_tasks, k_max, n_queries, d, n_dims, alpha, seed, device="cpu"):
    return sample_tasks(n_tasks, k_max, n_queries, d=d, n_dims=n_dims, alpha=alpha,
                        generator=make_generator(seed, device))


@torch.inference_mode()
def head_accuracy(model: TartReasoningModel, tasks, ks, batch_size: int = 250, permutations: int = 1,
                  seed: int = 0) -> tuple[dict[int, float], dict[int, float]]:
    """Accuracy of the head given the first k context points, (given order, averaged): the second
    averages the probabilities over `permutations` orders of those k points (the first order is the
    given one), as TartClassifier does. One pass computes both."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    single, averaged = {}, {}
    for k in ks:
        # orders alone, shared by a batch of tasks: not tart.head.ensemble's members (slots, sign flips, label swaps)
        orders = [torch.arange(k)] + [torch.randperm(k, generator=gen) for _ in range(permutations - 1)]
        correct_single = correct_averaged = 0.0
        for i in range(0, len(tasks.w), batch_size):
            sl = slice(i, i + batch_size)
            probs = [positive_probability(model, tasks.x_context[sl, order].to(device),
                                          tasks.y_context[sl, order].to(device), tasks.x_query[sl].to(device)).cpu()
                     for order in orders]
            target = tasks.y_query[sl]
            correct_single += ((probs[0] > 0.5).float() == target).sum().item()
            correct_averaged += ((sum(probs) / len(probs) > 0.5).float() == target).sum().item()
        single[k] = correct_single / tasks.y_query.numel()
        averaged[k] = correct_averaged / tasks.y_query.numel()
    return single, averaged


def _fit_predict(X, y, x_query, c: float, intercept: bool) -> np.ndarray:
    """One logistic regression (Newton's method: exact on these small problems and ~20x faster than
    lbfgs at large C); one class in the support: predict it. Both baselines refit through here, so the
    oracle's candidates include the exact model the CV variant ends with."""
    if len(np.unique(y)) < 2:
        return np.full(len(x_query), y[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, fit_intercept=intercept, solver="newton-cholesky",
                                  max_iter=100).fit(X, y).predict(x_query)


def logreg_oracle_correct(tasks, k: int, cs=LOGREG_C_BEST) -> np.ndarray:
    """Per task, correct queries of the best C for that task, chosen on its own queries (an oracle:
    a per-task upper bound on any C from `cs` a user could pick, hence on `logreg_cv`)."""
    x_ctx, y_ctx = tasks.x_context.numpy(), tasks.y_context.numpy()
    x_q, y_q = tasks.x_query.numpy(), tasks.y_query.numpy()
    intercept = bool((tasks.b != 0).any())
    return np.array([max(int((_fit_predict(x_ctx[t, :k], y_ctx[t, :k], x_q[t], c, intercept) == y_q[t]).sum())
                         for c in cs) for t in range(len(x_ctx))])


def logreg_cv_choice(X, y, cs=LOGREG_C, folds: int = 5, intercept: bool = False) -> float:
    """C chosen by stratified CV on the k support points alone (at most `folds` folds, at least 2
    examples of each class per fold set; else C = 1)."""
    # not tart.methods.probes.logistic_regression: 2 per class suffice here, and _fit_predict refits (the oracle's way)
    counts = np.bincount(y.astype(int), minlength=2)
    if counts.min() < 2:
        return 1.0
    cv = StratifiedKFold(min(folds, int(counts.min())), shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)  # LogisticRegressionCV's coming defaults
        return float(LogisticRegressionCV(Cs=list(cs), cv=cv, fit_intercept=intercept, solver="newton-cholesky",
                                          max_iter=100).fit(X, y).C_[0])


def logreg_cv_correct(tasks, k: int, cs=LOGREG_C, folds: int = 5) -> np.ndarray:
    """Per task, correct queries of logistic regression with C chosen by CV on its k support points
    (what a user could do), refitted on all k with that C."""
    x_ctx, y_ctx = tasks.x_context.numpy(), tasks.y_context.numpy()
    x_q, y_q = tasks.x_query.numpy(), tasks.y_query.numpy()
    intercept = bool((tasks.b != 0).any())
    correct = []
    for t in range(len(x_ctx)):
        X, y = x_ctx[t, :k], y_ctx[t, :k]
        c = logreg_cv_choice(X, y, cs, folds, intercept)
        correct.append(int((_fit_predict(X, y, x_q[t], c, intercept) == y_q[t]).sum()))
    return np.array(correct)


def _accuracy_per_k(correct_fn, tasks, ks, desc, progress) -> dict[int, float]:
    accs = {}
    for k in tqdm(ks, desc=desc, disable=not progress):
        accs[k] = float(correct_fn(tasks, k).sum() / tasks.y_query.numel())
    return accs


def logreg_accuracy(tasks, ks, progress=True) -> dict[int, float]:
    """Per k, accuracy of logistic regression with the best C per task chosen on its queries (C from
    0.1 to 10000), with an intercept only when the tasks have one: the upper bound."""
    return _accuracy_per_k(logreg_oracle_correct, tasks, ks, "logreg (per-task oracle C)", progress)


def logreg_cv_accuracy(tasks, ks, progress=True) -> dict[int, float]:
    """Per k, accuracy of logistic regression with C chosen per task by CV on its k support points."""
    return _accuracy_per_k(logreg_cv_correct, tasks, ks, "logreg (C by CV)", progress)


def oracle_accuracy(tasks) -> float:
    pred = (torch.einsum("bqd,bd->bq", tasks.x_query, tasks.w) + tasks.b[:, None] > 0).float()
    return (pred == tasks.y_query).float().mean().item()


def evaluate_synthetic(model: TartReasoningModel, ks=(8, 16, 32, 64), n_tasks=2000, seed=1234, d=None,
                       alpha=None, n_queries=100, permutations=1, progress=True) -> dict:
    """The eval-synthetic report: {"d", "alpha", "tasks", "seed", "queries_per_task", "permutations",
    "results": [{"k", "head", "logreg", "logreg_cv", "oracle"}, ...]}; with permutations > 1, each result also has
    "head_single_order" (the head on the given order alone)."""
    cfg = model.config
    d = cfg.n_dims if d is None else d
    alpha = cfg.alpha if alpha is None else alpha
    if max(ks) > cfg.max_examples:
        raise ValueError(f"k={max(ks)} exceeds the head's max_examples={cfg.max_examples}")
    tasks = sample_eval_tasks(n_tasks, max(ks), n_queries, d, cfg.n_dims, alpha, seed)
    single, head = head_accuracy(model, tasks, ks, permutations=permutations, seed=seed)
    logreg = logreg_accuracy(tasks, ks, progress=progress)
    logreg_cv = logreg_cv_accuracy(tasks, ks, progress=progress)
    oracle = oracle_accuracy(tasks)
    results = [{"k": k, "head": head[k], "logreg": logreg[k], "logreg_cv": logreg_cv[k], "oracle": oracle}
               for k in ks]
    if permutations > 1:
        for r in results:
            r["head_single_order"] = single[r["k"]]
    return {"d": d, "alpha": alpha, "tasks": n_tasks, "seed": seed, "queries_per_task": n_queries,
            "permutations": permutations, "results": results}


def plot_synthetic(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [r["k"] for r in report["results"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, style in (("head", "o-"), ("logreg", "s--"), ("logreg_cv", "^--"), ("oracle", ":")):
        if key in report["results"][0]:  # reports written before logreg_cv existed lack it
            ax.plot(ks, [r[key] for r in report["results"]], style, label=key)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (labelled examples in context)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{report['tasks']} synthetic tasks, d={report['d']}, alpha={report['alpha']:g}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
