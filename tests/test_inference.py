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


def test_native_says_how_many_slots_the_head_has(multiclass_head):
    """More classes than label slots: 'native' is refused with the head's number of slots, 'auto' falls
    back to binary problems."""
    from tart.head.ensemble import is_native

    config = multiclass_head.config
    assert is_native(config, 10, "native") and is_native(config, 10, "auto") and not is_native(config, 11, "auto")
    assert not is_native(config, 3, "ovr") and not is_native(config, 3, "ovo")
    with pytest.raises(ValueError, match=r">= 11 label slots; this head has 10$"):
        is_native(config, 11, "native")
    with pytest.raises(ValueError, match="this head has binary labels"):
        is_native(TartConfig(), 2, "native")


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


def test_projection_without_standardising_is_centred_pca_with_a_sign_convention():
    """standardize=False: centred PCA of the raw features (a dominant feature stays dominant), whitened
    the same way; each component's largest loading is positive, so the output does not depend on the SVD's
    arbitrary signs."""
    from sklearn.decomposition import PCA

    from tart.head.projection import apply_projection, fit_projection

    rng = np.random.default_rng(1)
    S = rng.normal(size=(12, 20)) * np.linspace(5, 0.2, 20)
    Q = rng.normal(size=(4, 20))
    p = fit_projection(torch.tensor(S[None], dtype=torch.float64), n_dims=16, shrinkage=0.5, standardize=False)
    torch.testing.assert_close(p.std, torch.ones_like(p.mean))
    pca = PCA(11, svd_solver="full").fit(S)
    v = pca.explained_variance_
    expected = pca.transform(Q) / np.sqrt(v + 0.5 * v.mean())
    Z = apply_projection(p, torch.tensor(Q[None], dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(np.abs(Z[:, :11]), np.abs(expected), atol=1e-6)
    assert Z.shape == (4, 16) and np.all(Z[:, 11:] == 0)
    C = p.components[0].numpy()  # (D, m)
    assert np.all(C[np.abs(C).argmax(0), np.arange(C.shape[1])] > 0)


def test_projection_of_the_smallest_and_of_degenerate_tasks():
    """Two examples are enough (one direction: the two points land opposite, at equal distance); identical
    examples, even without shrinkage, give zeros rather than NaN; fewer than 2 examples or a negative
    shrinkage are refused."""
    from tart.head.projection import apply_projection, fit_projection

    X = torch.tensor([[[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]])
    Z = apply_projection(fit_projection(X, n_dims=4), X)[0]
    assert Z.shape == (2, 4) and torch.all(Z[:, 1:] == 0)
    assert Z[0, 0] != 0 and torch.isclose(Z[0, 0], -Z[1, 0])
    same = torch.ones(1, 4, 3)
    Z = apply_projection(fit_projection(same, n_dims=4, shrinkage=0.0), same)
    assert torch.all(torch.isfinite(Z)) and torch.all(Z == 0)
    with pytest.raises(ValueError, match="at least 2 points"):
        fit_projection(torch.ones(1, 1, 3), n_dims=4)
    with pytest.raises(ValueError, match="shrinkage"):
        fit_projection(X, n_dims=4, shrinkage=-0.1)


def test_member_zero_is_the_task_as_given_and_the_others_only_reorder_and_flip(multiclass_head):
    """Native members: member 0 reads the support in the given order, classes in canonical slots, features
    unflipped, so a one-member ensemble is the head itself on the task; the other members permute the
    points and the slots and flip signs (each feature times -1 or +1, never rescaled)."""
    from tart.head.ensemble import Ensemble, plan

    config = multiclass_head.config
    y = np.array([0, 1, 2] * 4)
    rank = np.array([2, 0, 1])
    seqs = plan(y, 3, config, n_members=4, sign_flips=True, seed=0, rank=rank)
    assert len(seqs) == 4
    np.testing.assert_array_equal(seqs[0].support, np.arange(12))
    np.testing.assert_array_equal(seqs[0].slots, rank)
    assert np.all(seqs[0].signs == 1)
    for s in seqs:
        np.testing.assert_array_equal(np.sort(s.support), np.arange(12))
        np.testing.assert_array_equal(s.labels, s.slots[y[s.support]])  # each point carries its class's slot
        assert len(set(s.slots.tolist())) == 3 and s.slots.max() < config.n_classes
    for s in seqs[1:]:
        assert set(np.unique(s.signs).tolist()) == {-1.0, 1.0}
    assert any(not np.array_equal(s.support, np.arange(12)) for s in seqs[1:])
    assert all(np.all(s.signs == 1) for s in plan(y, 3, config, n_members=4, sign_flips=False, seed=0))

    torch.manual_seed(0)
    S_p, Q_p = torch.randn(12, 32), torch.randn(5, 32)
    one = Ensemble(multiclass_head, S_p, y, 3, n_members=1)
    from tart.head.ensemble import canonical_class_order

    slots = canonical_class_order(S_p, y, 3)
    mask = torch.zeros(1, config.n_classes, dtype=torch.bool)
    mask[0, slots] = True
    with torch.inference_mode():
        logits = multiclass_head(S_p[None], torch.from_numpy(slots[y])[None], Q_p[None], class_mask=mask).logits
    expected = torch.softmax(logits.float(), -1)[0][:, slots].double().numpy()
    np.testing.assert_allclose(one.proba(Q_p), expected, atol=1e-6)


def test_a_side_input_head_reads_names_and_the_pool_with_each_members_flips():
    """Every sequence gets every name in its class's slot and the same unlabelled points, each with that
    member's sign flips, as its support and queries; the pool changes the answers, an empty pool is none."""
    from tart.head.ensemble import Ensemble, Side

    torch.manual_seed(0)
    head = TartReasoningModel(TartConfig(n_classes=10, n_dims=32, max_examples=128, residual="nearest-mean",
                                         side_inputs=True)).eval()
    y = np.array([0, 1, 2] * 3)
    S_p, Q_p, names, U = torch.randn(9, 32), torch.randn(4, 32), torch.randn(3, 32), torch.randn(6, 32)
    calls = []
    hook = head.register_forward_hook(lambda _m, args, kwargs, _out: calls.append((args, kwargs)), with_kwargs=True)
    ens = Ensemble(head, S_p, y, 3, n_members=3, side=Side(names, U))
    with_pool = ens.proba(Q_p)
    (x_ctx, _, x_q), kw = calls[-1]
    hook.remove()
    assert len(x_ctx) == 3
    for i in range(3):
        signs = ens.signs[i]
        torch.testing.assert_close(x_q[i], Q_p * signs)
        torch.testing.assert_close(kw["x_unlabeled"][i], U * signs)
        for c in range(3):
            torch.testing.assert_close(kw["x_names"][i, ens.slot_of_class[i, c]], names[c] * signs)
        assert kw["names_mask"][i].sum() == 3
    assert not np.all(ens.signs.numpy() == 1)  # flips were there to be checked
    without = Ensemble(head, S_p, y, 3, n_members=3, side=Side(names, None)).proba(Q_p)
    empty = Ensemble(head, S_p, y, 3, n_members=3, side=Side(names, torch.zeros(0, 32))).proba(Q_p)
    np.testing.assert_array_equal(empty, without)
    assert np.abs(with_pool - without).max() > 1e-4


def test_head_cost_counts_each_query_batch_and_a_plain_head_reads_names_as_examples():
    """The cost: every sequence, padded to the longest, once per batch of queries, plus the queries. A head
    without side inputs reads each class's name as one more labelled example of that class."""
    from tart.head.ensemble import Ensemble, HeadCost, Side, head_cost, plan

    config = TartConfig()  # binary, 64 examples of context
    seqs = plan(np.array([0, 1] * 50), 2, config, n_members=1)  # 100 examples: chunks of 50, labels swapped
    assert [len(s.support) for s in seqs] == [50, 50, 50, 50]
    assert head_cost(seqs, 33, 32) == HeadCost(4, 50, 4 * (2 * 50 + 33))
    assert head_cost(seqs, 32, 32, side_tokens=3).tokens == 4 * (53 + 32)
    torch.manual_seed(0)
    head = TartReasoningModel(config).eval()
    y = np.array([0, 1, 0, 1, 0, 1])
    S_p, names, Q_p = torch.randn(6, 16), torch.randn(2, 16), torch.randn(3, 16)  # n_dims = 16
    named = Ensemble(head, S_p, y, 2, n_members=2, side=Side(names, None)).proba(Q_p)
    as_examples = Ensemble(head, torch.cat([S_p, names]), np.array([0, 1, 0, 1, 0, 1, 0, 1]), 2, n_members=2)
    np.testing.assert_allclose(named, as_examples.proba(Q_p), atol=1e-6)
