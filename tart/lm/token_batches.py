"""Batches of token ids for a frozen model: which texts share a forward pass (by length), right padding,
and a shared prefix's keys/values computed once (the Embedder's vanilla mode, in-context prompting, the
emergence analysis)."""
from __future__ import annotations

import bisect
import copy
import inspect

import torch


def pad_right(tokenizer, seqs, prefix: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists as one batch, (input_ids, attention_mask), padded on the right: every sequence
    starts at position 0, or right after the `prefix` tokens of a cached prefix (`prefix_cache`), which
    the mask covers too; under a causal mask no real token attends to a pad."""
    batch = tokenizer.pad({"input_ids": list(seqs)}, padding=True, padding_side="right", return_tensors="pt")
    mask = batch["attention_mask"]
    if prefix:
        mask = torch.cat([torch.ones(len(mask), prefix, dtype=mask.dtype), mask], 1)
    return batch["input_ids"], mask


def cache_argument(model) -> str:
    """The forward's keyword for the key/value cache (`cache` since transformers 5, `past_key_values` before)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def prefix_cache(model, prefix: list[int]):
    """The keys/values of one token sequence, computed once for every batch that continues it."""
    out = model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True)
    return getattr(out, cache_argument(model))


def continue_cache(model, cache, n: int) -> dict:
    """Forward keyword arguments for n sequences that continue `cache`'s prefix: a copy of the cache
    (the forward extends it in place) repeated n times. The attention mask must cover the prefix too."""
    cache = copy.deepcopy(cache)
    cache.batch_repeat_interleave(n)
    return {cache_argument(model): cache, "use_cache": True}


FORWARD_TOKENS = 64  # a forward pass's own cost, as padded tokens (chosen by benchmarks/embed_batching.py)


def plan_batches(lengths: list[int], batch_tokens: int, prefix: int = 0,
                 forward_tokens: int = FORWARD_TOKENS) -> list[list[int]]:
    """Positions of `lengths` grouped into forward passes, so that padding costs little: sorted by length,
    then cut where the padded tokens of all passes plus `forward_tokens` per pass add up least (dynamic
    programming over the cuts), no pass over `batch_tokens` padded tokens (`prefix` tokens lead each
    sequence). Cutting inside a run of equal lengths only adds a pass, so cuts go where the length
    changes, or where the token budget forces one."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    size = [prefix + lengths[i] for i in order]
    n = len(size)
    changes = [k for k in range(1, n) if size[k] != size[k - 1]]
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for j in range(1, n + 1):  # best[j]: the cheapest plan of the j shortest; the last pass ends at j
        widest = max(1, batch_tokens // size[j - 1])  # sequences one pass of this length may hold
        lo = max(0, j - widest)
        starts = {lo, *(k for k in changes[bisect.bisect_left(changes, lo):bisect.bisect_left(changes, j)])}
        for i in starts:
            cost = best[i] + forward_tokens + (j - i) * size[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches, j = [], n
    while j > 0:
        batches.append(order[cut[j]:j])
        j = cut[j]
    return batches[::-1]
