import pytest
from transformers import pipeline

import tart.pipeline  # noqa: F401  (registers the task)

EXAMPLES = [("a dog: a domesticated carnivorous mammal", "animal"), ("wolf: a wild canine", "animal"),
            ("sparrow: a small bird", "animal"), ("bread: food made of baked dough", "food"),
            ("rice: grains used as food", "food"), ("soup: a liquid food", "food")]


@pytest.fixture(scope="module")
def pipe():
    return pipeline("few-shot-classification", model="checkpoints/tart-compact", embedder="minilm-l6")


def test_pipeline_classifies_a_batch_and_a_single_text(pipe):
    out = pipe(["horse: a large hoofed mammal", "pasta: a dish of dough cooked in water"], examples=EXAMPLES)
    assert [o["label"] for o in out] == ["animal", "food"]
    assert all(abs(sum(o["scores"].values()) - 1) < 1e-5 and o["score"] == max(o["scores"].values()) for o in out)
    single = pipe("tiger: a large striped cat", examples=EXAMPLES)
    assert single["label"] == "animal"


def test_pipeline_errors(pipe):
    with pytest.raises(ValueError, match="needs examples"):
        pipe(["x"])
    with pytest.raises(ValueError, match="at least 2 distinct labels"):
        pipe(["x"], examples=[("a", "one"), ("b", "one")])
