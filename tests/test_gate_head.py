"""tart-gate: tart-base's class means, and a Transformer that reads the task and gives a least-squares rule
its share of the answer (TartConfig.ridge_rule, gates_only). Its base is tart-base's to the last setting;
zero-shot it answers as tart-base; on TART's synthetic tasks it takes least squares (as tart-base's own
leave-one-out choice does, TartConfig.ridge_gate; tart-gate predates it and has none)."""
import copy

import numpy as np
import torch

from tart.classifier import TartClassifier
from tart.evaluate.synthetic import head_accuracy, sample_eval_tasks
from tart.head.load import load_head

BASE_SETTINGS = ("n_dims", "n_classes", "residual", "side_inputs", "refine_steps", "max_name_weight",
                 "max_unlabeled_weight", "learn_base_weights", "shrunk_std", "projection_shrinkage", "name_norm",
                 "base_scale_per_example", "base_scale_no_pool")


def test_tart_gate_is_tart_base_with_a_gate():
    gate, base = load_head("tart-gate"), load_head("tart-base")
    assert gate.config.ridge_rule and gate.config.gates_only and gate.config.n_layer > 0
    assert {s: getattr(gate.config, s) for s in BASE_SETTINGS} == {s: getattr(base.config, s) for s in BASE_SETTINGS}
    for name in ("residual_scale", "refine_log_temperature"):  # the base's scale and refinement as tart-base's
        torch.testing.assert_close(getattr(gate, name), getattr(base, name), msg=name)


def test_with_names_alone_it_answers_as_tart_base():
    """No labelled example: least squares has nothing to fit, its share is 0, every member is the base."""
    rng = np.random.default_rng(0)
    names, pool, queries = rng.normal(size=(3, 20)), rng.normal(size=(30, 20)), rng.normal(size=(50, 20))
    labels = {0: "zero", 1: "one", 2: "two"}
    probas = [TartClassifier(head=h, embedder=None, label_names=labels)
              .fit([], [], unlabeled=pool, name_vectors=names).predict_proba(queries) for h in ("tart-gate", "tart-base")]
    np.testing.assert_allclose(probas[0], probas[1], atol=1e-5)


def test_on_tarts_synthetic_tasks_it_takes_least_squares():
    """Class means trail a discriminative rule on TART's noise-free linear tasks (0.824 at k = 64 on 2000 tasks);
    the gate gives least squares the answer there, as tart-base's leave-one-out choice now does without one."""
    tasks = sample_eval_tasks(200, 64, 50, d=16, n_dims=64, alpha=10.0, seed=7)
    means_only = copy.deepcopy(load_head("tart-base"))  # load_head's heads are shared: change a copy
    means_only.config.ridge_gate = "none"
    gate = head_accuracy(load_head("tart-gate"), tasks, ks=(64,))[0][64]
    means = head_accuracy(means_only, tasks, ks=(64,))[0][64]
    chosen = head_accuracy(load_head("tart-base"), tasks, ks=(64,))[0][64]
    assert gate > means + 0.025, (gate, means)
    assert abs(chosen - gate) < 0.01, (chosen, gate)
