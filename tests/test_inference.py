"""The head on one task: native multi-class, its ensemble, and the binary path of a multi-class head.

Uses a multi-class head widened from the shipped binary one (tart.head.warm_start.warm_start), so the
tests do not depend on which trained multi-class head ships."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

from tart.head.load import load_head
from tart.classifier import TartClassifier
from tart.head.ensemble import canonical_class_order, positive_probability
from tart.head.model import TartConfig, TartReasoningModel
from tart.head.warm_start import warm_start


@pytest.fixture(scope="module")
def multiclass_head():
    head = TartReasoningModel(TartConfig(n_dims=32, max_examples=128, n_classes=10)).eval()
    warm_start(head, load_head("tart-compact"), "tart-compact")
    return head


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    return X[idx[:30]], y[idx[:30]], X[idx[30:]], y[idx[30:]]


def test_renaming_classes_permutes_the_columns_exactly(multiclass_head, wine):
    S, y, Q, _ = wine
    P = TartClassifier(head=multiclass_head, embedder=None, n_permutations=4).fit(S, y).predict_proba(Q)
    names = np.array(["c", "a", "b"])  # 0 -> c, 1 -> a, 2 -> b; classes_ becomes [a, b, c]
    renamed = TartClassifier(head=multiclass_head, embedder=None, n_permutations=4).fit(S, names[y])
    P2 = renamed.predict_proba(Q)
    assert renamed.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(P2[:, [2, 0, 1]], P, atol=1e-6)
    assert np.abs(P - P.mean(0)).max() > 0.1  # the answers depend on the query, not a constant


def test_native_path_is_used_and_differs_from_one_vs_rest(multiclass_head, wine):
    S, y, Q, y_test = wine
    native = TartClassifier(head=multiclass_head, embedder=None, multiclass="native").fit(S, y)
    ovr = TartClassifier(head=multiclass_head, embedder=None, multiclass="ovr").fit(S, y)
    p_native, p_ovr = native.predict_proba(Q), ovr.predict_proba(Q)
    assert p_native.shape == p_ovr.shape == (len(Q), 3)
    np.testing.assert_allclose(p_native.sum(1), 1, atol=1e-6)
    assert np.abs(p_native - p_ovr).max() > 1e-3
    for clf in (native, ovr):  # wine is easy: both far above chance (1/3)
        assert (clf.predict(Q) == y_test).mean() > 0.75


def test_native_needs_a_multiclass_head(wine):
    S, y, Q, _ = wine
    with pytest.raises(ValueError, match="multi-class head"):  # at fit, which builds the ensemble
        TartClassifier(head="tart-compact", embedder=None, multiclass="native").fit(S, y).predict_proba(Q)


def test_canonical_order_ignores_label_names():
    S = torch.tensor([[3.0, 0], [3.1, 0], [-1.0, 0], [-1.2, 0], [0.5, 1], [0.4, 1]])
    y = np.array([0, 0, 1, 1, 2, 2])
    assert canonical_class_order(S, y, 3).tolist() == [2, 0, 1]  # centroids 3.05, -1.1, 0.45
    relabelled = np.array([2, 2, 0, 0, 1, 1])
    assert canonical_class_order(S, relabelled, 3).tolist() == [0, 1, 2]


def test_widened_head_starts_as_the_binary_head(multiclass_head):
    """warm_start maps the binary head onto slots 0/1: same answers on binary tasks (x padded)."""
    binary = load_head("tart-compact")
    gen = torch.Generator().manual_seed(0)
    x_ctx, x_q = torch.randn(8, 16, 16, generator=gen), torch.randn(8, 5, 16, generator=gen)
    y_ctx = (x_ctx[..., 0] > 0).float()
    old = positive_probability(binary, x_ctx, y_ctx, x_q)
    pad = lambda x: torch.nn.functional.pad(x, (0, 16))
    # slot 0 carries the old +1 code, so the old label 1 is slot 0: compare with labels swapped
    new = positive_probability(multiclass_head, pad(x_ctx), 1 - y_ctx, pad(x_q))
    torch.testing.assert_close(1 - new, old, atol=1e-5, rtol=0)


def test_projection_matches_standardised_pca_with_shrunk_whitening():
    from sklearn.decomposition import PCA

    from tart.head.ensemble import project_task

    rng = np.random.default_rng(0)
    S = rng.normal(size=(16, 50)) * np.linspace(3, 0.1, 50)
    Q = rng.normal(size=(5, 50))
    _, Q_p = project_task(S, Q, n_dims=32, shrinkage=0.5, standardize=True)
    mean, std = S.mean(0), S.std(0) + 1e-6
    pca = PCA(15, svd_solver="full").fit((S - mean) / std)  # k - 1 = 15 components at most
    v = pca.explained_variance_
    expected = pca.transform((Q - mean) / std) / np.sqrt(v + 0.5 * v.mean())
    np.testing.assert_allclose(np.abs(Q_p[:, :15].numpy()), np.abs(expected), atol=1e-4)  # signs are a convention
    assert torch.all(Q_p[:, 15:] == 0)
