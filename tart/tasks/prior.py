"""A prior of synthetic task families for training the head on what inference feeds it.

TART's head saw isotropic Gaussian points with noiseless linear labels. Real embedded tasks are
high-dimensional, anisotropic (a decaying spectrum), clustered, noisy and multi-class, and reach the
head through `tart.head.projection` fitted on the k support points. So each training step here:

1. picks a family by the configured weights (one per step, so a batch shares its shapes);
2. samples `batch_size` tasks of that family in D input dimensions (D drawn per step), each with
   2..max_classes classes placed on random label slots;
3. passes every task through the very projection used at inference (fit on its context points),
   except the `tart` family, which stays TART's raw isotropic tasks (what `tart eval-synthetic` reads).

Families (all with a latent spectrum lambda_i = i^-beta, then one random rotation per step so that
no feature is special; only a random subset of `relevant` latent directions carries the label, the
rest are irrelevant features, chosen with preference for high-variance directions):
- `gaussian`: class-conditional Gaussians with a shared anisotropic covariance, class means
  separated by a Mahalanobis distance drawn log-uniformly (Bayes accuracy from ~0.6 to ~1); the
  context is class-balanced as a user's support set is, queries follow class priors drawn from a
  Dirichlet (imbalance). Nearest centroid / LDA is near-optimal here.
- `linear`: multinomial logistic labels with a random scale (signal-to-noise), intercepts (imbalance)
  and label noise (each label replaced by a uniform one with probability epsilon).
- `mlp`: labels from a random one-hidden-layer tanh network (nonlinear boundaries).
- `tart`: TART's binary family: w ~ alpha N(0, I_16), y ~ Bernoulli(sigmoid(w.x)), unprojected.
- `real`: real text embeddings (a bank of unlabelled stdlib docstring sentences embedded by the
  packaged models, `tart.training.real_bank`) labelled by their cosine to C random bank points
  (prototypes), so the inputs have a real embedder's geometry; no latent spectrum, no rotation.
- `bank`: real labelled episodes (`tart.tasks.episodes`): real texts with their real labels from the task
  bank (`tart.training.task_bank`), embedded by a packaged model; the targets are the labels.

Targets are the true class probabilities given the classes present in the context (soft labels).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
import pydantic
import torch
import torch.nn.functional as F
from pydantic import Field

from tart.head import projection
from tart.defaults import DEFAULT_SHRINKAGE, MIN_POINTS_TO_STANDARDIZE, PACKAGED_EMBEDDERS
from tart.tasks.synthetic import sample_tasks

FAMILIES = ("gaussian", "linear", "mlp", "tart", "real", "bank")


@pydantic.dataclasses.dataclass(config=pydantic.ConfigDict(extra="forbid"))
class PriorSettings:
    """The prior's knobs (a training config's [prior] table); pydantic checks them when one is made, and an
    unknown name is an error."""

    weights: dict[str, float] = field(default_factory=lambda: {"gaussian": 0.4, "linear": 0.3, "mlp": 0.15, "tart": 0.15})
    max_classes: Annotated[int, Field(ge=2)] = 10
    p_binary: Annotated[float, Field(ge=0, le=1)] = 0.5  # share of binary tasks; the rest have 3..max_classes classes
    dim_min: int = 32  # input dimension D, drawn per step
    dim_max: int = 384
    beta_min: float = 0.3  # spectrum decay lambda_i = i^-beta, beta uniform in [beta_min, beta_max]
    beta_max: float = 1.5
    relevant_min: int = 1  # latent directions that carry the label, log-uniform
    relevant_max: int = 64
    relevance_power: float = 0.5  # direction i carries the label with weight lambda_i^power (0.5: tart-prior)
    separation_min: float = 0.5  # gaussian: Mahalanobis distance between class means, log-uniform
    separation_max: float = 6.0
    scale_min: float = 0.5  # linear / mlp: logit scale, log-uniform
    scale_max: float = 10.0
    label_noise_max: Annotated[float, Field(ge=0, le=1)] = 0.25  # half of the linear tasks get epsilon uniform in [0, this]
    tart_alpha: float = 10.0
    shrinkage: float = DEFAULT_SHRINKAGE  # the projection's, as at inference
    real_embedders: tuple[str, ...] = PACKAGED_EMBEDDERS  # `real`: whose banks to draw from
    bank_embedders: tuple[str, ...] = PACKAGED_EMBEDDERS  # `bank`: whose embeddings of the task bank
    bank_exclude: tuple[str, ...] = ()  # `bank`: sources left out (leave-one-source-out runs)
    # `bank`: draw a source uniformly, then one of its tasks (a binary dataset has one task, and drawn
    # uniformly over tasks it would almost never be seen); False: uniformly over tasks
    bank_by_source: bool = False
    standardize: bool = True
    shrunk_std: bool = False  # standardised by shrunk scales (tart.head.projection.shrunk_scales), as the head's config says
    # side inputs, for a head that reads them (TartConfig.side_inputs): names of the classes (gaussian and
    # bank tasks, each named with this probability) and U unlabelled points per task (U uniform in
    # [0, unlabeled_max] per step; drawn like the queries, their labels never shown)
    p_names: Annotated[float, Field(ge=0, le=1)] = 0.0
    unlabeled_max: Annotated[int, Field(ge=0)] = 0
    # a batch has unlabelled points at all with this probability (a user often has none), and TART's tasks
    # get them too with `tart_unlabeled` (more draws of the task's inputs): so that whether a pool is there
    # tells a head nothing about the kind of task (issue 25, stage 20: it left tart-gate's share on text
    # without a pool where it was)
    p_unlabeled: Annotated[float, Field(ge=0, le=1)] = 1.0
    tart_unlabeled: bool = False
    name_noise_min: float = 0.3  # gaussian: a name is its class mean + a shift shared by the task's names
    name_noise_max: float = 3.0  # + noise of this scale (log-uniform), in the class spread's units
    # the projection is fitted on the context and each of the task's C names once, as TartClassifier fits
    # it; False (the heads trained before): on the names repeated to max_classes rows, which weighs the
    # names of a task with few classes several times (at k = 8, 10 name rows against 8 points)
    names_once: bool = False
    # a task has at most k / this classes (2: the heads trained before; 1: as few as one point per class,
    # as a user with 8 examples of 7 intents has)
    min_points_per_class: Annotated[int, Field(ge=1)] = 2
    # a named bank batch is zero-shot with this probability: no context, only the names and the unlabelled
    # points (k = 0, up to max_classes classes), projected as TartClassifier projects a zero-shot task
    p_zero_shot: Annotated[float, Field(ge=0, le=1)] = 0.0

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        unknown = sorted(set(self.weights) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown prior famil{'ies' if len(unknown) > 1 else 'y'} {unknown}; known: {list(FAMILIES)}")
        if any(w < 0 for w in self.weights.values()) or not sum(self.weights.values()) > 0:
            raise ValueError(f"prior weights must be >= 0 and not all zero, got {self.weights}")
        for lo, hi in (("dim_min", "dim_max"), ("beta_min", "beta_max"), ("relevant_min", "relevant_max"),
                       ("separation_min", "separation_max"), ("scale_min", "scale_max")):
            if not 0 < getattr(self, lo) <= getattr(self, hi):
                raise ValueError(f"need 0 < {lo} <= {hi}, got {getattr(self, lo)} and {getattr(self, hi)}")
        return self


@dataclass
class PriorBatch:
    x_context: torch.Tensor  # (B, k, n_dims), projected
    y_context: torch.Tensor  # (B, k) class slots
    x_query: torch.Tensor  # (B, q, n_dims)
    y_query: torch.Tensor  # (B, q) class slots, sampled
    p_query: torch.Tensor  # (B, q, n_slots) true class probabilities given the context's classes
    class_mask: torch.Tensor  # (B, n_slots) slots present in the context or named
    family: str
    x_names: torch.Tensor | None = None  # (B, n_slots, n_dims) projected names, zero where unnamed
    names_mask: torch.Tensor | None = None  # (B, n_slots)
    x_unlabeled: torch.Tensor | None = None  # (B, U, n_dims) projected unlabelled points


def _uniform(gen, lo, hi, *shape):
    return lo + (hi - lo) * torch.rand(*shape, generator=gen)


def _log_uniform(gen, lo, hi, *shape):
    return torch.exp(_uniform(gen, math.log(lo), math.log(hi), *shape))


def _randint(gen, lo, hi) -> int:
    """Uniform integer in [lo, hi]."""
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def _n_classes(gen, s: PriorSettings, B: int, k: int) -> torch.Tensor:
    top = s.max_classes if k == 0 else max(2, min(s.max_classes, k // s.min_points_per_class))  # points per class
    many = torch.randint(min(3, top), top + 1, (B,), generator=gen)
    return torch.where(torch.rand(B, generator=gen) < s.p_binary, torch.full_like(many, 2), many)


def _relevant_mask(gen, s: PriorSettings, lam: torch.Tensor, B: int) -> torch.Tensor:
    """(B, D) 0/1: which latent directions carry the label; high-variance ones are likelier (weights
    lambda^relevance_power). With a low power much of the signal lies in directions that a k-point PCA
    drops, and even nearest centroid falls far below the Bayes rule on the projected task."""
    D = len(lam)
    m = _log_uniform(gen, s.relevant_min, min(s.relevant_max, D), B).round().long().clamp(1, D)
    keys = torch.rand(B, D, generator=gen) ** (1.0 / lam**s.relevance_power)  # weighted sampling, no replacement
    rank = keys.argsort(1, descending=True).argsort(1)
    return (rank < m[:, None]).float()


def _mask_logits(logits: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Keep the first C[b] classes of each task; the others can never occur."""
    absent = torch.arange(logits.shape[-1]) >= C[:, None]
    return logits.masked_fill(absent[:, None, :], float("-inf"))


