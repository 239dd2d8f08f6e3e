"""What a user has besides examples: label names (descriptions, zero-shot) and unlabelled texts, read by
the library (TartClassifier), the corpus job and a side-input head."""
import copy

import numpy as np
import pytest

from tart.classifier import TartClassifier
from tart.data.datasets import load_dataset
from tart.data.label_names import CAUSAL_LM_TEMPLATE, default_name, name_texts, resolve_names
from tart.data.splits import balanced_split
from tart.head.load import load_head

EMBEDDER = "minilm-l6"


@pytest.fixture(scope="module")
def animal_food():
    return balanced_split(load_dataset("wordnet-animal-food"), k=8, seed=0, test_size=60)


@pytest.fixture(scope="module")
def side_head():
    """The shipped head that reads names and unlabelled points in tokens of their own."""
    head = load_head("tart-reader")
    assert head.config.side_inputs
    return head


def test_names_of_labels():
    assert default_name("play_music") == "play music" and default_name("credit-card") == "credit card"
    assert default_name("refundRequest") == "refund Request" and default_name(3) == "3"
    assert resolve_names(["b", "a"], {"a": " an animal "}) == ["b", "an animal"]
    with pytest.raises(ValueError, match="not in y"):
        resolve_names(["a", "b"], {"c": "x"})
    with pytest.raises(ValueError, match="non-empty"):
        resolve_names(["a", "b"], {"a": " "})
    # the classifier's class order, whatever the order of the labels; causal LMs read a template
    assert name_texts(["food", "animal", "food"]) == ["animal", "food"]
    assert name_texts([2, 1], None, "smollm2-135m") == [CAUSAL_LM_TEMPLATE.format(name=n) for n in ("1", "2")]


def test_names_are_read_the_same_from_texts_and_from_vectors(animal_food):
    support, test = animal_food
    named = TartClassifier(embedder=EMBEDDER).fit(support.texts, support.labels)
    plain = TartClassifier(embedder=EMBEDDER, label_names=None).fit(support.texts, support.labels)
    p_named, p_plain = named.predict_proba(test.texts), plain.predict_proba(test.texts)
    assert not np.allclose(p_named, p_plain, atol=1e-3)  # the names are read
    # the service and the corpus job embed texts and names themselves and fit on vectors
    embed = named.embedder_.embed
    on_vectors = TartClassifier(embedder=None).fit(embed(support.texts), support.labels,
                                                   name_vectors=embed(name_texts(support.labels, "auto", EMBEDDER)))
    assert np.allclose(on_vectors.predict_proba(embed(test.texts)), p_named, atol=1e-5)
    with pytest.raises(ValueError, match="one row per class"):
        TartClassifier(embedder=None).fit(embed(support.texts), support.labels, name_vectors=np.zeros((3, 384)))
    # the plan counts the names where the classifier will read them
    assert named.plan(10).tokens > plain.plan(10).tokens
    assert named.plan(10).tokens == TartClassifier(embedder=None).plan(10, support.labels).tokens


def test_zero_shot_from_descriptions(animal_food):
    _, test = animal_food
    clf = TartClassifier(embedder=EMBEDDER, label_names={"animal": "an animal", "food": "a food or dish"})
    clf.fit([], [], unlabeled=test.texts)
    assert clf.classes_.tolist() == ["animal", "food"]
    proba = clf.predict_proba(test.texts)
    assert proba.shape == (len(test.texts), 2) and np.allclose(proba.sum(1), 1)
    # the descriptions alone decide: swapped, the answers are swapped (the ensemble's members differ, as
    # their order follows the points, so not to the last digit)
    swapped = TartClassifier(embedder=EMBEDDER, label_names={"animal": "a food or dish", "food": "an animal"})
    flipped = swapped.fit([], [], unlabeled=test.texts).predict_proba(test.texts)
    assert np.mean(flipped.argmax(1) != proba.argmax(1)) > 0.8  # measured 0.88
    with pytest.raises(ValueError, match="at least 2 labels"):
        TartClassifier(embedder=EMBEDDER, label_names={"animal": "an animal"}).fit([], [])
    with pytest.raises(ValueError, match="needs texts and an embedder"):
        TartClassifier(embedder=None, label_names={0: "zero", 1: "one"}).fit(np.eye(2), [0, 1])


