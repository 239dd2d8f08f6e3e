"""TartClassifier with the shipped head: scikit-learn API, multi-class, order, chunks, errors."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tart.classifier import TartClassifier
from tart.head.load import load_head


@pytest.fixture(scope="module")
def head():
    return load_head("tart-compact")


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def support_and_test(X, y, k, seed=0):
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), k // len(np.unique(y)), replace=False)
                          for c in np.unique(y)])
    rest = np.setdiff1d(np.arange(len(y)), idx)
    return X[idx], y[idx], X[rest], y[rest]


def test_binary_vectors_beat_chance_by_far(head, cancer):
    Xs, ys, Xt, yt = support_and_test(*cancer, k=32)
    clf = TartClassifier(head=head, embedder=None).fit(Xs, ys)
    assert clf.score(Xt, yt) > 0.85
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2) and np.allclose(proba.sum(1), 1)
    assert np.array_equal(clf.predict(Xt), clf.classes_[proba.argmax(1)])


def test_labels_of_any_hashable_type_and_column_order(head, cancer):
    Xs, ys, Xt, _ = support_and_test(*cancer, k=16)
    ints = TartClassifier(head=head, embedder=None).fit(Xs, ys).predict_proba(Xt)
    names = np.where(ys == 1, "yes", "no")
    clf = TartClassifier(head=head, embedder=None).fit(Xs, names)
    assert clf.classes_.tolist() == ["no", "yes"]  # sorted, like 0 and 1
    assert np.allclose(clf.predict_proba(Xt), ints, atol=1e-6)
    flipped = TartClassifier(head=head, embedder=None).fit(Xs, np.where(ys == 1, "benign", "malignant"))
    assert flipped.classes_.tolist() == ["benign", "malignant"]  # now class 1 comes first
    assert np.allclose(flipped.predict_proba(Xt), ints[:, ::-1], atol=1e-6)  # label names cannot matter
    nul = TartClassifier(head=head, embedder=None).fit(Xs, ["a\x00" if v else "a" for v in ys])
    assert set(nul.predict(Xt[:20])) <= {"a", "a\x00"}  # labels kept exactly, NUL included
    assert TartClassifier(head=head).fit(Xs, ys).embedder_ is None  # vectors: no embedder is loaded
    mixed = TartClassifier(head=head, embedder=None).fit(Xs, [("t", 1) if v else 0 for v in ys])
    assert set(map(repr, mixed.predict(Xt[:5]))) <= {repr(("t", 1)), "0"}


@pytest.mark.parametrize("multiclass", ["ovr", "ovo"])
def test_multiclass(head, multiclass):
    X, y = load_digits(n_class=4, return_X_y=True)
    Xs, ys, Xt, yt = support_and_test(StandardScaler().fit_transform(X), y, k=40)
    clf = TartClassifier(head=head, embedder=None, multiclass=multiclass).fit(Xs, ys)
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), 4) and np.allclose(proba.sum(1), 1)
    assert clf.score(Xt, yt) > 0.7  # chance is 0.25


def test_queries_are_independent_and_results_reproducible(head, cancer):
    Xs, ys, Xt, _ = support_and_test(*cancer, k=16)
    clf = TartClassifier(head=head, embedder=None, random_state=3).fit(Xs, ys)
    together = clf.predict_proba(Xt[:20])
    assert np.allclose(together[:1], clf.predict_proba(Xt[:1]), atol=1e-6)
    assert np.allclose(together, clone(clf).fit(Xs, ys).predict_proba(Xt[:20]), atol=1e-6)
    other_orders = TartClassifier(head=head, embedder=None, random_state=4).fit(Xs, ys).predict_proba(Xt[:20])
    assert not np.allclose(together, other_orders, atol=1e-6)  # the head is order-sensitive: averaging matters


def test_support_longer_than_the_context_is_chunked(head, cancer):
    Xs, ys, Xt, yt = support_and_test(*cancer, k=200)
    clf = TartClassifier(head=head, embedder=None, n_permutations=1).fit(Xs, ys)
    assert clf.plan(1).sequences == 2 * 4  # 200 examples / 64 per sequence, x2 label swap
    assert clf.score(Xt, yt) > 0.85


def test_fit_does_the_task_work_once(head, cancer, monkeypatch):
    """The projection is fitted once per fit, not per query batch nor per predict call; iter_proba makes
    one batch per chunk asked for, the same numbers as predict_proba."""
    from tart.head import projection

    calls = []
    fit_projection = projection.fit_projection
    monkeypatch.setattr(projection, "fit_projection", lambda *a, **kw: calls.append(1) or fit_projection(*a, **kw))
    Xs, ys, Xt, _ = support_and_test(*cancer, k=32)
    clf = TartClassifier(head=head, embedder=None, query_batch_size=16).fit(Xs, ys)
    assert len(calls) == 1
    clf.predict_proba(Xt[:100])  # 7 batches
    clf.predict(Xt[:20])
    assert len(calls) == 1
    head_calls = []
    forward = type(clf.ensemble_).proba
    monkeypatch.setattr(type(clf.ensemble_), "proba", lambda self, Q: head_calls.append(len(Q)) or forward(self, Q))
    chunks = clf.iter_proba(Xt[:100])
    first = [next(chunks) for _ in range(3)]
    assert head_calls == [16, 16, 16]  # three batches asked for, three made: the fourth is not started
    np.testing.assert_array_equal(np.concatenate(first + list(chunks)), clf.predict_proba(Xt[:100]))
    # with the queries in the projection, it is fitted once per predict call instead
    both = TartClassifier(head=head, embedder=None, query_batch_size=16, fit_projection_on="support+queries")
    both.fit(Xs, ys).predict_proba(Xt[:100])
    assert len(calls) == 2


def test_scikit_learn_tools(head, cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), TartClassifier(head=head, embedder=None, n_permutations=2))
    scores = cross_val_score(pipe, X[:300], y[:300], cv=3)  # 200 support points per fold: chunked
    assert scores.mean() > 0.85
    search = GridSearchCV(TartClassifier(head=head, embedder=None), {"shrinkage": [0.0, 0.5]}, cv=2)
    search.fit(X[:80], y[:80])
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2 and scores.max() > 0.8  # both candidates were fitted and scored
    assert search.best_params_["shrinkage"] == [0.0, 0.5][int(scores.argmax())]
    assert search.score(X[300:], y[300:]) > 0.85  # the refitted best model on unseen points
    clf = TartClassifier(head=head, embedder=None, n_permutations=3)
    assert clone(clf).get_params()["n_permutations"] == 3
    assert clf.set_params(multiclass="ovo").multiclass == "ovo"


def test_texts_with_a_real_embedder(head):
    from tart.data.datasets import load_dataset
    from tart.data.splits import balanced_split

    support, test = balanced_split(load_dataset("wordnet-animal-food"), k=16, seed=0, test_size=60)
    clf = TartClassifier(head=head, embedder="minilm-l6").fit(support.texts, support.labels)
    assert clf.score(test.texts, test.labels) > 0.8
    with pytest.raises(ValueError, match="fitted on texts"):
        clf.predict(np.zeros((2, 384)))


@pytest.mark.parametrize("X, y, message", [
    ([[0.0, 1.0], [1.0, 0.0]], [1, 1], "at least 2 distinct labels"),
    ([], [], "X is empty"),
    ([[0.0, 1.0], [1.0, 0.0]], [0, 1, 1], "2 examples but y has 3"),
    (["a text", "another"], [0, 1], "embedder=None"),
    ([[0.0, np.nan], [1.0, 0.0]], [0, 1], "NaN"),
    (np.zeros((2, 2, 2)), [0, 1], "2-D"),
    (5, [0], "list of texts or a 2-D array"),
])
def test_bad_input(head, X, y, message):
    with pytest.raises(ValueError, match=message):
        TartClassifier(head=head, embedder=None).fit(X, y)


def test_bad_use(head, cancer):
    Xs, ys, Xt, _ = support_and_test(*cancer, k=16)
    with pytest.raises(ValueError, match="not fitted"):
        TartClassifier(head=head, embedder=None).predict(Xt)
    clf = TartClassifier(head=head, embedder=None).fit(Xs, ys)
    with pytest.raises(ValueError, match="features"):
        clf.predict(Xt[:, :5])
    with pytest.raises(ValueError, match="multiclass"):
        TartClassifier(head=head, embedder=None, multiclass="all").fit(Xs, ys)
    with pytest.raises(FileNotFoundError, match="no head checkpoint"):
        TartClassifier(head="no-such-head", embedder=None).fit(Xs, ys)


# Checks of scikit-learn's own suite that cannot apply, each with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_methods_sample_order_invariance":
        "queries run in one batched float32 forward; reordering them changes the summation order, so "
        "probabilities move by ~1e-8, above the check's 1e-9 tolerance (predictions do not change)",
}


def test_scikit_learn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(TartClassifier(embedder=None), on_fail=None,  # the shipped head, by name
                              expected_failed_checks=EXPECTED_FAILED_CHECKS)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) >= 50


@pytest.mark.parametrize("param, value", [
    ("shrinkage", "half"), ("shrinkage", -0.1), ("n_permutations", 0), ("query_batch_size", 0), ("max_unlabeled", -1),
    ("embedding_mode", "both"), ("fit_projection_on", "queries"), ("standardize", "yes"), ("sign_flips", 1.0),
    ("embedder_backend", "gpu"), ("label_names", "names"), ("transductive", "no"), ("random_state", "seed"),
    ("head", 3),
])
def test_options_out_of_range_are_refused_before_any_work(head, param, value):
    """Each option's range is checked when fit starts, naming the option; nothing is loaded first."""
    X, y = np.eye(4), [0, 1, 0, 1]
    clf = TartClassifier(**{"head": head, "embedder": None, param: value})
    with pytest.raises(ValueError, match=f"'{param}' parameter"):
        clf.fit(X, y)
    assert not hasattr(clf, "head_")


