"""Running the head on one task: projection, the test-time ensemble, and what it costs.

`TartClassifier` holds the scikit-learn side (labels, validation, embedding); this module turns a
task's projected support vectors (classes 0..C-1) into an `Ensemble`, the padded context of every
member built once, then run on any batch of projected queries.

The members (`plan`, from the labels alone, so the cost is known before any vector exists):
- Native multi-class (a head with n_classes label slots, C <= n_classes, multiclass 'auto' or
  'native'): per member, a random order of the support points (member 0: the given order), a random
  assignment of the C classes to C of the head's slots (member 0: slots 0..C-1 in canonical order) and,
  optionally, random sign flips of the projected features (support and queries alike; member 0: none).
  Classes are put in a canonical order first, by their support centroid in the projected space, so
  renaming or reordering the classes permutes the output columns exactly, nothing else.
- Otherwise binary problems: one (two classes), one-vs-rest ('auto', 'ovr') or one-vs-one ('ovo'),
  each in random orders of its support points and each also run with its labels swapped (the head
  alone is not exactly symmetric); probabilities normalised over the classes.
- Either way, a support set longer than the head's context is split into near-equal chunks, one
  sequence each, and the members' probabilities are averaged.

What else the user has (`Side`): the classes' embedded names and unlabelled points. A head with
`side_inputs` reads them in its own tokens, on the native path: every sequence gets every name (in its
class's slot, with the member's sign flips) and the same unlabelled points. Any other head, or the
binary path, reads each name as one more labelled example of its class, and no unlabelled points.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch

from tart.head import projection
from tart.head.model import TartReasoningModel


def fit_task_projection(S: np.ndarray, n_dims: int, shrinkage: float, standardize: bool,
                        shrunk_std: bool = False) -> projection.FittedProjection:
    return projection.fit_projection(torch.from_numpy(np.asarray(S, dtype=np.float64))[None], n_dims, shrinkage,
                                     standardize, shrunk_std=shrunk_std)


def project(fitted: projection.FittedProjection, A: np.ndarray) -> torch.Tensor:
    return projection.apply_projection(fitted, torch.from_numpy(np.asarray(A, dtype=np.float64))[None])[0].float()


def project_task(S: np.ndarray, Q: np.ndarray, n_dims: int, shrinkage: float, standardize: bool,
                 fit_on: str = "support") -> tuple[torch.Tensor, torch.Tensor]:
    """S and Q in the head's input space, the projection fitted on S (or on S and Q together)."""
    fitted = fit_task_projection(np.concatenate([S, Q]) if fit_on == "support+queries" else S, n_dims, shrinkage,
                                 standardize)
    return project(fitted, S), project(fitted, Q)


@torch.inference_mode()
def positive_probability(head: TartReasoningModel, x_context, y_context, x_query, context_lengths=None):
    """P(y = 1) for binary tasks (labels 0 / 1): a binary head's sigmoid, or a multi-class head's
    softmax over slots 0 and 1."""
    if not head.config.multiclass:
        return torch.sigmoid(head(x_context, y_context, x_query, context_lengths=context_lengths).logits.float())
    mask = torch.zeros(len(x_context), head.config.n_classes, dtype=torch.bool, device=x_context.device)
    mask[:, :2] = True
    logits = head(x_context, y_context.long(), x_query, context_lengths=context_lengths, class_mask=mask).logits
    return torch.softmax(logits, -1)[..., 1]


def canonical_class_order(S_p: torch.Tensor, y: np.ndarray, n_classes: int) -> np.ndarray:
    """rank[c]: class c's place when classes are sorted by their projected support centroid
    (first coordinate, then the next ones), a label-free order."""
    centroids = np.stack([S_p[y == c].double().mean(0).numpy() for c in range(n_classes)])
    order = np.lexsort(centroids.T[::-1])  # sort on column 0, ties broken by column 1, ...
    rank = np.empty(n_classes, dtype=np.int64)
    rank[order] = np.arange(n_classes)
    return rank


def is_native(config, n_classes: int, multiclass: str) -> bool:
    """Whether the head reads these classes with its own label slots."""
    fits = bool(config.multiclass) and n_classes <= config.n_classes
    if multiclass == "native" and not fits:
        raise ValueError(f"multiclass='native' needs a multi-class head with >= {n_classes} label slots; "
                         f"this head has {config.n_classes if config.multiclass else 'binary labels'}")
    return fits and multiclass in ("auto", "native")


@dataclass
class Side:
    """A task's side inputs in the head's input space: names (C, n_dims) in class order, unlabelled (U, n_dims)."""
    names: torch.Tensor | None = None
    unlabeled: torch.Tensor | None = None


