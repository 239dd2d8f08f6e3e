"""Real labelled episodes for training: tasks drawn from the task bank (`tart.training.task_bank`).

An episode is what a user brings: a few real labelled texts (the support, class-balanced as far as the
pools allow) and texts to classify (queries), embedded by a packaged embedder. `sample_bank_episodes`
returns raw embeddings; the prior (`tart.tasks.prior`, family `bank`) projects them with the very
`fit_projection` that inference uses, so the head trains on exactly what it will read. With
`with_names=True` it also returns each class's name, embedded (a bank built before names has none).
"""
from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MIN_QUERIES_PER_CLASS = 2  # rows of each class kept out of the support, so every class can be queried


def bank_dir() -> Path:
    """Where `python -m tart.training.task_bank` writes the bank (under the user cache folder)."""
    from tart.paths import cache_dir

    return cache_dir() / "task-bank"


@dataclass
class TaskBank:
    vectors: torch.Tensor  # (n_texts, hidden), one embedder's
    tasks: list[tuple[list[np.ndarray], str]]  # per task: each class's row indices, and its source
    names: torch.Tensor | None = None  # (n_names, hidden): the classes' names, embedded; None in an old bank
    name_ids: list[np.ndarray] | None = None  # per task: each class's row in `names`

    def sources(self) -> list[str]:
        return sorted({s for _, s in self.tasks})

    @functools.cached_property
    def source_weights(self) -> np.ndarray:
        """Per task, the probability that makes every source equally likely (its tasks share it evenly)."""
        counts = Counter(s for _, s in self.tasks)
        return np.array([1 / (len(counts) * counts[s]) for _, s in self.tasks])


@functools.lru_cache(maxsize=None)
def _read_bank(embedder: str, root: Path) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    """bank.json and one embedder's vectors and names (None if the bank has none), read once however
    many source selections use them."""
    meta, vectors = root / "bank.json", root / f"{embedder}.npy"
    if not meta.is_file() or not vectors.is_file():
        raise FileNotFoundError(f"the task bank for {embedder!r} is not in {root}: build it with "
                                "`python -m tart.training.task_bank`")
    bank = json.loads(meta.read_text())
    X = torch.from_numpy(np.load(vectors)).float()
    if len(X) != len(bank["texts"]):
        raise ValueError(f"{vectors} has {len(X)} rows for {len(bank['texts'])} texts: rebuild the bank")
    names = root / f"{embedder}-names.npy"
    N = torch.from_numpy(np.load(names)).float() if "names" in bank and names.is_file() else None
    if N is not None and len(N) != len(bank["names"]):
        raise ValueError(f"{names} has {len(N)} rows for {len(bank['names'])} names: rebuild the bank")
    return bank, X, N


@functools.lru_cache(maxsize=None)
def load_bank(embedder: str, root: str | None = None, exclude: tuple = (), only: tuple = ()) -> TaskBank:
    """One embedder's bank; `exclude` / `only` keep the tasks of some sources (leave-one-source-out)."""
    bank, X, N = _read_bank(embedder, Path(root) if root else bank_dir())
    tasks, name_ids = [], []
    for task in bank["tasks"]:
        label_set = bank["label_sets"][task["label_set"]]
        source = label_set["source"]
        if source in exclude or (only and source not in only):
            continue
        tasks.append(([np.asarray(label_set["classes"][c]) for c in task["classes"]], source))
        if N is not None:
            name_ids.append(np.asarray([label_set["names"][c] for c in task["classes"]]))
    if not tasks:
        raise ValueError(f"no task left in the bank after exclude={exclude} only={only}")
    return TaskBank(X, tasks, N, name_ids if N is not None else None)