def _gaussian(gen, s, B, k, q, lam, C):
    Cmax = s.max_classes
    relevant = _relevant_mask(gen, s, lam, B)
    m = relevant.sum(1, keepdim=True)
    sep = _log_uniform(gen, s.separation_min, s.separation_max, B, 1)
    # mean_c ~ N(0, lambda) on the relevant directions: E|mean_a - mean_b|^2_Sigma^-1 = 2 m s^2 = sep^2
    means = torch.randn(B, Cmax, len(lam), generator=gen) * lam.sqrt() * relevant[:, None] * (sep / (2 * m).sqrt())[:, None]
    pi = torch.softmax(_mask_logits(torch.log(_class_priors(gen, B, Cmax))[:, None], C)[:, 0], -1)
    # context: class-balanced in a random order, as a user's support set; queries: from the priors
    slots = torch.arange(k)[None] % C[:, None]
    y_ctx = slots.gather(1, torch.rand(B, k, generator=gen).argsort(1))
    y_q = torch.multinomial(pi, q, replacement=True, generator=gen)
    y = torch.cat([y_ctx, y_q], 1)
    z = means.gather(1, y[..., None].expand(-1, -1, len(lam))) + torch.randn(B, k + q, len(lam), generator=gen) * lam.sqrt()
    # posterior: log pi_c - 0.5 (x - mean_c)' Sigma^-1 (x - mean_c)
    d2 = (((z[:, k:, None, :] - means[:, None]) ** 2) / lam).sum(-1)
    logits = torch.log(pi.clamp_min(1e-12))[:, None] - 0.5 * d2
    return z, y, _mask_logits(logits, C), means


