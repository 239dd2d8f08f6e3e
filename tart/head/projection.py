"""Map a task's embeddings (n × hidden) into the head's input space (n × n_dims, roughly N(0, I)).

TART fits PCA to 16 dimensions on the k support embeddings and whitens without shrinkage: at small k
the trailing components have almost no variance, and whitening blows their noise up to the size of
the real signal. Here each component is scaled by 1/sqrt(lambda_i + shrinkage · mean(lambda)), so
strong directions come out near unit variance and weak, noisy ones stay small. Components beyond
what the data supports (k - 1 at most) are zero, which the head saw in training as d < n_dims.

Features are standardised first (on the same data), as for the logistic-regression probe: causal-LM
embeddings have a few huge-variance dimensions that otherwise take over the top components
(SmolLM2 on 4 bundled datasets, dev seeds: +1.6 / +1.2 points at k = 16 / 64; MiniLM: -0.2 / -0.4).
With `shrunk_std` each feature's log-variance is shrunk toward the task's typical one by how much of
their spread a fit on n points explains as noise (empirical Bayes): a sentence embedder's features,
alike in spread, are barely rescaled, while SmolLM2's few huge dimensions and a table's units still are
(dev suite, the side base: +0.8 / +0.6 / +0.7 / +0.6 points with MiniLM at k = 8 / 16 / 32 / 64 over
full standardisation, SmolLM2 and the tables unchanged).

One code path for training and inference: `fit_projection` / `apply_projection` work on batches of
tasks in torch, so the training loop projects every synthetic task exactly as `TartClassifier`
projects a user's task (one task at a time: `tart.head.ensemble.fit_task_projection` and `project`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tart.defaults import DEFAULT_SHRINKAGE

RANK_TOLERANCE = 1e-5  # singular values below this fraction of the largest are numerical zeros (float32 too)


@dataclass
class FittedProjection:
    mean: torch.Tensor  # (B, 1, D)
    std: torch.Tensor  # (B, 1, D)
    components: torch.Tensor  # (B, D, m): principal directions, m <= n_dims
    scale: torch.Tensor  # (B, 1, m)
    n_dims: int


def fit_projection(X: torch.Tensor, n_dims: int, shrinkage: float = DEFAULT_SHRINKAGE, standardize: bool = True,
                   weights: torch.Tensor | None = None, standardize_from: int = 0,
                   shrunk_std: bool = False) -> FittedProjection:
    """Fit on X (B, n, D), one projection per task: standardise, PCA, shrunk whitening. `weights` (B, n) of
    0 / 1 leave rows out of a task's fit (tasks of a batch fitted on different numbers of points, as on
    their own); a task's components beyond what its own points support are zero. `standardize_from`: a
    task fitted on fewer points is not standardised (as TartClassifier fits one: MIN_POINTS_TO_STANDARDIZE).
    `shrunk_std`: standardise by `shrunk_scales` instead of each feature's own spread."""
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
    if X.dim() != 3 or X.shape[1] < 2:
        raise ValueError(f"projection needs at least 2 points per task, got shape {tuple(X.shape)}")
    n, D = X.shape[1], X.shape[2]
    w = X.new_ones(X.shape[0], n, 1) if weights is None else weights.to(X.dtype)[..., None]
    n_task = w.sum(1, keepdim=True)  # (B, 1, 1)
    mean = (w * X).sum(1, keepdim=True) / n_task
    if standardize:
        variance = (w * (X - mean) ** 2).sum(1, keepdim=True) / n_task
        std = (shrunk_scales(variance, n_task) if shrunk_std else variance.sqrt()) + 1e-6
    else:
        std = torch.ones_like(mean)
    std = torch.where(n_task >= standardize_from, std, torch.ones_like(std))
    m = min(n_dims, n - 1, D)
    _, s, Vh = torch.linalg.svd(w.sqrt() * (X - mean) / std, full_matrices=False)  # a weight-0 row adds nothing
    # a component is supported by n points up to n - 1 of them, and only where the points vary: past the
    # points' rank (constant features, as digits' blank pixels) it would scale up whatever a new point has there
    supported = ((torch.arange(m, device=X.device) < n_task[:, 0] - 1)
                 & (s[:, :m] > RANK_TOLERANCE * s[:, :1])).to(X.dtype)  # (B, m)
    variances = s[:, :m] ** 2 / (n_task[:, 0] - 1) * supported
    average = variances.sum(1, keepdim=True) / supported.sum(1, keepdim=True).clamp_min(1)  # none: all points alike
    # shrinkage = inf: no whitening, every component scaled alike (unit variance on average)
    scale = supported / torch.sqrt((average if math.isinf(shrinkage) else variances + shrinkage * average) + 1e-12)
    components = Vh[:, :m].transpose(1, 2)
    # Deterministic signs (as scikit-learn's svd_flip): the largest loading of each component is positive.
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    signs[signs == 0] = 1
    return FittedProjection(mean, std, components * signs, scale[:, None], n_dims)


def shrunk_scales(variance: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Per-feature scales (B, 1, D) from variances (B, 1, D) over n (B, 1, 1) points: log-variances pulled
    toward their median by noise / spread, where noise is the sampling variance of a log-variance over n
    points (trigamma((n - 1) / 2)) and spread the robust variance of the task's log-variances (MAD; a
    constant feature is an outlier, not spread). Alike features keep alike scales; features whose spread
    the noise cannot explain keep their own."""
    log_var = torch.log(variance + 1e-12)
    centre = log_var.median(-1, keepdim=True).values
    spread = (1.4826 * (log_var - centre).abs().median(-1, keepdim=True).values) ** 2
    noise = torch.polygamma(1, ((n - 1) / 2).clamp_min(0.5))
    pull = (noise / spread.clamp_min(1e-12)).clamp(max=1.0)
    return torch.exp((centre + (1 - pull) * (log_var - centre)) / 2)


def apply_projection(p: FittedProjection, X: torch.Tensor) -> torch.Tensor:
    """(B, n, D) → (B, n, n_dims); components the fit could not support are zero."""
    Z = ((X - p.mean) / p.std) @ p.components * p.scale
    return torch.nn.functional.pad(Z, (0, p.n_dims - Z.shape[-1]))
