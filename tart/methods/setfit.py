"""`SetFitClassifier`: SetFit (Tunstall et al. 2022, arXiv 2209.11055) with the `setfit` package.

The body is a sentence encoder from a local folder (default: the packaged all-MiniLM-L6-v2), never
a hub download. `fit` fine-tunes a fresh copy of the body contrastively on pairs drawn from the k
examples (`num_iterations` pairs per example, SetFit's default 20), then fits SetFit's logistic
regression head on the tuned embeddings. Optional: `pip install "tart[setfit]"`.
"""
from __future__ import annotations

import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from tart.data.labels import sorted_labels
from tart.defaults import SETFIT_BODY


class SetFitClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, body: str = SETFIT_BODY, num_iterations: int = 20, num_epochs: int = 1,
                 batch_size: int = 16, random_state: int | None = 0):
        self.body = body  # embedder short name (tart.lm.registry) or a sentence-transformers folder
        self.num_iterations = num_iterations
        self.num_epochs = num_epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, texts, labels):
        try:
            from datasets import Dataset
            from setfit import SetFitModel, Trainer, TrainingArguments
        except ImportError as err:
            raise ImportError("setfit is an optional extra: pip install 'tart[setfit]'") from err
        from tart.lm.registry import resolve_model_dir

        texts, labels = list(texts), list(labels)
        if not texts or len(texts) != len(labels):
            raise ValueError(f"need as many labels as texts, and at least one: {len(texts)} vs {len(labels)}")
        self.classes_ = np.array(sorted_labels(labels))
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 distinct labels to classify, got 1 class: {list(self.classes_)}")
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        model = SetFitModel.from_pretrained(str(resolve_model_dir(self.body)), local_files_only=True)
        data = Dataset.from_dict({"text": texts, "label": [index[y] for y in labels]})
        with tempfile.TemporaryDirectory(prefix="tart-setfit-") as tmp:  # nothing lands in the working folder
            args = TrainingArguments(output_dir=tmp, batch_size=self.batch_size, num_epochs=self.num_epochs,
                                     num_iterations=self.num_iterations, seed=self.random_state or 0,
                                     report_to="none", save_strategy="no", show_progress_bar=False)
            Trainer(model=model, args=args, train_dataset=data).train()
        self.model_ = model
        return self

    def predict_proba(self, texts) -> np.ndarray:
        """Columns follow `classes_` (SetFit's head was fitted on their indices 0..C-1)."""
        return np.asarray(self.model_.predict_proba(list(texts), as_numpy=True, show_progress_bar=False),
                          dtype=np.float64)

    def predict(self, texts) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(texts), axis=1)]