def _class_priors(gen, B, Cmax):
    """Random class priors from even to skewed: Exp(1) draws (a Dirichlet(1) once normalised;
    torch's Gamma sampler takes no generator) raised to a random power in [1/4, 2]."""
    sharpness = _log_uniform(gen, 0.25, 2.0, B, 1)
    g = (-torch.log(torch.rand(B, Cmax, generator=gen).clamp_min(1e-12))) ** sharpness
    return g / g.sum(1, keepdim=True)


def _linear(gen, s, B, k, q, lam, C):
    relevant = _relevant_mask(gen, s, lam, B)
    z = torch.randn(B, k + q, len(lam), generator=gen) * lam.sqrt()
    W = torch.randn(B, len(lam), s.max_classes, generator=gen) * relevant[..., None]
    used = (torch.arange(s.max_classes) < C[:, None]).float()[:, None]
    W = W - (W * used).sum(-1, keepdim=True) / C[:, None, None]  # centred: with one direction, two
    W = W / ((lam[:, None] * W**2).sum(1, keepdim=True).sqrt() + 1e-12)  # classes still differ; logits ~ N(0, 1)
    scale = _log_uniform(gen, s.scale_min, s.scale_max, B, 1, 1)
    logits = scale * (z @ W) + 0.5 * torch.randn(B, 1, s.max_classes, generator=gen)
    return z, logits