class _WordEmbedder:
    """A stand-in embedder object: a text's vector is the sum of fixed random vectors of its words, as
    float64 lists; it records what it is asked to embed."""
    model_name = None

    def __init__(self, dim=24):
        self.dim, self.calls = dim, []

    def _vector(self, text):
        import zlib

        return sum(np.random.default_rng(zlib.crc32(w.encode())).normal(size=self.dim) for w in text.split())

    def embed(self, texts):
        self.calls.append(("embed", list(texts)))
        return [self._vector(t).tolist() for t in texts]

    def embed_task(self, support, labels, queries, mode):
        self.calls.append(("embed_task", list(support), list(labels), list(queries), mode))
        return [self._vector(t).tolist() for t in support], [self._vector(t).tolist() for t in queries]


ANIMALS = ["cat", "dog", "cow", "horse", "goat", "sheep"]
FOODS = ["bread", "soup", "rice", "cheese", "pasta", "pie"]


def _texts(seed, n):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        words, label = (ANIMALS, "animal") if i % 2 else (FOODS, "food")
        texts.append(" ".join(rng.choice(words, 3)) + " here")
        labels.append(label)
    return texts, labels


@pytest.mark.parametrize("mode", ["stream", "vanilla"])
def test_texts_through_an_embedder_object_are_its_vectors(head, mode):
    """Fitted on texts with an embedder object, the classifier answers as fitted on that embedder's vectors
    (float32 whatever the embedder returns); vanilla embeds support and queries together at predict time,
    the support's labels given as strings."""
    texts, labels = _texts(0, 16)
    queries, truth = _texts(1, 10)
    embedder = _WordEmbedder()
    clf = TartClassifier(head=head, embedder=embedder, label_names=None, embedding_mode=mode).fit(texts, labels)
    proba = clf.predict_proba(queries)
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    by_vectors = TartClassifier(head=head, embedder=None).fit(vectors, labels)
    np.testing.assert_allclose(proba, by_vectors.predict_proba(np.asarray(embedder.embed(queries), np.float32)),
                               atol=1e-6)
    assert clf.predict(queries).tolist() == truth
    if mode == "stream":
        assert clf.support_vectors_.dtype == np.float32 and clf.n_features_in_ == 24
        assert embedder.calls[:2] == [("embed", texts), ("embed", queries)]
    else:
        assert embedder.calls[0] == ("embed_task", texts, labels, queries, "vanilla")


