"""tart-base, the default head: the side base with no Transformer blocks. The shipped checkpoint is what
scripts/build_base_head.py writes, and through TartClassifier it answers as the dev suite's tuned side
base (`base:side,shrunk_std=1,shrinkage=1,name_weight=2,unlabeled_weight=1`), with one ensemble member, where
its leave-one-out choice of least squares does not apply (tests/test_rule_choice.py)."""
import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

from tart.classifier import TartClassifier
from tart.defaults import DEFAULT_HEAD
from tart.evaluate.dev_suite import SideBase
from tart.head import ensemble
from tart.head.load import load_head
from tart.head.model import TartConfig

ROOT = Path(__file__).parent.parent


def build_script():
    spec = importlib.util.spec_from_file_location("build_base_head", ROOT / "scripts" / "build_base_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_tart_base_is_what_the_build_script_writes():
    shipped, built = load_head("tart-base"), build_script().base_head()
    assert DEFAULT_HEAD == "tart-base"
    drop = {"transformers_version", "dtype", "torch_dtype", "_name_or_path", "architectures"}
    assert {k: v for k, v in shipped.config.to_dict().items() if k not in drop} == \
           {k: v for k, v in built.config.to_dict().items() if k not in drop}
    assert shipped.config.n_layer == 0 and not shipped.config.learn_base_weights
    for (name, a), (_, b) in zip(shipped.state_dict().items(), built.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_tart_base_answers_as_the_tuned_side_base_with_one_member():
    X, y = load_wine(return_X_y=True)
    rng = np.random.default_rng(0)
    # 15 labelled points: too few for its leave-one-out choice of least squares (16), so the base answers
    support = np.concatenate([rng.choice(np.flatnonzero(y == c), 5, replace=False) for c in range(3)])
    rest = np.setdiff1d(np.arange(len(y)), support)
    names = np.stack([X[y == c].mean(0) + rng.normal(scale=X.std(0)) for c in range(3)])  # noisy "names"
    pool = X[rest[:40]]
    base = SideBase(shrunk_std=True, shrinkage=1.0, name_weight=2.0, unlabeled_weight=1.0, name_norm="texts")
    expected = base.fit(X[support], y[support], unlabeled=pool, name_vectors=names).predict(X[rest])
    head = copy.deepcopy(load_head("tart-base"))  # its answer before the blend with label spreading
    head.config.propagation = 0.0
    got = TartClassifier(head=head, embedder=None).fit(X[support], y[support], unlabeled=pool, name_vectors=names).predict(X[rest])
    np.testing.assert_array_equal(got, expected)
    assert (got == y[rest]).mean() > 0.8
    assert len(ensemble.plan(y[support], 3, load_head("tart-base").config, n_members=4)) == 1


def test_tart_base_logits_are_scaled_by_its_examples_weight():
    """base_scale_per_example: logits times 200 / n, n = examples + 2 per named class; without unlabelled
    points (base_scale_no_pool) times 15 / sqrt(n). The answers stay."""
    X, y = load_wine(return_X_y=True)
    X, y = X[y < 2], y[y < 2]
    rng = np.random.default_rng(1)
    support = np.concatenate([rng.choice(np.flatnonzero(y == c), 6, replace=False) for c in range(2)])
    rest = np.setdiff1d(np.arange(len(y)), support)
    names = np.stack([X[y == c].mean(0) for c in range(2)])
    scaled = copy.deepcopy(load_head("tart-base"))  # load_head's heads are shared: change copies
    scaled.config.propagation = 0.0  # the base's own logits, before the blend with label spreading
    scaled.config.loo_temperature = 0.0  # and before the task's own temperature
    unscaled = copy.deepcopy(scaled)
    unscaled.config.base_scale_per_example = unscaled.config.base_scale_no_pool = 0.0
    n = 12 + 2 * 2
    for pool, factor in ((None, 15 / np.sqrt(n)), (X[rest[:20]], 200 / n)):
        probas = [TartClassifier(head=h, embedder=None).fit(X[support], y[support], unlabeled=pool, name_vectors=names)
                  .predict_proba(X[rest]) for h in (scaled, unscaled)]
        log_odds = [np.log(p[:, 1] / p[:, 0]) for p in probas]
        np.testing.assert_allclose(log_odds[0], factor * log_odds[1], rtol=1e-3, atol=1e-3)
        assert (probas[0].argmax(1) == probas[1].argmax(1)).all()
    with pytest.raises(ValueError, match="base_scale_per_example"):
        TartConfig(base_scale_per_example=1.0)
    with pytest.raises(ValueError, match="base_scale_no_pool"):
        TartConfig(n_classes=5, residual="nearest-mean", side_inputs=True, base_scale_no_pool=15.0)
