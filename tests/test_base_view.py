"""A side-input head that reads its base's view (TartConfig.base_inputs): the prequential flags on the
context, the base's probabilities on the queries, and the head's answers still honest (causal, queries
alone), and a warm start from a head without them answering exactly as it did."""
import pytest
import torch

from tart.head.model import (
    TartConfig,
    TartReasoningModel,
    base_probabilities,
    prequential_flags,
    side_mean_scores,
)
from tart.head.warm_start import warm_start

C, D = 5, 6


def side_head(base_inputs: bool, seed: int = 0) -> TartReasoningModel:
    torch.manual_seed(seed)
    config = TartConfig(n_dims=D, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=C,
                        residual="nearest-mean", side_inputs=True, base_inputs=base_inputs)
    return TartReasoningModel(config).eval()


def task(seed=0, B=2, k=12, q=5):
    gen = torch.Generator().manual_seed(seed)
    x, xq = torch.randn(B, k, D, generator=gen), torch.randn(B, q, D, generator=gen)
    y = torch.randint(0, 4, (B, k), generator=gen)
    names = torch.randn(B, C, D, generator=gen)
    names_mask = torch.tensor([[True, True, False, False, False]]).expand(B, C)
    unlabeled = torch.randn(B, 7, D, generator=gen)
    return x, y, xq, names, names_mask, unlabeled


def test_prequential_flags_are_the_nearest_mean_of_the_earlier_points():
    x, y, _, names, names_mask, _ = task()
    flags = prequential_flags(x, y, C, names, names_mask)
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            means = {}
            for c in range(C):
                members = [x[b, j] for j in range(i) if y[b, j] == c] + ([names[b, c]] if names_mask[b, c] else [])
                if members:
                    means[c] = torch.stack(members).mean(0)
            if int(y[b, i]) not in means:
                assert flags[b, i] == 0
                continue
            guess = min(means, key=lambda c: float((x[b, i] - means[c]).square().sum()))
            assert flags[b, i] == (1 if guess == y[b, i] else -1)


def test_base_probabilities_cover_the_classes_a_query_sees():
    x, y, xq, names, names_mask, unlabeled = task()
    lengths = torch.tensor([1, 3, 12, 12, 12])
    B, q = xq.shape[:2]
    scores = side_mean_scores(x, y, xq, lengths, C, names, names_mask, unlabeled, torch.ones(B, 7, dtype=torch.bool),
                              torch.ones(B, q), torch.full((B, q), 0.5), steps=2)
    p = base_probabilities(scores, y, lengths, C, names_mask)
    torch.testing.assert_close(p.sum(-1), torch.ones(B, q))
    seen = torch.zeros(B, q, C, dtype=torch.bool)
    for j, n in enumerate(lengths.tolist()):
        seen[:, j] = torch.nn.functional.one_hot(y[:, :n], C).sum(1) > 0
    seen |= names_mask[:, None, :]
    assert (p[~seen] == 0).all() and (p[seen] > 0).all()
    assert torch.equal(p.argmax(-1), scores.masked_fill(~seen, float("-inf")).argmax(-1))


def test_a_head_with_the_base_view_stays_causal_and_answers_each_query_alone():
    model = side_head(base_inputs=True)
    torch.nn.init.normal_(model.read_in.weight[:, -(C + 1):], std=1.0)  # make the new inputs matter
    x, y, xq, names, names_mask, unlabeled = task()
    classes = torch.tensor([[True] * 4 + [False]]).expand(2, C)  # fixed, as later labels change below
    side = {"x_names": names, "names_mask": names_mask, "x_unlabeled": unlabeled, "class_mask": classes}
    lengths = torch.tensor([4, 4, 12, 12, 12])
    full = model(x, y, xq, context_lengths=lengths, **side).logits
    for j in range(xq.shape[1]):
        alone = model(x, y, xq[:, j : j + 1], context_lengths=lengths[j : j + 1], **side).logits
        torch.testing.assert_close(alone, full[:, j : j + 1], atol=1e-5, rtol=0)
    x2, y2 = x.clone(), y.clone()
    x2[:, 4:] += 3.0
    y2[:, 4:] = (y2[:, 4:] + 1) % 4
    after = model(x2, y2, xq, context_lengths=lengths, **side).logits
    torch.testing.assert_close(after[:, :2], full[:, :2], atol=1e-5, rtol=0)  # they see points 0-3 only
    assert not torch.allclose(after[:, 2:, :4], full[:, 2:, :4], atol=1e-3)


def test_the_base_view_changes_the_answer_once_trained_and_starts_at_zero():
    old = side_head(base_inputs=False, seed=1)
    new = side_head(base_inputs=True, seed=2)
    warm_start(new, old, "old")
    x, y, xq, names, names_mask, unlabeled = task(seed=3)
    side = {"x_names": names, "names_mask": names_mask, "x_unlabeled": unlabeled}
    before = old(x, y, xq, **side).logits
    torch.testing.assert_close(new(x, y, xq, **side).logits, before)  # new columns at zero: the old head
    torch.nn.init.normal_(new.read_in.weight[:, -(C + 1):], std=1.0)
    assert not torch.allclose(new(x, y, xq, **side).logits.nan_to_num(0, 0, 0), before.nan_to_num(0, 0, 0), atol=1e-3)
    with pytest.raises(ValueError, match="base_inputs may be added"):
        warm_start(side_head(base_inputs=False), new, "new")  # a head is never narrowed


def test_the_base_view_needs_a_side_input_head():
    with pytest.raises(ValueError, match="base_inputs needs a side-input head"):
        TartConfig(n_classes=5, residual="nearest-mean", base_inputs=True)


def test_fixed_base_weights_ignore_the_gates_and_start_at_half_the_maximum():
    """learn_base_weights = False: the base keeps (max_name_weight / 2, max_unlabeled_weight / 2) whatever the
    gates read out, so a head with random gates answers as one whose gate read-out is zero; the default
    head learns them (its answers move with the gates)."""
    from tart.head.model import initial_base_scores

    x, y, xq, names, names_mask, unlabeled = task()
    side = dict(x_names=names, names_mask=names_mask, x_unlabeled=unlabeled)

    def head(learn: bool, zero_gates: bool) -> TartReasoningModel:
        torch.manual_seed(0)
        config = TartConfig(n_dims=D, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=C,
                            residual="nearest-mean", side_inputs=True, max_name_weight=4.0,
                            max_unlabeled_weight=2.0, learn_base_weights=learn)
        model = TartReasoningModel(config).eval()
        with torch.no_grad():
            model.read_out.bias[C:] = 3.0  # gates far from zero
            model.read_out.weight[:C] = 0  # no logits of the Transformer's own: the base alone
            model.read_out.bias[:C] = 0
            if zero_gates:
                model.read_out.weight[C:] = 0
                model.read_out.bias[C:] = 0
        return model

    with torch.no_grad():
        fixed = head(False, False)(x, y, xq, **side).logits
        zero = head(True, True)(x, y, xq, **side).logits
        learned = head(True, False)(x, y, xq, **side).logits
        model = head(False, False)
        base = model.residual_scale * initial_base_scores(x, y, xq, torch.full((xq.shape[1],), x.shape[1]), C, names,
                                                          names_mask, unlabeled, None, model.config.refine_steps,
                                                          model.refine_log_temperature.exp(), 2.0, 1.0)
    torch.testing.assert_close(fixed, zero)
    present = torch.isfinite(fixed)
    torch.testing.assert_close(fixed[present], base[present])
    assert not torch.allclose(learned[present], fixed[present])
