"""The reasoning head: a small causal Transformer that reads labelled points and predicts query labels.

Token layout (one token per point, no position embedding):
  context point i: [x_i, label code, 0]   under a causal mask among context tokens
  query point j:   [x_j, 0 …,        1]   sees the first c_j context tokens and itself
The label code is +1 / -1 for a binary head (n_classes = 2, one logit per query: TART's setting)
and a one-hot over n_classes slots for a native multi-class head (n_classes logits per query; the
classes absent from a task are masked out). So label 0 is not the zero vector, the sequence is not
doubled by separate label tokens, and queries never see each other: all queries of a request go
through one forward pass.

A head with `side_inputs` (multi-class) also reads what a user has besides labelled examples, in
tokens placed before the context, each with a flag of its own:
  name token, slot c:  [embedded name of class c, one-hot c, 0, 1, 0]
  unlabelled token:    [x_u, 0 …, 0, 0, 1]       (texts of the task without labels)
They see each other (a set: no order) but not the context, so a query's answer never depends on
context it may not see; context and queries see all of them. Its residual base is the class means
with each name counted as `w` more examples, refined by soft k-means over the unlabelled points with
weight `rho` (`side_mean_scores`); `w` and `rho` are read out per query by the Transformer, which so
decides per task how much to trust each signal.

A side-input head with `base_inputs` also reads what its base already knows, in n_classes + 1 more
input columns (zero for side tokens): each query token carries the class probabilities of the base with
its initial weights (w = 1, rho = 1/2), and each context token a flag saying whether the class means of
the context points before it (and the names) get its label right (+1), wrong (-1), or cannot (0: its
class has neither). So the Transformer can learn where a correction pays: where the base is unsure of
a query, or errs on the context, and not where it is already right.

Written like Hugging Face's modeling_gpt2 (config + PreTrainedModel, save/load through safetensors),
without GPT-2's 50257-row token table, which the head never uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from tart.head.rule_choice import choose_least_squares


RESIDUALS = ("none", "nearest-mean", "lda")
NAME_NORMS = ("raw", "texts")
RIDGE_MIXES = ("share", "add")
RIDGE_GATES = ("none", "loo")
RIDGE_PENALTY = 0.1  # `ridge_scores`: per point, in the whitened input space (dev suite and TART tasks)
RIDGE_GATE_START = -3.0  # the ridge rule's share at first: sigmoid(-3) = 0.047
RIDGE_GATE_GAIN = 4.0  # its gate moves 4x as fast as the other read-outs: one number must travel far
RIDGE_START_SCALE = 0.1  # the ridge scores' learned scale per context point at first


class TartConfig(PretrainedConfig):
    model_type = "tart"

    def __init__(
        self,
        n_dims: int = 16,
        n_embd: int = 128,
        n_layer: int = 4,
        n_head: int = 4,
        mlp_ratio: int = 4,
        max_examples: int = 64,
        alpha: float = 10.0,
        n_classes: int = 2,
        residual: str = "none",
        side_inputs: bool = False,
        refine_steps: int = 2,
        base_inputs: bool = False,
        max_name_weight: float = 2.0,
        max_unlabeled_weight: float = 1.0,
        learn_base_weights: bool = True,
        base_temperature: bool = False,
        shrunk_std: bool = False,
        projection_shrinkage: float | None = None,
        name_norm: str = "raw",
        base_scale_per_example: float = 0.0,
        base_scale_no_pool: float = 0.0,
        ridge_rule: bool = False,
        gates_only: bool = False,
        ridge_mix: str = "share",
        share_loss: float = 0.0,
        ridge_gate: str = "none",
        propagation: float = 0.0,
        propagation_alpha: float = 0.5,
        propagation_neighbours: int = 10,
        loo_temperature: float = 0.0,
        **kwargs,
    ):
        self.n_dims = n_dims  # input size: features are padded with zeros or projected to it
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.mlp_ratio = mlp_ratio
        self.max_examples = max_examples  # the largest k seen in training
        self.alpha = alpha  # prior scale of the training tasks' weights: inputs are N(0, I)
        self.n_classes = n_classes  # 2: binary head (one logit); more: one-hot label slots, C logits
        # "nearest-mean" / "lda": add a class-mean classifier's logits (learned scale) to the Transformer's,
        # so the head learns a correction to a strong baseline instead of rebuilding it (`class_mean_scores`)
        self.residual = residual
        # name and unlabelled tokens (multi-class heads with a residual): see the module docstring
        self.side_inputs = side_inputs
        self.refine_steps = refine_steps  # soft k-means steps of the base over the unlabelled points
        self.base_inputs = base_inputs  # the base's view as inputs (side-input heads): see the module docstring
        # the base's weights, a name's and an unlabelled point's, range over (0, max); they start at half of it
        self.max_name_weight = max_name_weight
        self.max_unlabeled_weight = max_unlabeled_weight
        self.learn_base_weights = learn_base_weights  # False: the base keeps half of each maximum, whatever the gates say
        # a third gate scales the base's logits per query (exp(gate)): calibration that keeps their order
        self.base_temperature = base_temperature
        # how the head's inputs are projected (tart.head.projection), as it was trained: shrunk standardisation,
        # and the whitening's shrinkage (None: tart.defaults.DEFAULT_SHRINKAGE)
        self.shrunk_std = shrunk_std
        self.projection_shrinkage = projection_shrinkage
        # how names are read (tart.classifier.read_names): "raw", or "texts": each at the mean norm of the
        # task's texts, and from names alone their span is not whitened, so that zero-shot is the nearest
        # name by cosine. A label word alone lands at a norm unlike the texts' (MiniLM: "artifact" 8.0,
        # "person" 5.9, texts 6-7), and the larger name took almost every text
        self.name_norm = name_norm
        # > 0 (side-input heads): the base's logits times c / (the context points a query sees + each named
        # class's name weight), 1 with no context. The base's probabilities were far too soft, and the more so
        # the fewer the examples (text tasks, MiniLM: mean confidence 39 points under accuracy at k = 8, 25 at
        # k = 64): a head trained on top spent itself on that temperature
        self.base_scale_per_example = base_scale_per_example
        # > 0: for tasks without unlabelled points, c / sqrt(n) instead of c / n. Without a pool tart-base was
        # overconfident at c = 200 (MiniLM, k = 8: confidence 15.8 points over accuracy; with a pool 11 under),
        # and the NLL-best scale falls more slowly with n there
        self.base_scale_no_pool = base_scale_no_pool
        # side-input heads with blocks: a discriminative rule beside the class means, `ridge_scores` on the
        # context each query sees (times a learned scale), mixed in by a share the Transformer reads out (a
        # gate, near 0 at first). Class means are no discriminative rule: on TART's noise-free linear tasks
        # they trail logistic regression by 7 points at k = 64, where least squares gets it back; on text it
        # costs 1-6 points. So the Transformer decides per task
        self.ridge_rule = ridge_rule
        # how: "share", (1 - s) x the base + s x the rule; "add", the base + s x the rule (s cannot cool the base:
        # as a share, s had also tempered the base, 0.7 on text without a pool for tart-gate)
        self.ridge_mix = ridge_mix
        # > 0: the ridge gate also learns, with this weight, whether least squares beat the base on its episode
        # (a binary cross-entropy per query against one target per episode: the rule's mean log-likelihood of
        # the queries' labels over the base's). Cross-entropy alone also used the share as a temperature
        self.share_loss = share_loss
        # "loo" (side-input heads, no Transformer needed): a fixed choice per task between the base and least
        # squares, whichever predicts the task's own labelled points better when each is left out
        # (`tart.head.rule_choice`): TART's linear tasks want least squares, text wants the class means
        self.ridge_gate = ridge_gate
        # > 0 (side-input heads): where a task has unlabelled points, TartClassifier blends the head's
        # log-probabilities with label spreading's over the task's own vectors, this share of the latter
        # (`tart.head.propagation`: the pool read point by point, where the base reads one mean per class);
        # propagation_alpha: how far labels spread (0: to their neighbours only; towards 1: everywhere), over a
        # graph joining each point to its propagation_neighbours nearest
        self.propagation = propagation
        self.propagation_alpha = propagation_alpha
        self.propagation_neighbours = propagation_neighbours
        # > 0 (side-input heads with a fixed base and its per-example scale): TartClassifier raises the final
        # answer of each task with unlabelled points to a temperature read from its own labelled points, this
        # power of it (`tart.head.task_temperature`): no one scale fits MiniLM text, SmolLM2 text and tables
        self.loo_temperature = loo_temperature
        # side-input heads: the Transformer only reads out the gates (which rule, how much of each input); its
        # own logits are not used, so where the gates leave the base alone the head answers as the base
        self.gates_only = gates_only
        super().__init__(**kwargs)
        self.validate()

    def validate(self):
        for name in ("n_dims", "n_embd", "n_layer", "n_head", "mlp_ratio", "max_examples", "n_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                if not (name == "n_layer" and value == 0):
                    raise ValueError(f"TartConfig.{name} must be a positive integer, got {value!r}")
        if self.n_layer == 0 and self.residual == "none":  # no blocks: the base alone answers
            raise ValueError("TartConfig.n_layer = 0 (no Transformer blocks) needs a residual base")
        if self.n_embd % self.n_head:
            raise ValueError(f"TartConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_classes < 2:
            raise ValueError(f"TartConfig.n_classes must be >= 2, got {self.n_classes}")
        if self.residual not in RESIDUALS:
            raise ValueError(f"TartConfig.residual must be one of {RESIDUALS}, got {self.residual!r}")
        if self.side_inputs and (not self.multiclass or self.residual != "nearest-mean"):
            raise ValueError("TartConfig.side_inputs needs a multi-class head (n_classes > 2) with "
                             "residual='nearest-mean'")
        if self.base_inputs and not self.side_inputs:
            raise ValueError("TartConfig.base_inputs needs a side-input head (side_inputs=True)")
        if self.base_temperature and not self.side_inputs:
            raise ValueError("TartConfig.base_temperature needs a side-input head (side_inputs=True)")
        if self.base_scale_no_pool < 0 or (self.base_scale_no_pool and not self.base_scale_per_example):
            raise ValueError("TartConfig.base_scale_no_pool must be >= 0, and > 0 only with base_scale_per_example")
        if self.base_scale_per_example < 0 or (self.base_scale_per_example and not self.side_inputs):
            raise ValueError("TartConfig.base_scale_per_example must be >= 0, and > 0 only for a side-input head")
        if self.gates_only and not self.side_inputs:
            raise ValueError("TartConfig.gates_only needs a side-input head (side_inputs=True)")
        if self.ridge_mix not in RIDGE_MIXES:
            raise ValueError(f"TartConfig.ridge_mix must be one of {RIDGE_MIXES}, got {self.ridge_mix!r}")
        if self.ridge_rule and not (self.side_inputs and self.n_layer):
            raise ValueError("TartConfig.ridge_rule needs a side-input head with Transformer blocks (they read "
                             "out its share)")
        if self.ridge_gate not in RIDGE_GATES:
            raise ValueError(f"TartConfig.ridge_gate must be one of {RIDGE_GATES}, got {self.ridge_gate!r}")
        if self.ridge_gate == "loo" and (not self.side_inputs or self.ridge_rule):
            raise ValueError("TartConfig.ridge_gate = 'loo' needs a side-input head without the learned share "
                             "(side_inputs=True, ridge_rule=False)")
        if self.share_loss and not (self.ridge_rule and self.multiclass):
            raise ValueError("TartConfig.share_loss needs a multi-class head with the ridge rule (ridge_rule=True)")
        if not 0 <= self.propagation <= 1 or (self.propagation and not self.side_inputs):
            raise ValueError("TartConfig.propagation must be in [0, 1], and > 0 only for a side-input head")
        if not 0 <= self.propagation_alpha < 1:
            raise ValueError(f"TartConfig.propagation_alpha must be in [0, 1), got {self.propagation_alpha!r}")
        if not isinstance(self.propagation_neighbours, int) or self.propagation_neighbours < 1:
            raise ValueError(f"TartConfig.propagation_neighbours must be a positive integer, "
                             f"got {self.propagation_neighbours!r}")
        if self.loo_temperature < 0 or (self.loo_temperature and not (
                self.base_scale_per_example and not self.learn_base_weights and not self.base_temperature)):
            raise ValueError("TartConfig.loo_temperature must be >= 0, and > 0 only for a side-input head with "
                             "base_scale_per_example and fixed base weights (learn_base_weights = base_temperature "
                             "= False)")
        if self.name_norm not in NAME_NORMS:
            raise ValueError(f"TartConfig.name_norm must be one of {NAME_NORMS}, got {self.name_norm!r}")

    @property
    def multiclass(self) -> bool:
        return self.n_classes > 2

    @property
    def label_width(self) -> int:
        return self.n_classes if self.multiclass else 1

    @property
    def n_flags(self) -> int:
        """Token-kind flags after the label code: query; and name, unlabelled for a side-input head."""
        return 3 if self.side_inputs else 1

    @property
    def n_gates(self) -> int:
        """Read-out columns after the labels: the base's name and unlabelled weights (and its temperature),
        then the ridge rule's gate."""
        return (2 + self.base_temperature + self.ridge_rule) if self.side_inputs else 0

    @property
    def n_inputs(self) -> int:
        """Input columns of a token: features, label code, flags, and the base's view (`base_inputs`)."""
        return self.n_dims + self.label_width + self.n_flags + (self.n_classes + 1 if self.base_inputs else 0)