def _support_quota(available: np.ndarray, k: int) -> np.ndarray | None:
    """Per-class support counts summing to k, as even as the pools allow, or None if they cannot."""
    if available.sum() < k:
        return None
    quota, left = np.zeros_like(available), k
    order = np.argsort(available, kind="stable")
    for n_left, i in zip(range(len(order), 0, -1), order):  # small pools first take what they can of a share
        quota[i] = min(available[i], left // n_left)
        left -= quota[i]
    for i in order[::-1]:  # what rounding left over, to the largest pools
        extra = min(left, available[i] - quota[i])
        quota[i] += extra
        left -= extra
    return quota


def sample_bank_episodes(bank: TaskBank, B: int, k: int, q: int, n_classes: torch.Tensor,
                         rng: np.random.Generator, tries: int = 50, with_names: bool = False, by_source: bool = False):
    """B episodes: x (B, k + q, hidden) raw embeddings, y (B, k + q) classes in [0, C_b), C (B,), and
    with `with_names` names (B, max C, hidden): class c's name in row c, zeros past C_b.
    Task b takes n_classes[b] of its classes (fewer if it has fewer); the support is class-balanced
    as far as the pools allow and shuffled; queries are drawn from the rest of the task's rows. Tasks are
    drawn uniformly, or with `by_source` a source uniformly and then one of its tasks."""
    if with_names and bank.names is None:
        raise ValueError("this task bank has no label names: rebuild it with `python -m tart.training.task_bank --rebuild`")
    rows, labels, C_out, name_rows = [], [], [], []
    for b in range(B):
        for _ in range(tries):
            t = rng.choice(len(bank.tasks), p=bank.source_weights) if by_source else rng.integers(len(bank.tasks))
            pools, _ = bank.tasks[t]
            C = min(int(n_classes[b]), len(pools))
            classes = rng.choice(len(pools), C, replace=False)
            chosen = [rng.permutation(pools[i]) for i in classes]
            quota = _support_quota(np.array([len(p) - MIN_QUERIES_PER_CLASS for p in chosen]), k)
            if quota is not None:
                break
        else:
            raise ValueError(f"no task in the bank has pools for k = {k} in {tries} tries")
        support = np.concatenate([p[:n] for p, n in zip(chosen, quota)])
        y_support = np.repeat(np.arange(C), quota)
        order = rng.permutation(k)
        rest = np.concatenate([p[n:] for p, n in zip(chosen, quota)])
        y_rest = np.concatenate([np.full(len(p) - n, c) for c, (p, n) in enumerate(zip(chosen, quota))])
        pick = rng.choice(len(rest), q, replace=len(rest) < q)
        rows.append(np.concatenate([support[order], rest[pick]]))
        labels.append(np.concatenate([y_support[order], y_rest[pick]]))
        C_out.append(C)
        if with_names:
            name_rows.append(bank.name_ids[t][classes])
    x = bank.vectors[torch.from_numpy(np.stack(rows))]
    y, C_out = torch.from_numpy(np.stack(labels)).long(), torch.tensor(C_out)
    if not with_names:
        return x, y, C_out
    names = torch.zeros(B, int(C_out.max()), bank.names.shape[1])
    for b, ids in enumerate(name_rows):
        names[b, : len(ids)] = bank.names[torch.from_numpy(ids)]
    return x, y, C_out, names


@functools.lru_cache(maxsize=None)
def source_tasks(embedder: str, source: str, n: int = 8, min_pool: int = 60, seed: int = 0):
    """n fixed tasks of one source as datasets (X, y), for scoring a head on a source it did not train on
    (leave-one-source-out): tasks whose every class pool has >= min_pool rows, so k = 64 leaves test rows."""
    bank = load_bank(embedder, only=(source,))
    big = [pools for pools, _ in bank.tasks if min(len(p) for p in pools) >= min_pool]
    if not big:
        raise ValueError(f"no task of {source!r} has pools of {min_pool} rows")
    chosen = np.random.default_rng(seed).permutation(len(big))[:n]
    out = []
    for i in chosen:
        rows = np.concatenate(big[i])
        out.append((bank.vectors[torch.from_numpy(rows)].numpy(), np.repeat(np.arange(len(big[i])), [len(p) for p in big[i]])))
    return out