def reads_side_inputs(config, n_classes: int, multiclass: str) -> bool:
    """Whether this head reads names and unlabelled points in tokens of their own for such a task."""
    return bool(getattr(config, "side_inputs", False)) and is_native(config, n_classes, multiclass)


def context_labels(y: np.ndarray, n_classes: int, config, multiclass: str, named: bool) -> np.ndarray:
    """The labels of the points the ensemble's contexts hold: the support's, and one per class where
    names are read as examples (not by a side-input head)."""
    if named and not reads_side_inputs(config, n_classes, multiclass):
        return np.concatenate([y, np.arange(n_classes)]).astype(np.int64)
    return y


def side_tokens(config, n_classes: int, multiclass: str, named: bool, n_unlabeled: int) -> int:
    """The side tokens each sequence carries (all of a head's name slots, and the unlabelled points)."""
    if not reads_side_inputs(config, n_classes, multiclass):
        return 0
    return (config.n_classes if named else 0) + n_unlabeled


@dataclass
class Sequence:
    """One member's sequence: support points in order, with the label (0/1) or slot each carries."""
    support: np.ndarray
    labels: np.ndarray
    signs: np.ndarray  # of the projected features
    slots: np.ndarray | None  # native: each class's slot
    problem: int  # binary: the problem it answers
    swapped: bool  # binary: labels swapped, so its P(positive) is 1 - the head's


def binary_problems(y: np.ndarray, n_classes: int, multiclass: str) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """(support indices, binary labels, positive class, negative class or -1 for 'rest')."""
    everyone = np.arange(len(y))
    if n_classes == 2:
        return [(everyone, (y == 1).astype(np.float32), 1, 0)]
    if multiclass in ("auto", "native", "ovr"):
        return [(everyone, (y == c).astype(np.float32), c, -1) for c in range(n_classes)]
    problems = []
    for a, b in combinations(range(n_classes), 2):
        idx = np.flatnonzero((y == a) | (y == b))
        problems.append((idx, (y[idx] == a).astype(np.float32), a, b))
    return problems