class SelfAttention(nn.Module):
    def __init__(self, config: TartConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, h: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        B, T, C = h.shape
        q, k, v = self.qkv(h).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.proj(out.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, config: TartConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = SelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd),
            nn.GELU(),
            nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd),
        )

    def forward(self, h, allowed):
        h = h + self.attn(self.ln_1(h), allowed)
        return h + self.mlp(self.ln_2(h))


@dataclass
class SideTokens:
    """A side-input head's tokens before the context, and what its base reads of them."""
    tokens: torch.Tensor  # (B, n_side, n_dims + n_classes + 3)
    present: torch.Tensor  # (B, n_side) bool
    x_names: torch.Tensor | None
    names_mask: torch.Tensor | None
    x_unlabeled: torch.Tensor | None
    unlabeled_mask: torch.Tensor | None


@dataclass
class TartOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, q): log-odds of label 1 (binary), or (B, q, n_classes)


def class_mean_scores(x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor,
                      context_lengths: torch.Tensor, n_classes: int, lda: bool = False) -> torch.Tensor:
    """A class-mean classifier in the head's input space, as logits over the context points each query
    sees, centred over the classes it sees (the others get 0). Returns (B, q, n_classes).

    nearest mean: s_c = -|x_q - m_c|^2 / 2. In the projected, shrunk-whitened space it beats the plain
    Transformer at k >= 32 on the dev suite (MiniLM: 0.841 / 0.864 vs 0.828 / 0.852 at k = 32 / 64).
    lda: s_c = x_q' A m_c - m_c' A m_c / 2 with A the inverse of the pooled within-class covariance
    shrunk toward I by 8 / (8 + k) (the whitened space's total covariance is about I): it tells
    correlated features apart (iris) and gains at k = 64 (0.871 vs 0.864), ties below."""
    B, k, d = x_context.shape
    q = x_query.shape[1]
    if (context_lengths == context_lengths[..., :1]).all():  # every query sees the same points: fit once
        context_lengths = context_lengths[..., :1]
    visible = (torch.arange(k, device=x_context.device) < context_lengths[..., None]).float()
    visible = visible.expand(B, -1, -1)  # (B, q or 1, k)
    onehot = F.one_hot(y_context.long(), n_classes).float()  # (B, k, C)
    x_context, x_query = x_context.float(), x_query.float()
    counts = visible @ onehot  # (B, q, C)
    means = torch.einsum("bqk,bkc,bkd->bqcd", visible, onehot, x_context) / counts.clamp_min(1)[..., None]
    if lda:
        n = counts.sum(-1)[..., None, None].clamp_min(1)  # (B, q, 1, 1)
        second = torch.einsum("bqk,bkd,bke->bqde", visible, x_context, x_context)
        within = (second - torch.einsum("bqc,bqcd,bqce->bqde", counts, means, means)) / n
        shrink = 8.0 / (8.0 + n)
        cov = (1 - shrink) * within + shrink * torch.eye(d, device=x_context.device)
        directions = torch.linalg.solve(cov, means.transpose(-1, -2)).transpose(-1, -2)  # A m_c: (B, q, C, d)
    else:
        directions = means
    # |x_q|^2 (or x_q' A x_q) is the same for every class, so it drops out of the logits
    directions, means, counts = (t.expand(B, q, *t.shape[2:]) for t in (directions, means, counts))
    scores = torch.einsum("bqd,bqcd->bqc", x_query, directions) - 0.5 * (means * directions).sum(-1)
    seen = (counts > 0).float()
    centre = (scores * seen).sum(-1, keepdim=True) / seen.sum(-1, keepdim=True).clamp_min(1)
    return (scores - centre) * seen


