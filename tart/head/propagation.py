"""Label spreading over a task's own texts (`TartConfig.propagation`): the pool read point by point.

The side base reads the unlabelled points through soft k-means: one mean per class, so what it learns from the
pool is where each class's centre lies. Label spreading (Zhou et al., "Learning with local and global
consistency", NeurIPS 2003) reads the pool as a graph: each labelled point and name passes its label to its
nearest neighbours among the labelled, named and unlabelled points, and they to theirs, so a class that is a
chain or several clusters, not one ball, still reaches its far members. A query takes the spread labels of its
own nearest nodes (the induction of Delalleau, Bengio and Le Roux, AISTATS 2005): its answer depends on the
fitted task alone, never on the other queries of its request.

It works on the task's vectors as embedded, not on the head's inputs: those are projected by a fit on the
support, which keeps at most k - 1 of its directions, and cosine neighbours there are poor ones. Each feature
is divided by its shrunk spread over the task's points (`tart.head.projection.shrunk_scales`), not centred: a
sentence embedder's features are alike and keep their cosine geometry, while a causal LM's few huge
dimensions are tamed. (Scratch runs on the dev suite's tuning seeds, not committed: spreading over the head's
inputs gained MiniLM 0.1 points at k = 64 against 0.4 on the embeddings; centring cost MiniLM up to 0.5
points; on raw SmolLM2 embeddings spreading lost 0.1-0.3 points, on scaled ones it gains 0-0.3.)
Settings: scripts/propagation_tuning.py.

Graph: cosine similarity, each node joined to its `neighbours` nearest with weight exp((cos - 1) / WIDTH),
symmetrised; spread = (I - alpha S)^-1 Y with S = D^-1/2 W D^-1/2 and Y the labels (a name weighing as the
head's base weighs it), summed as a series over the sparse graph: a pool of thousands costs seconds, not a
dense solve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse

from tart.head.projection import shrunk_scales

WIDTH = 0.1
CHUNK = 1024  # rows of similarities held at once
TOLERANCE = 1e-9  # of the spreading's series, relative to the labels
FLOOR = 1e-6  # the least probability spreading gives a class: one far from every label cannot veto it


def _unit_rows(X: np.ndarray, scales: np.ndarray) -> np.ndarray:
    Z = np.asarray(X, dtype=np.float64) / scales
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


def _affinities(A: np.ndarray, B: np.ndarray, neighbours: int, exclude_self: bool = False) -> sparse.csr_matrix:
    """(len(A), len(B)) weights of each row of A to its `neighbours` most similar rows of B (unit rows), 0 elsewhere,
    sparse; the similarities are computed CHUNK rows at a time, so memory stays O(CHUNK x len(B))."""
    n = min(neighbours, B.shape[0] - exclude_self)
    rows, cols, weights = [], [], []
    for start in range(0, len(A) if n > 0 else 0, CHUNK):
        sim = A[start:start + CHUNK] @ B.T
        here = np.arange(sim.shape[0])[:, None]
        if exclude_self:
            sim[here[:, 0], start + here[:, 0]] = -np.inf
        nearest = np.argpartition(-sim, n - 1, axis=1)[:, :n]
        rows.append(np.broadcast_to(start + here, nearest.shape).ravel())
        cols.append(nearest.ravel())
        weights.append(np.exp((sim[here, nearest] - 1) / WIDTH).ravel())
    if not rows:
        return sparse.csr_matrix((len(A), len(B)))
    return sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(len(A), len(B)))


@dataclass
class LabelSpreading:
    scales: np.ndarray  # (D,): each feature's shrunk spread over the task's points
    nodes: np.ndarray  # (N, D) unit rows: labelled points, names, unlabelled points
    spread: np.ndarray  # (N, C): each node's spread labels, rows summing to 1 (0 where no label reached it)
    neighbours: int

    def log_proba(self, Q: np.ndarray) -> np.ndarray:
        """(len(Q), C) log-probabilities: each query's nearest nodes' spread labels, weighted by affinity."""
        at_query = np.asarray(_affinities(_unit_rows(Q, self.scales), self.nodes, self.neighbours) @ self.spread)
        total = at_query.sum(1, keepdims=True)
        p = np.where(total > 0, at_query / np.maximum(total, 1e-12), 1.0 / self.spread.shape[1])
        return np.log(np.maximum(p, FLOOR))


def fit_spreading(S: np.ndarray, y_index: np.ndarray, n_classes: int, names: np.ndarray | None,
                  name_weight: float, U: np.ndarray, alpha: float, neighbours: int) -> LabelSpreading:
    """Label spreading over the support S (labels y_index in [0, n_classes)), the classes' names (each a
    labelled node of weight name_weight; None: unnamed) and the unlabelled points U."""
    parts = [S] + ([names] if names is not None else []) + [U]
    X = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
    variance = X.var(0)
    # a feature constant over the task (a table's bias column) would, divided by its ~0 spread, be all a cosine
    # sees: it is left out (scale inf), and out of the other features' shrinkage too
    varying = variance > 1e-12 * variance.max()
    scales = np.full(X.shape[1], np.inf)
    n = torch.tensor(float(len(X))).view(1, 1, 1)
    if varying.any():
        scales[varying] = shrunk_scales(torch.from_numpy(variance[varying])[None, None], n)[0, 0].numpy()
    nodes = _unit_rows(X, scales)
    Y = np.zeros((len(X), n_classes))
    Y[np.arange(len(S)), y_index] = 1.0
    if names is not None:
        Y[len(S) + np.arange(n_classes), np.arange(n_classes)] = name_weight
    W = _affinities(nodes, nodes, neighbours, exclude_self=True)
    W = W.maximum(W.T)
    d = sparse.diags(1.0 / np.sqrt(np.maximum(np.asarray(W.sum(1)).ravel(), 1e-12)))
    S_norm = (d @ W @ d).tocsr()
    # (I - alpha S)^-1 Y as its series Y + alpha S Y + ..., to TOLERANCE: sparse, so a large pool stays cheap
    spread = Y.copy()
    for _ in range(math.ceil(math.log(TOLERANCE) / math.log(alpha)) if alpha > 0 else 0):
        spread = alpha * (S_norm @ spread) + Y
    spread = spread / np.maximum(spread.sum(1, keepdims=True), 1e-12)
    return LabelSpreading(scales, nodes, spread, neighbours)


def blend(proba: np.ndarray, spread_log_proba: np.ndarray, share: float) -> np.ndarray:
    """Probabilities ∝ proba^(1 - share) · spreading's^share, per row."""
    log_p = (1 - share) * np.log(np.maximum(proba, 1e-12)) + share * spread_log_proba
    log_p -= log_p.max(1, keepdims=True)
    p = np.exp(log_p)
    return p / p.sum(1, keepdims=True)
