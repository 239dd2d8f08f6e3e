"""The service's head step: its cost is the classifier's own plan, and equals what the head reads; on a
planted task (vectors whose label is known: well separated clusters; labels whose sorted order differs
from their order of appearance) a wrong label mapping (reversed, by first appearance, off by one) gives
wrong answers, not just odd shapes."""
from __future__ import annotations

import numpy as np
import pytest

from tart.classifier import TartClassifier
from tart.head.load import CHECKPOINTS, DEFAULT_HEAD
from tart.serving.cost import QUERY_BATCH

SHIPPED = CHECKPOINTS / DEFAULT_HEAD  # the default head, binary or multi-class


def service_classifier(head, n_permutations=4, multiclass="auto", projection="support"):
    """As the service builds it (serving.service.Tart._classifier)."""
    return TartClassifier(head=head, embedder=None, n_permutations=n_permutations, multiclass=multiclass,
                          fit_projection_on=projection, random_state=0, query_batch_size=QUERY_BATCH)


def planted(labels, k_per_class=8, q_per_class=6, dim=64, seed=0):
    """Clusters at distinct corners, tight noise: each point's label is beyond doubt."""
    rng = np.random.default_rng(seed)
    centres = {y: 6.0 * rng.normal(size=dim) for y in labels}
    support, support_labels, queries, query_labels = [], [], [], []
    for y in labels:  # examples grouped by label, in the order given (not sorted)
        support += [centres[y] + rng.normal(size=dim) for _ in range(k_per_class)]
        support_labels += [y] * k_per_class
    for i in range(q_per_class):
        for y in labels[::-1]:
            queries.append(centres[y] + rng.normal(size=dim))
            query_labels.append(y)
    return (np.array(support, np.float32), support_labels, np.array(queries, np.float32), query_labels)


@pytest.mark.parametrize("labels,multiclass", [(["zebra", "apple"], "auto"), (["zz", "mm", "aa"], "auto"),
                                               (["zebra", "apple"], "ovr"),
                                               (["b-second", "a-first"], "ovr"),
                                               (["zz", "mm", "aa"], "ovr"),
                                               (["zz", "mm", "aa", "0"], "ovo")])
@pytest.mark.skipif(not (SHIPPED / "config.json").is_file(), reason="no shipped head")
def test_planted_task_every_label_right(labels, multiclass):
    support, support_labels, queries, truth = planted(labels)
    # the service's default of 4 orders (with the stage-1 multi-class head, its first order alone, the
    # examples grouped by label, got one of 3 planted classes wrong: this test is about the label mapping)
    clf = service_classifier(str(SHIPPED), multiclass=multiclass).fit(support, support_labels)
    names = clf.classes_.tolist()
    assert names == sorted(labels)
    proba = clf.predict_proba(queries)
    assert [names[i] for i in proba.argmax(1)] == truth
    for row, y in zip(proba, truth):
        scores = dict(zip(names, row))
        # the true label strictly first and above a uniform guess (a multi-class head's softmax over
        # 3 slots is less peaked than a binary head's one-vs-rest: 0.41 for the stage-1 head)
        assert scores[y] > max(v for c, v in scores.items() if c != y) and scores[y] > 1 / len(labels)
        assert abs(sum(scores.values()) - 1) < 1e-5


# ---- the cost model: its count of head tokens is what the head actually reads ----

def _random_head(**config):
    import torch

    from tart.head.model import TartConfig, TartReasoningModel

    torch.manual_seed(0)
    return TartReasoningModel(TartConfig(**config)).eval()


BINARY_HEAD = {}  # TartConfig's defaults: one logit, 64 examples of context (tart-compact's shape)
MULTICLASS_HEAD = {"n_classes": 10, "n_dims": 32, "max_examples": 128}  # tart-prior's shape


@pytest.mark.parametrize("config,counts,multiclass,perms,n_queries", [
    (BINARY_HEAD, (8, 8), "auto", 4, 5), (BINARY_HEAD, (40, 60), "ovr", 2, 70), (BINARY_HEAD, (3, 5, 9), "auto", 3, 1),
    (BINARY_HEAD, (3, 5, 70, 2), "ovo", 2, 33), (BINARY_HEAD, (100, 100, 100), "ovo", 1, 64),
    (MULTICLASS_HEAD, (8, 8), "auto", 4, 5),           # native, even for two labels
    (MULTICLASS_HEAD, (40, 60, 30), "auto", 3, 70),    # native, 130 examples: two chunks per order
    (MULTICLASS_HEAD, (3,) * 10, "auto", 2, 33),       # as many labels as slots: native
    (MULTICLASS_HEAD, (3,) * 11, "auto", 2, 33),       # one more than the slots: one-vs-rest
    (MULTICLASS_HEAD, (40, 60, 30), "ovr", 2, 40), (MULTICLASS_HEAD, (3, 5, 70, 2), "ovo", 2, 33),
    (MULTICLASS_HEAD, (8, 8), "ovo", 4, 5)])