def side_class_moments(x_context, y_context, context_lengths, n_classes: int, x_names, names_mask, x_unlabeled,
                       unlabeled_mask, name_weight, unlabeled_weight, steps: int,
                       temperature: torch.Tensor | float = 1.0):
    """The side base's class sums (B, q, C, d) and counts (B, q, C) per query, and which classes are present
    (B, q, C): the context points the query sees, each name as `name_weight` more examples (if named), and
    the unlabelled points by their soft assignment to the current means (`steps` rounds of soft k-means, each
    point weighted `unlabeled_weight`; semi-supervised prototypes, arXiv 1803.00676). A class is present if
    the query sees a context point of it or it is named. name_weight, unlabeled_weight: (B, q)."""
    B, k, _ = x_context.shape
    q = name_weight.shape[1]
    x_context = x_context.float()
    visible = _visible(k, context_lengths).expand(B, q, k)
    onehot = F.one_hot(y_context.long(), n_classes).float()  # (B, k, C)
    sums = torch.einsum("bqk,bkc,bkd->bqcd", visible, onehot, x_context)
    counts = visible @ onehot  # (B, q, C)
    present = counts > 0
    if x_names is not None:
        named = names_mask[:, None, :].float()  # (B, 1, C)
        w = name_weight[..., None].float() * named  # (B, q, C)
        sums = sums + w[..., None] * x_names.float()[:, None]
        counts = counts + w
        present = present | names_mask[:, None, :]
    if x_unlabeled is not None and steps > 0 and x_unlabeled.shape[1] > 0:
        x_u = x_unlabeled.float()
        weight = unlabeled_mask.float()[:, None, :, None] * unlabeled_weight.float()[..., None, None]  # (B, q, U, 1)
        labelled_sums, labelled_counts = sums, counts
        for _ in range(steps):
            means = class_means(sums, counts)
            s_u = torch.einsum("bud,bqcd->bquc", x_u, means) - 0.5 * (means * means).sum(-1)[:, :, None, :]
            s_u = (s_u * temperature).masked_fill(~present[:, :, None, :], float("-inf"))
            r = torch.softmax(s_u, -1).nan_to_num(0.0) * weight  # (B, q, U, C)
            sums, counts = labelled_sums + torch.einsum("bquc,bud->bqcd", r, x_u), labelled_counts + r.sum(2)
    return sums, counts, present


