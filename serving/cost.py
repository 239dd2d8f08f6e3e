"""What a request will cost, known before any work is done, and the budget it must fit in.

Two numbers, both from the request alone:
- embedder tokens: the tokens of every text the embedder must read (each cut at `max_length`, plus
  the tokenizer's special tokens). The API process loads only the embedder's tokenizer, so it counts
  exactly, and says which texts are longer than `max_length` (the embedder cuts them).
- head tokens: what the head reads, sequences x (query batches x context length + queries): each
  sequence (padded to the longest) is read once per batch of queries, with the batch. The sequences are
  those the classifier builds for this head and these labels:
  - a multi-class head (n_classes label slots) with at most that many labels and multiclass 'auto'
    reads them natively: one sequence per (support order, chunk of at most the head's context);
  - otherwise (a binary head, more labels than slots, 'ovr', 'ovo'): one sequence per (binary
    problem, support order, chunk) and label swap.
  One-vs-one over many labels, many permutations and many queries multiply; this is the number that
  made one valid request take 86 s and 6 GB.

A request over either budget gets 413 with a message that names the setting and the numbers.
Time and memory per token are measured by `benchmarks/serve_cost.py`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

QUERY_BATCH = 32  # queries per head forward (queries never see each other, so any split is exact)


@dataclass(frozen=True)
class HeadCost:
    sequences: int
    context: int  # longest support chunk
    tokens: int


def native(n_labels: int, multiclass: str, head_slots: int) -> bool:
    """Whether TartClassifier reads these labels with the head's own label slots (tart.inference.native_proba):
    a multi-class head (`head_slots` = its n_classes; 0 for a binary head), no more labels than slots,
    multiclass 'auto' (or 'native')."""
    return multiclass in ("auto", "native") and head_slots > 2 and n_labels <= head_slots


def head_cost(labels: list[str], n_queries: int, n_permutations: int, multiclass: str, head_context: int,
              query_batch: int = QUERY_BATCH, head_slots: int = 0) -> HeadCost:
    """The head's work for this support set, mirroring the sequences TartClassifier runs: native
    multi-class ones (one per support order and chunk) or binary problems' (each also label-swapped)."""
    counts = Counter(labels)
    k = len(labels)
    if native(len(counts), multiclass, head_slots):
        sizes, copies = [k], 1  # one problem: every class at once, no swapped copy
    elif len(counts) == 2 or multiclass in ("auto", "native", "ovr"):
        sizes, copies = [k] * (1 if len(counts) == 2 else len(counts)), 2  # also run with labels swapped
    else:  # one-vs-one: each pair of labels with its own examples
        sizes, copies = [counts[a] + counts[b] for a, b in combinations(sorted(counts), 2)], 2
    sequences, context = 0, 0
    for m in sizes:
        chunks = -(-m // head_context)
        sequences += copies * n_permutations * chunks
        context = max(context, -(-m // chunks))
    batches = -(-n_queries // query_batch)
    return HeadCost(sequences, context, sequences * (batches * context + n_queries))


class TokenCounter:
    """The embedder's tokenizer, without its model: token counts and truncation, per text."""

    def __init__(self, embedder: str, max_length: int | None = None):
        import inspect

        from transformers import AutoTokenizer

        from tart.embeddings import Embedder, resolve_model_dir

        self.max_length = max_length or inspect.signature(Embedder).parameters["max_length"].default
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(embedder), local_files_only=True)
        self.specials = len(self.tokenizer("x")["input_ids"]) - len(self.tokenizer("x", add_special_tokens=False)["input_ids"])

    def count(self, texts: list[str]) -> list[int]:
        """Tokens of each text before any cut (the embedder cuts at `max_length`)."""
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def embed_tokens(self, counts: list[int]) -> int:
        return sum(min(max(n, 1), self.max_length) + self.specials for n in counts)


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