def _mlp(gen, s, B, k, q, lam, C, hidden: int = 16):
    relevant = _relevant_mask(gen, s, lam, B)
    z = torch.randn(B, k + q, len(lam), generator=gen) * lam.sqrt()
    A = torch.randn(B, len(lam), hidden, generator=gen) * relevant[..., None]
    A = A / ((lam[:, None] * A**2).sum(1, keepdim=True).sqrt() + 1e-12)
    gain = _uniform(gen, 0.5, 3.0, B, 1, 1)
    h = torch.tanh(gain * (z @ A) + torch.randn(B, 1, hidden, generator=gen))
    u = h @ torch.randn(B, hidden, s.max_classes, generator=gen)
    u = (u - u.mean(1, keepdim=True)) / (u.std(1, keepdim=True) + 1e-6)
    return z, _log_uniform(gen, s.scale_min, s.scale_max, B, 1, 1) * u


def bank_path(embedder: str):
    """Where `python -m tart.training.real_bank` writes an embedder's bank (under the user cache)."""
    from tart.paths import cache_dir

    return cache_dir() / "real-bank" / f"{embedder}.npy"


@functools.lru_cache(maxsize=None)
def _bank(embedder: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A real bank: the raw embeddings, and their standardised unit rows (for prototype cosines)."""
    path = bank_path(embedder)
    if not path.is_file():
        raise FileNotFoundError(f"the prior's `real` family needs {path}: build it with "
                                "`python -m tart.training.real_bank`")
    X = torch.from_numpy(np.load(path)).float()
    Z = (X - X.mean(0)) / (X.std(0) + 1e-6)
    return X, Z / Z.norm(dim=1, keepdim=True)


def _real(gen, s, B, k, q):
    X, Z = _bank(s.real_embedders[_randint(gen, 0, len(s.real_embedders) - 1)])
    idx = torch.rand(B, len(X), generator=gen).argsort(1)[:, : k + q + s.max_classes]
    points, prototypes = idx[:, : k + q], idx[:, k + q :]
    cos = Z[points] @ Z[prototypes].transpose(1, 2)  # (B, k + q, Cmax)
    u = (cos - cos.mean(1, keepdim=True)) / (cos.std(1, keepdim=True) + 1e-6)
    return X[points], _log_uniform(gen, s.scale_min, s.scale_max, B, 1, 1) * u


def check_sources(s: PriorSettings) -> None:
    """Load now every embedding bank the weighted families may draw from, so that a missing one stops a
    run before its first step (with how to build it), not when a step first picks that embedder."""
    from tart.tasks.episodes import load_bank

    if s.weights.get("real", 0) > 0:
        for embedder in s.real_embedders:
            _bank(embedder)
    if s.weights.get("bank", 0) > 0:
        for embedder in s.bank_embedders:
            load_bank(embedder, exclude=s.bank_exclude)


def _bank_episodes(gen, s, B, k, q, C, named: bool):
    """Real episodes, and if `named` their classes' names (raw embeddings, in class order, zeros past C;
    None unnamed or from a bank built before names)."""
    from tart.tasks.episodes import load_bank, sample_bank_episodes

    bank = load_bank(s.bank_embedders[_randint(gen, 0, len(s.bank_embedders) - 1)], exclude=s.bank_exclude)
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen)))
    if not named or bank.names is None:  # the draws are the same either way: names only look up rows
        x, y, C = sample_bank_episodes(bank, B, k, q, C, rng, by_source=s.bank_by_source)
        names = None
    else:
        x, y, C, names = sample_bank_episodes(bank, B, k, q, C, rng, with_names=True, by_source=s.bank_by_source)
        names = F.pad(names, (0, 0, 0, s.max_classes - names.shape[1]))
    return x, y, C, F.one_hot(y[:, k:], s.max_classes).float(), names  # the real labels are the targets


def _own_names(names: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """(B, Cmax, D) names with the rows past each task's C classes replaced by its own names again
    (c -> c mod C): the projection of a batch is fitted on as many points per task, none foreign."""
    idx = torch.arange(names.shape[1])[None] % C[:, None]
    return names.gather(1, idx[..., None].expand(-1, -1, names.shape[2]))


def _gaussian_names(gen, s, means, lam):
    """Names of gaussian classes: each class mean, plus a shift shared by the task's names (a name is
    written unlike the texts of its class), plus noise of its own."""
    B = means.shape[0]
    shift = torch.randn(B, 1, len(lam), generator=gen) * lam.sqrt() * _uniform(gen, 0, 2, B, 1, 1)
    noise = torch.randn(means.shape, generator=gen) * lam.sqrt() * _log_uniform(gen, s.name_noise_min, s.name_noise_max, B, 1, 1)
    return means + shift + noise


def _restrict(p: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Class probabilities given that the label is one of the classes present in the context."""
    p = p * present[:, None].float()
    total = p.sum(-1, keepdim=True)
    uniform = present[:, None].float() / present.sum(-1, keepdim=True)[:, None]
    return torch.where(total > 1e-12, p / total.clamp_min(1e-12), uniform)