def side_mean_scores(x_context, y_context, x_query, context_lengths, n_classes: int, x_names, names_mask,
                     x_unlabeled, unlabeled_mask, name_weight, unlabeled_weight, steps: int,
                     temperature: torch.Tensor | float = 1.0) -> torch.Tensor:
    """The side-input head's base, per query: nearest class mean, the means of `side_class_moments` (names
    and unlabelled points included); logits centred over the present classes, 0 elsewhere.
    name_weight, unlabeled_weight: (B, q). Returns (B, q, n_classes)."""
    sums, counts, present = side_class_moments(x_context, y_context, context_lengths, n_classes, x_names, names_mask,
                                               x_unlabeled, unlabeled_mask, name_weight, unlabeled_weight, steps,
                                               temperature)
    return nearest_mean_scores(x_query.float(), class_means(sums, counts), present)


def class_means(sums, counts) -> torch.Tensor:
    """Class means from `side_class_moments`' sums (…, C, d) and counts (…, C); an absent class's stays 0."""
    return sums / counts.clamp_min(1e-6)[..., None]


def nearest_mean_scores(x_query, means, present) -> torch.Tensor:
    """-|x_q - m_c|^2 / 2 up to a per-query constant, centred over the present classes, 0 elsewhere: (B, q, C)."""
    scores = torch.einsum("bqd,bqcd->bqc", x_query, means) - 0.5 * (means * means).sum(-1)
    seen = present.float()
    centre = (scores * seen).sum(-1, keepdim=True) / seen.sum(-1, keepdim=True).clamp_min(1)
    return (scores - centre) * seen


@torch.no_grad()
def ridge_scores(x_context, y_context, x_query, context_lengths, n_classes: int,
                 penalty: float = RIDGE_PENALTY) -> torch.Tensor:
    """Least squares on one-hot labels (with an intercept; penalty * n * |W|^2) over the n context points
    each query sees, evaluated at the query: (B, q, n_classes), 0 where a query sees fewer than 2 points.
    Queries that see different prefixes get their own fit, from prefix sums of the context's moments."""
    B, k, d = x_context.shape
    q = x_query.shape[1]
    x, y = x_context.double(), F.one_hot(y_context.long(), n_classes).double()
    lengths = context_lengths.expand(B, q)
    if (lengths == lengths[:, :1]).all():  # every query sees the same points: one fit per task
        visible = _visible(k, lengths[:, :1]).double()  # (B, 1, k)
        xx, xy = torch.einsum("bqk,bkd,bke->bqde", visible, x, x), torch.einsum("bqk,bkd,bkc->bqdc", visible, x, y)
        sx, sy, n = visible @ x, visible @ y, visible.sum(-1, keepdim=True)
    else:  # moments of every prefix, then each query's
        at, seen_any = (lengths - 1).clamp_min(0), lengths > 0

        def pick(t):  # each query's prefix sum, (B, q, ...); 0 for a query that sees nothing
            index = at.view(B, q, *[1] * (t.dim() - 2)).expand(B, q, *t.shape[2:])
            return t.gather(1, index) * seen_any.view(B, q, *[1] * (t.dim() - 2))

        xx = pick(torch.einsum("bkd,bke->bkde", x, x).cumsum(1))
        xy = pick(torch.einsum("bkd,bkc->bkdc", x, y).cumsum(1))
        sx, sy, n = pick(x.cumsum(1)), pick(y.cumsum(1)), lengths[..., None].double()
    m = n.clamp_min(1)
    scatter = xx - sx[..., :, None] * sx[..., None, :] / m[..., None]
    cross = xy - sx[..., :, None] * sy[..., None, :] / m[..., None]
    eye = torch.eye(d, dtype=torch.float64, device=x.device)
    w = torch.linalg.solve(scatter + penalty * m[..., None] * eye, cross)  # (B, q or 1, d, C)
    scores = torch.einsum("bqd,bqdc->bqc", x_query.double() - sx / m, w.expand(B, q, d, -1)) + sy / m
    return (scores * (n >= 2)).float()