def test_head_cost_is_what_the_head_reads(config, counts, multiclass, perms, n_queries):
    """The cost the service checks is the classifier's plan, from the labels alone, before any vector
    exists. Every forward of the head through fit and predict_proba is recorded: sequences x (context +
    queries) summed over the calls must equal the plan's tokens, and its sequences and context those
    of the calls."""
    head = _random_head(**config)
    labels = [f"c{i}" for i, n in enumerate(counts) for _ in range(n)]
    clf = service_classifier(head, n_permutations=perms, multiclass=multiclass)
    cost = clf.plan(n_queries, labels)  # what the service reads, before embedding anything
    calls = []
    hook = head.register_forward_hook(lambda _m, args, _out: calls.append((args[0].shape, args[2].shape)))
    rng = np.random.default_rng(0)
    # as the service fits: the label names embedded with the texts
    clf.fit(rng.normal(size=(len(labels), 48)).astype(np.float32), labels,
            name_vectors=rng.normal(size=(len(counts), 48)).astype(np.float32))
    clf.predict_proba(rng.normal(size=(n_queries, 48)).astype(np.float32))
    hook.remove()
    assert clf.plan(n_queries) == cost  # the fitted task states the same cost
    assert len(calls) == -(-n_queries // QUERY_BATCH)
    assert {ctx[0] for ctx, _ in calls} == {cost.sequences}
    assert {ctx[1] for ctx, _ in calls} == {cost.context}
    assert sum(ctx[0] * (ctx[1] + q[1]) for ctx, q in calls) == cost.tokens


def test_a_native_head_costs_no_binary_problems():
    """The same request on the two kinds of head: 3 labels natively are one problem, no swapped copy."""
    labels = ["a"] * 20 + ["b"] * 20 + ["c"] * 20
    binary = service_classifier(_random_head(**BINARY_HEAD)).plan(10, labels)
    native = service_classifier(_random_head(**MULTICLASS_HEAD)).plan(10, labels)
    assert (binary.sequences, native.sequences) == (3 * 4 * 2, 4)
    assert (binary.tokens, native.tokens) == (24 * (63 + 10), 4 * (63 + 10))  # 60 examples and 3 names


def test_over_budget_names_the_limit():
    from tart.serving.cost import HeadCost, over_budget

    assert over_budget(100, HeadCost(4, 16, 200), 100, 200) is None
    assert "max_embed_tokens=100" in over_budget(101, None, 100, 200)
    message = over_budget(10, HeadCost(4, 16, 201), 100, 200)
    assert "max_head_tokens=200" in message and "201 head tokens" in message
    assert "multiclass" not in message  # 'auto' already: no advice to use it
    assert "use multiclass 'auto' or 'ovr'" in over_budget(10, HeadCost(4, 16, 201), 100, 200, multiclass="ovo")


def test_the_embedders_tokenizer_counts_without_loading_the_model():
    from tart.lm.embedder import Embedder

    embedder = Embedder("minilm-l6", max_length=8)
    counts = [len(ids) for ids in embedder.tokenize(["a cat", "word " * 20, ""])]
    assert counts == [2, 20, 0]
    assert embedder.tokens_read(counts) == (2 + 2) + (8 + 2) + (1 + 2)  # [CLS] ... [SEP]; a filler for ""
    assert embedder.loaded == {}  # the API process never loads a model


def test_the_time_bound_uses_the_speeds_measured_at_start():
    from tart.serving.cost import HeadCost, Speeds, over_budget

    speeds = Speeds(embedder=1000.0, head=10_000.0)
    assert speeds.seconds(500, 20_000) == 2.5
    assert over_budget(500, HeadCost(4, 16, 20_000), 1536, 24_576, speeds=speeds, max_request_s=3) is None
    message = over_budget(500, HeadCost(4, 16, 20_000), 1536, 24_576, speeds=speeds, max_request_s=2)
    assert "about 2.5 s" in message and "max_request_s=2" in message and "1000/s" in message
    assert over_budget(500, HeadCost(4, 16, 20_000), 1536, 24_576, speeds=speeds, max_request_s=0) is None  # off


def test_speeds_are_measured_on_the_real_embedder_and_head(monkeypatch):
    from tart.head.load import load_head
    from tart.lm.embedder import Embedder
    from tart.serving import cost

    # spies only: the real embedder and head run, timed by the real clock; each speed must be the tokens
    # they really read divided by the time it took
    timed = []
    fastest = cost._fastest
    monkeypatch.setattr(cost, "_fastest", lambda run, repeats=2: timed.append(fastest(run, repeats)) or timed[-1])
    embedder = Embedder("minilm-l6", progress=False)
    batches = []
    embed_ids = embedder.embed_ids
    monkeypatch.setattr(embedder, "embed_ids", lambda ids: batches.append(ids) or embed_ids(ids))

    speed = cost.embedder_speed(embedder)
    # two batches of 24 texts of 62 ids each, new ids each run (the cache cannot answer), no special tokens
    assert len(batches) == 2 and batches[0] != batches[1]
    assert all(len(b) == 24 and all(len(t) == 62 for t in b) for b in batches)
    assert not set(embedder.tokenizer.all_special_ids) & {i for b in batches for t in b for i in t}
    # what MiniLM reads: each text's 62 ids plus [CLS] and [SEP]
    assert embedder.n_special_tokens == 2 and speed == pytest.approx(24 * 64 / timed[0], rel=1e-12)

    clf = TartClassifier(head=load_head(), embedder=None, n_permutations=2)
    speed = cost.head_speed(clf)
    planned = clf.plan(32)  # head_speed fitted clf on 64 examples of 4 labels; it reads 32 queries
    tokens = planned.tokens
    # at least the 64 examples in each sequence (an order; one for a head with no blocks), and the queries
    assert tokens >= 64 * planned.sequences + 32 and speed == pytest.approx(tokens / timed[1], rel=1e-12)
    assert 0 < timed[0] < float("inf") and 0 < timed[1] < float("inf")


@pytest.mark.parametrize("n_unlabeled,transductive,n_queries", [(0, False, 5), (20, False, 40), (100, False, 3),
                                                                (10, True, 5), (0, True, 70)])
def test_side_tokens_are_counted_as_the_head_reads_them(n_unlabeled, transductive, n_queries):
    """A side-input head reads the names and the unlabelled sample in tokens of their own: the plan, made
    before any vector exists, counts them exactly (transductive: the call's texts join the pool)."""
    head = _random_head(**MULTICLASS_HEAD, residual="nearest-mean", side_inputs=True)
    labels = [f"c{i}" for i, n in enumerate((5, 7, 4)) for _ in range(n)]
    clf = TartClassifier(head=head, embedder=None, random_state=0, query_batch_size=QUERY_BATCH,
                         transductive=transductive)
    cost = clf.plan(n_queries, labels, n_unlabeled=n_unlabeled)
    calls = []
    hook = head.register_forward_hook(lambda _m, args, kwargs, _out: calls.append(
        (args[0].shape, args[2].shape, kwargs.get("x_names"), kwargs.get("x_unlabeled"))), with_kwargs=True)
    rng = np.random.default_rng(0)
    unlabeled = rng.normal(size=(n_unlabeled, 48)).astype(np.float32) if n_unlabeled else None
    clf.fit(rng.normal(size=(len(labels), 48)).astype(np.float32), labels, unlabeled=unlabeled,
            name_vectors=rng.normal(size=(3, 48)).astype(np.float32))
    clf.predict_proba(rng.normal(size=(n_queries, 48)).astype(np.float32))
    hook.remove()
    side = [(0 if n is None else n.shape[1]) + (0 if u is None else u.shape[1]) for *_, n, u in calls]
    assert {ctx[0] for ctx, *_ in calls} == {cost.sequences}
    assert {ctx[1] + s for (ctx, *_), s in zip(calls, side)} == {cost.context}
    assert sum(ctx[0] * (ctx[1] + s + q[1]) for (ctx, q, *_), s in zip(calls, side)) == cost.tokens


def test_fastest_is_the_shortest_of_its_timed_runs(monkeypatch):
    from tart.serving import cost

    clock = iter([10.0, 10.5, 20.0, 20.125, 30.0, 30.25])  # runs of 0.5 s, 0.125 s and 0.25 s
    monkeypatch.setattr(cost.time, "perf_counter", lambda: next(clock))
    seen = []
    assert cost._fastest(seen.append, repeats=3) == 0.125 and seen == [0, 1, 2]
    clock = iter([0.0, 2.0, 5.0, 5.5])
    assert cost._fastest(seen.append) == 0.5 and seen[3:] == [0, 1]  # 2 runs by default: the first pays setup


class _TinyEmbedder:
    """An embedder with a 40-token vocabulary (ids 0-3 special), 2 special tokens per text."""
    tokenizer = list(range(40))

    def __init__(self):
        self.batches = []

    def embed_ids(self, ids):
        self.batches.append(ids)

    def tokens_read(self, counts):
        return sum(c + 2 for c in counts)


def test_embedder_speed_reads_valid_new_ids_of_the_stated_shape(monkeypatch):
    """With a vocabulary smaller than the default id range, the ids stay inside it, above the special ids;
    each run gets new ids; the speed is what the embedder read over the fastest run."""
    from tart.serving import cost

    monkeypatch.setattr(cost, "_fastest", lambda run, repeats=2: [run(i) for i in range(repeats)] and 0.5)
    embedder = _TinyEmbedder()
    assert cost.embedder_speed(embedder, n_texts=3, n_tokens=5) == 3 * (5 + 2) / 0.5
    assert len(embedder.batches) == 2 and embedder.batches[0] != embedder.batches[1]
    for batch in embedder.batches:
        assert len(batch) == 3 and all(len(ids) == 5 for ids in batch)
        assert all(20 <= i < 40 and isinstance(i, int) for ids in batch for i in ids)
    embedder = _TinyEmbedder()
    assert cost.embedder_speed(embedder) == 24 * 64 / 0.5  # the default shape: 24 texts of 62 ids
    assert [len(b) for b in embedder.batches] == [24, 24] and {len(t) for t in embedder.batches[0]} == {62}


def test_head_speed_fits_the_stated_task_and_times_its_queries(monkeypatch):
    from tart.serving import cost

    class Classifier:
        def fit(self, X, y):
            self.X, self.y = X, y
            return self

        def plan(self, n):
            return type("Cost", (), {"tokens": 1000 * n})()

        def predict_proba(self, Q):
            self.Q = Q

    monkeypatch.setattr(cost, "_fastest", lambda run, repeats=2: run(0) or 0.25)
    clf = Classifier()
    fitted = []
    clf.fit = (lambda fit: lambda X, y: fitted.append((X, y)) or fit(X, y))(clf.fit)
    assert cost.head_speed(clf, dim=8, k=12, n_labels=3, n_queries=5) == 1000 * 5 / 0.25
    (X, y), = fitted
    assert X.shape == (12, 8) and X.dtype == np.float32 and clf.Q.shape == (5, 8) and clf.Q.dtype == np.float32
    assert sorted(set(y)) == ["label 0", "label 1", "label 2"] and [y.count(v) for v in sorted(set(y))] == [4, 4, 4]
    assert cost.head_speed(clf) == 1000 * 32 / 0.25 and clf.X.shape == (64, 384) and len(set(clf.y)) == 4


def test_refusal_at_each_limit_exactly():
    """Each limit is inclusive (a request at the limit passes, one token or one second more is refused),
    each refusal says what and how much, and the time bound counts the embedder alone when there is no head."""
    from tart.serving.cost import QUERY_BATCH, HeadCost, Speeds, refusal

    assert refusal(100, HeadCost(4, 16, 200), 100, 200) is None
    what, advice = refusal(101, HeadCost(4, 16, 200), 100, 200)
    assert "read 101 tokens" in what and "max_embed_tokens=100" in what and advice == "send fewer or shorter texts"
    what, advice = refusal(100, HeadCost(4, 16, 201), 100, 200)
    assert f"201 head tokens (4 sequences of up to 16 examples, over the texts in batches of {QUERY_BATCH})" in what
    assert "n_permutations" in advice and "multiclass" not in advice
    speeds = Speeds(embedder=100.0, head=1000.0)
    assert speeds.seconds(100, 1000) == 2.0
    assert refusal(100, HeadCost(1, 1, 1000), 10**6, 10**6, speeds=speeds, max_request_s=2) is None  # exactly 2 s
    what, advice = refusal(100, HeadCost(1, 1, 1001), 10**6, 10**6, speeds=speeds, max_request_s=2)
    assert "about 2.0 s" in what and "1001 head tokens at 1000/s" in what and "100 embedder tokens at 100/s" in what
    assert refusal(200, None, 10**6, 10**6, speeds=speeds, max_request_s=2) is None  # 2 s of embedding, no head
    what, _ = refusal(201, None, 10**6, 10**6, speeds=speeds, max_request_s=2)
    assert "0 head tokens" in what
    assert refusal(10**5, None, 10**6, 10**6, max_request_s=2) is None  # no speeds measured: no time bound
    from tart.serving.cost import over_budget

    assert over_budget(10**5, None, 10**6, 10**6, speeds=speeds) is None  # no max_request_s: no time bound
    assert refusal(60, None, 10**6, 10**6, speeds=speeds, max_request_s=0.5) is not None  # a bound under 1 s holds
