"""Label spreading over a task's own vectors (tart.head.propagation, TartConfig.propagation)."""
import numpy as np
import pytest

from tart.classifier import TartClassifier
from tart.head.load import load_head
from tart.head.model import TartConfig
from tart.head.propagation import blend, fit_spreading


def moons(n: int, rng, dims: int = 6):
    """Two interleaved half-circles (offset from the origin, as embeddings are), padded with small noise."""
    t = rng.uniform(0, np.pi, n)
    y = rng.integers(0, 2, n)
    x = np.where(y[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    noise = 0.02 * rng.standard_normal((n, dims - 2))
    return np.c_[x + [3.0, 3.0], noise + 3.0], y


def test_labels_spread_along_each_moon_where_class_means_fail():
    rng = np.random.default_rng(0)
    X, y = moons(400, rng)
    # one labelled point at the outer end of each moon: the nearest mean splits the moons across the middle
    S = np.stack([X[y == 0][np.argmin(X[y == 0, 0])], X[y == 1][np.argmax(X[y == 1, 0])]])
    spreading = fit_spreading(S, np.array([0, 1]), 2, None, 1.0, X[:300], alpha=0.99, neighbours=10)
    Q, y_q = X[300:], y[300:]
    log_p = spreading.log_proba(Q)
    np.testing.assert_allclose(np.exp(log_p).sum(1), 1.0, atol=1e-4)
    spread_acc = (log_p.argmax(1) == y_q).mean()
    nearest = np.linalg.norm(Q[:, None] - S[None], axis=-1).argmin(1)
    assert spread_acc >= 0.95 and spread_acc > (nearest == y_q).mean() + 0.1


def dense_spreading(X, Y, Q, alpha, neighbours, width=0.1):
    """The textbook computation, dense: kNN graph, (I - alpha S)^-1 Y, each query from its nearest nodes."""
    def unit(A):
        return A / np.linalg.norm(A, axis=1, keepdims=True)

    def knn(sim, n):
        W = np.zeros_like(sim)
        nearest = np.argsort(-sim, 1)[:, :n]
        rows = np.arange(len(sim))[:, None]
        W[rows, nearest] = np.exp((sim[rows, nearest] - 1) / width)
        return W

    Z, Zq = unit(X), unit(Q)
    sim = Z @ Z.T
    np.fill_diagonal(sim, -np.inf)
    W = knn(sim, neighbours)
    W = np.maximum(W, W.T)
    d = 1 / np.sqrt(W.sum(1))
    F = np.linalg.solve(np.eye(len(Z)) - alpha * d[:, None] * W * d[None], Y)
    F /= F.sum(1, keepdims=True)
    p = knn(Zq @ Z.T, neighbours) @ F
    return np.log(p / p.sum(1, keepdims=True))


def test_the_sparse_series_is_the_dense_solve():
    rng = np.random.default_rng(3)
    X, y = moons(260, rng)
    X = X - X.mean(0)  # features of alike spread: the shrunk scales are then near one, as in dense_spreading
    X /= X.std(0)
    S, U, Q = X[:20], X[20:200], X[200:]
    for alpha in (0.5, 0.9):
        got = fit_spreading(S, y[:20], 2, None, 1.0, U, alpha=alpha, neighbours=7)
        Y = np.zeros((200, 2))
        Y[np.arange(20), y[:20]] = 1
        scaled = lambda A: A / got.scales  # noqa: E731 (the same feature scaling, then the textbook graph)
        expected = dense_spreading(scaled(X[:200]), Y, scaled(Q), alpha, 7)
        np.testing.assert_allclose(got.log_proba(Q), np.maximum(expected, np.log(1e-6)), atol=1e-6)


def test_a_large_pool_is_spread_in_sparse_form():
    rng = np.random.default_rng(4)
    X, y = moons(3200, rng, dims=32)
    spreading = fit_spreading(X[:10], y[:10], 2, None, 1.0, X[10:3000], alpha=0.9, neighbours=10)
    assert spreading.spread.shape == (3000, 2)
    assert (spreading.log_proba(X[3000:]).argmax(1) == y[3000:]).mean() > 0.9


def test_a_constant_feature_is_left_out_of_the_cosine():
    rng = np.random.default_rng(2)
    X, y = moons(300, rng)
    with_bias = np.c_[X, np.full(len(X), 7.0)]  # as a table's bias column: the same in every row
    S_index = [int(np.flatnonzero(y == 0)[0]), int(np.flatnonzero(y == 1)[0])]
    args = (np.array([0, 1]), 2, None, 1.0)
    plain = fit_spreading(X[S_index], *args, X[:200], alpha=0.9, neighbours=10).log_proba(X[200:])
    biased = fit_spreading(with_bias[S_index], *args, with_bias[:200], alpha=0.9, neighbours=10).log_proba(with_bias[200:])
    np.testing.assert_allclose(biased, plain, atol=1e-9)


def test_names_are_labelled_nodes_and_a_query_stands_alone():
    rng = np.random.default_rng(1)
    centres = 5 * rng.standard_normal((3, 8))
    U = np.concatenate([c + rng.standard_normal((20, 8)) for c in centres])
    spreading = fit_spreading(np.zeros((0, 8)), np.zeros(0, dtype=int), 3, centres, 2.0, U, alpha=0.5, neighbours=10)
    Q = np.concatenate([c + rng.standard_normal((5, 8)) for c in centres])
    log_p = spreading.log_proba(Q)
    assert (log_p.argmax(1) == np.repeat(np.arange(3), 5)).all()  # zero-shot: the names alone label the pool
    one_by_one = np.concatenate([spreading.log_proba(q[None]) for q in Q])
    np.testing.assert_allclose(one_by_one, log_p)


def test_blend_goes_from_the_head_to_the_spreading():
    proba = np.array([[0.7, 0.3], [0.2, 0.8]])
    spread = np.log(np.array([[0.1, 0.9], [0.5, 0.5]]))
    np.testing.assert_allclose(blend(proba, spread, 0.0), proba)
    np.testing.assert_allclose(blend(proba, spread, 1.0), np.exp(spread))
    half = blend(proba, spread, 0.5)
    np.testing.assert_allclose(half.sum(1), 1.0)
    assert half[0, 1] > proba[0, 1] and half[1, 1] < proba[1, 1]


def test_config_checks_the_share():
    with pytest.raises(ValueError, match="propagation must be in"):
        TartConfig(n_classes=4, residual="nearest-mean", side_inputs=True, propagation=1.5)
    with pytest.raises(ValueError, match="only for a side-input head"):
        TartConfig(propagation=0.2)
    with pytest.raises(ValueError, match="propagation_alpha"):
        TartConfig(n_classes=4, residual="nearest-mean", side_inputs=True, propagation=0.2, propagation_alpha=1.0)
    with pytest.raises(ValueError, match="propagation_neighbours"):
        TartConfig(n_classes=4, residual="nearest-mean", side_inputs=True, propagation=0.2, propagation_neighbours=0)


def test_the_default_head_spreads_only_over_a_pool_and_answers_each_text_alone():
    from sklearn.datasets import load_wine

    head = load_head("tart-base")
    assert head.config.propagation > 0
    X, y = load_wine(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    support, pool, queries = order[:24], order[24:88], order[88:]
    without = TartClassifier(head=head, embedder=None, random_state=0).fit(X[support], y[support])
    assert without.spreading_ is None
    clf = TartClassifier(head=head, embedder=None, random_state=0).fit(X[support], y[support], unlabeled=X[pool])
    assert clf.spreading_ is not None
    proba = clf.predict_proba(X[queries])
    alone = np.concatenate([clf.predict_proba(X[[i]]) for i in queries[:10]])
    np.testing.assert_allclose(alone, proba[:10], atol=1e-6)
    assert not np.allclose(proba, without.predict_proba(X[queries]))
    assert (clf.predict(X[queries]) == y[queries]).mean() > 0.85
