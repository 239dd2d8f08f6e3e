"""Surgery on a trained head: start a new `TartReasoningModel` from one of another shape.

- `warm_start`: copy a trained head into a new one that is the same, has a residual added, or is
  wider (more inputs or the base's view as inputs, or a binary head's label turned into label slots), so that it starts out
  answering as the old one did;
- `spread_label_slots`: give label slots that share a code (as a widened binary head's do) codes of
  their own, so that training can tell them apart.

`tart train` uses both for `init_from` (training/train.py); they change the new head in place and only
read the trained one, which may be the shared copy `tart.head.load.load_head` returns.
"""
from __future__ import annotations

import torch

from tart.head.model import TartReasoningModel


@torch.no_grad()
def warm_start(model: TartReasoningModel, source: TartReasoningModel, name: str) -> None:
    """Start from a trained head. Same shape: copy everything (a head with a `residual` may start from
    one without, or with another). A multi-class head into one with a wider input (n_dims, or
    `base_inputs` added): the new input columns start at zero. A binary head into a wider or
    multi-class one: copy the blocks; the old input columns go to the first n_dims inputs; the +-1
    label column becomes label slots with alternating signs and the one logit becomes alternating
    +-logit/2, so on slots (2i, 2i+1) the new head starts out computing exactly the old one."""
    new, old = model.config, source.config
    target, given = model.state_dict(), source.state_dict()
    if new.ridge_rule and not old.ridge_rule:  # the ridge rule is new: its gate's read-out row and scale fresh
        given = {key: torch.cat([v, target[key][-1:]]) if key.startswith("read_out") else v for key, v in given.items()}
        given["ridge_log_scale"] = target["ridge_log_scale"]
    if all(k in target and target[k].shape == v.shape for k, v in given.items()):
        # same shape; only a new head's residual_scale (starting at 1) may be missing from the old one
        missing = model.load_state_dict(given, strict=False).missing_keys
        if set(missing) - {"residual_scale"}:
            raise ValueError(f"init_from {name!r} lacks {sorted(missing)}")
        spread_label_slots(model)
        return
    same_trunk = (new.n_embd, new.n_layer, new.n_head, new.mlp_ratio) == (old.n_embd, old.n_layer, old.n_head, old.mlp_ratio)
    narrower = new.n_dims < old.n_dims or (old.base_inputs and not new.base_inputs)
    if not same_trunk or narrower or (old.multiclass and new.n_classes != old.n_classes):
        raise ValueError(f"init_from {name!r} does not match [model]: a head can only be widened (same n_embd, "
                         "n_layer, n_head, mlp_ratio; n_dims may grow, and n_classes if the head is binary; "
                         "base_inputs may be added)")
    w_in, w_out = source.read_in.weight, source.read_out.weight
    if old.multiclass and new.side_inputs and not old.side_inputs:
        _add_side_inputs(model, source)
        return
    if old.multiclass:  # wider input only (n_dims, base_inputs): new columns start at zero, the head unchanged
        model.load_state_dict({k: v for k, v in given.items() if not k.startswith("read_in.")}, strict=False)
        model.read_in.weight.zero_()
        model.read_in.weight[:, : old.n_dims] = w_in[:, : old.n_dims]
        model.read_in.weight[:, new.n_dims : new.n_dims + old.n_inputs - old.n_dims] = w_in[:, old.n_dims :]
        model.read_in.bias.copy_(source.read_in.bias)
        return
    state = {k: v for k, v in given.items() if not k.startswith(("read_in", "read_out"))}
    model.load_state_dict(state, strict=False)
    model.read_in.weight.zero_()
    model.read_in.weight[:, : old.n_dims] = w_in[:, : old.n_dims]
    signs = torch.tensor([1.0 if c % 2 == 0 else -1.0 for c in range(new.label_width)])
    label_cols = slice(new.n_dims, new.n_dims + new.label_width)
    model.read_in.weight[:, label_cols] = w_in[:, old.n_dims : old.n_dims + 1] * signs
    model.read_in.weight[:, -1] = w_in[:, -1]
    model.read_in.bias.copy_(source.read_in.bias)
    scale = 0.5 if new.multiclass else 1.0
    model.read_out.weight.copy_(signs[:, None] * w_out * scale)
    model.read_out.bias.copy_(signs * source.read_out.bias * scale)
    spread_label_slots(model)


@torch.no_grad()
def _add_side_inputs(model: TartReasoningModel, source: TartReasoningModel) -> None:
    """A multi-class head into a side-input one (n_dims may grow): the old input columns (features,
    label slots, query flag) keep their weights, the name / unlabelled flags start at zero, and so do the
    two new read-out rows (the base's name weight 1, unlabelled weight 1/2). So a name token starts out
    read as one more labelled example of its class."""
    new, old = model.config, source.config
    model.load_state_dict({k: v for k, v in source.state_dict().items() if not k.startswith(("read_in", "read_out"))},
                          strict=False)
    w_in = source.read_in.weight
    C = new.n_classes
    model.read_in.weight.zero_()
    model.read_in.weight[:, : old.n_dims] = w_in[:, : old.n_dims]
    model.read_in.weight[:, new.n_dims : new.n_dims + C + 1] = w_in[:, old.n_dims : old.n_dims + C + 1]
    model.read_in.bias.copy_(source.read_in.bias)
    model.read_out.weight.zero_()
    model.read_out.bias.zero_()
    model.read_out.weight[:C] = source.read_out.weight
    model.read_out.bias[:C] = source.read_out.bias


@torch.no_grad()
def spread_label_slots(model: TartReasoningModel, seed: int = 0) -> bool:
    """Give duplicated label slots codes of their own. A slot whose input column and output row point
    the same way as an earlier slot's stays its twin under training, since the prior treats every slot
    alike: stages 1-2 of tart-prior were trained that way and told only 2 of their 10 slots apart.
    Each duplicate gets a random component as large as its shared one; the first slot of each
    direction (slots 0 and 1 after `warm_start`, +code and -code) is left exact. Returns whether
    anything changed."""
    if not model.config.multiclass:
        return False
    n = model.config.n_dims
    codes = model.read_in.weight[:, n : n + model.config.n_classes]
    rows = model.read_out.weight
    unit = codes / codes.norm(dim=0, keepdim=True).clamp_min(1e-12)
    same = (unit.T @ unit) > 0.99
    twins = [c for c in range(codes.shape[1]) if same[c, :c].any()]
    if not twins:
        return False
    gen = torch.Generator().manual_seed(seed)
    for c in twins:
        codes[:, c] += torch.randn(codes.shape[0], generator=gen) * codes[:, c].norm() / codes.shape[0] ** 0.5
        rows[c] += torch.randn(rows.shape[1], generator=gen) * rows[c].norm() / rows.shape[1] ** 0.5
    return True