def test_plan_before_fit_is_the_fitted_tasks_plan():
    """`plan(n, y)` on an unfitted classifier (the service's budget check, before any vector) states the
    same work as the fitted task: for a binary head (names read as examples) and for a side-input head
    (names and the unlabelled pool in tokens of their own; no pool given, none counted)."""
    import torch

    from tart.head.model import TartConfig, TartReasoningModel

    torch.manual_seed(0)
    side = TartReasoningModel(TartConfig(n_classes=10, n_dims=32, max_examples=128, residual="nearest-mean",
                                         side_inputs=True)).eval()
    binary = TartReasoningModel(TartConfig()).eval()
    labels = ["a"] * 5 + ["b"] * 7 + ["c"] * 4
    rng = np.random.default_rng(0)
    X, names = rng.normal(size=(16, 20)).astype(np.float32), rng.normal(size=(3, 20)).astype(np.float32)
    for head in (binary, side):
        clf = TartClassifier(head=head, embedder=None, n_permutations=2)
        before = clf.plan(40, labels)
        assert clf.fit(X, labels, name_vectors=names).plan(40) == before
        pooled = TartClassifier(head=head, embedder=None, n_permutations=2).plan(40, labels, n_unlabeled=9)
        assert pooled.context == before.context + (9 if head is side else 0)
    assert TartClassifier(head=binary, embedder=None, n_permutations=2).plan(40, labels).sequences == 3 * 2 * 2


