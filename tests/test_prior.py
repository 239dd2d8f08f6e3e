import dataclasses
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from tart.head import projection
from tart.tasks.prior import PriorSettings, sample_prior_batch


def batch(family, k=32, q=64, B=256, n_slots=10, seed=0, **settings):
    s = dataclasses.replace(PriorSettings(), **settings)
    return sample_prior_batch(B, k, q, 32, n_slots, s, torch.Generator().manual_seed(seed), family=family)


def bayes_accuracy(b):
    """Accuracy of the true posterior's argmax on the sampled query labels: the Bayes accuracy."""
    return (b.p_query.argmax(-1) == b.y_query).float().mean().item()


@pytest.mark.parametrize("family", ["gaussian", "linear", "mlp", "tart"])
def test_shapes_slots_and_targets(family):
    b = batch(family, k=20, q=8, B=64)
    assert b.x_context.shape == (64, 20, 32) and b.x_query.shape == (64, 8, 32)
    assert b.p_query.shape == (64, 8, 10) and b.class_mask.shape == (64, 10)
    assert torch.allclose(b.p_query.sum(-1), torch.ones(64, 8), atol=1e-5)
    # targets and labels only on the slots present in the context
    assert torch.all(b.p_query[~b.class_mask[:, None].expand_as(b.p_query)] == 0)
    assert torch.all(b.class_mask.gather(1, b.y_query))
    n = b.class_mask.sum(1)
    assert n.min() >= 2 and n.max() <= (2 if family == "tart" else 10)


def test_gaussian_context_is_class_balanced_and_classes_vary():
    b = batch("gaussian", k=30)
    for y, mask in zip(b.y_context, b.class_mask):
        counts = torch.bincount(y, minlength=10)[mask]
        assert counts.max() - counts.min() <= 1  # a user's support set: k // C per class
    n = b.class_mask.sum(1).float()
    assert 0.4 < (n == 2).float().mean() < 0.6  # p_binary = 0.5
    assert n.max() == 10


def test_gaussian_bayes_accuracy_follows_the_separation():
    # binary, separation 2: Phi(1) = 0.841 with even priors; skewed priors only raise it
    acc = bayes_accuracy(batch("gaussian", p_binary=1.0, separation_min=2.0, separation_max=2.0))
    assert 0.82 < acc < 0.92
    easy = bayes_accuracy(batch("gaussian", p_binary=1.0, separation_min=6.0, separation_max=6.0))
    assert easy > 0.98


def test_linear_label_noise_rate():
    # near-noiseless logits (scale 1000): disagreements with the noiseless labels are the noise.
    # Half the tasks get epsilon ~ U(0, 0.4); a noisy label is uniform, so binary flips at epsilon / 2:
    # expected rate 0.5 * 0.2 * 0.5 = 0.05.
    quiet = batch("linear", p_binary=1.0, scale_min=1000.0, scale_max=1000.0, label_noise_max=0.0)
    noisy = batch("linear", p_binary=1.0, scale_min=1000.0, scale_max=1000.0, label_noise_max=0.4)
    assert 1 - bayes_accuracy(quiet) < 0.01
    assert 0.035 < 1 - bayes_accuracy(noisy) < 0.065


def test_mlp_is_not_linearly_separable_but_learnable():
    from sklearn.linear_model import LogisticRegression

    b = batch("mlp", k=200, q=200, B=16, p_binary=1.0, scale_min=20.0, scale_max=20.0, seed=3)
    assert bayes_accuracy(b) > 0.95
    lin = []
    for t in range(16):
        y = b.y_context[t].numpy()
        lr = LogisticRegression(C=100, max_iter=2000).fit(b.x_context[t].numpy(), y)
        lin.append(lr.score(b.x_query[t].numpy(), b.y_query[t].numpy()))
    assert np.mean(lin) < 0.93  # a linear probe trails the (nonlinear) Bayes rule


def test_tart_family_is_the_reference_distribution():
    b = batch("tart", k=64, q=64, n_slots=2)
    assert torch.all(b.x_context[..., 16:] == 0)  # d = 16, padded, not projected
    assert abs(b.x_context[..., :16].std().item() - 1.0) < 0.02
    assert 0.975 < bayes_accuracy(b) < 0.995  # alpha = 10: Bayes error ~1.5 %


