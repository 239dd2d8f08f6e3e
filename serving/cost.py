"""What a request will cost, known before any work is done, and the budget it must fit in.

Two numbers, both from the request alone:
- embedder tokens: the tokens of every text the embedder must read (each cut at `max_length`, plus
  the tokenizer's special tokens: `Embedder.tokens_read`). The API process tokenises each text once,
  with the embedder's own tokenizer (`Embedder.tokenize`, no model loaded), so it counts exactly, says
  which texts are longer than `max_length` (the embedder cuts them), and sends the embedder the ids.
- head tokens: what the head reads, as the classifier states it (`TartClassifier.plan`): each of its
  ensemble's sequences, padded to the longest, once per batch of `QUERY_BATCH` queries, plus the
  queries. One-vs-one over many labels, many permutations and many queries multiply; this is the
  number that made one valid request take 86 s and 6 GB.

A request over either budget gets 413 with a message that names the setting and the numbers.
Time and memory per token are measured by `benchmarks/serve_cost.py`.
"""
from __future__ import annotations

from tart.inference import HeadCost

QUERY_BATCH = 32  # the service's query_batch_size: queries per head forward (any split gives the same answers)


def over_budget(embed_tokens: int, head: HeadCost | None, max_embed_tokens: int, max_head_tokens: int,
                multiclass: str = "auto") -> str | None:
    """The refusal message when a request is over budget, else None (its advice skips what the request
    already does: `multiclass` is the request's option)."""
    if embed_tokens > max_embed_tokens:
        return (f"this request needs the embedder to read {embed_tokens} tokens; the limit is "
                f"max_embed_tokens={max_embed_tokens}: send fewer or shorter texts")
    if head is not None and head.tokens > max_head_tokens:
        advice = "send fewer texts or labels, or lower options.n_permutations"
        if multiclass == "ovo":  # one-vs-one costs the most
            advice = "send fewer texts or labels, lower options.n_permutations, or use multiclass 'auto' or 'ovr'"
        return (f"this request needs {head.tokens} head tokens ({head.sequences} sequences of up to "
                f"{head.context} examples, over the texts in batches of {QUERY_BATCH}); the limit is "
                f"max_head_tokens={max_head_tokens}: {advice}")
    return None