def test_an_embedder_given_by_name_or_folder_is_loaded_with_the_backend_asked_for(head, monkeypatch):
    from pathlib import Path

    from tart.lm import embedder as lm

    loaded = []
    monkeypatch.setattr(lm, "load_embedder", lambda name, **kw: loaded.append((name, kw)) or _WordEmbedder())
    texts, labels = _texts(0, 8)
    TartClassifier(head=head, embedder=Path("models/mine"), embedder_backend="onnx-int8", label_names=None).fit(
        texts, labels)
    TartClassifier(head=head, embedder="minilm-l6", label_names=None).fit(texts, labels)
    assert loaded == [(str(Path("models/mine")), {"backend": "onnx-int8"}), ("minilm-l6", {})]
    with pytest.raises(ValueError, match="embedder_backend='onnx' applies to an embedder given by name"):
        TartClassifier(head=head, embedder=_WordEmbedder(), embedder_backend="onnx").fit(texts, labels)


def test_texts_as_a_numpy_array_and_names_in_the_embedders_template(head):
    """Texts may come as a numpy array (of str or object, as a pandas column gives them); an embedder object
    that says it is a causal LM gets the names in the causal-LM template, a sentence encoder the bare names."""
    from tart.data.label_names import CAUSAL_LM_TEMPLATE

    texts, labels = _texts(0, 16)
    queries, _ = _texts(1, 6)
    as_list = TartClassifier(head=head, embedder=_WordEmbedder(), label_names=None).fit(texts, labels)
    for array in (np.array(texts), np.array(texts, dtype=object)):
        clf = TartClassifier(head=head, embedder=_WordEmbedder(), label_names=None).fit(array, labels)
        np.testing.assert_allclose(clf.predict_proba(np.array(queries, dtype=array.dtype)),
                                   as_list.predict_proba(queries), atol=1e-6)
    for model, expected in [("smollm2-135m", [CAUSAL_LM_TEMPLATE.format(name=n) for n in ("animal", "food")]),
                            ("minilm-l6", ["animal", "food"])]:
        embedder = _WordEmbedder()
        embedder.model_name = model
        TartClassifier(head=head, embedder=embedder).fit(texts, labels)
        assert ("embed", expected) in embedder.calls


def test_the_projection_is_fitted_on_the_support_and_names_only(head, cancer, monkeypatch):
    """Standardised only from 8 points up (fewer: centring, PCA and whitening alone); fitted on the support,
    with the queries only where fit_projection_on says so, never on a transductive call's texts."""
    from tart.head import projection

    fits = []
    fit_projection = projection.fit_projection
    monkeypatch.setattr(projection, "fit_projection",
                        lambda X, n_dims, shrinkage, standardize, **kw: fits.append((X.shape[1], standardize))
                        or fit_projection(X, n_dims, shrinkage, standardize, **kw))
    Xs, ys, Xt, _ = support_and_test(*cancer, k=16)
    TartClassifier(head=head, embedder=None).fit(Xs, ys)
    TartClassifier(head=head, embedder=None).fit(Xs[[0, 1, 2, 8, 9, 10, 11]], ys[[0, 1, 2, 8, 9, 10, 11]])
    TartClassifier(head=head, embedder=None, standardize=False).fit(Xs, ys)
    TartClassifier(head=head, embedder=None, transductive=True).fit(Xs, ys).predict_proba(Xt[:5])
    TartClassifier(head=head, embedder=None, fit_projection_on="support+queries").fit(Xs, ys).predict_proba(Xt[:5])
    assert fits == [(16, True), (7, False), (16, False), (16, True), (21, True)]


def test_a_head_is_served_with_the_projection_its_config_names(head, cancer, monkeypatch):
    """A head trained on shrunk standardisation and another whitening shrinkage (config.shrunk_std,
    config.projection_shrinkage) is projected that way at inference; `shrinkage` given by the caller wins."""
    import copy

    from tart.head import projection

    fits = []
    fit_projection = projection.fit_projection
    monkeypatch.setattr(projection, "fit_projection", lambda X, n_dims, shrinkage, standardize, **kw:
                        fits.append((shrinkage, kw["shrunk_std"])) or fit_projection(X, n_dims, shrinkage, standardize, **kw))
    tuned = copy.deepcopy(head)
    tuned.config.shrunk_std, tuned.config.projection_shrinkage = True, 1.0
    Xs, ys, Xt, _ = support_and_test(*cancer, k=16)
    TartClassifier(head=head, embedder=None).fit(Xs, ys)
    shrunk = TartClassifier(head=tuned, embedder=None).fit(Xs, ys).predict_proba(Xt[:20])
    TartClassifier(head=tuned, embedder=None, shrinkage=0.25).fit(Xs, ys)
    assert fits == [(0.5, False), (1.0, True), (0.25, True)]
    plain = TartClassifier(head=head, embedder=None).fit(Xs, ys).predict_proba(Xt[:20])
    assert not np.allclose(shrunk, plain)  # a table's units are kept, but not exactly: another input
