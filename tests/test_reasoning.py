import json

import pytest
import torch
from transformers import AutoConfig, AutoModel

from tart.head.load import CHECKPOINTS, load_head
from tart.head.model import TartConfig, TartReasoningModel, attention_mask
from tart.tasks.synthetic import make_generator, sample_tasks


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TartReasoningModel(TartConfig(n_dims=8, n_embd=32, n_layer=2, n_head=2, max_examples=16)).eval()


def batch(n_dims=8, k=12, q=12, seed=0):
    return sample_tasks(3, k, q, d=n_dims, n_dims=n_dims, generator=make_generator(seed))


def test_one_logit_per_query(model):
    b = batch()
    out = model(b.x_context, b.y_context, b.x_query, labels=b.y_query)
    assert out.logits.shape == (3, 12) and out.loss.ndim == 0


def test_query_ignores_later_context(model):
    """Query j with context length c must not change when context points >= c change."""
    b = batch()
    lengths = torch.arange(1, 13)
    before = model(b.x_context, b.y_context, b.x_query, context_lengths=lengths).logits
    x2, y2 = b.x_context.clone(), b.y_context.clone()
    x2[:, 6:] = torch.randn_like(x2[:, 6:])
    y2[:, 6:] = 1 - y2[:, 6:]
    after = model(x2, y2, b.x_query, context_lengths=lengths).logits
    assert torch.allclose(before[:, :6], after[:, :6], atol=1e-6)  # lengths 1..6 see only points 0..5
    assert not torch.allclose(before[:, 6:], after[:, 6:], atol=1e-4)


def test_queries_do_not_see_each_other(model):
    """Every query's logit is the same alone as in the batch, and changing one query moves only its own."""
    b = batch()
    full = model(b.x_context, b.y_context, b.x_query).logits
    for j in range(b.x_query.shape[1]):
        alone = model(b.x_context, b.y_context, b.x_query[:, j : j + 1]).logits
        assert torch.allclose(full[:, j : j + 1], alone, atol=1e-5)
    moved = b.x_query.clone()
    moved[:, 0] += 3.0
    after = model(b.x_context, b.y_context, moved).logits
    assert not torch.allclose(after[:, 0], full[:, 0], atol=1e-3)  # the changed query's answer moves
    assert torch.allclose(after[:, 1:], full[:, 1:], atol=1e-5)  # nobody else's does


def test_multiclass_queries_do_not_see_each_other():
    config = TartConfig(n_dims=8, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=5)
    model = TartReasoningModel(config).eval()
    gen = torch.Generator().manual_seed(0)
    x_ctx, x_q = torch.randn(2, 10, 8, generator=gen), torch.randn(2, 6, 8, generator=gen)
    y_ctx = torch.randint(0, 3, (2, 10), generator=gen)
    full = model(x_ctx, y_ctx, x_q).logits
    assert full.shape == (2, 6, 5) and torch.isinf(full[..., 3:]).all()  # slots absent from the context
    for j in range(6):
        torch.testing.assert_close(model(x_ctx, y_ctx, x_q[:, j : j + 1]).logits, full[:, j : j + 1], atol=1e-5, rtol=0)


def test_attention_mask_layout():
    m = attention_mask(3, torch.tensor([1, 3]))
    expected = torch.tensor([
        [1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0],  # causal context
        [1, 0, 0, 1, 0], [1, 1, 1, 0, 1],  # queries: a prefix of the context and themselves
    ], dtype=torch.bool)
    assert torch.equal(m, expected)


def test_no_token_table_and_auto_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "tart"
    assert isinstance(AutoConfig.from_pretrained(tmp_path), TartConfig)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, TartReasoningModel)
    assert not any(p.shape[0] > 10_000 for p in loaded.parameters())  # no vocabulary-sized table
    b = batch()
    assert torch.allclose(model(b.x_context, b.y_context, b.x_query).logits,
                          loaded.eval()(b.x_context, b.y_context, b.x_query).logits, atol=1e-6)


def test_pickle_checkpoints_are_refused(model, tmp_path):
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle-only checkpoint
    with pytest.raises(FileNotFoundError, match="pickle files are never loaded"):
        load_head(tmp_path)
    with pytest.raises(OSError):
        AutoModel.from_pretrained(tmp_path)  # use_safetensors=True: no .bin fallback


def test_weights_that_disagree_with_the_config_are_refused(tmp_path):
    """A residual head's weights under a config that lacks the residual (here: an option this version
    does not know, which transformers would keep as a bare attribute) is an error, not another head."""
    config = TartConfig(n_dims=8, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=3, residual="nearest-mean")
    TartReasoningModel(config).save_pretrained(tmp_path)
    load_head(tmp_path)  # as saved: fine
    saved = json.loads((tmp_path / "config.json").read_text())
    saved.pop("residual")
    saved["centroid_residual"] = True
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="unused \\['residual_scale'\\]"):
        load_head(tmp_path)


