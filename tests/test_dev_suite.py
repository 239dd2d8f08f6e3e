import numpy as np
import pytest

from tart.data.splits import balanced_indices
from tart.evaluate.dev_suite import per_task_table, run

VECTORS = ("sklearn:wine", "sklearn:iris")


def test_the_suites_splits_are_seeded_disjoint_and_balanced():
    y = np.repeat([0, 1, 2], 50)
    s1, t1 = balanced_indices(y, 16, seed=3, test_size=40, sampler="numpy")
    s2, t2 = balanced_indices(y, 16, seed=3, test_size=40, sampler="numpy")
    assert s1 == s2 and t1 == t2
    assert not set(s1) & set(t1) and len(t1) == 40 and t1 == sorted(t1)
    assert sorted(np.bincount(y[s1]).tolist()) == [5, 5, 6]
    # the draws of the suite's reports: numpy's generator, the test set drawn before the support's shuffle
    rng = np.random.default_rng(3)
    quota = np.full(3, 5)
    quota[rng.choice(3, 1, replace=False)] += 1
    support = np.concatenate([rng.choice(np.flatnonzero(y == c), q, replace=False) for c, q in zip(range(3), quota)])
    test = np.sort(rng.choice(np.setdiff1d(np.arange(150), support), 40, replace=False))
    assert s1 == rng.permutation(support).tolist() and t1 == test.tolist()


def test_suite_on_tables_compares_like_for_like_and_reuses_rows():
    report = run(["probe", "centroid", "tart:tart-compact,n_permutations=1"], ks=(8, 16), seeds=2,
                 test_size=50, embedders=("none",), tasks=VECTORS, progress=False)
    rows = {(r["task"], r["method"], r["k"]): r for r in report["results"]}
    assert len(rows) == 2 * 3 * 2
    for r in rows.values():
        assert len(r["accs"]) == 2 and 0.5 < r["mean"] <= 1.0  # wine and iris: far above chance (1/3)
    versus = [v for v in report["versus_best_baseline"] if v["method"].startswith("tart")]
    assert {v["k"] for v in versus} == {8, 16}
    for v in versus:  # the paired difference is computed from the rows above
        best = v["best_baseline"]
        expected = np.mean([rows[(t, v["method"], v["k"])]["mean"] - rows[(t, best, v["k"])]["mean"] for t in VECTORS])
        assert v["diff"] == pytest.approx(expected)
    table = per_task_table(report).splitlines()
    assert len(table) == 2 + len(VECTORS)  # header, rule, one row per task
    wine = next(line for line in table if "sklearn:wine" in line).split("|")[3:-1]
    assert float(wine[0]) == pytest.approx(rows[("sklearn:wine", "probe", 8)]["mean"], abs=5e-4)
    again = run(["probe", "centroid"], ks=(8, 16), seeds=2, test_size=50, embedders=("none",), tasks=VECTORS,
                progress=False, reuse=report)
    assert {(r["task"], r["method"], r["k"]): r["accs"] for r in again["results"]} == {
        key: r["accs"] for key, r in rows.items() if key[1] != "tart:tart-compact,n_permutations=1"}


def test_rows_are_reused_only_on_the_same_vectors():
    """A row computed on other vectors (another machine's float roundings, a re-embedded task) or on
    unrecorded ones is computed again; on the same vectors it is taken as it is."""
    import copy

    report = run(["centroid"], ks=(8,), seeds=2, test_size=50, embedders=("none",), tasks=VECTORS, progress=False)
    assert set(report["vectors"]) == {"none/sklearn:wine", "none/sklearn:iris"}
    marked = copy.deepcopy(report)
    for r in marked["results"]:
        r["accs"] = [-1.0, -1.0]  # could never be computed: shows which rows were reused

    def accs(reuse):
        again = run(["centroid"], ks=(8,), seeds=2, test_size=50, embedders=("none",), tasks=VECTORS,
                    progress=False, reuse=reuse)
        return {r["task"]: r["accs"] for r in again["results"]}

    assert accs(marked) == {t: [-1.0, -1.0] for t in VECTORS}
    marked["vectors"]["none/sklearn:wine"] = "0" * 12
    assert accs(marked)["sklearn:wine"] != [-1.0, -1.0] and accs(marked)["sklearn:iris"] == [-1.0, -1.0]
    del marked["vectors"]
    assert -1.0 not in sum(accs(marked).values(), [])