def share_target_loss(gate_logit, base_scores, rule_scores, fitted, labels, class_mask) -> torch.Tensor:
    """TartConfig.share_loss: binary cross-entropy of each query's ridge gate (B, q) against its episode's
    target, 1 where least squares gave the episode's queries (those with a fit) a higher mean log-likelihood
    of their labels (B, q, C probabilities) than the base did."""
    with torch.no_grad():
        def log_likelihood(scores):
            log_p = torch.log_softmax(scores.float().masked_fill(~class_mask[:, None, :], float("-inf")), -1)
            return (labels * log_p.clamp_min(-1e4)).sum(-1)

        gain = ((log_likelihood(rule_scores) - log_likelihood(base_scores)) * fitted).sum(-1)
        target = (gain > 0).float()[:, None].expand_as(gate_logit)
    weight = fitted.float()
    losses = F.binary_cross_entropy_with_logits(gate_logit.float(), target, reduction="none")
    return (losses * weight).sum() / weight.sum().clamp_min(1.0)


def per_example_scale(c: float, context_lengths, name_weight, names_mask, pooled=None,
                      c_no_pool: float = 0.0) -> torch.Tensor:
    """(B, q): c / n with n = the context points each query sees + name_weight per named class, or 1 where a
    query sees no context point (zero-shot keeps the names' own scale). TartConfig.base_scale_per_example.
    With c_no_pool, tasks without unlabelled points (pooled (B,) False) get c_no_pool / sqrt(n) instead."""
    seen = context_lengths.expand(name_weight.shape).float()
    named = 0.0 if names_mask is None else names_mask.float().sum(-1, keepdim=True) * name_weight.float()
    n = seen + named
    scale = c / n
    if c_no_pool:
        pooled = torch.zeros(n.shape[0], dtype=torch.bool, device=n.device) if pooled is None else pooled
        scale = torch.where(pooled[:, None], scale, c_no_pool / n.clamp_min(1e-6).sqrt())
    return torch.where(seen > 0, scale, torch.ones_like(seen))


def initial_base_scores(x_context, y_context, x_query, context_lengths, n_classes: int, x_names, names_mask,
                        x_unlabeled, unlabeled_mask, steps: int, temperature: torch.Tensor | float = 1.0,
                        name_weight: float = 1.0, unlabeled_weight: float = 0.5) -> torch.Tensor:
    """`side_mean_scores` with the weights a side-input head starts from (its read-out at zero: half of
    each maximum; TartConfig's defaults: a name counts as one example, an unlabelled point as half of one).
    Unlabelled points are all present unless `unlabeled_mask` says otherwise."""
    B, q = x_query.shape[:2]
    if x_unlabeled is not None and unlabeled_mask is None:
        unlabeled_mask = torch.ones(x_unlabeled.shape[:2], dtype=torch.bool, device=x_unlabeled.device)
    return side_mean_scores(x_context, y_context, x_query, context_lengths, n_classes, x_names, names_mask,
                            x_unlabeled, unlabeled_mask, name_weight=x_query.new_full((B, q), name_weight),
                            unlabeled_weight=x_query.new_full((B, q), unlabeled_weight), steps=steps,
                            temperature=temperature)


def _visible(k: int, context_lengths: torch.Tensor) -> torch.Tensor:
    """(…, q, k) float: 1 where query j sees context point i."""
    return (torch.arange(k, device=context_lengths.device) < context_lengths[..., None]).float()


def base_probabilities(scores: torch.Tensor, y_context, context_lengths, n_classes: int, names_mask) -> torch.Tensor:
    """Softmax of a base's scores (B, q, C) over the classes each query sees (a context point of the
    class, or its name); 0 for the others."""
    B, k = y_context.shape
    onehot = F.one_hot(y_context.long(), n_classes).float()
    present = _visible(k, context_lengths).expand(B, -1, k) @ onehot > 0
    if names_mask is not None:
        present = present | names_mask[:, None, :]
    return torch.softmax(scores.float().masked_fill(~present, float("-inf")), -1).nan_to_num(0.0)


def prequential_flags(x_context, y_context, n_classes: int, x_names, names_mask) -> torch.Tensor:
    """Per context point (B, k): +1 if the nearest class mean of the context points before it (each name
    one more example of its class) is its own class, -1 if another, 0 if its class has no earlier point
    and no name. Only earlier points count, as the causal mask lets a query see a prefix of the context."""
    x = x_context.float()
    onehot = F.one_hot(y_context.long(), n_classes).float()  # (B, k, C)
    own = onehot[..., None] * x[:, :, None, :]  # (B, k, C, d)
    sums, counts = own.cumsum(1) - own, onehot.cumsum(1) - onehot  # before each point
    if x_names is not None:
        named = names_mask.float()[:, None, :]
        sums = sums + named[..., None] * x_names.float()[:, None]
        counts = counts + named
    present = counts > 0
    means = class_means(sums, counts)
    scores = torch.einsum("bkd,bkcd->bkc", x, means) - 0.5 * (means * means).sum(-1)
    guess = scores.masked_fill(~present, float("-inf")).argmax(-1)
    y = y_context.long()
    known = present.gather(-1, y[..., None])[..., 0]
    return torch.where(guess == y, 1.0, -1.0) * known


