"""The ridge rule beside a side-input head's class means (TartConfig.ridge_rule): least squares on the context
each query sees, as numpy solves it; its share of the answer read out by the Transformer; a warm start from
a head without it answers as that head when the share is 0."""
import math

import numpy as np
import pytest
import torch

from tart.head.model import (
    RIDGE_GATE_GAIN,
    RIDGE_GATE_START,
    RIDGE_PENALTY,
    TartConfig,
    TartReasoningModel,
    ridge_scores,
)
from tart.head.warm_start import warm_start

C, D = 5, 6


def task(seed=0, B=2, k=12, q=5):
    gen = torch.Generator().manual_seed(seed)
    x, xq = torch.randn(B, k, D, generator=gen), torch.randn(B, q, D, generator=gen)
    y = torch.randint(0, 4, (B, k), generator=gen)
    return x, y, xq


def least_squares(x, y, xq, penalty=RIDGE_PENALTY):
    """numpy: one-hot targets, intercept unpenalised, penalty * n * |W|^2."""
    x, xq = np.asarray(x, dtype=np.float64), np.asarray(xq, dtype=np.float64)
    targets = np.eye(C)[np.asarray(y)]
    mx, my = x.mean(0), targets.mean(0)
    w = np.linalg.solve((x - mx).T @ (x - mx) + penalty * len(x) * np.eye(D), (x - mx).T @ (targets - my))
    return (xq - mx) @ w + my


def test_ridge_scores_are_least_squares_on_the_points_each_query_sees():
    x, y, xq = task()
    full = ridge_scores(x, y, xq, torch.full((5,), 12), C)
    lengths = torch.tensor([[0, 1, 2, 7, 12], [12, 3, 3, 9, 5]])
    prefixes = ridge_scores(x, y, xq, lengths, C)
    for b in range(2):
        np.testing.assert_allclose(full[b].numpy(), least_squares(x[b], y[b], xq[b]), atol=1e-5)
        for j, n in enumerate(lengths[b].tolist()):
            expected = least_squares(x[b, :n], y[b, :n], xq[b, j:j + 1])[0] if n >= 2 else np.zeros(C)
            np.testing.assert_allclose(prefixes[b, j].numpy(), expected, atol=1e-5)


def ridge_head(ridge_rule: bool, seed: int = 0) -> TartReasoningModel:
    torch.manual_seed(seed)
    config = TartConfig(n_dims=D, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=C,
                        residual="nearest-mean", side_inputs=True, ridge_rule=ridge_rule)
    return TartReasoningModel(config).eval()


def test_the_gate_shares_the_answer_between_the_class_means_and_the_ridge_rule():
    """Warm-started from a head without the rule: with the share at 0 it answers exactly as that head; at
    share s, (1 - s) of the class means' scores and s of the scaled ridge scores, over the same Transformer."""
    x, y, xq = task()
    lengths = torch.tensor([3, 12, 7, 12, 5])
    old, new = ridge_head(False), ridge_head(True, seed=1)
    warm_start(new, old, "old")

    def answer(gate: float, log_scale: float | None = None) -> torch.Tensor:
        with torch.no_grad():
            new.read_out.weight[-1] = 0.0
            new.read_out.bias[-1] = gate
            if log_scale is not None:
                new.ridge_log_scale.fill_(log_scale)
            return new(x, y, xq, context_lengths=lengths).logits

    with torch.no_grad():
        before = old(x, y, xq, context_lengths=lengths).logits
    present = torch.isfinite(before)
    off, on, middle = answer(-100.0), answer(100.0), answer(0.5)
    torch.testing.assert_close(off[present], before[present])
    share = torch.sigmoid(torch.tensor(RIDGE_GATE_GAIN * 0.5 + RIDGE_GATE_START))
    torch.testing.assert_close(middle[present], ((1 - share) * off + share * on)[present])
    scale = new.ridge_log_scale.exp().item()
    twice = answer(100.0, math.log(2 * scale))
    per_point = scale * lengths[:, None].float() * ridge_scores(x, y, xq, lengths, C)
    torch.testing.assert_close((twice - on)[present], per_point[present])
    few = torch.tensor([0, 1, 2, 12, 1])  # below 2 points least squares has nothing to fit: no share
    with torch.no_grad():
        without = old(x, y, xq, context_lengths=few).logits
        new.read_out.bias[-1] = 100.0
        with_share = new(x, y, xq, context_lengths=few).logits
    alone = torch.isfinite(without[:, [0, 1, 4]])
    torch.testing.assert_close(with_share[:, [0, 1, 4]][alone], without[:, [0, 1, 4]][alone])


