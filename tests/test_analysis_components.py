"""tart.analysis.components and tart.methods (decompose, comprw, prompting): the decomposition sums back, per-component
accuracy, reweighting on a planted signal, calibrated ICL, errors, `tart evaluate` and the CLI."""
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from tart.analysis.components import accuracy_grid, component_accuracy, load_lm
from tart.methods.comprw import ComponentReweightingClassifier, fit_component_weights
from tart.methods.decompose import decompose, label_tokens
from tart.methods.prompting import CalibratedICLClassifier, ICLClassifier
from tart.cli import main
from tart.lm.embedder import load_embedder
from tart.evaluate import evaluate, load_eval_data

torch.set_num_threads(1)  # much faster than 2 when other jobs keep the cores busy

EXAMPLES = (["a dog barked at the mailman", "fresh bread with butter", "a cat chased the mouse"],
            ["animal", "food", "animal"])
QUERIES = ["the horse galloped across the field", "pasta with tomato sauce", "an owl hooted at night"]


@pytest.fixture(scope="module")
def smollm():
    return load_lm("smollm2-135m")


def _tiny(kind, vocab):
    """A tiny random model with non-zero biases and norm weights, so every term of the formula matters."""
    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=256,
                                           initializer_range=0.3, bos_token_id=1, eos_token_id=2))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=256, attention_bias=True,
                                             initializer_range=0.3, bos_token_id=1, eos_token_id=2))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "ln" in name or "norm" in name:
                param.normal_(0.5, 0.5)
    return model.eval()


def test_decomposition_sums_back_on_smollm2(smollm):
    lm, tok = smollm
    icl = ICLClassifier(lm, tok).fit(*EXAMPLES)
    dec = decompose(icl, QUERIES)
    assert dec.logits.shape == (3, 1 + 30 * (9 + 1), 2)  # embed + 30 × (9 heads + MLP); no bias terms
    assert dec.components[0] == ("embed", None, None) and dec.components[-1] == ("mlp", 29, None)
    assert np.abs(dec.full).max() > 1.0 and dec.max_error <= 1e-4  # float32
    # the full logits are the model's own: same as a plain forward over prompt + query
    ids = icl._prompt(50) + icl._query_ids(QUERIES[0])
    with torch.inference_mode():
        plain = lm(input_ids=torch.tensor([ids])).logits[0, -1, label_tokens(icl)].numpy()
    assert np.allclose(plain, dec.full[0], atol=1e-3)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_decomposition_sums_back_on_tiny_models(smollm, kind):
    _, tok = smollm
    icl = ICLClassifier(_tiny(kind, len(tok)), tok).fit(*EXAMPLES)
    dec = decompose(icl, QUERIES)
    assert dec.logits.shape == (3, 1 + 2 * (4 + 1) + 1, 2) and dec.components[-1][0] == "bias"
    assert np.abs(dec.logits[:, -1]).max() > 1e-3  # the biases (and GPT-2's ln_f β) contribute
    assert np.abs(dec.full).max() > 0.1 and dec.max_error <= 1e-4


def test_component_accuracy_and_grid():
    y = np.array([0, 1, 1, 0])
    logits = np.zeros((4, 3, 2))
    logits[np.arange(4), 0, y] = 1.0      # component 0: always right
    logits[np.arange(4), 1, 1 - y] = 1.0  # component 1: always wrong
    logits[:, 2, 1] = 1.0                 # component 2: always says class 1
    assert component_accuracy(logits, y).tolist() == [1.0, 0.0, 0.5]
    components = [("embed", None, None)] + [c for l in range(3) for c in
                                            [("head", l, 0), ("head", l, 1), ("mlp", l, None)]]
    acc = np.arange(len(components)) / 10.0
    grid = accuracy_grid(acc, components)
    assert grid.shape == (3, 3) and grid[0, 0] == 0.1 and grid[2, 2] == 0.9  # MLP in the last column


def test_reweighting_learns_a_planted_signal():
    rng = np.random.default_rng(0)
    n, n_components, informative = 60, 8, 5
    y = rng.integers(0, 2, n)
    X = rng.normal(0, 3, (n, n_components, 2))           # loud noise: the sum of all is a poor classifier
    X[:, 2, 0] += 6.0                                     # a label-biased component
    X[:, informative] = 0.0
    X[np.arange(n), informative, y] = 2.0                 # one component that knows the label
    full = (X.sum(1).argmax(1) == y).mean()
    w, epochs = fit_component_weights(X[:40], y[:40])
    assert w.min() >= 0.0 and w.max() <= 1.0 and 1 <= epochs <= 2000
    assert w.argmax() == informative and w[informative] > 0.9 and np.delete(w, informative).max() < 0.5
    reweighted = ((X[40:] * w[:, None]).sum(1).argmax(1) == y[40:]).mean()
    assert full < 0.8 and reweighted == 1.0


