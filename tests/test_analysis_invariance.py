"""tart analyze invariance: perturbations, Hard/Soft-SCoPE and their bounds, the command end to end."""
import json
import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from tart.analysis import invariance as inv
from tart.cli import main
from tart.data.datasets import load_dataset
from tart.data.splits import balanced_split


def tfidf_model(support):
    """A real, fast text classifier with the interface the analysis needs."""
    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(support.texts, support.labels)


class RandomClassifier:
    """Predicts at random: every call draws fresh class probabilities (seeded)."""

    def __init__(self, classes, seed=0):
        self.classes_ = np.asarray(classes)
        self.rng = np.random.default_rng(seed)

    def predict_proba(self, texts):
        return self.rng.dirichlet(np.ones(len(self.classes_)), size=len(texts))


@pytest.fixture(scope="module")
def six_way():
    support, test = balanced_split(load_dataset("wordnet-6way"), 60, seed=0, test_size=300)
    return tfidf_model(support), support, test.texts


# -- perturbations ----------------------------------------------------------------------------------
def changed_words(a, b):
    wa, wb = re.findall(r"[A-Za-z]+", a), re.findall(r"[A-Za-z]+", b)
    assert len(wa) == len(wb)
    return [(x, y) for x, y in zip(wa, wb) if x != y]


def test_typo_swaps_two_interior_letters_of_one_content_word():
    texts = load_dataset("wordnet-act-state").texts[:200]
    for i, text in enumerate(texts):
        out = inv.typo(text, np.random.default_rng(i))
        if out is None:
            continue
        (old, new), = changed_words(text, out)
        assert len(old) >= 4 and old.lower() not in inv.STOP_WORDS
        assert old[0] == new[0] and old[-1] == new[-1] and sorted(old) == sorted(new)
        diff = [j for j in range(len(old)) if old[j] != new[j]]
        assert len(diff) == 2 and diff[1] == diff[0] + 1
    assert inv.typo("the and with a cat", np.random.default_rng(0)) is None  # only stop words or short ones


def test_synonym_comes_from_the_wordnet_table_and_keeps_case():
    table = inv.load_synonyms()
    assert table["happy"] == ("felicitous", "glad")
    texts = load_dataset("opinion-sentiment").texts[:100] + load_dataset("wordnet-animal-food").texts[:100]
    n_changed = 0
    for i, text in enumerate(texts):
        out = inv.synonym(text, np.random.default_rng(i))
        if out is None:
            continue
        n_changed += 1
        (old, new), = changed_words(text, out)
        assert new.lower() in table[old.lower()] and old.lower() not in inv.STOP_WORDS
        assert old[0].isupper() == new[0].isupper()
    assert n_changed > 150
    assert inv.synonym("a the of", np.random.default_rng(0)) is None  # "a" has WordNet synonyms, but is a stop word


def test_candidates_are_seeded_distinct_and_differ_from_the_text():
    text = "gumbo: long mucilaginous green pods used in soups and stews"
    for kind in inv.PERTURBATIONS:
        a = inv.candidates(text, kind, 3, np.random.default_rng([0, 1]))
        b = inv.candidates(text, kind, 3, np.random.default_rng([0, 1]))
        assert a == b and len(a) == 3 and len(set(a)) == 3 and text not in a
        assert inv.candidates(text, kind, 3, np.random.default_rng([1, 1])) != a


# -- measures ----------------------------------------------------------------------------------------
def test_soft_is_bounded_by_hard_on_every_example():
    rng = np.random.default_rng(0)
    texts = [f"t{i}" for i in range(400)]
    p1 = dict(zip(texts, rng.dirichlet(np.ones(3), 400)))
    p2 = dict(zip(texts, rng.dirichlet(np.ones(3), 400)))
    kept = [(texts[i], texts[i + 1], 1.0) for i in range(0, 400, 2)]
    h, s, d = inv.shared_invariance(p1, p2, kept, tol=0.1, cutoff=1.0)
    assert ((0 <= s) & (s <= h) & (h <= 1)).all() and 0 < s.mean() < h.mean() < 1
    assert ((d >= 0) & (d <= 4)).all()
    h_all, s_all, _ = inv.shared_invariance(p1, p2, kept, tol=4.0, cutoff=5.0)  # tol >= 4: Soft = Hard
    assert np.array_equal(h_all, s_all) and np.array_equal(h_all, h)
    assert inv.soft_credit([0.0, 0.1, 0.55, 1.0, 3.0]).tolist() == pytest.approx([1, 1, 0.5, 0, 0])
    with pytest.raises(ValueError, match="tol"):
        inv.shared_invariance(p1, p2, kept, tol=1.0, cutoff=1.0)


