"""The evaluation harness and its baselines: report shape, splits, errors, vectors, ICL, CLI."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import argparse
import csv
import json

import numpy as np
import pytest
import torch

from tart.cli import build_parser
from tart.methods.probes import CentroidClassifier, LogRegProbe
from tart.methods.prompting import ICLClassifier, load_causal_lm
from tart.lm.embedder import load_embedder
from tart.evaluate import evaluate, load_eval_data
from tart.evaluate.report import format_table
from tart.evaluate.splits import draw as _draw
from tart.head.model import TartConfig, TartReasoningModel

torch.set_num_threads(1)  # much faster than 2 when another job keeps the cores busy

ANIMALS = ["the dog barked at the mailman", "a cat chased the mouse", "the horse galloped across the field",
           "a cow grazed in the meadow", "the parrot repeated every word", "a fox crept into the henhouse",
           "the rabbit hid in its burrow", "an owl hooted at night", "the sheep huddled in the rain",
           "a goat climbed the rocky hill", "the duck swam across the pond", "a wolf howled at the moon"]
FINANCE = ["stocks fell sharply on wall street", "the central bank raised interest rates",
           "bond yields climbed after the report", "the company posted quarterly earnings",
           "investors sold shares in the bank", "the dollar weakened against the euro",
           "inflation rose faster than expected", "the fund lost money on its bets",
           "markets rallied after the merger news", "the firm filed for bankruptcy",
           "credit card debt hit a record", "the budget deficit widened this year"]


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("head")
    torch.manual_seed(0)
    TartReasoningModel(TartConfig(n_embd=32, n_layer=1, n_head=2)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "animals-finance.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "topic"])
        for a, b in zip(ANIMALS, FINANCE):
            w.writerows([[a, "animal"], [b, "finance"]])
    return path


@pytest.fixture(scope="module")
def mini():
    return load_embedder("minilm-l6", progress=False)


def test_text_report_keys_and_shapes(csv_path, head_dir, mini):
    data = load_eval_data(str(csv_path), "sentence", "topic")
    report = evaluate(data, ks=[2, 4], seeds=2, methods=["tart", "logreg", "centroid", "icl"],
                      embedder=mini, checkpoint=head_dir, test_size=8, progress=False)
    assert {"dataset", "embedder", "checkpoint", "test_size", "results"} <= set(report)
    assert report["dataset"] == "animals-finance" and report["embedder"] == "minilm-l6"
    assert report["test_size"] == 8 and report["ks"] == [2, 4] and report["classes"] == ["animal", "finance"]
    assert any("icl skipped: minilm-l6 is not a causal LM" in n for n in report["notes"])
    assert [(r["method"], r["k"]) for r in report["results"]] == [
        (m, k) for m in ("tart", "logreg", "centroid") for k in (2, 4)]
    for r in report["results"]:
        assert {"method", "k", "mean", "std", "accs", "seconds"} <= set(r)
        assert len(r["accs"]) == 2 and all(0 <= a <= 1 for a in r["accs"])
        assert r["mean"] == pytest.approx(np.mean(r["accs"])) and r["seconds"] >= 0
    centroid = {r["k"]: r["mean"] for r in report["results"] if r["method"] == "centroid"}
    assert centroid[4] >= 0.75  # two well-separated topics
    json.dumps(report)  # serialisable as is
    assert "| tart |" in format_table(report)


def test_tart_reads_names_and_the_test_texts_as_the_library_does(csv_path, head_dir, mini):
    """`tart` is the default TartClassifier on the split: label names, and the test texts as unlabelled
    pool (where `tart classify` reads its corpus); `tart-nopool` the same without the pool."""
    from tart.classifier import TartClassifier
    from tart.data.label_names import name_texts

    data = load_eval_data(str(csv_path), "sentence", "topic")
    predictions = []
    evaluate(data, ks=[4], seeds=1, methods=["tart", "tart-nopool"], embedder=mini, checkpoint=head_dir,
             test_size=8, progress=False, predictions=predictions)
    (supports, test), = [_draw(data, [4], 0, 8, [])]
    texts, labels = [data.texts[i] for i in supports[4]], [data.labels[i] for i in supports[4]]
    queries = [data.texts[i] for i in test]
    clf = TartClassifier(head=head_dir, embedder=mini, random_state=0)
    for method, pool in (("tart", queries), ("tart-nopool", None)):
        expected = clf.fit(texts, labels, unlabeled=pool).predict(queries)
        assert [p["prediction"] for p in predictions if p["method"] == method] == list(expected)
    assert name_texts(labels) == ["animal", "finance"]


def test_supports_balanced_and_test_set_shared_across_k():
    data = load_eval_data("wordnet-6way")
    notes = []
    for seed in (0, 1):
        supports, test = _draw(data, [6, 12, 30], seed, test_size=50, notes=notes)
        assert len(test) == 50 and len(set(test)) == 50
        for k, sup in supports.items():
            assert len(sup) == k and not set(sup) & set(test)
            counts = np.unique([data.labels[i] for i in sup], return_counts=True)[1]
            assert len(counts) == 6 and counts.max() - counts.min() <= 1
    assert _draw(data, [6, 30], 0, 50, [])[1] == _draw(data, [12, 30], 0, 50, [])[1]  # test set depends on seed only
    assert _draw(data, [6], 0, 50, [])[1] != _draw(data, [6], 1, 50, [])[1]
    assert not notes


def test_the_leave_one_out_alias_is_reported_as_loo(csv_path, mini):
    data = load_eval_data(str(csv_path), "sentence", "topic")
    report = evaluate(data, ks=[2], seeds=1, methods=["centroid"], embedder=mini, test_size=4,
                      embedding_mode="leave-one-out", progress=False)
    assert report["embedding_mode"] == "loo"
    with pytest.raises(ValueError, match="mode must be one of"):
        evaluate(data, ks=[2], seeds=1, methods=["centroid"], embedder=mini, embedding_mode="loo2", progress=False)


def test_errors_name_the_problem(head_dir, mini):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_eval_data("no-such-dataset")
    with pytest.raises(ValueError, match="unknown dataset 'sklearn:diabetes'.*sklearn:iris"):
        load_eval_data("sklearn:diabetes")
    with pytest.raises(ValueError, match="digits-3-8"):
        load_eval_data("sklearn:digits-3-3")
    data = load_eval_data("sklearn:wine")
    with pytest.raises(ValueError, match="unknown method.*bogus"):
        evaluate(data, ks=[4], seeds=1, methods=["tart", "bogus"], checkpoint=head_dir, progress=False)
    with pytest.raises(ValueError, match="fewer than"):  # wine's smallest class has 48 examples
        evaluate(data, ks=[160], seeds=1, methods=["logreg"], progress=False)
    with pytest.raises(ValueError, match="no method left"):
        evaluate(load_eval_data("wordnet-animal-food"), ks=[4], seeds=1, methods=["icl"], embedder=mini,
                 progress=False)
    with pytest.raises(FileNotFoundError, match="no head checkpoint"):
        evaluate(data, ks=[4], seeds=1, methods=["tart"], checkpoint="no-such-head", progress=False)


def test_sklearn_vectors(head_dir):
    cancer = load_eval_data("sklearn:breast_cancer")
    assert cancer.vectors.shape == (569, 30) and cancer.texts is None
    report = evaluate(cancer, ks=[4, 16], seeds=2, methods=["tart", "logreg", "centroid", "icl"],
                      checkpoint=head_dir, test_size=60, progress=False)
    assert report["embedder"] is None and any("icl skipped" in n for n in report["notes"])
    assert {r["method"] for r in report["results"]} == {"tart", "logreg", "centroid"}
    logreg16 = next(r for r in report["results"] if r["method"] == "logreg" and r["k"] == 16)
    assert logreg16["mean"] > 0.8
    pair = load_eval_data("sklearn:digits-3-8")
    assert sorted(set(pair.labels)) == ["3", "8"]
    pairs = evaluate(load_eval_data("sklearn:digits-pairs"), ks=[4], seeds=2, methods=["centroid"],
                     test_size=20, progress=False)
    assert sum(n.startswith("seed") for n in pairs["notes"]) == 2
    wine = evaluate(load_eval_data("sklearn:wine"), ks=[64], seeds=1, methods=["centroid"], test_size=500,
                    progress=False)
    assert wine["test_size"] == 178 - 64 and any("capped" in n for n in wine["notes"])


def test_cli_writes_json_and_plot(tmp_path, head_dir, capsys):
    parser = build_parser()
    out, png = tmp_path / "r" / "wine.json", tmp_path / "wine.png"
    args = parser.parse_args(["evaluate", "--data", "sklearn:wine", "--k", "3,6", "--seeds", "2",
                              "--checkpoint", head_dir, "--methods", "tart,logreg,centroid", "--test-size", "30",
                              "--json", str(out), "--plot", str(png), "--predictions", str(tmp_path / "p.jsonl"),
                              "--quiet"])
    args.func(args)
    report = json.loads(out.read_text())
    assert report["checkpoint"] and len(report["results"]) == 6
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 3 * 2 * 30  # k values x methods x seeds x test examples
    for r in report["results"]:  # the per-example records reproduce every reported accuracy
        runs = [[x["correct"] for x in rows if (x["method"], x["k"], x["seed"]) == (r["method"], r["k"], s)]
                for s in range(2)]
        assert [float(np.mean(c)) for c in runs] == r["accs"]
    assert {r["prediction"] for r in rows} <= {"class_0", "class_1", "class_2"}
    assert png.stat().st_size > 1000 and "| logreg |" in capsys.readouterr().out


def test_baselines_on_separated_vectors():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (20, 5)) + 3, rng.normal(0, 1, (20, 5)) - 3])
    y = np.array(["a"] * 20 + ["b"] * 20)
    assert (CentroidClassifier().fit(X, y).predict(X) == y).mean() == 1.0
    probe = LogRegProbe().fit(X, y)
    assert (probe.predict(X) == y).mean() == 1.0 and probe.C_ in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    assert LogRegProbe().fit(X[[0, 1, 20, 21]], y[[0, 1, 20, 21]]).C_ == 1.0  # too few for CV


def test_icl_on_smollm2_returns_valid_labels():
    emb = load_embedder("smollm2-135m", progress=False)
    assert emb.is_causal_lm
    icl = ICLClassifier(load_causal_lm(emb), emb.tokenizer)
    icl.fit(["a dog barked", "stocks fell on wall street"], ["animal", "finance"])
    scores = icl.score(["a cat meowed", "the bank raised rates"])
    assert scores.shape == (2, 2) and np.isfinite(scores).all() and (scores < 0).all()
    assert set(icl.predict(["a cat meowed", "the bank raised rates"])) <= {"animal", "finance"}
    assert icl.n_dropped_ == 0
    icl.max_prompt_tokens = len(icl.bos_) + len(icl.examples_[-1])  # room for one example: the oldest goes
    icl.predict(["a cat meowed"])
    assert icl.n_dropped_ == 1


def test_embedder_layer_is_checked(mini):
    with pytest.raises(ValueError, match="layer 7 is out of range.*6 layers"):
        load_embedder("minilm-l6", layer=7, progress=False)
    middle = load_embedder("minilm-l6", layer=3, progress=False).embed(["a cat"])
    assert not np.allclose(middle, mini.embed(["a cat"]))


def test_a_method_that_cannot_run_on_a_support_set_is_noted_not_fatal():
    """comprw needs an example of each class beside its prompt: with 6 classes and k = 8 some seeds'
    support sets have a class seen once. The run goes on; the report says which seeds ran."""
    from tart.evaluate.report import format_table

    data = load_eval_data("wordnet-6way")
    emb = load_embedder("smollm2-135m", progress=False)
    report = evaluate(data, ks=[6], seeds=1, methods=["centroid", "comprw"], embedder=emb, test_size=6,
                      progress=False)
    comprw = next(r for r in report["results"] if r["method"] == "comprw")
    assert comprw["mean"] is None and comprw["seeds_run"] == []
    assert any(n.startswith("comprw k=6 seed 0: not run:") and "too few" in n for n in report["notes"])
    assert "| comprw | – |" in format_table(report)
    assert next(r for r in report["results"] if r["method"] == "centroid")["mean"] is not None
