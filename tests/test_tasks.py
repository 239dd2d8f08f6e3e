import pytest
import torch

from tart.tasks.synthetic import Curriculum, make_generator, sample_tasks


def test_shapes_and_padding():
    b = sample_tasks(8, k=10, n_queries=5, d=4, n_dims=16, generator=make_generator(0))
    assert b.x_context.shape == (8, 10, 16) and b.x_query.shape == (8, 5, 16)
    assert b.y_context.shape == (8, 10) and b.p_query.shape == (8, 5)
    assert torch.all(b.x_context[..., 4:] == 0) and torch.all(b.w[:, 4:] == 0)


def test_statistics_match_the_reference_distribution():
    b = sample_tasks(2000, k=50, n_queries=0, d=16, alpha=10.0, generator=make_generator(1))
    assert abs(b.x_context.mean().item()) < 0.01
    assert abs(b.x_context.std().item() - 1.0) < 0.01
    assert abs(b.w.std().item() - 10.0) < 0.1
    assert abs(b.y_context.mean().item() - 0.5) < 0.01  # no intercept: balanced labels
    assert set(b.y_context.unique().tolist()) == {0.0, 1.0}


def test_labels_follow_the_weights():
    b = sample_tasks(500, k=40, n_queries=0, generator=make_generator(2))
    agree = ((torch.einsum("bkd,bd->bk", b.x_context, b.w) > 0).float() == b.y_context).float().mean()
    assert agree > 0.95  # alpha=10 makes tasks nearly noiseless


def test_label_noise_and_intercept():
    noisy = sample_tasks(500, k=40, n_queries=40, label_noise=0.2, generator=make_generator(3))
    assert noisy.p_query.min() >= 0.2 - 1e-6 and noisy.p_query.max() <= 0.8 + 1e-6
    shifted = sample_tasks(500, k=40, n_queries=0, intercept_std=5.0, generator=make_generator(3))
    assert shifted.b.std() > 4.0


def test_alpha_range_is_log_uniform_per_task():
    t = sample_tasks(4000, k=1, n_queries=0, d=16, alpha=10.0, alpha_min=0.5, generator=make_generator(5))
    scale = t.w.norm(dim=1) / 4.0  # |w| ~ alpha * sqrt(d) for d = 16
    log_scale = scale.log()
    assert abs(log_scale.median().item() - torch.tensor(0.5 * 10.0).sqrt().log().item()) < 0.15  # geometric middle
    assert scale.min() < 0.7 and scale.max() > 8.0  # both ends are reached


def test_seeding_is_reproducible():
    a = sample_tasks(4, 8, 8, generator=make_generator(7))
    b = sample_tasks(4, 8, 8, generator=make_generator(7))
    c = sample_tasks(4, 8, 8, generator=make_generator(8))
    assert torch.equal(a.x_context, b.x_context) and torch.equal(a.y_query, b.y_query)
    assert not torch.equal(a.x_context, c.x_context)


@pytest.mark.parametrize("kwargs, message", [
    (dict(d=0), "d must be"), (dict(d=17), "d must be"), (dict(label_noise=0.7), "label_noise"),
    (dict(alpha_min=20.0), "alpha_min"), (dict(alpha_min=0.0), "alpha_min"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_tasks(2, 4, 4, **kwargs)


def test_curriculum():
    c = Curriculum(start=4, end=16, increment=4, interval=100)
    assert [c.at(s) for s in (0, 99, 100, 250, 10_000)] == [4, 4, 8, 12, 16]
    with pytest.raises(ValueError, match="curriculum"):
        Curriculum(start=8, end=4)