def test_training_projects_through_the_inference_projection(monkeypatch):
    calls = []
    real = projection.fit_projection

    def spy(X, *args, **kwargs):
        calls.append(tuple(X.shape))
        return real(X, *args, **kwargs)

    monkeypatch.setattr(projection, "fit_projection", spy)
    b = batch("linear", k=12, q=4, B=8)
    assert calls == [(8, 12, calls[0][2])]  # fitted on each task's 12 context points only
    # projected like the inference projection: support whitened with shrinkage 0.5 -> std < 1
    per_dim = b.x_context.std(1, unbiased=True)[:, :11]
    assert torch.allclose(per_dim, torch.full_like(per_dim, 1 / math.sqrt(1.5)), atol=0.35)
    assert torch.all(b.x_context[..., 11:] == 0)  # k - 1 = 11 components at most


def test_a_weighted_projection_fit_leaves_rows_out():
    gen = torch.Generator().manual_seed(0)
    X, Q = torch.randn(3, 12, 20, generator=gen, dtype=torch.float64), torch.randn(3, 5, 20, generator=gen, dtype=torch.float64)
    weights = torch.ones(3, 12)
    weights[0, 5:] = 0  # task 0 is fitted on 5 points: 4 components, the rest zero
    weights[1, 9:] = 0
    fitted = projection.fit_projection(X, 16, weights=weights)
    for b, n in enumerate((5, 9, 12)):
        alone = projection.fit_projection(X[b : b + 1, :n], 16)
        torch.testing.assert_close(projection.apply_projection(fitted, Q)[b], projection.apply_projection(alone, Q[b : b + 1])[0])
    assert torch.all(projection.apply_projection(fitted, Q)[0, :, 4:] == 0)
    # below standardize_from fitted points a task is not standardised, as TartClassifier fits it
    fewer = projection.fit_projection(X, 16, weights=weights, standardize_from=8)
    plain = projection.fit_projection(X[:1, :5], 16, standardize=False)
    torch.testing.assert_close(projection.apply_projection(fewer, Q)[0], projection.apply_projection(plain, Q[:1])[0])
    torch.testing.assert_close(projection.apply_projection(fewer, Q)[1:], projection.apply_projection(fitted, Q)[1:])


@pytest.mark.parametrize("names_once", [True, False])
def test_names_once_fits_each_tasks_projection_on_its_context_and_its_names(names_once):
    """The projection centres the points it is fitted on: with names_once, a task's context and its C names
    (once each, as TartClassifier fits a named task) average to zero; repeated to 10 rows, they do not."""
    b = batch("gaussian", k=12, q=4, B=64, p_names=1.0, names_once=names_once)
    offsets = []
    for t in range(64):
        points = torch.cat([b.x_context[t], b.x_names[t][b.names_mask[t]]])
        offsets.append(points.mean(0).abs().max())
    offsets = torch.stack(offsets)
    if names_once:
        assert offsets.max() < 1e-4
    else:
        assert (offsets > 1e-2).any()  # the tasks with fewer than 10 classes


@pytest.mark.parametrize("per_class, most", [(2, 4), (1, 8)])
def test_tasks_have_at_most_k_over_min_points_per_class_classes(per_class, most):
    b = batch("gaussian", k=8, q=4, B=256, min_points_per_class=per_class)
    n = b.class_mask.sum(1)
    assert n.max() == most  # drawn up to it


def test_seeded_and_reproducible():
    a, b = batch("mlp", B=8, seed=7), batch("mlp", B=8, seed=7)
    assert torch.equal(a.x_context, b.x_context) and torch.equal(a.y_query, b.y_query)


@pytest.mark.parametrize("settings, message", [
    ({"weights": {"gaussian": 1.0, "trees": 1.0}}, "unknown prior family"),
    ({"weights": {"gaussian": -1.0}}, "must be >= 0"),
    ({"dim_min": 500, "dim_max": 100}, "dim_min <= dim_max"),
    ({"p_binary": 1.5}, "p_binary"),
])
def test_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PriorSettings(), **settings)  # checked when made


