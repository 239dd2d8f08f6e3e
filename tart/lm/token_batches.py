"""Batches of token ids for a frozen model: right padding, and a shared prefix's keys/values computed
once (the Embedder's vanilla mode, in-context prompting, the emergence analysis)."""
from __future__ import annotations

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
