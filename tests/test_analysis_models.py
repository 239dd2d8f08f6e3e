"""tart.analysis.models: specs -> few-shot text classifiers with one interface."""
import numpy as np
import pytest

from tart.analysis import models
from tart.data.datasets import load_dataset
from tart.data.splits import balanced_split
from tart.methods.probes import softmax


@pytest.fixture(scope="module")
def task():
    support, test = balanced_split(load_dataset("wordnet-animal-food"), 8, seed=0, test_size=24)
    return support, test


def test_parse_spec():
    assert models.parse_spec("tart") == ("tart", "smollm2-135m", {})
    assert models.parse_spec("logreg:minilm-l6") == ("logreg", "minilm-l6", {})
    assert models.parse_spec("centroid:/some/folder") == ("centroid", "/some/folder", {})
    assert models.parse_spec("tart:minilm-l6,n_permutations=8") == ("tart", "minilm-l6", {"n_permutations": 8})
    for bad, message in [("svm", "known methods: tart, tart-nopool, logreg, centroid, centroid-raw, icl, icl-cal, comprw, setfit"),
                         ("", "empty method spec"), (":minilm-l6", "unknown method ''"),
                         ("tart,8", "option '8' of method spec 'tart,8' is not key=value")]:
        with pytest.raises(ValueError, match=message):
            models.parse_spec(bad)


def test_unknown_embedder_and_encoder_icl_are_clear_errors():
    with pytest.raises(ValueError, match="known short names: smollm2-135m, minilm-l6"):
        models.model_from_spec("logreg:no-such-model")
    for method in ("icl", "icl-cal", "comprw"):
        with pytest.raises(ValueError, match=f"{method} needs a causal LM"):
            models.model_from_spec(f"{method}:minilm-l6")


@pytest.mark.parametrize("spec", ["logreg:minilm-l6", "centroid:minilm-l6", "tart:minilm-l6"])
def test_every_method_has_the_same_interface(spec, task):
    support, test = task
    model = models.model_from_spec(spec, seed=0).fit(support.texts, support.labels)
    assert list(model.classes_) == ["animal", "food"]
    proba = model.predict_proba(test.texts)
    assert proba.shape == (24, 2) and np.allclose(proba.sum(1), 1) and (proba >= 0).all()
    assert list(model.predict(test.texts)) == list(model.classes_[proba.argmax(1)])
    # each method gets 20 of 24 right here (4 examples a class); a coin reaches 18 with probability 0.011
    assert np.mean(model.predict(test.texts) == np.array(test.labels)) >= 0.75


def test_centroid_probabilities_are_a_softmax_of_cosines(task):
    support, test = task
    model = models.model_from_spec("centroid:minilm-l6").fit(support.texts, support.labels)
    embed, centroid = model.estimator_[0], model.estimator_[-1]  # Pipeline(Embed, CentroidClassifier)
    cos = centroid.decision_function(embed.transform(test.texts))
    assert np.allclose(model.predict_proba(test.texts), np.exp(cos) / np.exp(cos).sum(1, keepdims=True))


def test_icl_probabilities_are_a_softmax_of_label_log_likelihoods(task):
    support, test = task
    model = models.model_from_spec("icl").fit(support.texts[:4], support.labels[:4])  # short prompt: fast
    assert list(model.classes_) == ["animal", "food"]
    proba = model.predict_proba(test.texts[:2])
    assert np.allclose(proba, softmax(model.estimator_.score(test.texts[:2])))
    assert list(model.predict(test.texts[:2])) == list(model.classes_[proba.argmax(1)])
    assert np.allclose(softmax([[1000.0, 0.0]]), [[1.0, 0.0]])  # no overflow


def test_component_reweighting_spec(task):
    support, test = task
    model = models.model_from_spec("comprw", seed=0).fit(support.texts, support.labels)  # 4 in the prompt, 4 train
    proba = model.predict_proba(test.texts[:2])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1)
    weights = model.estimator_.weights_
    assert weights.shape == (301,) and ((weights >= 0) & (weights <= 1)).all()  # embed + 30x9 heads + 30 MLPs


def test_one_class_or_mismatched_labels_are_errors():
    model = models.model_from_spec("logreg:minilm-l6")
    with pytest.raises(ValueError, match="at least 2 distinct labels"):
        model.fit(["a cat", "a dog"], ["animal", "animal"])
    with pytest.raises(ValueError, match="as many labels as texts"):
        model.fit(["a cat", "a dog"], ["animal"])
