"""A task's own temperature, read from its labelled points (`TartConfig.loo_temperature`).

tart-base scales its logits by one rule for every task (200 / n with an unlabelled pool, 15 / sqrt(n)
without), and no one rule fits every task: with a pool its answers were 7-12 points less confident than
accurate on MiniLM text, about right on SmolLM2 text and more confident than accurate on the tables (dev
suite, tuning seeds; scripts/base_calibration.py). What a task needs can be read off its own labelled
points: each is predicted by the base's class means with that point left out
(`tart.head.rule_choice.left_out_class_means`, names and the pool's soft assignments included), and the scale
that fits those left-out labels best, over the scale the head applies, says how much sharper or softer this
task's answer should be. Over a few points that ratio is noisy (unbounded where every left-out point is
right), so it is clipped to [SOFTEST, SHARPEST] and taken to the power `loo_temperature`; the final answer
(label spreading included) is raised to that temperature and renormalised, which keeps every answer's order.
Only where the task has unlabelled points: there the one scale was furthest off, and the power 0.5 with the
bounds [1/30, 3] cut the summed test log-loss over MiniLM, SmolLM2 and the tables at k = 8-64 from 7.03 to 6.06
(0.33: 6.12, 0.75: 6.28; tuning seeds, results/dev-suite/calibration-loo-temperature-tuning.json). The bounds,
in scratch runs at power 0.5: [1/3, 3] 6.35, [1/2, 2] 6.39, [1/4, 4] 6.38; softer lower bounds change only the
tables, where the base alone is far too sure (the test-best temperature of its answer 0.1-0.3 on digits):
[1/10, 3] 6.11, [1/30, 3] 6.07, [1/100, 3] 6.09. Without a pool the scale 15 / sqrt(n) had been chosen on this
log-loss itself, and the temperature (power 0.5, [1/3, 3]) cut it only from 6.10 to 6.04 while raising
MiniLM's at k = 8 from 0.556 to 0.592 (calibration-loo-temperature-tuning-no-pool.json).
"""
from __future__ import annotations

import numpy as np
import torch

from tart.head.model import per_example_scale, side_class_moments
from tart.head.rule_choice import left_out_class_means

SHARPEST, SOFTEST = 3.0, 1 / 30  # the ratio's bounds
SCALES = torch.logspace(-3, 3, 241, dtype=torch.float64)  # the left-out labels' best scale, searched


@torch.no_grad()
def loo_temperature(head, x: torch.Tensor, y: torch.Tensor, x_names: torch.Tensor | None = None,
                    x_unlabeled: torch.Tensor | None = None) -> float:
    """The temperature for one task of `head` (a side-input head with `loo_temperature` > 0): x (k, d) its
    projected labelled points with label slots y (k,), x_names (n_classes, d) each slot's name (zeros where
    a slot has none) or None, x_unlabeled (U, d) its unlabelled points or None. 1 where there is no pool or
    nothing to leave out: no labelled point, or one whose class has nothing else (no other point, no name)."""
    config = head.config
    if not config.loo_temperature or len(x) == 0 or x_unlabeled is None or len(x_unlabeled) == 0:
        return 1.0
    x, y = x.double()[None], y.long()[None]
    length = torch.tensor([[x.shape[1]]])
    names_mask = None if x_names is None else x_names.abs().sum(-1)[None] > 0
    unlabeled_mask = torch.ones(1, len(x_unlabeled), dtype=torch.bool)
    # the base's weights as it answers without learned gates: half of each maximum (TartConfig.validate)
    name_weight = torch.full((1, 1), config.max_name_weight / 2, dtype=torch.float64)
    unlabeled_weight = torch.full((1, 1), config.max_unlabeled_weight / 2, dtype=torch.float64)
    sums, counts, present = side_class_moments(
        x, y, length, config.n_classes, None if x_names is None else x_names.double()[None], names_mask,
        x_unlabeled.double()[None], unlabeled_mask, name_weight, unlabeled_weight,
        config.refine_steps, head.refine_log_temperature.exp().double())
    sums, counts, present = sums[:, 0], counts[:, 0], present[:, 0]
    if (counts.gather(1, y) - 1 <= 1e-6).any():
        return 1.0
    best = best_scale(left_out_class_means(x, y, sums, counts, present)[0], y[0])
    applied = head.residual_scale.double() * per_example_scale(config.base_scale_per_example, length, name_weight,
                                                               names_mask)[0, 0]
    ratio = float(best / applied)
    return float(np.clip(ratio, SOFTEST, SHARPEST) ** config.loo_temperature)


def best_scale(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The scale in SCALES under which scores (k, C) (-inf: absent classes) give labels y (k,) the highest
    mean log-likelihood; the largest of equals, since where every point is right by far the likelihood is 1
    from some scale on and any larger one fits as well."""
    scores = scores - scores.masked_fill(~torch.isfinite(scores), 0).amax(-1, keepdim=True)
    ll = torch.log_softmax(SCALES.to(scores.device)[:, None, None] * scores, -1)[:, torch.arange(len(y)), y].mean(1)
    return SCALES[len(SCALES) - 1 - int(ll.flip(0).argmax())]


def sharpen(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities ∝ proba^temperature, per row."""
    if temperature == 1.0:
        return proba
    log_p = temperature * np.log(np.maximum(proba, 1e-12))
    p = np.exp(log_p - log_p.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)