def plan(y: np.ndarray, n_classes: int, config, multiclass: str = "auto", n_members: int = 4,
         sign_flips: bool = True, seed=0, rank: np.ndarray | None = None) -> list[Sequence]:
    """Every member's sequences. Their number and lengths depend on the labels alone (`rank`, the
    canonical class order, only moves native classes between slots). A head with no Transformer blocks
    (n_layer = 0: its base alone) gives every order, slot and sign the same answer: one member."""
    if config.n_layer == 0:
        n_members = 1
    rng = np.random.default_rng(seed)
    max_k, n_dims, n = config.max_examples, config.n_dims, len(y)
    ones = np.ones(n_dims)
    seqs = []
    n_chunks = max(1, -(-n // max_k))  # names only (k = 0): one empty context
    if is_native(config, n_classes, multiclass):
        rank = np.arange(n_classes) if rank is None else rank
        for m in range(n_members):
            order, slots, signs = np.arange(n), rank, ones
            if m > 0:
                signs = rng.choice([-1.0, 1.0], n_dims) if sign_flips else ones
                order, slots = rng.permutation(n), rng.permutation(config.n_classes)[rank]
            seqs += [Sequence(chunk, slots[y[chunk]], signs, slots, 0, False)
                     for chunk in np.array_split(order, n_chunks)]
        return seqs
    for p, (idx, labels, _, _) in enumerate(binary_problems(y, n_classes, multiclass)):
        n_chunks = -(-len(idx) // max_k)
        for _ in range(n_members):
            for chunk in np.array_split(rng.permutation(len(idx)), n_chunks):
                seqs.append(Sequence(idx[chunk], labels[chunk], ones, None, p, False))
                seqs.append(Sequence(idx[chunk], 1 - labels[chunk], ones, None, p, True))
    return seqs


@dataclass(frozen=True)
class HeadCost:
    sequences: int
    context: int  # longest support chunk, with the side tokens (names, unlabelled) it carries
    tokens: int  # what the head reads: each sequence, padded to `context`, once per query batch, plus the queries


def head_cost(seqs: list[Sequence], n_queries: int, query_batch: int, side_tokens: int = 0) -> HeadCost:
    context = max(len(s.support) for s in seqs) + side_tokens
    return HeadCost(len(seqs), context, len(seqs) * (-(-n_queries // query_batch) * context + n_queries))


class Ensemble:
    """The padded contexts of every member, built once per task; `proba` runs them on a batch of queries."""

    def __init__(self, head: TartReasoningModel, S_p: torch.Tensor, y: np.ndarray, n_classes: int,
                 multiclass: str = "auto", n_members: int = 4, sign_flips: bool = True, seed=0,
                 side: Side | None = None):
        config = head.config
        side = side or Side()
        self.head, self.n_classes = head, n_classes
        self.native = is_native(config, n_classes, multiclass)
        tokens = reads_side_inputs(config, n_classes, multiclass)
        if side.names is not None and not tokens:  # each name, one more labelled example of its class
            S_p = torch.cat([S_p, side.names.to(S_p.dtype)])
            y = context_labels(y, n_classes, config, multiclass, named=True)
        self.problems = None if self.native else binary_problems(y, n_classes, multiclass)
        # named classes are ordered with their name as one more point, so k = 0 has an order too
        order_S, order_y = (S_p, y) if side.names is None or not tokens else \
            (torch.cat([S_p, side.names.to(S_p.dtype)]), np.concatenate([y, np.arange(n_classes)]))
        rank = canonical_class_order(order_S, order_y, n_classes) if self.native else None
        seqs = plan(y, n_classes, config, multiclass, n_members, sign_flips, seed, rank)
        device = next(head.parameters()).device
        L = max(len(s.support) for s in seqs)
        x = torch.zeros(len(seqs), L, S_p.shape[1])
        labels = torch.zeros(len(seqs), L, dtype=torch.long if config.multiclass else torch.float32)
        self.signs = torch.tensor(np.stack([s.signs for s in seqs]), dtype=torch.float32)
        for i, s in enumerate(seqs):
            x[i, : len(s.support)] = S_p[s.support] * self.signs[i]
            labels[i, : len(s.support)] = torch.from_numpy(s.labels)
        self.x, self.labels, self.signs = x.to(device), labels.to(device), self.signs.to(device)
        self.lengths = torch.tensor([len(s.support) for s in seqs], device=device)
        if self.native:
            self.slot_of_class = torch.tensor(np.stack([s.slots for s in seqs]))  # (n_seqs, C)
            self.mask = torch.zeros(len(seqs), config.n_classes, dtype=torch.bool)
            for i, s in enumerate(seqs):
                self.mask[i, s.slots] = True
            self.mask = self.mask.to(device)
        else:
            self.swapped = torch.tensor([s.swapped for s in seqs])
            self.owner = torch.tensor([s.problem for s in seqs])
        self.side = {}  # the head's side-input tokens, per sequence
        if tokens and side.names is not None:
            names = torch.zeros(len(seqs), config.n_classes, S_p.shape[1])
            for i, s in enumerate(seqs):
                names[i, s.slots] = side.names.float() * self.signs[i].cpu()
            self.side["x_names"], self.side["names_mask"] = names.to(device), self.mask
        if tokens and side.unlabeled is not None and len(side.unlabeled):
            self.side["x_unlabeled"] = (side.unlabeled.float()[None].to(device) * self.signs[:, None, :])

    def member(self, i: int = 0) -> tuple:
        """Member i's context points (k, d), their label slots (k,), its names (slots, d) and unlabelled points
        (U, d), None where the head reads none; on the CPU."""
        n = int(self.lengths[i])
        names, unlabeled = self.side.get("x_names"), self.side.get("x_unlabeled")
        return (self.x[i, :n].cpu(), self.labels[i, :n].cpu(), None if names is None else names[i].cpu(),
                None if unlabeled is None else unlabeled[i].cpu())

    @torch.inference_mode()
    def proba(self, Q_p: torch.Tensor) -> np.ndarray:
        """(n_queries, n_classes) probabilities, averaged over the members."""
        x_q = Q_p.to(self.x.device)[None] * self.signs[:, None, :]
        lengths = self.lengths[:, None].expand(-1, len(Q_p))
        if self.native:
            logits = self.head(self.x, self.labels, x_q, context_lengths=lengths, class_mask=self.mask,
                               **self.side).logits
            p = torch.softmax(logits.float(), -1).cpu()  # (n_seqs, q, slots)
            p = p.gather(2, self.slot_of_class[:, None, :].expand(-1, len(Q_p), -1))  # (n_seqs, q, C) in class order
            return p.mean(0).double().numpy()
        p = positive_probability(self.head, self.x, self.labels, x_q, lengths).cpu()  # (n_seqs, q)
        p[self.swapped] = 1 - p[self.swapped]
        p = torch.stack([p[self.owner == i].mean(0) for i in range(len(self.problems))]).numpy()
        if self.n_classes == 2:
            return np.stack([1 - p[0], p[0]], axis=1)
        scores = np.zeros((len(Q_p), self.n_classes))
        for (_, _, pos, neg), pp in zip(self.problems, p):
            scores[:, pos] += pp
            if neg >= 0:  # one-vs-one: the pair's other class gets the complement
                scores[:, neg] += 1 - pp
        scores = np.maximum(scores, 1e-9)
        return scores / scores.sum(axis=1, keepdims=True)
