"""`transformers.pipeline("few-shot-classification", model=HEAD, embedder=NAME)`.

    pipe = pipeline("few-shot-classification", model="checkpoints/tart-residual", embedder="minilm-l6")
    pipe(["a cat", "bread"], examples=[("a dog", "animal"), ("rice", "food"), ...])
    -> [{"label": "animal", "score": 0.93, "scores": {"animal": 0.93, "food": 0.07}}, ...]

The whole call is one few-shot task: all texts are classified independently of each other (in
batched forwards of the classifier's `query_batch_size` texts) by a TartClassifier fitted on `examples`.
"""
from __future__ import annotations

from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import tart.head.model  # noqa: F401  (registers the "tart" model type with AutoModel)
from tart.classifier import TartClassifier
from tart.defaults import DEFAULT_EMBEDDER

TASK = "few-shot-classification"


class FewShotClassificationPipeline(Pipeline):
    def __init__(self, *args, embedder=DEFAULT_EMBEDDER, **kwargs):
        self.embedder = embedder
        super().__init__(*args, **kwargs)

    def _sanitize_parameters(self, examples=None, n_permutations=None, multiclass=None, **kwargs):
        preprocess = {"examples": examples} if examples is not None else {}
        forward = {k: v for k, v in (("n_permutations", n_permutations), ("multiclass", multiclass)) if v is not None}
        return preprocess, forward, {}

    def __call__(self, texts, examples=None, **kwargs):
        single = isinstance(texts, str)
        outputs = super().__call__({"texts": [texts] if single else list(texts)}, examples=examples, **kwargs)
        return outputs[0] if single else outputs

    def preprocess(self, inputs, examples=None):
        if not examples:
            raise ValueError("few-shot-classification needs examples=[(text, label), ...] with at least 2 labels")
        try:
            texts, labels = zip(*examples)
        except (TypeError, ValueError):
            raise ValueError("examples must be a list of (text, label) pairs") from None
        if not inputs["texts"]:
            raise ValueError("no texts to classify")
        return {"texts": inputs["texts"], "example_texts": list(texts), "example_labels": list(labels)}

    def _forward(self, model_inputs, **params):
        clf = TartClassifier(head=self.model, embedder=self.embedder, **params)
        clf.fit(model_inputs["example_texts"], model_inputs["example_labels"])
        return {"classes": clf.classes_.tolist(), "probs": clf.predict_proba(model_inputs["texts"])}

    def postprocess(self, model_outputs):
        classes = model_outputs["classes"]
        results = []
        for row in model_outputs["probs"]:
            best = int(row.argmax())
            results.append({"label": classes[best], "score": float(row[best]),
                            "scores": {str(c): float(p) for c, p in zip(classes, row)}})
        return results

    def _ensure_tensor_on_device(self, inputs, device):
        return inputs  # texts and numpy arrays: the classifier moves what it needs


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=FewShotClassificationPipeline, pt_model=AutoModel)