def test_a_heads_rows_are_reused_only_while_the_head_is_unchanged():
    """A head whose config or weights changed since the earlier report has its rows computed again."""
    import copy

    spec = "tart:tart-compact,n_permutations=1"
    report = run(["centroid", spec], ks=(8,), seeds=1, test_size=30, embedders=("none",), tasks=VECTORS[:1],
                 progress=False)
    assert set(report["heads"]) == {"tart-compact"}
    marked = copy.deepcopy(report)
    for r in marked["results"]:
        r["accs"] = [-1.0]

    def reused(reuse):
        again = run(["centroid", spec], ks=(8,), seeds=1, test_size=30, embedders=("none",), tasks=VECTORS[:1],
                    progress=False, reuse=reuse)
        return {r["method"] for r in again["results"] if r["accs"] == [-1.0]}

    assert reused(marked) == {"centroid", spec}
    marked["heads"]["tart-compact"] = "0" * 12
    assert reused(marked) == {"centroid"}


def test_bad_method():
    with pytest.raises(ValueError, match="unknown method"):
        run(["forest"], tasks=VECTORS, embedders=("none",))


def test_residual_base_is_the_heads_base():
    """base:nearest-mean predicts what a nearest-mean residual head would with its Transformer silenced."""
    import torch

    from tart.classifier import TartClassifier
    from tart.evaluate.dev_suite import make_method, task_vectors
    from tart.head.model import TartConfig, TartReasoningModel

    X, y = task_vectors("sklearn:wine", None)
    head = TartReasoningModel(TartConfig(n_dims=32, max_examples=64, n_classes=4, residual="nearest-mean")).eval()
    with torch.no_grad():
        head.read_out.weight.zero_()
        head.read_out.bias.zero_()
    support, test = balanced_indices(y, 16, seed=0, test_size=60, sampler="numpy")
    base = make_method("base:nearest-mean", 0).fit(X[support], y[support]).predict(X[test])
    clf = TartClassifier(head=head, embedder=None, multiclass="native", n_permutations=1).fit(X[support], y[support])
    assert (base == clf.predict(X[test])).all() and (base == y[test]).mean() > 0.8


def test_gaps_are_paired_over_tasks_and_seeds():
    from tart.evaluate.dev_suite import gaps

    def row(task, method, accs):
        return {"task": task, "embedder": "none", "method": method, "k": 8, "accs": accs, "mean": float(np.mean(accs))}

    report = {"embedders": ["e"], "ks": [8], "results": [
        row("t1", "a", [0.8, 0.9]), row("t1", "b", [0.7, 0.8]),
        row("t2", "a", [0.6, 0.6]), row("t2", "b", [0.6, 0.7])]}
    (g,) = gaps(report, [("a", "b")])
    diffs = np.array([0.1, 0.1, 0.0, -0.1])  # (task, seed) pairs
    assert g["diff"] == pytest.approx(0.025) and g["wins"] == 1 and g["tasks"] == 2
    assert g["se"] == pytest.approx(diffs.std(ddof=1) / 2)
    assert g["se_tasks"] == pytest.approx(np.std([0.1, -0.05], ddof=1) / np.sqrt(2))  # per-task differences