def _to_slots(gen, y, p, C, n_slots):
    """Place each task's classes 0..C-1 on a random subset of the head's label slots; also returns the
    map (B, n_slots): class c -> slot perm[b, c]."""
    B = y.shape[0]
    perm = torch.rand(B, n_slots, generator=gen).argsort(1)
    y_slots = perm.gather(1, y)
    p_slots = torch.zeros(*p.shape[:2], n_slots).scatter(2, perm[:, None, : p.shape[-1]].expand(-1, p.shape[1], -1), p)
    return y_slots, p_slots, perm


def sample_prior_batch(batch_size: int, k: int, n_queries: int, n_dims: int, n_slots: int,
                       settings: PriorSettings, generator: torch.Generator, family: str | None = None) -> PriorBatch:
    """One training batch: `batch_size` tasks of one family, projected to n_dims, on n_slots label slots;
    with names and unlabelled points where the settings ask for them (multi-class heads)."""
    s, gen, B, q = settings, generator, batch_size, n_queries
    if k < 4:
        raise ValueError(f"prior tasks need k >= 4 context points, got {k}")
    if n_slots < 2 or (n_slots > 2 and n_slots < s.max_classes):
        raise ValueError(f"a head with {n_slots} label slots cannot take tasks of up to {s.max_classes} classes")
    if family is None:
        names = [f for f in FAMILIES if s.weights.get(f, 0) > 0]
        w = torch.tensor([float(s.weights[f]) for f in names])
        family = names[int(torch.multinomial(w, 1, generator=gen))]
    side = n_slots > 2 and family != "tart"
    pooled = (side or (n_slots > 2 and s.tart_unlabeled)) and s.unlabeled_max > 0
    if pooled and s.p_unlabeled < 1:
        pooled = bool(torch.rand(1, generator=gen) < s.p_unlabeled)
    U = _randint(gen, 0, s.unlabeled_max) if pooled else 0
    # a batch is named (every task, all its classes) with probability p_names, so that the projection is
    # fitted on the names too, as TartClassifier fits it on a named task's support, pool and names
    named_batch = side and s.p_names > 0 and bool(torch.rand(1, generator=gen) < s.p_names)
    if named_batch and family == "bank" and s.p_zero_shot > 0 and bool(torch.rand(1, generator=gen) < s.p_zero_shot):
        k = 0  # zero-shot: what a user with label names and no example has
    raw_names = None
    if family == "tart":
        t = sample_tasks(B, k, q + U, d=min(16, n_dims), n_dims=n_dims, alpha=s.tart_alpha, generator=gen)
        y = torch.cat([t.y_context, t.y_query[:, :q]], 1).long()
        p = torch.stack([1 - t.p_query[:, :q], t.p_query[:, :q]], -1)
        C = torch.full((B,), 2)
        x_ctx, x_q, x_u = t.x_context, t.x_query[:, :q], (t.x_query[:, q:] if U else None)
    else:
        C = _n_classes(gen, s, B, k) if n_slots > 2 else torch.full((B,), 2)
        qU = q + U  # the unlabelled points are drawn as queries are, then their labels dropped
        if family == "bank":
            x, y, C, p, raw_names = _bank_episodes(gen, s, B, k, qU, C, named_batch)
        elif family == "real":
            x, logits = _real(gen, s, B, k, qU)
        else:
            D = _randint(gen, s.dim_min, s.dim_max)
            lam = torch.arange(1, D + 1, dtype=torch.float32) ** -float(_uniform(gen, s.beta_min, s.beta_max, 1))
            if family == "gaussian":
                z, y, logits, means = _gaussian(gen, s, B, k, qU, lam, C)
                raw_names = _gaussian_names(gen, s, means, lam) if named_batch else None
            else:
                z, logits = (_linear if family == "linear" else _mlp)(gen, s, B, k, qU, lam, C)
        if family == "gaussian":
            p = torch.softmax(logits, -1)
        elif family != "bank":
            p = torch.softmax(_mask_logits(logits, C), -1)
            if family == "linear":  # label noise on half of the tasks
                eps = _uniform(gen, 0, s.label_noise_max, B, 1, 1) * (torch.rand(B, 1, 1, generator=gen) < 0.5)
                p = (1 - eps) * p + eps * (torch.arange(p.shape[-1]) < C[:, None, None]) / C[:, None, None]
            y = torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=gen).view(B, k + qU)
            p = p[:, k:]
        if family not in ("real", "bank"):  # real embeddings keep their own axes
            rotation, _ = torch.linalg.qr(torch.randn(D, D, generator=gen))
            x = z @ rotation
            raw_names = None if raw_names is None else raw_names @ rotation
        y, p = y[:, : k + q], p[:, :q]
        # fitted on the context and the names, as TartClassifier fits a user's task (the unlabelled points
        # are projected by it)
        fit_on = [x[:, :k]] + ([_own_names(raw_names, C)] if raw_names is not None else [])
        weights = None
        if raw_names is not None and s.names_once:  # the rows past a task's C names count for nothing
            weights = torch.cat([torch.ones(B, k), (torch.arange(raw_names.shape[1]) < C[:, None]).float()], 1)
        fitted = projection.fit_projection(torch.cat(fit_on, 1), n_dims, s.shrinkage, s.standardize, weights,
                                           standardize_from=MIN_POINTS_TO_STANDARDIZE if k == 0 else 0,
                                           shrunk_std=s.shrunk_std)
        x_ctx, x_q = projection.apply_projection(fitted, x[:, :k]), projection.apply_projection(fitted, x[:, k : k + q])
        x_u = projection.apply_projection(fitted, x[:, k + q:]) if U else None
        if raw_names is not None:
            raw_names = projection.apply_projection(fitted, raw_names)
    Cmax = p.shape[-1]
    present = F.one_hot(y[:, :k], Cmax).sum(1) > 0
    named = None
    if raw_names is not None:  # a named task's classes are all named
        named = torch.arange(Cmax) < C[:, None]
        present = present | named
    p = _restrict(p, present)  # a small context may miss a class that no name stands for either
    y_q = torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=gen).view(B, q)
    y = torch.cat([y[:, :k], y_q], 1)
    x_names = names_mask = None
    if n_slots > 2:
        y, p, perm = _to_slots(gen, y, p, C, n_slots)
        present = torch.zeros(B, n_slots, dtype=torch.bool).scatter(1, perm[:, :Cmax], present)
        if named is not None:
            names_mask = torch.zeros(B, n_slots, dtype=torch.bool).scatter(1, perm[:, :Cmax], named)
            x_names = torch.zeros(B, n_slots, n_dims).scatter(1, perm[:, :Cmax, None].expand(-1, -1, n_dims),
                                                              raw_names.float() * named[..., None])
    return PriorBatch(x_ctx.float(), y[:, :k], x_q.float(), y[:, k:], p, present, family,
                      x_names, names_mask, None if x_u is None else x_u.float())