def test_too_few_slots_for_the_classes():
    with pytest.raises(ValueError, match="label slots"):
        batch("gaussian", n_slots=5)


@pytest.mark.parametrize("family", ["gaussian", "linear", "mlp", "tart"])
def test_targets_stay_on_the_context_classes_at_tiny_k(family):
    """With k = 4 a context often misses a class: targets and labels must not use it."""
    b = batch(family, k=4, q=16, B=512)
    assert torch.all(b.p_query[~b.class_mask[:, None].expand_as(b.p_query)] == 0)
    assert torch.all(b.class_mask.gather(1, b.y_query))


def test_relevance_power_puts_the_signal_where_the_projection_keeps_it():
    """Weighting label directions by variance^2 instead of variance^0.5 lets a centroid rule on the
    projected task come closer to the Bayes rule (the k-point PCA drops low-variance directions)."""
    from sklearn.neighbors import NearestCentroid

    def centroid_gap(power):
        b = batch("gaussian", k=64, q=50, B=100, p_binary=1.0, relevance_power=power, seed=3)
        acc = np.mean([(NearestCentroid().fit(b.x_context[t], b.y_context[t]).predict(b.x_query[t])
                        == b.y_query[t].numpy()).mean() for t in range(100)])
        return bayes_accuracy(b) - acc

    assert centroid_gap(2.0) < centroid_gap(0.5) - 0.03


