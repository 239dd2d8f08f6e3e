"""A task's temperature read from its own labelled points (tart.head.task_temperature, TartConfig.loo_temperature)."""
import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

from tart.classifier import TartClassifier
from tart.head.load import load_head
from tart.head.model import TartConfig, side_class_moments
from tart.head.task_temperature import SCALES, SHARPEST, SOFTEST, loo_temperature, sharpen


def base_head(power: float):
    head = copy.deepcopy(load_head("tart-base"))  # load_head's heads are shared: change a copy
    head.config.loo_temperature = power
    return head


def blobs(rng, n_per_class: int, gap: float, dims: int = 5):
    y = np.repeat([0, 1], n_per_class)
    x = rng.standard_normal((2 * n_per_class, dims))
    x[:, 0] += gap * (2 * y - 1)
    return torch.from_numpy(x), torch.from_numpy(y)


def test_separate_classes_sharpen_and_random_labels_soften():
    rng = np.random.default_rng(0)
    head = base_head(0.5)
    x, y = blobs(rng, 8, gap=20.0)
    pool, _ = blobs(rng, 10, gap=20.0)
    assert loo_temperature(head, x, y, x_unlabeled=pool) == pytest.approx(SHARPEST ** 0.5)
    x, _ = blobs(rng, 8, gap=0.0)
    pool, _ = blobs(rng, 10, gap=0.0)
    assert loo_temperature(head, x, torch.from_numpy(rng.permutation(np.repeat([0, 1], 8))), x_unlabeled=pool) < 1


def test_the_ratio_is_the_left_out_scale_over_the_applied_one():
    """Each point against the base's class means (the pool's soft assignments included) less itself, by hand."""
    rng = np.random.default_rng(1)
    head = base_head(1.0)
    config = head.config
    x, y = blobs(rng, 6, gap=1.0)
    pool, _ = blobs(rng, 8, gap=1.0)
    x, pool = 0.3 * x, 0.3 * pool  # nearer the scale the head applies: the ratio lands inside the clip
    half = torch.full((1, 1), 0.5, dtype=torch.float64)
    sums, counts, _ = side_class_moments(x[None], y[None], torch.tensor([[len(x)]]), config.n_classes, None, None,
                                         pool[None], torch.ones(1, len(pool), dtype=torch.bool),
                                         config.max_name_weight * half, config.max_unlabeled_weight * half,
                                         config.refine_steps, head.refine_log_temperature.exp().double())
    sums, counts = sums[0, 0, :2].numpy(), counts[0, 0, :2].numpy()
    X, Y = x.numpy(), y.numpy()
    scores = np.zeros((len(X), 2))
    for i in range(len(X)):
        own = np.eye(2)[Y[i]]
        means = (sums - own[:, None] * X[i]) / (counts - own)[:, None]
        scores[i] = -0.5 * ((X[i] - means) ** 2).sum(1)
    scales = SCALES.numpy()
    z = scales[:, None, None] * scores[None]
    log_p = z - np.logaddexp(z[..., 0], z[..., 1])[..., None]
    best = scales[log_p[:, np.arange(len(Y)), Y].mean(1).argmax()]
    expected = np.clip(best / (config.base_scale_per_example / len(X)), SOFTEST, SHARPEST)
    assert SOFTEST < expected < SHARPEST  # the case is not decided by the clip
    assert loo_temperature(head, x, y, x_unlabeled=pool) == pytest.approx(expected, rel=1e-6)


def test_no_pool_or_no_labelled_point_keeps_the_answer():
    head = base_head(0.5)
    x, pool = torch.randn(3, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    assert loo_temperature(head, x[:0], torch.tensor([], dtype=torch.long), x_unlabeled=pool) == 1.0  # zero-shot
    assert loo_temperature(head, x, torch.tensor([0, 1, 1])) == 1.0  # no pool
    assert loo_temperature(base_head(0.0), x, torch.tensor([0, 1, 1]), x_unlabeled=pool) == 1.0  # off


def test_sharpen_keeps_each_answer_order():
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    hot, cool = sharpen(p, 2.0), sharpen(p, 0.5)
    np.testing.assert_allclose(hot.sum(1), 1.0)
    assert (hot.argmax(1) == p.argmax(1)).all() and (cool.argmax(1) == p.argmax(1)).all()
    assert (hot.max(1) > p.max(1)).all() and (cool.max(1) < p.max(1)).all()
    assert sharpen(p, 1.0) is p


def test_the_default_head_changes_confidence_not_answers():
    head = load_head("tart-base")
    assert head.config.loo_temperature > 0
    X, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    support, pool, queries = order[:24], order[24:88], order[88:]
    fits = [TartClassifier(head=h, embedder=None, random_state=0).fit(X[support], y[support], unlabeled=X[pool])
            for h in (head, base_head(0.0))]
    assert TartClassifier(head=head, embedder=None, random_state=0).fit(X[support], y[support]).temperature_ == 1.0
    assert fits[1].temperature_ == 1.0 and fits[0].temperature_ != 1.0
    assert SOFTEST ** 0.5 <= fits[0].temperature_ <= SHARPEST ** 0.5
    with_t, without = (f.predict_proba(X[queries]) for f in fits)
    assert (with_t.argmax(1) == without.argmax(1)).all()
    np.testing.assert_allclose(with_t, sharpen(without, fits[0].temperature_), atol=1e-9)


def test_config_checks_the_power():
    side = dict(n_classes=4, residual="nearest-mean", side_inputs=True)
    with pytest.raises(ValueError, match="loo_temperature must be >= 0"):
        TartConfig(**side, base_scale_per_example=200.0, learn_base_weights=False, loo_temperature=-1.0)
    with pytest.raises(ValueError, match="loo_temperature"):
        TartConfig(**side, base_scale_per_example=200.0, loo_temperature=0.5)  # learned base weights
    TartConfig(**side, base_scale_per_example=200.0, learn_base_weights=False, loo_temperature=0.5)
