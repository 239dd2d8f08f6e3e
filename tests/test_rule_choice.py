"""The fixed choice between class means and least squares by leave-one-out (TartConfig.ridge_gate = "loo",
tart.head.rule_choice): its left-out predictions are the rules refitted without each point; it takes least
squares on a noise-free linear task and the class means on clustered classes; a head with it answers as its
base below the minimum of points and as scaled least squares where chosen."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tart.evaluate.synthetic import sample_eval_tasks
from tart.head.model import RIDGE_PENALTY, TartConfig, TartReasoningModel, ridge_scores, side_class_moments
from tart.head.rule_choice import choose_least_squares, left_out_class_means, left_out_least_squares

C = 3


def moments(x, y, names=None, name_weight=0.0):
    B, k, _ = x.shape
    weights = torch.full((B, 1), name_weight)
    names_mask = None if names is None else torch.ones(B, C, dtype=torch.bool)
    sums, counts, present = side_class_moments(x, y, torch.tensor([k]), C, names, names_mask, None, None, weights,
                                               torch.zeros(B, 1), steps=0)
    return sums[:, 0], counts[:, 0], present[:, 0]


def test_left_out_predictions_are_the_rules_refitted_without_each_point():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 10, 4, generator=gen).double(), torch.randint(0, C, (2, 10), generator=gen)
    y[:, :C] = torch.arange(C)  # every class labelled
    names = torch.randn(2, C, 4, generator=gen)
    sums, counts, present = moments(x.float(), y, names, name_weight=2.0)
    means_loo = left_out_class_means(x, y, sums.double(), counts.double(), present)
    ridge_loo = left_out_least_squares(x, y, C, RIDGE_PENALTY)
    for b in range(2):
        for i in range(10):
            keep = torch.arange(10) != i
            xs, ys = x[b, keep], y[b, keep]
            onehot = F.one_hot(ys, C).double()
            class_means = (onehot.T @ xs + 2.0 * names[b].double()) / (onehot.sum(0) + 2.0)[:, None]
            expected = -0.5 * ((x[b, i] - class_means) ** 2).sum(-1)
            torch.testing.assert_close(means_loo[b, i], expected)
            # the refit on 9 points with the same total penalty, RIDGE_PENALTY * 10 (ridge_scores: penalty per point)
            refit = ridge_scores(xs[None].float(), ys[None], x[b, i][None, None].float(), torch.tensor([9]), C,
                                 penalty=RIDGE_PENALTY * 10 / 9)[0, 0]
            np.testing.assert_allclose(ridge_loo[b, i].numpy(), refit.numpy(), atol=1e-4)


def test_least_squares_is_chosen_on_linear_tasks_and_class_means_on_clusters():
    tasks = sample_eval_tasks(64, 64, 1, 16, 16, 10.0, seed=5)  # TART's noise-free linear tasks
    x, y = tasks.x_context, tasks.y_context.long()
    use, _ = choose_least_squares(x, y, *moments(x, y), n_classes=C, penalty=RIDGE_PENALTY)
    assert use.float().mean() > 0.7
    named = torch.arange(64) < 32  # named classes need more evidence: none passes 100 SEs
    use_named, _ = choose_least_squares(x, y, *moments(x, y), n_classes=C, penalty=RIDGE_PENALTY, named=named,
                                        z_named=100.0)
    assert not use_named[:32].any() and torch.equal(use_named[32:], use[32:])
    gen = torch.Generator().manual_seed(1)  # three round clusters, far apart along a few directions
    y = torch.arange(64).remainder(C).expand(64, -1)
    centres = 1.5 * torch.randn(64, C, 16, generator=gen)
    x = centres.gather(1, y[..., None].expand(-1, -1, 16)) + torch.randn(64, 64, 16, generator=gen)
    use, _ = choose_least_squares(x, y, *moments(x, y), n_classes=C, penalty=RIDGE_PENALTY)
    assert use.float().mean() < 0.2


def loo_head():
    config = TartConfig(n_dims=16, n_layer=0, max_examples=64, n_classes=C, residual="nearest-mean",
                        side_inputs=True, learn_base_weights=False, ridge_gate="loo")
    model = TartReasoningModel(config).eval()
    with torch.no_grad():
        model.read_out.weight.zero_()
        model.read_out.bias.zero_()
    return model


def test_a_loo_head_answers_as_least_squares_where_chosen_else_as_its_base():
    tasks = sample_eval_tasks(16, 64, 20, 16, 16, 10.0, seed=3)
    x, y, xq = tasks.x_context, tasks.y_context.long(), tasks.x_query
    model, plain = loo_head(), TartReasoningModel(TartConfig(**{**loo_head().config.to_dict(), "ridge_gate": "none"}))
    plain.load_state_dict(model.state_dict())
    plain.eval()
    use, scale = choose_least_squares(x, y, *moments(x, y), n_classes=C, penalty=RIDGE_PENALTY)
    assert use.any() and not use.all()
    with torch.no_grad():
        gated, base = model(x, y, xq).logits, plain(x, y, xq).logits
        ridge = scale[:, None, None].float() * ridge_scores(x, y, xq, torch.tensor([64]), C)
        present = torch.isfinite(base)
        torch.testing.assert_close(gated[~use][present[~use]], base[~use][present[~use]])
        torch.testing.assert_close(gated[use][present[use]], ridge[use][present[use]], rtol=1e-4, atol=1e-4)
        # fewer than 16 labelled points: the base alone
        torch.testing.assert_close(model(x[:, :12], y[:, :12], xq).logits, plain(x[:, :12], y[:, :12], xq).logits)
    with pytest.raises(ValueError, match="same context"):
        model(x, y, xq, context_lengths=torch.arange(1, 21))


def test_the_loo_gate_is_not_for_heads_with_the_learned_share():
    with pytest.raises(ValueError, match="ridge_gate"):
        TartConfig(n_classes=C, residual="nearest-mean", side_inputs=True, ridge_rule=True, ridge_gate="loo")
    with pytest.raises(ValueError, match="ridge_gate"):
        TartConfig(n_classes=C, residual="nearest-mean", side_inputs=True, ridge_gate="sometimes")
