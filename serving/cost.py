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

The token caps bound the work; `max_request_s` bounds its time on this host. When the server starts,
each side measures its own speed once (`embedder_speed` in the embedding worker, `head_speed` in the
API worker, both logged): a request whose tokens would take longer than `max_request_s` at those speeds
is refused too. So on a slower or busier host the time bound still holds, and since the speeds are
measured once, the same request gets the same answer for the life of a server.
Time and memory per token are measured by `benchmarks/serve_cost.py`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tart.head.ensemble import HeadCost

QUERY_BATCH = 32  # the service's query_batch_size: queries per head forward (any split gives the same answers)
# smaller than the library's 128: a stopped head job ends after one short batch (serving/headpool.py)


@dataclass(frozen=True)
class Speeds:
    """Tokens per second of this server's embedder and head, measured once when it started."""
    embedder: float
    head: float

    def seconds(self, embed_tokens: int, head_tokens: int) -> float:
        return embed_tokens / self.embedder + head_tokens / self.head


def _fastest(run, repeats: int = 2) -> float:
    """The shortest of `repeats` timed calls of run(i): the first of a shape pays one-off setup."""
    best = float("inf")
    for i in range(repeats):
        start = time.perf_counter()
        run(i)
        best = min(best, time.perf_counter() - start)
    return best


def embedder_speed(embedder, n_texts: int = 24, n_tokens: int = 62) -> float:
    """The embedder's tokens per second on texts of `n_tokens` random ids (the default shape reads about
    the default max_embed_tokens), new ids each run so that its cache cannot answer."""
    rng = np.random.default_rng(0)
    vocab = len(embedder.tokenizer)  # ids from the middle of the vocabulary: no special tokens
    batches = [rng.integers(min(1_000, vocab // 2), min(vocab, 20_000), size=(n_texts, n_tokens)).tolist()
               for _ in range(2)]
    seconds = _fastest(lambda i: embedder.embed_ids(batches[i]))
    return embedder.tokens_read([n_tokens] * n_texts) / seconds


def head_speed(classifier, dim: int = 384, k: int = 64, n_labels: int = 4, n_queries: int = 32) -> float:
    """The head's tokens per second through `classifier` (unfitted; its options are the server's defaults)
    on a random task of k examples and n_labels labels."""
    rng = np.random.default_rng(0)
    labels = [f"label {i % n_labels}" for i in range(k)]
    clf = classifier.fit(rng.standard_normal((k, dim)).astype(np.float32), labels)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    return clf.plan(n_queries).tokens / _fastest(lambda i: clf.predict_proba(queries))


def over_budget(embed_tokens: int, head: HeadCost | None, max_embed_tokens: int, max_head_tokens: int,
                multiclass: str = "auto", speeds: Speeds | None = None, max_request_s: float = 0) -> str | None:
    """The refusal message when a request is over budget, else None: what is over, then what to do."""
    found = refusal(embed_tokens, head, max_embed_tokens, max_head_tokens, multiclass, speeds, max_request_s)
    return None if found is None else f"{found[0]}: {found[1]}"


def refusal(embed_tokens: int, head: HeadCost | None, max_embed_tokens: int, max_head_tokens: int,
            multiclass: str = "auto", speeds: Speeds | None = None,
            max_request_s: float = 0) -> tuple[str, str] | None:
    """(what is over budget, with the numbers and the setting; what to do), or None. The advice skips what
    the request already does (`multiclass` is the request's option). With `speeds` and `max_request_s` > 0,
    a request whose estimated time passes max_request_s is over budget too."""
    advice = "send fewer texts or labels, or lower options.n_permutations"
    if multiclass == "ovo":  # one-vs-one costs the most
        advice = "send fewer texts or labels, lower options.n_permutations, or use multiclass 'auto' or 'ovr'"
    if embed_tokens > max_embed_tokens:
        return (f"this request needs the embedder to read {embed_tokens} tokens; the limit is "
                f"max_embed_tokens={max_embed_tokens}", "send fewer or shorter texts")
    if head is not None and head.tokens > max_head_tokens:
        return (f"this request needs {head.tokens} head tokens ({head.sequences} sequences of up to "
                f"{head.context} examples, over the texts in batches of {QUERY_BATCH}); the limit is "
                f"max_head_tokens={max_head_tokens}", advice)
    head_tokens = head.tokens if head is not None else 0
    if speeds is not None and max_request_s > 0 and speeds.seconds(embed_tokens, head_tokens) > max_request_s:
        return (f"this request would take about {speeds.seconds(embed_tokens, head_tokens):.1f} s on this server "
                f"({embed_tokens} embedder tokens at {speeds.embedder:.0f}/s, {head_tokens} head tokens at "
                f"{speeds.head:.0f}/s, as measured when it started); the limit is max_request_s={max_request_s:g}",
                "send fewer or shorter texts, fewer labels, or lower options.n_permutations")
    return None