def side_attention_mask(n_side: int, k: int, context_lengths: torch.Tensor, side_present: torch.Tensor) -> torch.Tensor:
    """(B, 1, T, T) mask for [side tokens (names, unlabelled), context, queries]: side tokens see the
    present side tokens (and themselves); context and queries see every present side token, and the
    context / query pattern of `attention_mask` after them."""
    B = side_present.shape[0]
    q = context_lengths.shape[-1]
    lengths = context_lengths.expand(B, q) if context_lengths.dim() == 1 else context_lengths
    inner = attention_mask(k, lengths)[:, 0]  # (B, k+q, k+q)
    T = n_side + k + q
    allowed = torch.zeros(B, T, T, dtype=torch.bool, device=side_present.device)
    allowed[:, :, :n_side] = side_present[:, None, :]
    allowed[:, :n_side, :n_side] |= torch.eye(n_side, dtype=torch.bool, device=side_present.device)
    allowed[:, n_side:, n_side:] = inner
    return allowed[:, None]


def attention_mask(k: int, context_lengths: torch.Tensor) -> torch.Tensor:
    """Boolean mask, True where attention is allowed: causal over the context, and query j sees
    context tokens [0, context_lengths[..., j]) and itself. context_lengths is (q,) shared by the
    batch, giving a (k+q, k+q) mask, or (B, q) per sequence, giving (B, 1, k+q, k+q) so that
    sequences padded at the end of their context can share one forward pass."""
    q = context_lengths.shape[-1]
    device = context_lengths.device
    lead = context_lengths.shape[:-1]
    allowed = torch.zeros(*lead, k + q, k + q, dtype=torch.bool, device=device)
    allowed[..., :k, :k] = torch.ones(k, k, dtype=torch.bool, device=device).tril()
    allowed[..., k:, :k] = torch.arange(k, device=device) < context_lengths[..., None]
    allowed[..., k:, k:] = torch.eye(q, dtype=torch.bool, device=device)
    return allowed if not lead else allowed[:, None]


