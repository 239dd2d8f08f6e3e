"""The head on each family of its training prior, against that family's natural baseline.

Fresh tasks from `tart.tasks.prior` (a seed the training never uses), already projected as at inference.
Per family and k, on the same tasks and query points:
- `head`: the head given the k context points (one order, no ensemble);
- `logreg`: logistic regression (multinomial, C by 3-fold CV on the k points when every class has
  3 of them, else C = 1);
- `lda`: linear discriminant analysis with Ledoit-Wolf shrinkage (near-optimal for `gaussian`);
- `centroid`: nearest class mean (Euclidean);
- `bayes`: the true posterior's argmax (the ceiling).

    report = evaluate_families(head, ks=(8, 16, 32, 64), n_tasks=200)
    # {"tasks", "seed", "queries_per_task", "results": [{"family", "k", "head", "logreg", "lda", "centroid", "bayes"}]}
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestCentroid
from tqdm.auto import tqdm

from tart.head.model import TartReasoningModel
from tart.methods.probes import logistic_regression
from tart.tasks.prior import PriorSettings, sample_prior_batch

FAMILIES = ("gaussian", "linear", "mlp")


def _baselines(x_ctx, y_ctx, x_q) -> dict[str, np.ndarray]:
    preds = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's deprecation notices
        # the probe's rule, with the settings the family tables were measured with (no scaler, 3 folds, accuracy)
        lr = logistic_regression(y_ctx, Cs=[0.01, 0.1, 1, 10, 100], cv=3, scoring=None, max_iter=1000, shuffle=False)
        preds["logreg"] = lr.fit(x_ctx, y_ctx).predict(x_q)
        preds["lda"] = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(x_ctx, y_ctx).predict(x_q)
        preds["centroid"] = NearestCentroid().fit(x_ctx, y_ctx).predict(x_q)
    return preds


@torch.inference_mode()
def evaluate_families(head: TartReasoningModel, ks=(8, 16, 32, 64), n_tasks: int = 200, n_queries: int = 50,
                      seed: int = 4321, families=FAMILIES, settings: PriorSettings | None = None,
                      progress: bool = True) -> dict:
    cfg = head.config
    settings = settings or PriorSettings(max_classes=cfg.n_classes if cfg.multiclass else 2)
    results = []
    bar = tqdm(total=len(families) * len(ks) * n_tasks, desc="prior families", disable=not progress)
    for family in families:
        for k in ks:
            gen = torch.Generator().manual_seed(seed + k)
            b = sample_prior_batch(n_tasks, k, n_queries, cfg.n_dims, cfg.n_classes, settings, gen, family=family)
            if cfg.multiclass:
                p = head.predict_proba(b.x_context, b.y_context, b.x_query, class_mask=b.class_mask)
                head_pred = p.argmax(-1)
            else:
                head_pred = (head.predict_proba(b.x_context, b.y_context.float(), b.x_query) > 0.5).long()
            correct = {"head": (head_pred == b.y_query).float().mean().item(),
                       "bayes": (b.p_query.argmax(-1) == b.y_query).float().mean().item()}
            sums = {"logreg": 0.0, "lda": 0.0, "centroid": 0.0}
            for t in range(n_tasks):
                y_ctx = b.y_context[t].numpy()
                if len(np.unique(y_ctx)) < 2:  # one class in the context: every method predicts it
                    for name in sums:
                        sums[name] += float((b.y_query[t].numpy() == y_ctx[0]).mean())
                else:
                    for name, pred in _baselines(b.x_context[t].numpy(), y_ctx, b.x_query[t].numpy()).items():
                        sums[name] += float((pred == b.y_query[t].numpy()).mean())
                bar.update()
            correct.update({name: total / n_tasks for name, total in sums.items()})
            results.append({"family": family, "k": k, **correct})
    bar.close()
    return {"tasks": n_tasks, "seed": seed, "queries_per_task": n_queries, "results": results}
