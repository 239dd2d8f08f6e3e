"""Few-shot classification by prompting a causal LM (in-context learning, ICL).

- `ICLClassifier`: the prompt is the support set as "Input: text\nLabel: label\n\n" blocks, then
  "Input: query\nLabel:" (each block tokenised as one string); each label's total log-likelihood as
  the continuation " label" is scored and the best label wins. The examples' keys/values are
  computed once and shared by every (query, label) sequence in a batch.
- `CalibratedICLClassifier`: contextual calibration (Zhao et al. 2021, arXiv 2102.09690). With p(x)
  the label probabilities of ICLClassifier (softmax over the labels' log-likelihoods) and p_cf their
  mean over content-free queries ("N/A", "", "[MASK]") under the same prompt, predict
  argmax_c p_c(x) / p_cf,c (W = diag(p_cf)⁻¹, b = 0), renormalised to probabilities.
- `load_causal_lm`: the embedder's model with its LM head, loaded once per process.
"""
from __future__ import annotations

import numpy as np
import torch

from tart.data.labels import sorted_labels
from tart.lm.token_batches import continue_cache, pad_right, prefix_cache
from tart.methods.probes import softmax


class ICLClassifier:
    """Few-shot classification by prompting a causal LM (`lm` must return `.logits`).

    If the prompt would not fit `max_prompt_tokens` (default: the model's context, less room for
    the longest query and label), whole examples are dropped from the left (the oldest first);
    `n_dropped_` says how many. Queries longer than `max_query_tokens` are cut at the end.
    """

    def __init__(self, lm, tokenizer, max_prompt_tokens: int | None = None, max_query_tokens: int = 256,
                 batch_size: int = 16, batch_tokens: int = 32768):
        self.lm, self.tokenizer = lm, tokenizer
        self.max_prompt_tokens, self.max_query_tokens = max_prompt_tokens, max_query_tokens
        self.batch_size, self.batch_tokens = batch_size, batch_tokens  # rows; cached tokens per batch

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def fit(self, texts, labels):
        if len(texts) != len(labels) or not len(texts):
            raise ValueError(f"need as many labels as texts (and at least one): {len(texts)} vs {len(labels)}")
        self.classes_ = np.array(sorted_labels(labels))
        self.examples_ = [self._ids(f"Input: {t}\nLabel: {y}\n\n") for t, y in zip(texts, labels)]
        self.label_ids_ = [self._ids(f" {c}") for c in self.classes_]
        full, bare = self.tokenizer("x")["input_ids"], self._ids("x")
        self.bos_ = full[: full.index(bare[0])] if bare and bare[0] in full else []
        return self

    def _query_ids(self, text: str) -> list[int]:
        """The query block tokenised as one string, like the examples' blocks (tokenising "Input: "
        and the text apart would put a stray space token before the query)."""
        ids = self._ids(text)
        if len(ids) > self.max_query_tokens:  # long queries are cut at the end
            text = self.tokenizer.decode(ids[: self.max_query_tokens])
        return self._ids(f"Input: {text}\nLabel:")

    def _prompt(self, room: int) -> list[int]:
        limit = getattr(self.lm.config, "max_position_embeddings", None) or 2048
        budget = min(self.max_prompt_tokens or limit, limit - room) - len(self.bos_)
        kept, used = [], 0
        for ex in reversed(self.examples_):  # keep the most recent examples that fit
            if used + len(ex) > budget:
                break
            kept.append(ex)
            used += len(ex)
        self.n_dropped_ = len(self.examples_) - len(kept)
        self.prompt_tokens_ = len(self.bos_) + used
        if not kept:
            raise ValueError(f"not even one example fits the prompt budget of {budget} tokens")
        return self.bos_ + [t for ex in reversed(kept) for t in ex]

    def prompt_cache(self, room: int):
        """The prompt's token ids and its keys/values, computed once and shared by every batch."""
        prompt = self._prompt(room)
        return prompt, prefix_cache(self.lm, prompt)

    def batch_rows(self, prompt, room: int) -> int:
        """Sequences per batch: long prompts get fewer, so the copied caches stay under batch_tokens."""
        return max(1, min(self.batch_size, self.batch_tokens // (len(prompt) + room)))

    def forward(self, prompt, past, seqs):
        """The LM's output for token lists `seqs`, each continuing the cached prompt (right-padded)."""
        ids, mask = pad_right(self.tokenizer, seqs, len(prompt))  # each continues right after the prompt
        return self.lm(input_ids=ids.to(self.lm.device), attention_mask=mask.to(self.lm.device),
                       **continue_cache(self.lm, past, len(seqs)))

    @torch.inference_mode()
    def score(self, queries) -> np.ndarray:
        """Total log-likelihood of each label after the prompt and each query: (n_queries, n_classes)."""
        qs = [self._query_ids(q) for q in queries]
        room = max(map(len, qs)) + max(map(len, self.label_ids_))
        prompt, past = self.prompt_cache(room)
        pairs = [(i, c) for i in range(len(qs)) for c in range(len(self.classes_))]
        scores = np.zeros((len(qs), len(self.classes_)))
        rows = self.batch_rows(prompt, room)
        for start in range(0, len(pairs), rows):
            batch = pairs[start : start + rows]
            logits = self.forward(prompt, past, [qs[i] + self.label_ids_[c] for i, c in batch]).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for r, (i, c) in enumerate(batch):
                lab, n = self.label_ids_[c], len(qs[i])
                # the token at position p is predicted by the logits at p - 1
                scores[i, c] = sum(logp[r, n - 1 + j, t].item() for j, t in enumerate(lab))
        return scores

    def predict_proba(self, queries) -> np.ndarray:
        """Softmax over the labels' log-likelihoods; columns follow `classes_`."""
        return softmax(self.score(queries))

    def predict(self, queries) -> np.ndarray:
        return self.classes_[np.argmax(self.score(queries), axis=1)]


def load_causal_lm(embedder):
    """The embedder's model with its LM head, in float32 on the CPU (a second, small copy; loaded once
    per process by tart.lm.loading.load_model)."""
    from tart.lm.loading import load_model

    return load_model(embedder.name, embedder.cache_dir, "cpu", torch.float32, lm_head=True)


class CalibratedICLClassifier(ICLClassifier):
    """In-context prompting with contextual calibration (see the module docstring)."""

    def __init__(self, lm, tokenizer, content_free=("N/A", "", "[MASK]"), **kwargs):
        super().__init__(lm, tokenizer, **kwargs)
        self.content_free = tuple(content_free)

    def predict_proba(self, queries) -> np.ndarray:
        queries = list(queries)
        if not queries:
            raise ValueError("no queries to classify")
        # content-free inputs scored in the same call, so they see exactly the queries' prompt
        p = softmax(self.score(list(self.content_free) + queries))
        self.p_cf_ = p[: len(self.content_free)].mean(0)
        q = p[len(self.content_free):] / self.p_cf_
        return q / q.sum(1, keepdims=True)

    def predict(self, queries) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(queries), axis=1)]