class TartReasoningModel(PreTrainedModel):
    config_class = TartConfig
    base_model_prefix = "tart"
    main_input_name = "x_context"

    def __init__(self, config: TartConfig):
        super().__init__(config)
        self.read_in = nn.Linear(config.n_inputs, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        # a side-input head reads out two more numbers per query: the base's name and unlabelled weights
        self.read_out = nn.Linear(config.n_embd, config.label_width + config.n_gates)
        if config.residual != "none":
            self.residual_scale = nn.Parameter(torch.ones(()))
        if config.side_inputs:
            self.refine_log_temperature = nn.Parameter(torch.zeros(()))  # of the soft k-means assignments
        if config.ridge_rule:
            self.ridge_log_scale = nn.Parameter(torch.tensor(math.log(RIDGE_START_SCALE)))
        if config.gates_only and config.ridge_rule:  # the base stays the tuned one (tart-base's): only the share learns
            for name in ("residual_scale", "refine_log_temperature"):
                if hasattr(self, name):
                    getattr(self, name).requires_grad_(False)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        x_context: torch.Tensor,
        y_context: torch.Tensor,
        x_query: torch.Tensor,
        context_lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        class_mask: torch.Tensor | None = None,
        x_names: torch.Tensor | None = None,
        names_mask: torch.Tensor | None = None,
        x_unlabeled: torch.Tensor | None = None,
        unlabeled_mask: torch.Tensor | None = None,
    ) -> TartOutput:
        """x_context (B, k, n_dims), y_context (B, k): labels in {0, 1} (binary head) or class slots
        in [0, n_classes) (multi-class head); x_query (B, q, n_dims).
        context_lengths (q,) or (B, q): how many context points each query sees (default: all k).
        class_mask (B, n_classes), multi-class only: the slots a task uses (default: those in y_context,
        and the named ones); the others get -inf logits.
        Side inputs (a head with `side_inputs` only): x_names (B, n_classes, n_dims), slot c's name, with
        names_mask (B, n_classes) saying which slots are named; x_unlabeled (B, U, n_dims) with
        unlabeled_mask (B, U) (default: all present).
        labels: targets for a cross-entropy loss: (B, q) in [0, 1] for a binary head; for a multi-class
        head (B, q) slot indices or (B, q, n_classes) probabilities."""
        self._check_shapes(x_context, y_context, x_query)
        B, k, _ = x_context.shape
        q = x_query.shape[1]
        if context_lengths is None:
            context_lengths = torch.full((q,), k)
        elif context_lengths.shape not in ((q,), (B, q)):
            raise ValueError(f"context_lengths must have shape ({q},) or ({B}, {q}), got {tuple(context_lengths.shape)}")
        context_lengths = context_lengths.to(x_query.device)
        side = self._side_tokens(x_context, x_names, names_mask, x_unlabeled, unlabeled_mask)
        dtype = self.read_in.weight.dtype
        n_flags = self.config.n_flags
        flags = x_context.new_zeros(B, k, n_flags)
        ctx = torch.cat([x_context, self._label_code(y_context).to(x_context.dtype), flags], -1)
        query_flag = F.one_hot(torch.tensor(0), n_flags).to(x_query)
        qry = torch.cat([x_query, x_query.new_zeros(B, q, self.config.label_width), query_flag.expand(B, q, -1)], -1)
        tokens = torch.cat([ctx, qry] if side is None else [side.tokens, ctx, qry], 1)
        n_side = 0 if side is None else side.tokens.shape[1]
        if self.config.base_inputs:
            tokens = torch.cat([tokens, self._base_view(x_context, y_context, x_query, context_lengths, side, n_side)], -1)
        h = self.read_in(tokens.to(dtype))
        allowed = attention_mask(k, context_lengths) if side is None else \
            side_attention_mask(n_side, k, context_lengths, side.present)
        for block in self.blocks:
            h = block(h, allowed)
        out = self.read_out(self.ln_f(h[:, n_side + k:]))
        logits = out[..., : self.config.label_width]
        if self.config.side_inputs:
            gates = out[..., self.config.label_width:].float()
            if not self.config.learn_base_weights:  # the weights' gates at zero; a temperature's stays
                gates = torch.cat([torch.zeros_like(gates[..., :2]), gates[..., 2:]], -1)
            name_weight = self.config.max_name_weight * torch.sigmoid(gates[..., 0])
            sums, counts, present = side_class_moments(
                x_context, y_context, context_lengths, self.config.n_classes,
                side.x_names, side.names_mask, side.x_unlabeled, side.unlabeled_mask,
                name_weight=name_weight,
                unlabeled_weight=self.config.max_unlabeled_weight * torch.sigmoid(gates[..., 1]),
                steps=self.config.refine_steps, temperature=self.refine_log_temperature.exp())
            scores = nearest_mean_scores(x_query.float(), class_means(sums, counts), present)
            scale = self.residual_scale * (gates[..., 2:3].exp() if self.config.base_temperature else 1.0)
            if self.config.base_scale_per_example:
                pooled = None if side.unlabeled_mask is None else side.unlabeled_mask.any(-1)
                scale = scale * per_example_scale(self.config.base_scale_per_example, context_lengths, name_weight,
                                                  side.names_mask, pooled, self.config.base_scale_no_pool)[..., None]
            scores = scale * scores
            if self.config.ridge_gate == "loo":
                scores = self._loo_gated(scores, x_context, y_context, x_query, context_lengths, sums, counts, present,
                                         side.names_mask)
            share_view = None
            if self.config.ridge_rule:  # the share of the least-squares rule, per query
                seen = context_lengths.expand(B, q).float()[..., None]
                # no share where least squares has nothing to fit (fewer than 2 points: zero-shot)
                gate_logit = RIDGE_GATE_GAIN * gates[..., -1:] + RIDGE_GATE_START
                share = torch.sigmoid(gate_logit) * (seen >= 2)
                ridge = ridge_scores(x_context, y_context, x_query, context_lengths, self.config.n_classes)
                # its calibrated scale grows with the points seen (TART's tasks: 0.12 / 0.09 / 0.08 per point
                # at k = 8 / 16 / 64)
                rule = self.ridge_log_scale.exp() * seen * ridge
                share_view = (gate_logit[..., 0], scores.detach(), rule, seen[..., 0] >= 2)
                base_part = scores if self.config.ridge_mix == "add" else (1 - share) * scores
                scores = base_part + share * rule
            if self.config.gates_only:
                logits = torch.zeros_like(logits)
            logits = logits + scores.to(logits.dtype)
        elif self.config.residual != "none":
            scores = class_mean_scores(x_context, y_context, x_query, context_lengths, self.config.n_classes,
                                       lda=self.config.residual == "lda")
            if not self.config.multiclass:  # log-odds of label 1
                scores = scores[..., 1:] - scores[..., :1]
            logits = logits + (self.residual_scale * scores).to(logits.dtype)
        if not self.config.multiclass:
            logits = logits.squeeze(-1)
            loss = None if labels is None else F.binary_cross_entropy_with_logits(logits.float(), labels.float())
            return TartOutput(loss=loss, logits=logits)
        if class_mask is None:
            class_mask = F.one_hot(y_context.long(), self.config.n_classes).sum(1) > 0
            if side is not None and side.names_mask is not None:
                class_mask = class_mask | side.names_mask
        logits = logits.float().masked_fill(~class_mask[:, None, :], float("-inf"))
        loss = None
        if labels is not None:
            log_p = torch.log_softmax(logits, -1).clamp_min(-1e4)  # masked slots: finite, weight 0
            if labels.dim() == 2:
                labels = F.one_hot(labels.long(), self.config.n_classes).float()
            loss = -(labels.float() * log_p).sum(-1).mean()
            if self.config.share_loss:
                loss = loss + self.config.share_loss * share_target_loss(*share_view, labels.float(), class_mask)
        return TartOutput(loss=loss, logits=logits)

    def _loo_gated(self, scores, x_context, y_context, x_query, context_lengths, sums, counts, present, names_mask):
        """TartConfig.ridge_gate = "loo": least squares, at its own scale, instead of the base's scores on the tasks
        where it predicts the labelled points better (`tart.head.rule_choice`). Each task's queries must see
        the same points (a prefix of its context: the ensemble pads tasks of different sizes)."""
        B, q = scores.shape[:2]
        lengths = context_lengths.expand(B, q)
        if (lengths != lengths[:, :1]).any():
            raise ValueError("TartConfig.ridge_gate = 'loo' needs each task's queries to see the same context points")
        out = scores
        for n in lengths[:, 0].unique().tolist():
            rows = (lengths[:, 0] == n).nonzero()[:, 0]
            named = None if names_mask is None else names_mask[rows].any(-1)
            use, scale = choose_least_squares(x_context[rows, :n], y_context[rows, :n], sums[rows, 0], counts[rows, 0],
                                              present[rows, 0], self.config.n_classes, RIDGE_PENALTY, named)
            if not use.any():
                continue
            rows, scale = rows[use], scale[use]
            ridge = ridge_scores(x_context[rows], y_context[rows], x_query[rows], lengths[rows], self.config.n_classes)
            out = out.index_put((rows,), (scale[:, None, None] * ridge).to(scores.dtype).masked_fill(~present[rows], 0.0))
        return out

    @torch.no_grad()
    def _base_view(self, x_context, y_context, x_query, context_lengths, side, n_side: int) -> torch.Tensor:
        """The `base_inputs` columns of every token (B, n_side + k + q, n_classes + 1): the base's class
        probabilities on query tokens, the prequential flag on context tokens, zeros on side tokens."""
        B, k, _ = x_context.shape
        q, C = x_query.shape[1], self.config.n_classes
        scores = initial_base_scores(x_context, y_context, x_query, context_lengths, C, side.x_names, side.names_mask,
                                     side.x_unlabeled, side.unlabeled_mask, self.config.refine_steps,
                                     self.refine_log_temperature.exp(), self.config.max_name_weight / 2,
                                     self.config.max_unlabeled_weight / 2)
        view = x_query.new_zeros(B, n_side + k + q, C + 1)
        view[:, n_side : n_side + k, C] = prequential_flags(x_context, y_context, C, side.x_names, side.names_mask)
        view[:, n_side + k :, :C] = base_probabilities(self.residual_scale * scores, y_context, context_lengths, C,
                                                         side.names_mask)
        return view

    def _side_tokens(self, x_context, x_names, names_mask, x_unlabeled, unlabeled_mask) -> "SideTokens | None":
        """The name and unlabelled tokens of a side-input head (None for a head without them)."""
        if not self.config.side_inputs:
            if x_names is not None or x_unlabeled is not None:
                raise ValueError("this head does not read label names or unlabelled points (config.side_inputs "
                                 "is False): pass them as examples, or use a side-input head")
            return None
        B, n, C = x_context.shape[0], self.config.n_dims, self.config.n_classes
        parts, present = [], []
        if x_names is not None:
            if x_names.shape != (B, C, n):
                raise ValueError(f"x_names must have shape ({B}, {C}, {n}), got {tuple(x_names.shape)}")
            names_mask = torch.ones(B, C, dtype=torch.bool, device=x_names.device) if names_mask is None \
                else names_mask.bool()
            code = torch.eye(C, device=x_names.device, dtype=x_names.dtype).expand(B, C, C)
            flag = torch.tensor([0.0, 1.0, 0.0], device=x_names.device, dtype=x_names.dtype).expand(B, C, 3)
            parts.append(torch.cat([x_names * names_mask[..., None], code, flag], -1))
            present.append(names_mask)
        else:
            names_mask = None
        if x_unlabeled is not None:
            U = x_unlabeled.shape[1]
            if x_unlabeled.dim() != 3 or x_unlabeled.shape[0] != B or x_unlabeled.shape[-1] != n:
                raise ValueError(f"x_unlabeled must have shape ({B}, U, {n}), got {tuple(x_unlabeled.shape)}")
            unlabeled_mask = torch.ones(B, U, dtype=torch.bool, device=x_unlabeled.device) if unlabeled_mask is None \
                else unlabeled_mask.bool()
            flag = torch.tensor([0.0, 0.0, 1.0], device=x_unlabeled.device, dtype=x_unlabeled.dtype).expand(B, U, 3)
            parts.append(torch.cat([x_unlabeled, x_unlabeled.new_zeros(B, U, C), flag], -1))
            present.append(unlabeled_mask)
        else:
            unlabeled_mask = None
        if not parts:
            tokens = x_context.new_zeros(B, 0, n + C + 3)
            return SideTokens(tokens, torch.zeros(B, 0, dtype=torch.bool, device=x_context.device), None, None, None, None)
        return SideTokens(torch.cat(parts, 1), torch.cat(present, 1), x_names, names_mask, x_unlabeled, unlabeled_mask)

    def _label_code(self, y_context: torch.Tensor) -> torch.Tensor:
        if not self.config.multiclass:
            return (2 * y_context.float() - 1)[..., None]
        y = y_context.long()
        if y.numel() and (y.min() < 0 or y.max() >= self.config.n_classes):
            raise ValueError(f"y_context must hold class slots in [0, {self.config.n_classes}), "
                             f"got values in [{int(y.min())}, {int(y.max())}]")
        return F.one_hot(y, self.config.n_classes).float()

    def _check_shapes(self, x_context, y_context, x_query):
        n = self.config.n_dims
        if x_context.dim() != 3 or x_context.shape[-1] != n:
            raise ValueError(f"x_context must have shape (batch, k, {n}), got {tuple(x_context.shape)}")
        if y_context.shape != x_context.shape[:2]:
            raise ValueError(f"y_context must have shape {tuple(x_context.shape[:2])}, got {tuple(y_context.shape)}")
        if x_query.dim() != 3 or x_query.shape[0] != x_context.shape[0] or x_query.shape[-1] != n:
            raise ValueError(
                f"x_query must have shape ({x_context.shape[0]}, q, {n}), got {tuple(x_query.shape)}"
            )

    @torch.inference_mode()
    def predict_proba(self, x_context, y_context, x_query, class_mask=None) -> torch.Tensor:
        """Given all context points: P(y = 1) (B, q) for a binary head; for a multi-class head
        (B, q, n_classes), zero on the slots the task does not use."""
        logits = self(x_context, y_context, x_query, class_mask=class_mask).logits.float()
        return torch.softmax(logits, -1) if self.config.multiclass else torch.sigmoid(logits)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # Checkpoints load from safetensors only: a pickle-only folder is an error, never unpickled.
        kwargs.setdefault("use_safetensors", True)
        if kwargs["use_safetensors"] is not True:
            raise ValueError("TART checkpoints load from safetensors only (use_safetensors=True)")
        # Weights and config must agree exactly: a weight the config does not use (or one it needs and
        # the file lacks) would otherwise load as a different head, silently.
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        if info["missing_keys"] or info["unexpected_keys"]:
            raise ValueError(f"{args[0] if args else 'checkpoint'}: weights and config.json disagree "
                             f"(missing {sorted(info['missing_keys'])}, unused {sorted(info['unexpected_keys'])})")
        return (model, info) if want_info else model


AutoConfig.register("tart", TartConfig)
AutoModel.register(TartConfig, TartReasoningModel)