def test_a_head_loads_once_per_folder(tmp_path):
    """A short name and its folder's path (any spelling) share one copy; a folder saved again reloads."""
    shipped = load_head("tart-compact")
    assert load_head(CHECKPOINTS / "tart-compact") is shipped
    assert load_head(f"{CHECKPOINTS}/../{CHECKPOINTS.name}/tart-compact") is shipped
    TartReasoningModel(TartConfig(n_dims=8, n_embd=32, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    first = load_head(tmp_path)
    assert load_head(str(tmp_path)) is first
    TartReasoningModel(TartConfig(n_dims=8, n_embd=32, n_layer=2, n_head=2)).save_pretrained(tmp_path)
    assert load_head(tmp_path).config.n_layer == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_embd=30, n_head=4), "divisible"), (dict(n_layer=0), "n_layer"), (dict(n_dims="16"), "n_dims"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TartConfig(**kwargs)


def test_wrong_input_shapes(model):
    b = batch()
    with pytest.raises(ValueError, match="x_context must have shape"):
        model(b.x_context[..., :4], b.y_context, b.x_query)
    with pytest.raises(ValueError, match="y_context must have shape"):
        model(b.x_context, b.y_context[:, :3], b.x_query)
    with pytest.raises(ValueError, match="x_query must have shape"):
        model(b.x_context, b.y_context, b.x_query[:1])
    with pytest.raises(ValueError, match="context_lengths"):
        model(b.x_context, b.y_context, b.x_query, context_lengths=torch.arange(3))


def test_class_mean_scores_are_nearest_class_mean():
    """The residual's scores rank classes as nearest class mean over the context each query sees."""
    from tart.head.model import class_mean_scores

    gen = torch.Generator().manual_seed(0)
    x_ctx, x_q = torch.randn(2, 12, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    y_ctx = torch.randint(0, 3, (2, 12), generator=gen)
    y_ctx[:, :3] = torch.tensor([0, 1, 2])
    lengths = torch.tensor([3, 6, 9, 12, 12])
    scores = class_mean_scores(x_ctx, y_ctx, x_q, lengths, 4)
    for b in range(2):
        for j, c in enumerate(lengths.tolist()):
            means = torch.stack([x_ctx[b, :c][y_ctx[b, :c] == cls].mean(0) for cls in range(3)])
            dist = (x_q[b, j] - means).square().sum(-1)
            # -|x - m|^2 / 2 up to a per-query constant; the unused slot 3 scores 0
            assert torch.allclose(scores[b, j, :3] - scores[b, j, :3].mean(), -0.5 * (dist - dist.mean()), atol=1e-5)
            assert scores[b, j, 3] == 0


@pytest.mark.parametrize("n_classes", [2, 5])
def test_nearest_mean_residual_adds_its_logits(n_classes):
    """With the Transformer's read-out zeroed, a centroid-residual head is nearest class mean exactly."""
    from tart.head.model import class_mean_scores

    config = TartConfig(n_dims=8, n_embd=32, n_layer=2, n_head=2, max_examples=16, n_classes=n_classes,
                        residual="nearest-mean")
    model = TartReasoningModel(config).eval()
    with torch.no_grad():
        model.read_out.weight.zero_()
        model.read_out.bias.zero_()
        model.residual_scale.fill_(2.0)
    gen = torch.Generator().manual_seed(1)
    x_ctx, x_q = torch.randn(3, 10, 8, generator=gen), torch.randn(3, 6, 8, generator=gen)
    y_ctx = torch.arange(10).repeat(3, 1) % n_classes
    logits = model(x_ctx, y_ctx, x_q).logits
    scores = 2.0 * class_mean_scores(x_ctx, y_ctx, x_q, torch.full((6,), 10), n_classes)
    expected = scores[..., 1] - scores[..., 0] if n_classes == 2 else scores
    assert torch.allclose(logits, expected, atol=1e-5)
    plain = TartReasoningModel(TartConfig(n_dims=8, n_embd=32, n_layer=2, n_head=2, max_examples=16,
                                          n_classes=n_classes))
    assert not hasattr(plain, "residual_scale")  # old heads keep their parameters


def test_lda_scores_match_shrunk_lda():
    """residual="lda": linear discriminant scores with the pooled within-class covariance shrunk toward I
    by 8 / (8 + k), over each query's visible context."""
    from tart.head.model import class_mean_scores

    gen = torch.Generator().manual_seed(2)
    x_ctx, x_q = torch.randn(2, 16, 3, generator=gen) * torch.tensor([2.0, 1.0, 0.3]), torch.randn(2, 4, 3, generator=gen)
    y_ctx = torch.arange(16).repeat(2, 1) % 2
    lengths = torch.tensor([6, 10, 16, 16])
    scores = class_mean_scores(x_ctx, y_ctx, x_q, lengths, 2, lda=True)
    for b in range(2):
        for j, n in enumerate(lengths.tolist()):
            x, y = x_ctx[b, :n].double(), y_ctx[b, :n]
            means = torch.stack([x[y == c].mean(0) for c in (0, 1)])
            within = (x - means[y]).T @ (x - means[y]) / n
            cov = (1 - 8 / (8 + n)) * within + 8 / (8 + n) * torch.eye(3, dtype=torch.float64)
            a = torch.linalg.solve(cov, means.T).T
            s = x_q[b, j].double() @ a.T - 0.5 * (means * a).sum(1)
            assert torch.allclose(scores[b, j].double(), s - s.mean(), atol=1e-4)
    with pytest.raises(ValueError, match="residual"):
        TartConfig(residual="ridge")


@pytest.mark.parametrize("name", sorted(p.parent.name for p in CHECKPOINTS.glob("*/config.json")))
def test_every_shipped_head_loads_from_safetensors_and_answers(name):
    """Old and new heads alike (16 / 32 / 64 inputs, binary and 10 slots, with and without a residual)."""
    head = load_head(name)
    n = head.config.n_dims
    gen = torch.Generator().manual_seed(0)
    S, Q = torch.randn(1, 12, n, generator=gen), torch.randn(1, 3, n, generator=gen)
    p = head.predict_proba(S, (torch.arange(12) % 2)[None], Q)
    assert torch.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    if head.config.multiclass:
        assert torch.allclose(p.sum(-1), torch.ones(1, 3)) and (p[..., 2:] == 0).all()