def test_reweighting_classifier_on_smollm2(smollm):
    lm, tok = smollm
    texts = EXAMPLES[0] + ["a goat climbed the hill", "rice and beans", "soup with noodles"]
    labels = EXAMPLES[1] + ["animal", "food", "food"]
    rw = ComponentReweightingClassifier(lm, tok, epochs=30).fit(texts, labels)
    assert len(rw.demo_indices_) == 4 and rw.classes_.tolist() == ["animal", "food"]
    assert rw.weights_.shape == (301,) and rw.weights_.min() >= 0 and rw.weights_.max() <= 1
    proba = rw.predict_proba(QUERIES)
    assert proba.shape == (3, 2) and np.allclose(proba.sum(1), 1)
    assert set(rw.predict(QUERIES)) <= {"animal", "food"}
    # more classes than n_demos: one demo per class, the rest train the weights
    labels3 = labels + ["tool", "tool"]
    three = ComponentReweightingClassifier(lm, tok, n_demos=2, epochs=5).fit(
        texts + ["a hammer and nails", "a saw in the shed"], labels3)
    assert three.classes_.tolist() == ["animal", "food", "tool"]
    assert sorted(labels3[i] for i in three.demo_indices_) == ["animal", "food", "tool"]


def test_calibration_makes_the_content_free_input_uniform(smollm):
    lm, tok = smollm
    cal = CalibratedICLClassifier(lm, tok, content_free=("N/A",)).fit(*EXAMPLES)
    proba = cal.predict_proba(["N/A"] + QUERIES)
    assert np.allclose(proba[0], 0.5, atol=1e-6) and np.allclose(proba.sum(1), 1)
    assert abs(cal.p_cf_[0] - 0.5) > 1e-3  # uncalibrated, the model does prefer one label


def test_errors_name_the_problem(smollm, tmp_path):
    lm, tok = smollm
    with pytest.raises(ValueError, match="not a causal LM"):
        load_lm("minilm-l6")
    with pytest.raises(ValueError, match="at least two classes"):
        ComponentReweightingClassifier(lm, tok).fit(["a dog", "a cat"], ["animal", "animal"])
    with pytest.raises(ValueError, match="too few"):
        ComponentReweightingClassifier(lm, tok).fit(["a dog", "bread", "a cat"], ["animal", "food", "animal"])
    with pytest.raises(ValueError, match="label words collide"):
        label_tokens(ICLClassifier(lm, tok).fit(["a", "b"], ["apple pie", "apple tart"]))
    with pytest.raises(ValueError, match="no queries"):
        decompose(ICLClassifier(lm, tok).fit(*EXAMPLES), [])
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\na dog,animal\na cat,animal\na cow,animal\n")
    assert main(["analyze", "components", "--data", str(one_class), "--k", "2", "--n", "1"]) == 2


def test_evaluate_runs_comprw_and_icl_methods():
    data = load_eval_data("wordnet-animal-food")
    smol = load_embedder("smollm2-135m", progress=False)
    report = evaluate(data, ks=[6], seeds=1, methods=["comprw", "icl-cal"], embedder=smol,
                      test_size=3, progress=False)
    assert [r["method"] for r in report["results"]] == ["comprw", "icl-cal"]
    assert all(0.0 <= r["mean"] <= 1.0 and r["seconds"] > 0 for r in report["results"])
    with pytest.raises(ValueError, match="no method left"):  # an encoder cannot run them
        evaluate(data, ks=[6], seeds=1, methods=["comprw", "icl-cal"],
                 embedder=load_embedder("minilm-l6", progress=False), test_size=4, progress=False)


def test_cli_writes_json_and_heatmap(tmp_path, capsys):
    out, png = tmp_path / "c.json", tmp_path / "c.png"
    assert main(["analyze", "components", "--data", "wordnet-animal-food", "--k", "6", "--n", "4",
                 "--epochs", "20", "--threads", "1", "--quiet", "--json", str(out), "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert report["n"] == 4 and report["prompt_examples"] == 4 and report["n_components"] == 301
    assert report["decomposition_max_abs_error"] <= 1e-4
    assert set(report["accuracy"]) == {"comprw", "icl", "icl_cal", "full_model_prompt_examples"}
    assert all(r["accuracy"] > report["full_model_accuracy"] for r in report["better_than_full_model"])
    biased = [r for r in report["components"] if r["label_biased"]]
    assert all(r["accuracy"] in (report["majority_class_accuracy"], 1 - report["majority_class_accuracy"])
               for r in biased)  # one label for every example: the accuracy is that class's share
    assert png.stat().st_size > 10_000 and "components beat the full model" in capsys.readouterr().out
    assert main(["analyze", "components", "--model", "minilm-l6", "--data", "wordnet-animal-food"]) == 2
