"""Choosing a task's rule by leave-one-out on its own labelled points (`TartConfig.ridge_gate = "loo"`).

Class means (the side base) and least squares (`tart.head.model.ridge_scores`) suit different tasks: on text
the class means win at every k (least squares alone trails them by 3-13 points on the dev suite, scratch runs),
on TART's noise-free linear tasks least squares wins (+4.5 points at k = 64; scripts/rule_choice_synthetic.py). Which kind a task is can be read off its labelled
points: each rule predicts each point with that point left out, and least squares answers the task where it
predicted the left-out points better by more than `z` paired standard errors. Each rule is scored by the
log-likelihood of the left-out labels at the temperature best for it on that task, so neither rule's scale
decides; that temperature is also least squares' scale where it answers.

The class means' left-out predictions use the base's own class sums (names and the unlabelled points' soft
assignments included) less the point itself: a pool makes the base stronger than its labelled points alone
show, and without it the choice took least squares on text it then lost (MiniLM, k = 16-32: -0.5 points).
Named classes need 2 SEs, not 0.25: least squares cannot read the names, and at 1 SE it still took text with
names and no pool that it lost (MiniLM, k = 32: -0.5 points); at 2 the named text is within 0.05 points.
Fewer than `min_points` labelled points, or a class with fewer than `min_per_class`, and the class means
answer: left-out predictions over 8 points picked least squares on a third of the text tasks at k = 8, at -6.9
points, and over 2-3 points per class on 6 classes (wordnet-6way, k = 16) at -3.9.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TEMPERATURES = torch.logspace(-3, 3, 25, dtype=torch.float64)  # each rule's scale, searched per task
LOO_GATE_Z = 0.25  # least squares must beat the class means by this many paired SEs (dev suite, TART's tasks)
LOO_GATE_Z_NAMED = 2.0  # and by this many where the classes are named: the class means read the names, it does not
LOO_GATE_MIN_POINTS = 16
LOO_GATE_MIN_PER_CLASS = 4


def best_log_likelihoods(scores: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """scores (B, n, C) of n left-out points with labels y (B, n): each point's log-likelihood (B, n) at the
    temperature (B,) that maximises its task's mean, from TEMPERATURES."""
    finite = torch.isfinite(scores)
    scores = scores - scores.masked_fill(~finite, 0).amax(-1, keepdim=True)
    temperatures = TEMPERATURES.to(scores.device)
    ll = torch.stack([torch.log_softmax((t * scores).masked_fill(~finite, float("-inf")), -1)
                      .gather(-1, y.long()[..., None])[..., 0] for t in temperatures])  # (T, B, n)
    best = ll.mean(-1).argmax(0)
    batch = torch.arange(scores.shape[0], device=scores.device)
    return ll[best, batch], temperatures[best]


def left_out_class_means(x, y, sums, counts, present) -> torch.Tensor:
    """Nearest class mean at each labelled point (B, k, C) with that point taken out of its class's sums."""
    B = x.shape[0]
    batch = torch.arange(B, device=x.device)[:, None]
    own_sum, own_count = sums[batch, y] - x, counts[batch, y] - 1  # (B, k, d), (B, k)
    sq = ((x[:, :, None] - (sums / counts.clamp_min(1e-9)[..., None])[:, None]) ** 2).sum(-1)  # (B, k, C)
    own_sq = ((x - own_sum / own_count.clamp_min(1e-9)[..., None]) ** 2).sum(-1)
    sq = sq.scatter(2, y[..., None], own_sq[..., None])
    return (-0.5 * sq).masked_fill(~present[:, None], float("-inf"))


def left_out_least_squares(x, y, n_classes: int, penalty: float) -> torch.Tensor:
    """Least squares on one-hot labels (intercept, penalty * k * |W|^2, as `ridge_scores` fits it) at each
    labelled point with that point left out, the total penalty kept (B, k, C): (fit_i - h_ii y_i) / (1 - h_ii)
    from the hat matrix."""
    B, k, d = x.shape
    Y = F.one_hot(y, n_classes).double()
    centred = x - x.mean(1, keepdim=True)
    gram = centred.transpose(1, 2) @ centred + penalty * k * torch.eye(d, dtype=x.dtype, device=x.device)
    hat = centred @ torch.linalg.solve(gram, centred.transpose(1, 2)) + 1.0 / k
    h = torch.diagonal(hat, dim1=1, dim2=2)[..., None]
    return (hat @ Y - h * Y) / (1 - h).clamp_min(1e-9)


@torch.no_grad()
def choose_least_squares(x_context, y_context, sums, counts, present, n_classes: int, penalty: float,
                         named: torch.Tensor | None = None, z: float = LOO_GATE_Z, z_named: float = LOO_GATE_Z_NAMED,
                         min_points: int = LOO_GATE_MIN_POINTS, min_per_class: int = LOO_GATE_MIN_PER_CLASS):
    """Per task (B,): whether least squares answers instead of the class means, and its scale there. x_context
    (B, k, d), y_context (B, k): the labelled points every query sees; sums (B, C, d), counts (B, C), present
    (B, C): the base's class moments over them (`tart.head.model.side_class_moments`); named (B,): tasks whose
    classes have names, which need `z_named` SEs instead of `z`."""
    B, k, _ = x_context.shape
    x, y = x_context.double(), y_context.long()
    labelled = F.one_hot(y, n_classes).sum(1)  # (B, C)
    eligible = (k >= min_points) & ((labelled >= min_per_class) | ~present).all(-1) & (labelled > 0).sum(-1).ge(2)
    if not eligible.any():
        return eligible, torch.ones(B, dtype=torch.float64, device=x.device)
    base, _ = best_log_likelihoods(left_out_class_means(x, y, sums.double(), counts.double(), present), y)
    ridge_left_out = left_out_least_squares(x, y, n_classes, penalty).masked_fill(~present[:, None], float("-inf"))
    ridge, scale = best_log_likelihoods(ridge_left_out, y)
    gain = ridge - base
    se = gain.std(1) / k ** 0.5
    threshold = torch.full((B,), z, dtype=gain.dtype, device=gain.device)
    if named is not None:
        threshold = torch.where(named.to(gain.device), z_named, threshold)
    return eligible & (gain.mean(1) > threshold * se), scale
