"""Baselines that `tart evaluate` compares the head with, each a small scikit-learn-style classifier.

- `LogRegProbe`: logistic regression on standardised embeddings; C picked by stratified
  cross-validation on the support set when every class has at least 3 examples, else C = 1.
- `CentroidClassifier`: nearest class mean by cosine similarity (vectors centred on the support
  mean first, by default: LM embeddings share a large common direction that swamps cosine).
- `ICLClassifier`: in-context prompting of a causal LM. The prompt is the support set as
  "Input: text\\nLabel: label\\n\\n" blocks, then "Input: query\\nLabel:"; each label's total
  log-likelihood as the continuation " label" is scored and the best label wins. The examples'
  keys/values are computed once and shared by every (query, label) sequence in a batch.
"""
from __future__ import annotations

import copy
import inspect
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

LOGREG_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def softmax(scores) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large scores cannot overflow."""
    z = np.asarray(scores, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _classes(y) -> np.ndarray:
    return np.array(sorted(set(y), key=lambda v: (type(v).__name__, v)))


class LogRegProbe(ClassifierMixin, BaseEstimator):
    """Standardise, then logistic regression; C by `cv`-fold CV on the support set if it can."""

    def __init__(self, Cs=LOGREG_CS, cv: int = 5, random_state: int | None = 0, max_iter: int = 2000):
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state
        self.max_iter = max_iter

    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = _classes(y.tolist())
        folds = min(self.cv, min(int((y == c).sum()) for c in self.classes_))
        if folds >= 3:  # at least 3 examples per class: every fold sees every class
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            lr = LogisticRegressionCV(Cs=list(self.Cs), cv=splitter, scoring="neg_log_loss",
                                      max_iter=self.max_iter)
        else:
            lr = LogisticRegression(C=1.0, max_iter=self.max_iter)
        self.model_ = make_pipeline(StandardScaler(), lr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)  # sklearn's deprecation chatter
            self.model_.fit(np.asarray(X, dtype=np.float64), y)
        self.C_ = float(np.ravel(lr.C_)[0]) if folds >= 3 else 1.0
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.model_.predict_proba(np.asarray(X, dtype=np.float64))

    def predict(self, X) -> np.ndarray:
        return self.model_.predict(np.asarray(X, dtype=np.float64))


class CentroidClassifier(ClassifierMixin, BaseEstimator):
    """Nearest class mean by cosine similarity."""

    def __init__(self, center: bool = True):
        self.center = center

    @staticmethod
    def _unit(X):
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        self.classes_ = _classes(y.tolist())
        self.mean_ = X.mean(0) if self.center else np.zeros(X.shape[1])
        Xc = self._unit(X - self.mean_)
        self.centroids_ = self._unit(np.stack([Xc[y == c].mean(0) for c in self.classes_]))
        return self

    def decision_function(self, X) -> np.ndarray:
        return self._unit(np.asarray(X, dtype=np.float64) - self.mean_) @ self.centroids_.T

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


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
        self.classes_ = _classes(list(labels))
        self.examples_ = [self._ids(f"Input: {t}\nLabel: {y}\n\n") for t, y in zip(texts, labels)]
        self.label_ids_ = [self._ids(f" {c}") for c in self.classes_]
        full, bare = self.tokenizer("x")["input_ids"], self._ids("x")
        self.bos_ = full[: full.index(bare[0])] if bare and bare[0] in full else []
        return self

    def _query_ids(self, text: str) -> list[int]:
        return self._ids("Input: ") + self._ids(text)[: self.max_query_tokens] + self._ids("\nLabel:")

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
        device = next(self.lm.parameters()).device
        out = self.lm(input_ids=torch.tensor([prompt], device=device), use_cache=True)
        return prompt, getattr(out, _cache_arg(self.lm))

    def batch_rows(self, prompt, room: int) -> int:
        """Sequences per batch: long prompts get fewer, so the copied caches stay under batch_tokens."""
        return max(1, min(self.batch_size, self.batch_tokens // (len(prompt) + room)))

    def forward(self, prompt, past, seqs):
        """The LM's output for token lists `seqs`, each continuing the cached prompt (right-padded)."""
        device = next(self.lm.parameters()).device
        pad = self.tokenizer.pad_token_id or 0
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), len(prompt) + width), dtype=torch.long)
        mask[:, : len(prompt)] = 1
        for r, s in enumerate(seqs):  # right padding: real tokens never attend to the pads
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, len(prompt) : len(prompt) + len(s)] = 1
        cache = copy.deepcopy(past)  # the forward extends the cache in place
        cache.batch_repeat_interleave(len(seqs))
        return self.lm(input_ids=ids.to(device), attention_mask=mask.to(device),
                       **{_cache_arg(self.lm): cache, "use_cache": True})

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


def _cache_arg(lm) -> str:
    """The forward's keyword for the key/value cache (renamed in transformers 5)."""
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


def load_causal_lm(embedder):
    """The embedder's model with its LM head (a second, small copy; loaded once per process)."""
    from transformers import AutoModelForCausalLM

    from tart.embeddings import resolve_model_dir

    key = (embedder.name, str(embedder.cache_dir))
    if key not in _LMS:
        folder = resolve_model_dir(embedder.name, embedder.cache_dir)
        _LMS[key] = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    return _LMS[key]


_LMS: dict = {}
