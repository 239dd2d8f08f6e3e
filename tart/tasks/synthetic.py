"""Synthetic logistic-regression tasks: TART's own training distribution (the prior's `tart` family).

TART's distribution is the default: per task a fresh w ~ alpha * N(0, I_d), points x ~ N(0, I_d),
labels y ~ Bernoulli(sigmoid(w . x)). Knobs a researcher wants on top: an intercept, label noise,
a per-task weight scale (alpha drawn log-uniformly from [alpha_min, alpha], so tasks range from
nearly noiseless to nearly random, as real embedded tasks do), and the active dimension d, padded
with zeros to the head's input size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TaskBatch:
    x_context: torch.Tensor  # (B, k, n_dims)
    y_context: torch.Tensor  # (B, k) in {0, 1}
    x_query: torch.Tensor  # (B, q, n_dims)
    y_query: torch.Tensor  # (B, q) in {0, 1}, sampled like the context labels
    p_query: torch.Tensor  # (B, q) the true P(y = 1 | x): a lower-variance training target
    w: torch.Tensor  # (B, n_dims)
    b: torch.Tensor  # (B,)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def sample_tasks(
    batch_size: int,
    k: int,
    n_queries: int,
    d: int = 16,
    n_dims: int = 16,
    alpha: float = 10.0,
    alpha_min: float | None = None,
    intercept_std: float = 0.0,
    label_noise: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> TaskBatch:
    """Sample `batch_size` independent tasks with k context points and n_queries query points each.

    Only the first d coordinates are active; the rest are zero so that one head serves d <= n_dims.
    label_noise flips each label with that probability (p_query includes it). With alpha_min, each
    task's scale is drawn log-uniformly from [alpha_min, alpha] instead of being alpha.
    """
    if not 1 <= d <= n_dims:
        raise ValueError(f"d must be in [1, n_dims={n_dims}], got {d}")
    if batch_size < 1 or k < 0 or n_queries < 0:
        raise ValueError(f"batch_size >= 1, k >= 0, n_queries >= 0 required, got {batch_size}, {k}, {n_queries}")
    if not 0.0 <= label_noise <= 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5], got {label_noise}")
    if alpha_min is not None and not 0 < alpha_min <= alpha:
        raise ValueError(f"alpha_min must be in (0, alpha={alpha}], got {alpha_min}")
    if generator is not None:
        device = generator.device
    opts = dict(generator=generator, device=device)

    w = torch.zeros(batch_size, n_dims, device=device)
    scale = torch.full((batch_size, 1), float(alpha), device=device)
    if alpha_min is not None:
        u = torch.rand(batch_size, 1, **opts)
        scale = alpha_min * (alpha / alpha_min) ** u  # log-uniform in [alpha_min, alpha]
    w[:, :d] = scale * torch.randn(batch_size, d, **opts)
    b = intercept_std * torch.randn(batch_size, **opts)
    x = torch.zeros(batch_size, k + n_queries, n_dims, device=device)
    x[:, :, :d] = torch.randn(batch_size, k + n_queries, d, **opts)

    p = torch.sigmoid(torch.einsum("bnd,bd->bn", x, w) + b[:, None])
    p = label_noise + (1 - 2 * label_noise) * p
    y = torch.bernoulli(p, generator=generator)
    return TaskBatch(
        x_context=x[:, :k], y_context=y[:, :k], x_query=x[:, k:], y_query=y[:, k:],
        p_query=p[:, k:], w=w, b=b,
    )


@dataclass
class Curriculum:
    """A value that grows from `start` by `increment` every `interval` steps, capped at `end`."""

    start: int
    end: int
    increment: int = 0
    interval: int = 1000

    def __post_init__(self):
        if self.start < 1 or self.end < self.start or self.increment < 0 or self.interval < 1:
            raise ValueError(f"bad curriculum {self}: need 1 <= start <= end, increment >= 0, interval >= 1")

    def at(self, step: int) -> int:
        return min(self.end, self.start + self.increment * (step // self.interval))
