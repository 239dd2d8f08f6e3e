"""Write `tart-base`: the side base as a head with no Transformer blocks (issue 25).

Its answer is the side base alone (`tart.head.model.side_mean_scores`): class means in which each label's
name counts as 2 examples, refined by 2 rounds of soft k-means over the unlabelled texts (each 1
example), on a projection standardised by shrunk scales and whitened with shrinkage 1, each name at the texts' mean
norm (zero-shot: the nearest name by cosine), its logits times 200 / n, n = examples + 2 per name (without
unlabelled texts 15 / sqrt(n)), so that its probabilities are neither far too soft nor, without a pool, too
sure (scripts/base_calibration.py): the settings chosen
on the dev suite (`python -m tart.evaluate.weight_oracle`, README issue 25). Where a task's own labelled points
say least squares predicts them better (leave-one-out; `ridge_gate = "loo"`, `tart.head.rule_choice`), least
squares answers instead: TART's linear tasks, not text. Where the task has unlabelled texts and labelled
examples, TartClassifier blends its answer with label spreading over the task's own embeddings, 0.4 of it
(`propagation`, `tart.head.propagation`), and raises the blend to the task's own temperature, read by
leave-one-out on its labelled points (`loo_temperature`, `tart.head.task_temperature`). Nothing is trained: n_layer = 0,
the read-in and read-out are zero, so it serves wherever a head does (TartClassifier, the service, the
pipeline, `tart classify`). Its config.json and model.safetensors are written to the folder given.

    python scripts/build_base_head.py checkpoints/tart-base
"""
from __future__ import annotations

import sys

import torch

from tart.head.model import TartConfig, TartReasoningModel

BASE = dict(n_dims=64, n_embd=128, n_layer=0, n_head=4, max_examples=128, n_classes=10, residual="nearest-mean",
            side_inputs=True, refine_steps=2, max_name_weight=4.0, max_unlabeled_weight=2.0,
            learn_base_weights=False, shrunk_std=True, projection_shrinkage=1.0, name_norm="texts",
            base_scale_per_example=200.0, base_scale_no_pool=15.0, ridge_gate="loo", propagation=0.4,
            propagation_alpha=0.5, propagation_neighbours=10, loo_temperature=0.5)


def base_head() -> TartReasoningModel:
    model = TartReasoningModel(TartConfig(**BASE))
    with torch.no_grad():
        for p in (model.read_in.weight, model.read_in.bias, model.read_out.weight, model.read_out.bias):
            p.zero_()
    return model.eval()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.split("\n\n")[-1].strip())
    base_head().save_pretrained(sys.argv[1])
