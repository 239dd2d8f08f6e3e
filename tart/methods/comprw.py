"""Component reweighting: the few-shot method of arXiv 2406.13131 (Chang, Thomason & Jia).

`ComponentReweightingClassifier`: of the k labelled examples, `n_demos` (class-balanced, classes
interleaved so the last two differ, as the paper avoids recency bias) form the ICL prompt; the other
k − n_demos are decomposed under that prompt into per-component label-word logits ℓ_{i,c}
(tart.methods.decompose) and train one weight per component,

    logits_c = Σ_i clip(w_i, 0, 1) · ℓ_{i,c},     loss = CE(logits, y) + λ · ‖w‖₁,

by full-batch plain SGD from w = 1 (which is the full model on that prompt), λ = 0.01, lr 0.05, up to
2000 epochs; as in the paper's code, training stops early once every training example is right
(checked every 100 epochs) or the cross-entropy has failed to improve `patience` = 3 times. A query is
decomposed under the same prompt and classified by argmax_c logits_c. The paper uses 4 demos (3 for
3-way tasks) and 24 training examples; here the k examples are split, so k = 16 gives 4 + 12 (with
small k, fewer demos, never under one per class, so that every class keeps a training example).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from tart.data.labels import sorted_labels
from tart.methods.decompose import decompose
from tart.methods.probes import softmax
from tart.methods.prompting import ICLClassifier


def fit_component_weights(X, y, l1: float = 0.01, lr: float = 0.05, epochs: int = 2000, patience: int = 3,
                          check_every: int = 100):
    """Weights for component logits X (n, C, K) and class indices y (n,): (clipped weights, epochs run)."""
    import torch

    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    w = torch.ones(X.shape[1], requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr)
    best, misses, epoch = float("inf"), 0, 0
    for epoch in range(epochs):
        out = (X * w.clamp(0, 1)[None, :, None]).sum(1)
        if epoch % check_every == 0 and bool((out.argmax(1) == y).all()):
            break  # every training example right: more steps only fit noise
        ce = torch.nn.functional.cross_entropy(out, y)
        loss = ce + l1 * w.abs().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if ce.item() >= best:
            misses += 1
            if misses >= patience:
                break
        else:
            best = ce.item()
    return w.detach().clamp(0, 1).numpy(), epoch + 1


def _interleaved_demos(labels, classes, n_demos: int, rng) -> list[int]:
    """Indices of n_demos examples, as balanced as possible, classes taking turns in a random order."""
    pools = {c: rng.permutation([i for i, y in enumerate(labels) if y == c]).tolist() for c in classes}
    order = rng.permutation(len(classes))
    picked = []
    while len(picked) < n_demos and any(pools.values()):
        for j in order:
            if len(picked) < n_demos and pools[classes[j]]:
                picked.append(pools[classes[j]].pop())
    return picked


class ComponentReweightingClassifier(ClassifierMixin, BaseEstimator):
    """Few-shot classification by reweighting a causal LM's heads and MLPs (see the module docstring)."""

    def __init__(self, lm, tokenizer, n_demos: int = 4, l1: float = 0.01, lr: float = 0.05, epochs: int = 2000,
                 patience: int = 3, random_state: int | None = 0, progress: bool = False):
        self.lm, self.tokenizer = lm, tokenizer
        self.n_demos, self.l1, self.lr, self.epochs, self.patience = n_demos, l1, lr, epochs, patience
        self.random_state, self.progress = random_state, progress

    def fit(self, texts, labels):
        texts, labels = list(texts), list(labels)
        if len(texts) != len(labels) or not texts:
            raise ValueError(f"need as many labels as texts (and at least one): {len(texts)} vs {len(labels)}")
        self.classes_ = np.array(sorted_labels(labels))
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"need at least two classes, got only {self.classes_[0]!r}")
        classes = self.classes_.tolist()
        # every class once in the prompt at least (more classes than n_demos: one demo each); with
        # small k, fewer demos so that every class keeps a training example
        n_demos = max(n_classes, min(self.n_demos, len(texts) - n_classes))
        self.demo_indices_ = _interleaved_demos(labels, classes, n_demos, np.random.default_rng(self.random_state))
        train = sorted(set(range(len(texts))) - set(self.demo_indices_))
        if set(labels[i] for i in self.demo_indices_) != set(classes) or {labels[i] for i in train} != set(classes):
            raise ValueError(f"{len(texts)} examples are too few: each class needs one of the {n_demos} "
                             "prompt examples and at least one more to train the weights")
        self.icl_ = ICLClassifier(self.lm, self.tokenizer).fit([texts[i] for i in self.demo_indices_],
                                                               [labels[i] for i in self.demo_indices_])
        dec = decompose(self.icl_, [texts[i] for i in train], progress=self.progress)
        y = np.array([classes.index(labels[i]) for i in train])
        self.components_ = dec.components
        self.weights_, self.n_epochs_ = fit_component_weights(dec.logits, y, self.l1, self.lr, self.epochs,
                                                              self.patience)
        self.train_accuracy_ = float(((dec.logits * self.weights_[:, None]).sum(1).argmax(-1) == y).mean())
        return self

    def decision_function(self, texts) -> np.ndarray:
        """Reweighted label-word logits, (n_texts, n_classes)."""
        return (decompose(self.icl_, list(texts), progress=self.progress).logits * self.weights_[:, None]).sum(1)

    def predict_proba(self, texts) -> np.ndarray:
        return softmax(self.decision_function(texts))

    def predict(self, texts) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(texts), axis=1)]