def test_label_names_join_the_support_set_on_text_tasks():
    """`names=N`: each label's name, embedded by the task's embedder, is N more labelled examples (here with
    one text example per class, the names decide clear texts); a table's integer labels get none."""
    from tart.evaluate.dev_suite import WithLabelNames, make_method
    from tart.lm.embedder import load_embedder

    emb = load_embedder("minilm-l6")
    texts = ["a cat", "a dog", "fresh bread", "tomato soup"]
    X, y = emb.embed(texts), np.array(["animal", "animal", "food", "food"])
    method = make_method("centroid,names=2", 0, "minilm-l6")
    assert isinstance(method, WithLabelNames) and method.copies == 2
    assert not isinstance(make_method("centroid,names=2", 0, None), WithLabelNames)  # a table: no names
    method.fit(X[[0, 2]], y[[0, 2]])
    assert list(method.method.classes_) == ["animal", "food"]
    queries = emb.embed(["a horse in the field", "a bowl of rice"])
    assert list(method.predict(queries)) == ["animal", "food"]


def test_names_and_pool_the_librarys_way_and_zero_shot():
    """`tart:HEAD,names=1[,pool=1]` and `base:side` read names (and the test points as pool) through fit's
    name_vectors / unlabeled; at k = 0 only such methods run, beside the nearest-name baseline."""
    from tart.classifier import TartClassifier
    from tart.evaluate.dev_suite import NearestName, SideBase, WithSideInputs, make_method, reads_names
    from tart.lm.embedder import load_embedder

    emb = load_embedder("minilm-l6")
    X = emb.embed(["a cat", "a dog", "fresh bread", "tomato soup", "a horse in the field", "a bowl of rice"])
    y = np.array(["animal", "animal", "food", "food", "animal", "food"])
    for spec, inner in (("tart:tart-compact,names=1,pool=1", TartClassifier), ("base:side,names=1", SideBase)):
        method = make_method(spec, 0, "minilm-l6")
        assert isinstance(method, WithSideInputs) and isinstance(method.method, inner)
        assert list(method.fit(X[[0, 2]], y[[0, 2]]).predict(X[4:])) == ["animal", "food"]
    assert isinstance(make_method("nearest-name", 0, "minilm-l6"), NearestName)
    assert [reads_names(m) for m in ("probe", "nearest-name", "base:side,names=1", "tart:x")] == [False, True, True, False]
    report = run(["nearest-name", "probe", "base:side,names=1,pool=1"], ks=(0,), seeds=2, test_size=40,
                 embedders=("minilm-l6",), tasks=("wordnet-animal-food",), progress=False)
    assert {r["method"] for r in report["results"]} == {"nearest-name", "base:side,names=1,pool=1"}
    assert all(r["mean"] > 0.8 for r in report["results"])  # animal vs food from the two words alone


def test_weight_oracle_bounds_what_choosing_the_weights_per_task_can_gain():
    """Two tasks, two seeds: the best single pair, each task's best pair and each episode's best pair, from
    the suite's rows (every other pair of the grid scores 0)."""
    import itertools

    from tart.evaluate import weight_oracle

    scores = {  # (name_weight, unlabeled_weight) -> {task: per-seed accuracies}
        (2.0, 1.0): {"a": [0.6, 0.8], "b": [0.5, 0.5]},
        (0.0, 0.0): {"a": [0.9, 0.5], "b": [0.4, 0.4]},
        (4.0, 2.0): {"a": [0.5, 0.5], "b": [0.7, 0.5]},
    }
    results = [{"task": t, "embedder": "e", "method": weight_oracle.spec(*w), "k": 8,
                "accs": scores.get(w, {}).get(t, [0.0, 0.0]),
                "mean": float(np.mean(scores.get(w, {}).get(t, [0.0, 0.0])))}
               for w in itertools.product(weight_oracle.NAME_WEIGHTS, weight_oracle.UNLABELED_WEIGHTS) for t in "ab"]
    (row,) = weight_oracle.oracle({"embedders": ["e"], "ks": [8], "results": results})
    assert row["fixed_mean"] == pytest.approx((0.7 + 0.5) / 2)
    assert row["best_single"] == [2.0, 1.0] and row["best_single_mean"] == pytest.approx(0.6)
    assert row["per_task_oracle"] == pytest.approx((0.7 + 0.6) / 2)  # a: (2, 1) or (0, 0); b: (4, 2)
    assert row["per_episode_oracle"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.5) / 4)
