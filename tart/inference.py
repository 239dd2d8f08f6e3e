"""Running the head on one task: projection, test-time ensembles, native multi-class.

`TartClassifier` holds the scikit-learn side (labels, validation, embedding); this module turns a
task's support vectors S (k × D, classes 0..C-1) and query vectors Q into class probabilities.

Native multi-class (a head with n_classes label slots, C <= n_classes): every ensemble member is one
sequence per chunk of at most max_examples support points, with
- a random order of the support points (member 0: the given order),
- a random assignment of the C classes to C of the head's slots (member 0: slots 0..C-1),
- optionally random sign flips of the projected features (support and queries alike; member 0: none),
and the members' probabilities are averaged. Classes are put in a canonical order first: by their
support centroid in the projected space, which does not depend on the labels' names or order. So
renaming or reordering the classes permutes the output columns exactly, nothing else.
"""
from __future__ import annotations

import numpy as np
import torch

from tart import projection
from tart.reasoning import TartReasoningModel


def project_task(S: np.ndarray, Q: np.ndarray, n_dims: int, shrinkage: float, standardize: bool,
                 fit_on: str = "support") -> tuple[torch.Tensor, torch.Tensor]:
    """S and Q in the head's input space, the projection fitted on S (or on S and Q together)."""
    S, Q = (torch.from_numpy(np.asarray(A, dtype=np.float64))[None] for A in (S, Q))
    fitted = projection.fit_projection(torch.cat([S, Q], 1) if fit_on == "support+queries" else S, n_dims,
                                       shrinkage, standardize)
    return projection.apply_projection(fitted, S)[0].float(), projection.apply_projection(fitted, Q)[0].float()


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


@torch.inference_mode()
def native_proba(head: TartReasoningModel, S_p: torch.Tensor, Q_p: torch.Tensor, y: np.ndarray, n_classes: int,
                 n_members: int = 4, sign_flips: bool = True, seed: int | None = 0,
                 query_batch_size: int = 128) -> np.ndarray:
    """(n_queries, n_classes) probabilities from a multi-class head, averaged over the ensemble."""
    slots_total, max_k = head.config.n_classes, head.config.max_examples
    if n_classes > slots_total:
        raise ValueError(f"{n_classes} classes exceed the head's {slots_total} label slots: use one-vs-rest")
    rng = np.random.default_rng(seed)
    rank = canonical_class_order(S_p, y, n_classes)
    n, n_dims = S_p.shape
    members = []  # (support order, slot of each class, feature signs)
    for m in range(n_members):
        if m == 0:
            members.append((np.arange(n), rank, np.ones(n_dims)))
            continue
        signs = rng.choice([-1.0, 1.0], n_dims) if sign_flips else np.ones(n_dims)
        members.append((rng.permutation(n), rng.permutation(slots_total)[rank], signs))
    seqs = [(chunk, slots, signs) for order, slots, signs in members
            for chunk in np.array_split(order, -(-n // max_k))]

    L = max(len(chunk) for chunk, _, _ in seqs)
    x_ctx = torch.zeros(len(seqs), L, n_dims)
    y_ctx = torch.zeros(len(seqs), L, dtype=torch.long)
    lengths = torch.tensor([len(chunk) for chunk, _, _ in seqs])
    mask = torch.zeros(len(seqs), slots_total, dtype=torch.bool)
    signs = torch.tensor(np.stack([s for _, _, s in seqs]), dtype=torch.float32)
    slot_of_class = torch.tensor(np.stack([slots for _, slots, _ in seqs]))  # (n_seqs, C)
    for i, (chunk, slots, _) in enumerate(seqs):
        x_ctx[i, : len(chunk)] = S_p[chunk] * signs[i]
        y_ctx[i, : len(chunk)] = torch.from_numpy(slots[y[chunk]])
        mask[i, slots] = True
    device = next(head.parameters()).device
    out = []
    for start in range(0, len(Q_p), query_batch_size):
        q = Q_p[start : start + query_batch_size]
        x_q = q[None] * signs[:, None, :]
        logits = head(x_ctx.to(device), y_ctx.to(device), x_q.to(device),
                      context_lengths=lengths[:, None].expand(-1, len(q)).to(device), class_mask=mask.to(device)).logits
        p = torch.softmax(logits.float(), -1).cpu()  # (n_seqs, q, slots)
        p = p.gather(2, slot_of_class[:, None, :].expand(-1, len(q), -1))  # (n_seqs, q, C) in class order
        out.append(p.mean(0))
    return torch.cat(out).double().numpy()
