"""tart.methods: the registry, and answers of the methods that are cheap to check exactly."""
import numpy as np
import pytest

from tart import methods
from tart.methods.probes import CentroidClassifier, LogRegProbe


def test_registry_names_and_kinds():
    assert list(methods.METHODS) == ["tart", "tart-nopool", "logreg", "centroid", "centroid-raw", "icl", "icl-cal", "comprw", "setfit"]
    assert {m.reads for m in methods.METHODS.values()} == {"vectors", "prompt", "text"}
    with pytest.raises(ValueError, match="unknown method 'svm'; known: tart, tart-nopool, logreg"):
        methods.make("svm")
    assert methods.make("centroid").standardize and not methods.make("centroid-raw").standardize


def test_centroid_standardises_features():
    """Feature 0 decides the class but is tiny; feature 1 is huge noise. Standardised, the centroid
    reads feature 0; on raw features cosine is swamped by feature 1."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    X = np.c_[(y * 2 - 1) * 0.01 + rng.normal(0, 0.002, 100), rng.normal(0, 100, 100)]
    assert (CentroidClassifier(standardize=True).fit(X, y).predict(X) == y).mean() > 0.95
    assert (CentroidClassifier(standardize=False).fit(X, y).predict(X) == y).mean() < 0.75
    proba = CentroidClassifier().fit(X, y).predict_proba(X[:3])
    assert np.allclose(proba.sum(1), 1) and (proba.argmax(1) == CentroidClassifier().fit(X, y).predict(X[:3])).all()


def test_logreg_probe_separable():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 5))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    probe = LogRegProbe().fit(X[:40], y[:40])
    assert probe.classes_.tolist() == ["neg", "pos"] and (probe.predict(X[40:]) == y[40:]).mean() >= 0.85


def test_icl_query_is_tokenised_like_the_examples():
    from transformers import AutoTokenizer

    from tart.lm.registry import resolve_model_dir
    from tart.methods.prompting import ICLClassifier

    tok = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m"))
    icl = ICLClassifier(lm=None, tokenizer=tok).fit(["a cat sat", "fresh bread"], ["animal", "food"])
    q = icl._query_ids("a cat sat")
    assert q == tok("Input: a cat sat\nLabel:", add_special_tokens=False)["input_ids"]
    assert icl.examples_[0][: len(q)] == q  # the query block reads exactly like an example's start


def test_text_classifier_checks_inputs():
    model = methods.text_classifier("centroid", "minilm-l6")
    with pytest.raises(ValueError, match="at least 2 distinct labels"):
        model.fit(["a cat", "a dog"], ["animal", "animal"])
    with pytest.raises(ValueError, match="list of texts"):
        model.fit([1, 2], ["a", "b"])
    with pytest.raises(ValueError, match="needs a causal LM"):
        methods.text_classifier("icl", "minilm-l6")


@pytest.mark.slow
def test_setfit_learns_a_clear_task():
    pytest.importorskip("setfit")
    from tart.data.datasets import load_dataset
    from tart.data.splits import balanced_split

    support, test = balanced_split(load_dataset("wordnet-animal-food"), k=8, seed=0, test_size=40)
    clf = methods.text_classifier("setfit", setfit_iterations=2).fit(support.texts, support.labels)
    proba = clf.predict_proba(test.texts)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1)
    assert clf.score(test.texts, test.labels) >= 0.75


def test_one_method_spec_grammar():
    from tart.methods import Spec, parse_spec, split_specs

    assert parse_spec("logreg") == Spec("logreg")
    assert parse_spec(" tart:tart-bank,n_permutations=8,shrinkage=0.5,sign_flips=false,mode=x ") == Spec(
        "tart", "tart-bank", {"n_permutations": 8, "shrinkage": 0.5, "sign_flips": False, "mode": "x"})
    assert split_specs("probe,centroid") == ["probe", "centroid"]
    assert split_specs("probe;tart:tart-bank,n_dims=64") == ["probe", "tart:tart-bank,n_dims=64"]
    with pytest.raises(ValueError, match="not key=value"):
        parse_spec("tart:x,=3")