def test_same_model_as_target_gives_hard_and_soft_one(six_way):
    ref, support, texts = six_way
    twin = tfidf_model(support)  # fitted apart: identical outputs, not the same object
    out = inv.scope(ref, {"self": ref, "twin": twin}, texts[:60], n_boot=200)
    assert all(c["kept"] > 30 for c in out["counts"].values())
    for r in out["results"]:
        assert r["hard"] == r["soft"] == 1.0 and r["hard_ci"] == [1.0, 1.0] and r["mean_distance"] < 1e-9


def test_random_target_keeps_its_label_about_one_in_c(six_way):
    ref, _, texts = six_way
    out = inv.scope(ref, {"random": RandomClassifier(ref.classes_)}, texts, n_boot=500, seed=1)
    for r in out["results"]:
        assert r["n"] > 200
        assert r["hard"] == pytest.approx(1 / 6, abs=0.07)
        assert r["hard_ci"][0] < 1 / 6 < r["hard_ci"][1]
        assert r["soft"] <= r["hard"]


def test_reference_selection_keeps_only_invariant_and_most_invariant(six_way):
    ref, _, texts = six_way
    kept, perturbed, p1 = inv.select_perturbations(ref, texts[:80], "typo", n_candidates=3, seed=0)
    assert 0 < len(kept) <= perturbed <= 80
    for x, xp, score in kept:
        assert np.argmax(p1[xp]) == np.argmax(p1[x])
        assert score == pytest.approx(1 / (1 + np.abs(p1[xp] - p1[x]).sum()))
    again = inv.select_perturbations(ref, texts[:80], "typo", n_candidates=3, seed=0)[0]
    assert again == kept


def test_bad_input_to_the_measures(six_way):
    ref, _, texts = six_way
    with pytest.raises(ValueError, match="no texts"):
        inv.scope(ref, {"r": ref}, [])
    with pytest.raises(ValueError, match="classes"):
        inv.scope(ref, {"binary": RandomClassifier(["a", "b"])}, texts[:5])
    with pytest.raises(ValueError, match="unknown perturbation"):
        inv.select_perturbations(ref, texts[:5], "shuffle")
    assert inv.bootstrap_ci([]) is None


# -- the command ---------------------------------------------------------------------------------------
def test_cli_end_to_end_with_the_default_embedder(tmp_path, capsys):
    out, png = tmp_path / "inv.json", tmp_path / "inv.png"
    code = main(["analyze", "invariance", "--reference", "tart:smollm2-135m", "--target", "logreg:smollm2-135m",
                 "--target", "tart:smollm2-135m", "--data", "wordnet-animal-food", "--k", "8", "--n", "12",
                 "--candidates", "2", "--bootstrap", "200", "--json", str(out), "--plot", str(png), "--threads", "1"])
    assert code == 0
    report = json.loads(out.read_text())
    assert png.stat().st_size > 10_000
    assert report["n"] == 12 and report["k"] == 8 and report["classes"] == ["animal", "food"]
    assert set(report["accuracy"]) == {"tart:smollm2-135m", "logreg:smollm2-135m"}
    assert [c["examples"] for c in report["counts"].values()] == [12, 12]
    rows = {(r["perturbation"], r["target"]): r for r in report["results"]}
    assert len(rows) == 4
    for kind in ("synonym", "typo"):
        assert rows[kind, "tart:smollm2-135m"]["hard"] == rows[kind, "tart:smollm2-135m"]["soft"] == 1.0
        r = rows[kind, "logreg:smollm2-135m"]
        assert r["n"] == report["counts"][kind]["kept"] > 0
        assert 0 <= r["soft"] <= r["hard"] <= 1 and r["hard_ci"][0] <= r["hard"] <= r["hard_ci"][1]
        for sample in report["samples"][kind]:
            assert sample["original"] != sample["perturbed"]


@pytest.mark.parametrize("args, message", [
    (["--target", "svm"], "unknown method 'svm'"),
    (["--target", "logreg:no-such-model"], "unknown model 'no-such-model'"),
    (["--target", "icl:minilm-l6"], "icl needs a causal LM"),
    (["--target", "logreg", "--text-column", "body"], "column 'body' not found"),
    (["--target", "logreg", "--k", "800"], "leave none to evaluate"),
    (["--target", "logreg", "--perturbations", "shuffle"], "unknown perturbation"),
    (["--target", "logreg", "--soft-tol", "2", "--soft-cutoff", "1"], "tol"),
])
def test_cli_bad_input_is_a_clear_error(args, message, capsys):
    k = [] if "--k" in args else ["--k", "4"]
    code = main(["analyze", "invariance", "--data", "wordnet-animal-food", "--n", "4", *k, *args])
    assert code == 2
    err = capsys.readouterr().err
    assert "tart analyze invariance: error:" in err and message in err


def test_cli_one_class_data_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("text,label\na cat,animal\na dog,animal\n")
    assert main(["analyze", "invariance", "--data", str(path), "--target", "logreg"]) == 2
    assert "at least 2 distinct labels" in capsys.readouterr().err