def test_zero_shot_without_a_pool_is_the_nearest_name_by_cosine():
    """The default head rescales each name to the texts' norm and leaves the names' span unwhitened
    (TartConfig.name_norm = "texts"), so from names alone it answers as the nearest name by cosine. Raw,
    the larger-norm name took almost every text (artifact vs person: 50.9 % against 71.7 %)."""
    _, test = balanced_split(load_dataset("wordnet-6way"), k=6, seed=0, test_size=120)
    names = {label: label for label in sorted(set(test.labels))}
    clf = TartClassifier(embedder=EMBEDDER, label_names=names).fit([], [])
    assert clf.head_.config.name_norm == "texts"
    N, Q = clf.name_vectors_, clf.embedder_.embed(test.texts)
    nearest = clf.classes_[(Q @ (N / np.linalg.norm(N, axis=1, keepdims=True)).T).argmax(1)]
    predicted = clf.predict(test.texts)
    assert (predicted == nearest).mean() == 1.0
    assert len(set(predicted)) > 1
    raw = copy.deepcopy(load_head("tart-base"))  # load_head's heads are shared: change a copy
    raw.config.name_norm = "raw"
    unscaled = TartClassifier(head=raw, embedder=EMBEDDER, label_names=names).fit([], []).predict(test.texts)
    assert (unscaled == nearest).mean() < 0.9  # the check can fail: without the rescaling it does


def test_unlabelled_pool_is_read_and_answers_do_not_depend_on_the_request(side_head, animal_food):
    support, test = animal_food
    pool = test.texts[30:]
    clf = TartClassifier(head=side_head, embedder=EMBEDDER, max_unlabeled=16).fit(support.texts, support.labels,
                                                                                  unlabeled=pool)
    assert clf.unlabeled_vectors_.shape == (16, 384)  # a seeded sample of the pool
    without = TartClassifier(head=side_head, embedder=EMBEDDER).fit(support.texts, support.labels)
    queries = test.texts[:30]
    proba = clf.predict_proba(queries)
    assert not np.allclose(proba, without.predict_proba(queries), atol=1e-3)
    # a text's answer is the same alone and in any company, unless the caller asks otherwise
    assert np.allclose(clf.predict_proba(queries[:1]), proba[:1], atol=1e-5)
    assert clf.plan(30).tokens > without.plan(30).tokens  # the unlabelled tokens are counted
    transductive = TartClassifier(head=side_head, embedder=EMBEDDER, transductive=True).fit(support.texts, support.labels)
    assert not np.allclose(transductive.predict_proba(queries[:1]), transductive.predict_proba(queries)[:1], atol=1e-4)
    with pytest.raises(ValueError, match="unlabeled must be texts"):
        TartClassifier(head=side_head, embedder=EMBEDDER).fit(support.texts, support.labels, unlabeled=np.zeros((3, 384)))


def test_the_corpus_job_reads_the_names_as_the_library_does(animal_food, tmp_path):
    from tart.corpus.job import TaskSpec

    support, test = animal_food
    spec = TaskSpec.from_examples(support.texts, support.labels, embedder=EMBEDDER)
    assert spec.names.shape == (2, 384)
    library = TartClassifier(embedder=EMBEDDER).fit(support.texts, support.labels).predict_proba(test.texts[:20])
    assert np.allclose(spec.load()(test.texts[:20]), library, atol=1e-5)
    unnamed = TaskSpec.from_examples(support.texts, support.labels, embedder=EMBEDDER, label_names=None)
    assert unnamed.names is None
    assert not np.allclose(unnamed.load()(test.texts[:20]), library, atol=1e-3)