@pytest.fixture(scope="module")
def real_bank(tmp_path_factory):
    """A small real bank: 256 docstring sentences of a few stdlib packages (parsing all of it takes ~8 s)
    embedded by the packaged MiniLM."""
    from tart.tasks import prior
    from tart.training import real_bank

    mp = pytest.MonkeyPatch()
    mp.setenv("TART_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    prior._bank.cache_clear()
    real_bank.build(["minilm-l6"], size=256, packages=["asyncio", "email", "http", "json", "unittest", "xml"])
    yield ("minilm-l6",)
    prior._bank.cache_clear()
    mp.undo()


def test_real_family_labels_real_embeddings(real_bank):
    """Real embeddings, labelled by prototype cosines: shapes and slots as every family, targets on the
    context's classes even at k = 4, and labels a nearest-mean rule on the projected context can learn."""
    b = batch("real", k=64, q=32, B=128, real_embedders=real_bank)
    assert b.family == "real" and b.x_context.shape == (128, 64, 32)
    assert torch.allclose(b.p_query.sum(-1), torch.ones(128, 32), atol=1e-5)
    assert torch.all(b.class_mask.gather(1, b.y_query))
    assert 0.55 < bayes_accuracy(b) < 0.99
    from tart.head.model import class_mean_scores

    scores = class_mean_scores(b.x_context, b.y_context, b.x_query, torch.tensor([64]), 10)
    scores = scores.masked_fill(~b.class_mask[:, None], float("-inf"))
    chance = (1 / b.class_mask.sum(1).float()).mean().item()
    assert (scores.argmax(-1) == b.y_query).float().mean().item() > chance + 0.15
    tiny = batch("real", k=4, q=16, B=256, real_embedders=real_bank)
    assert torch.all(tiny.p_query[~tiny.class_mask[:, None].expand_as(tiny.p_query)] == 0)


def test_real_family_without_a_bank_says_how_to_build_one(tmp_path, monkeypatch):
    from tart.tasks import prior

    monkeypatch.setenv("TART_CACHE_DIR", str(tmp_path))
    prior._bank.cache_clear()
    with pytest.raises(FileNotFoundError, match="python -m tart.training.real_bank"):
        batch("real", real_embedders=("minilm-l6",))
    prior._bank.cache_clear()


def test_shrunk_scales_keep_a_tables_units_and_even_out_alike_features():
    """Alike features (all variance 1, estimated from 12 points) come out with near-equal scales, not their
    noisy estimates; features whose units differ by orders of magnitude keep their own spread."""
    gen = torch.Generator().manual_seed(0)
    alike = torch.randn(1, 12, 200, generator=gen, dtype=torch.float64)
    variance = alike.var(1, unbiased=False, keepdim=True)
    scales = projection.shrunk_scales(variance, torch.full((1, 1, 1), 12.0, dtype=torch.float64))
    assert scales.log().std() < 0.5 * variance.sqrt().log().std()  # pulled together, most of the way
    units = 10.0 ** torch.arange(-3, 4, dtype=torch.float64).repeat(30)  # a table: 7 units, 210 features
    table = torch.randn(1, 12, 210, generator=gen, dtype=torch.float64) * units
    variance = table.var(1, unbiased=False, keepdim=True)
    scales = projection.shrunk_scales(variance, torch.full((1, 1, 1), 12.0, dtype=torch.float64))
    torch.testing.assert_close(scales.log(), variance.sqrt().log(), atol=0.15, rtol=0)
    # through fit_projection: a constant feature stays finite and projects to nothing
    X = torch.cat([alike, torch.ones(1, 12, 1, dtype=torch.float64)], -1)
    fitted = projection.fit_projection(X, 8, shrunk_std=True)
    assert torch.isfinite(projection.apply_projection(fitted, X)).all()


def test_components_past_the_points_rank_scale_nothing_up():
    """Digits' blank pixels: features constant over the support. With as many points as features the
    SVD's components past the points' rank load on them; kept, they whitened a new point's ink there into
    norms of thousands (the unlabelled pool then dragged class means away: 83 % -> 36 % at k = 64)."""
    X, _ = load_digits(return_X_y=True)
    S, new = torch.as_tensor(X[None, :64]), torch.as_tensor(X[None, 64:264])
    blank = (S[0].std(0) == 0)
    assert blank.any() and (new[0][:, blank] != 0).any()  # ink where the support has none
    for shrunk_std in (False, True):
        fitted = projection.fit_projection(S, 64, shrinkage=1.0, shrunk_std=shrunk_std)
        rank = int(torch.linalg.matrix_rank(S[0] - S[0].mean(0)))
        assert int((fitted.scale > 0).sum()) == rank < 63
        ratio = projection.apply_projection(fitted, new).norm(dim=-1).mean() / \
            projection.apply_projection(fitted, S).norm(dim=-1).mean()
        assert ratio < 2, ratio  # measured 1.2 (before: over 1000)
    same = projection.fit_projection(torch.ones(1, 4, 8, dtype=torch.float64), 4)  # no rank at all: zeros, no NaN
    assert (projection.apply_projection(same, torch.randn(1, 3, 8, dtype=torch.float64)) == 0).all()


def test_a_pools_presence_need_not_tell_the_family():
    """p_unlabeled: some batches have no unlabelled points at all; tart_unlabeled: TART's tasks get them too,
    more draws of the task's own inputs (its 16 active coordinates, the rest zero)."""
    gen = torch.Generator().manual_seed(0)
    tart = PriorSettings(weights={"tart": 1.0}, unlabeled_max=32, tart_unlabeled=True)
    pools = [sample_prior_batch(4, 16, 8, 32, 10, tart, gen).x_unlabeled for _ in range(6)]
    assert all(u is None or (u.shape[0] == 4 and u.shape[1] <= 32) for u in pools)
    sized = [u for u in pools if u is not None and u.shape[1] > 0]
    assert sized and all(u[..., 16:].abs().max() == 0 and u[..., :16].abs().max() > 0 for u in sized)
    assert sample_prior_batch(4, 16, 8, 32, 10, PriorSettings(weights={"tart": 1.0}, unlabeled_max=32), gen).x_unlabeled is None
    never = PriorSettings(weights={"gaussian": 1.0}, unlabeled_max=32, p_unlabeled=0.0)
    assert all(sample_prior_batch(4, 16, 8, 32, 10, never, gen).x_unlabeled is None for _ in range(4))
    sometimes = PriorSettings(weights={"gaussian": 1.0}, unlabeled_max=32, p_unlabeled=0.5)
    kinds = {sample_prior_batch(4, 16, 8, 32, 10, sometimes, gen).x_unlabeled is None for _ in range(20)}
    assert kinds == {True, False}