def test_a_gates_only_head_answers_as_its_base_whatever_its_transformer():
    """TartConfig.gates_only: the Transformer's own logits are not used; with fixed base weights and no
    ridge rule the head is exactly its base (a name counts max_name_weight / 2, ...)."""
    from tart.head.model import initial_base_scores

    x, y, xq = task()
    names, names_mask = torch.randn(2, C, D), torch.tensor([[True, True, False, False, True]]).expand(2, C)
    unlabeled = torch.randn(2, 7, D)
    torch.manual_seed(0)
    config = TartConfig(n_dims=D, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=C,
                        residual="nearest-mean", side_inputs=True, learn_base_weights=False, gates_only=True)
    model = TartReasoningModel(config).eval()
    with torch.no_grad():
        model.read_out.bias.normal_()  # a Transformer whose own logits are far from zero
        logits = model(x, y, xq, x_names=names, names_mask=names_mask, x_unlabeled=unlabeled).logits
        base = model.residual_scale * initial_base_scores(
            x, y, xq, torch.full((xq.shape[1],), x.shape[1]), C, names, names_mask, unlabeled, None,
            config.refine_steps, model.refine_log_temperature.exp(), config.max_name_weight / 2,
            config.max_unlabeled_weight / 2)
    present = torch.isfinite(logits)
    torch.testing.assert_close(logits[present], base[present])


def test_added_the_rule_leaves_the_base_whole():
    """ridge_mix = "add": the base's scores stay as they are and s x the scaled rule is added."""
    x, y, xq = task()
    lengths = torch.tensor([3, 12, 7, 12, 5])
    torch.manual_seed(0)
    config = TartConfig(n_dims=D, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=C, residual="nearest-mean",
                        side_inputs=True, ridge_rule=True, gates_only=True, ridge_mix="add")
    model = TartReasoningModel(config).eval()
    answers = []
    with torch.no_grad():
        model.read_out.weight[-1] = 0.0
        for gate in (-100.0, 100.0):
            model.read_out.bias[-1] = gate
            answers.append(model(x, y, xq, context_lengths=lengths).logits)
        rule = model.ridge_log_scale.exp() * lengths[:, None].float() * ridge_scores(x, y, xq, lengths, C)
    present = torch.isfinite(answers[0])
    torch.testing.assert_close((answers[1] - answers[0])[present], rule[present])


def test_the_ridge_rule_needs_a_side_input_head_with_blocks():
    with pytest.raises(ValueError, match="ridge_rule"):
        TartConfig(n_classes=5, residual="nearest-mean", ridge_rule=True)
    with pytest.raises(ValueError, match="ridge_rule"):
        TartConfig(n_classes=5, n_layer=0, residual="nearest-mean", side_inputs=True, ridge_rule=True)
    with pytest.raises(ValueError, match="ridge_mix"):
        TartConfig(n_classes=5, residual="nearest-mean", side_inputs=True, ridge_rule=True, ridge_mix="blend")
    with pytest.raises(ValueError, match="gates_only"):
        TartConfig(n_classes=5, residual="nearest-mean", gates_only=True)


def test_a_gates_only_ridge_head_learns_the_share_never_its_bases_settings():
    """Training a gate (stage 23): the base's scale and soft k-means temperature stay tart-base's, the share's
    read-out and the rule's scale move."""
    x, y, xq = task()
    torch.manual_seed(0)
    config = TartConfig(n_dims=D, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=C, residual="nearest-mean",
                        side_inputs=True, ridge_rule=True, gates_only=True, learn_base_weights=False)
    model = TartReasoningModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    labels = torch.nn.functional.one_hot(torch.randint(0, 4, xq.shape[:2]), C).float()
    model(x, y, xq, x_unlabeled=torch.randn(2, 7, D), labels=labels).loss.backward()
    optimizer.step()
    assert model.residual_scale.item() == 1.0 and model.refine_log_temperature.item() == 0.0
    assert model.ridge_log_scale.item() != math.log(0.1) and model.read_out.weight.grad[-1].abs().sum() > 0


def test_the_share_loss_pulls_the_gate_toward_the_rule_that_fit_the_episode():
    """TartConfig.share_loss: the gate's extra loss is the binary cross-entropy against 1 on an episode where
    least squares gave the labels a higher log-likelihood than the base, 0 where it gave them less."""
    from tart.head.model import share_target_loss

    labels = torch.nn.functional.one_hot(torch.tensor([[0, 1], [0, 1]]), 3).float()  # (B=2, q=2, C=3)
    good = torch.tensor([[[5.0, 0, 0], [0, 5.0, 0]]] * 2)  # right on both queries
    bad = torch.tensor([[[0, 5.0, 0], [5.0, 0, 0]]] * 2)
    rule = torch.stack([good[0], bad[0]])  # least squares right on episode 0, wrong on episode 1
    base = torch.stack([bad[0], good[0]])
    fitted, class_mask = torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool)
    gate = torch.tensor([[2.0, 2.0], [-2.0, -2.0]])  # each episode's gate already leans the right way
    right = share_target_loss(gate, base, rule, fitted, labels, class_mask)
    wrong = share_target_loss(-gate, base, rule, fitted, labels, class_mask)
    torch.testing.assert_close(right, torch.nn.functional.softplus(torch.tensor(-2.0)))
    assert wrong > right
    # a query without a fit (fewer than 2 points) neither sets the target nor counts
    fitted[0, 1] = False
    torch.testing.assert_close(share_target_loss(gate, base, rule, fitted, labels, class_mask), right)


def test_the_share_loss_needs_the_ridge_rule():
    with pytest.raises(ValueError, match="share_loss"):
        TartConfig(n_classes=C, residual="nearest-mean", side_inputs=True, share_loss=1.0)
