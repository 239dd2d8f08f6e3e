"""tart analyze slices: synthetic slice discovery + routing, rule slices, bad input, CLI end to end."""
import csv
import json

import numpy as np
import pytest

from tart.analysis.slices import Outcomes, analyze, load_outcomes, route, rule_slices, run
from tart.cli import main


def _write_data(path, n=200, s_rows=40):
    """Rows 0..s_rows-1 carry tag S; every row also carries one of t0..t3."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "tags"])
        for i in range(n):
            tags = (["S"] if i < s_rows else []) + [f"t{i % 4}"]
            w.writerow([f"example number {i}", "yes" if i % 2 else "no", ";".join(tags)])


def _write_predictions(path, dataset, outcome, n=200, seeds=(0, 1), methods=("a", "b")):
    """outcome(method, seed, i) -> correct; labels as in _write_data."""
    with path.open("w") as f:
        for m in methods:
            for seed in seeds:
                for i in range(n):
                    y = "yes" if i % 2 else "no"
                    ok = outcome(m, seed, i)
                    f.write(json.dumps({"dataset": str(dataset), "seed": seed, "k": 8, "method": m, "index": i,
                                        "label": y, "prediction": y if ok else "other", "correct": ok}) + "\n")


def _a_on_s(m, seed, i):
    """A is right exactly on S (rows < 40); B is right on 30% of S and 90% elsewhere."""
    return i < 40 if m == "a" else (i % 10 < 3 if i < 40 else i % 10 != 0)


@pytest.fixture
def synthetic(tmp_path):
    data = tmp_path / "tagged.csv"
    _write_data(data)
    preds = tmp_path / "preds.jsonl"
    _write_predictions(preds, data, _a_on_s)
    return data, preds


def test_synthetic_slice_found_flagged_and_routed(synthetic):
    data, preds = synthetic
    report = run([preds], tags_column="tags", rules=[])
    assert report["models"] == ["a@k8", "b@k8"] and report["n_items"] == 400 and report["n_rows"] == 200
    slices = {s["name"]: s for s in report["slices"]}
    assert list(slices) == ["tag:S", "tag:t0", "tag:t1", "tag:t2", "tag:t3"]
    s = slices["tag:S"]
    assert s["size"] == 80 and s["rows"] == 40
    assert s["accuracy"]["a@k8"] == 1.0 and s["accuracy"]["b@k8"] == pytest.approx(0.3)
    assert s["gain"]["a@k8"] == pytest.approx(0.7) and s["flagged"]["a@k8"] and s["p_holm"]["a@k8"] < 1e-6
    per_model = {m["model"]: m for m in report["per_model"]}
    assert per_model["a@k8"]["strong_slices"] == ["tag:S"]      # the analysis finds S, and only S, for A
    assert "tag:S" in per_model["b@k8"]["weak_slices"] and "tag:S" not in per_model["b@k8"]["strong_slices"]
    # routing: A's accuracy on S (1.0), B's elsewhere (0.9)
    assert s["router_accuracy"] == 1.0
    elsewhere = (1.0 * 80 + 0.9 * 320) / 400
    assert report["routing"]["accuracy"] == pytest.approx(elsewhere)
    assert report["routing"]["choices"] == {"a@k8": 80, "b@k8": 320}
    assert report["routing"]["single"] == {"a@k8": pytest.approx(0.2), "b@k8": pytest.approx((24 + 288) / 400)}
    assert report["routing"]["oracle"] == pytest.approx(elsewhere)
    assert report["routing"]["best_single"] == "b@k8" and report["routing"]["gain_over_best"] > 0.1


def test_routing_does_not_use_the_gold_label(tmp_path):
    data = tmp_path / "tagged.csv"
    _write_data(data)
    preds = tmp_path / "preds.jsonl"
    _write_predictions(preds, data, lambda m, seed, i: (i % 2 == 1) == (m == "a") or i % 5 == 0)
    report = run([preds], rules=["label"])
    slices = {s["name"]: s for s in report["slices"]}
    assert slices["label:yes"]["accuracy"]["a@k8"] == 1.0 and slices["label:no"]["accuracy"]["b@k8"] == 1.0
    r = report["routing"]
    # no slice to route on: every item goes to the best single model (a tie: the first)
    assert r["slices_used"] == [] and r["choices"] == {"a@k8": 400, "b@k8": 0}
    assert r["accuracy"] == r["best_single_accuracy"] == pytest.approx(0.6) and r["oracle"] == 1.0


def test_wilcoxon_across_slices_flags_a_consistent_winner():
    rng = np.random.default_rng(0)
    n, n_slices = 500, 10
    correct = np.stack([rng.random(n) < 0.9, rng.random(n) < 0.5])
    outcomes = Outcomes("toy", ["good", "bad"], [(0, i) for i in range(n)], [0] * n, correct)
    slices = {f"s{j}": np.arange(n) % n_slices == j for j in range(n_slices)}
    report = analyze(outcomes, slices)
    good, bad = report["per_model"]
    assert good["flagged"] and good["wilcoxon_p"] < 0.01 and good["mean_gain"] > 0.3
    assert bad["flagged"] and bad["mean_gain"] < -0.3
    assert report["pairs"] == [{"a": "good", "b": "bad", "mean_diff": pytest.approx(good["mean_gain"]),
                                "wilcoxon_p": pytest.approx(good["wilcoxon_p"]), "flagged": True}]
    # 5 slices can never reach p < 0.01 (exact two-sided minimum 2 / 2**5)
    few = analyze(outcomes, {k: v for k, v in list(slices.items())[:5]})
    assert not few["per_model"][0]["flagged"] and few["per_model"][0]["wilcoxon_p"] == pytest.approx(2 / 32)


def test_route_leaves_out_every_item_of_the_same_row():
    # one slice; row 0 was evaluated under 4 seeds and only model 0 got it right; rows 1 and 2 only
    # model 1. Leaving out just the item, row 0's 3 other copies would make model 0 look best (3/5 vs
    # 2/5); leaving out the whole row, model 1 is (2/2 vs 0/2).
    correct = np.array([[1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=bool)
    rows = np.array([0, 0, 0, 0, 1, 2])
    assert route(correct, np.ones((6, 1), dtype=bool), rows).tolist() == [1, 1, 1, 1, 0, 0]
    # items in no slice go to the best model over all items (model 0: 4/6)
    assert route(correct, np.zeros((6, 1), dtype=bool), rows).tolist() == [0] * 6


def test_rule_slices_on_known_texts():
    texts = ["I do not know", "There are 3 cats and two dogs", "Is it NASA?", "plain words here and nothing else",
             "we can't", "one apple"]
    out, bounds = rule_slices(texts, ["a", "b", "a", "b", "a", "b"])
    assert bounds == pytest.approx(list(np.quantile([4, 7, 3, 6, 2, 2], [1 / 3, 2 / 3])))
    assert out[0] == {"negation", "length:medium", "label:a"}
    assert out[1] == {"number", "length:long", "label:b"}
    assert out[2] == {"question", "uppercase", "length:medium", "label:a"}  # 3 words: q1 = 2.67
    assert out[3] == {"negation", "length:long", "label:b"}          # "nothing"
    assert out[4] == {"negation", "length:short", "label:a"}         # "n't"
    assert out[5] == {"length:short", "label:b"}                     # "one" is not a number word here
    assert rule_slices(texts, [0] * 6, ["question"])[0][2] == {"question"}
    with pytest.raises(ValueError, match="unknown rule.*sarcasm"):
        rule_slices(texts, [0] * 6, ["sarcasm"])


def test_bad_input(synthetic, tmp_path):
    data, preds = synthetic
    with pytest.raises(ValueError, match="column 'topics' not found; columns found: text, label, tags"):
        run([preds], tags_column="topics", rules=[])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no predictions"):
        run([empty])
    partial = tmp_path / "partial.jsonl"
    _write_predictions(partial, data, _a_on_s, methods=("c",), seeds=(0,))
    with pytest.raises(ValueError, match="not scored on the same examples"):
        load_outcomes([f"x={preds}", f"y={partial}"])
    with pytest.raises(ValueError, match="no slice left"):
        run([preds], tags_column="tags", rules=[], min_size=1000)
    with pytest.raises(ValueError, match="at least two models"):
        run([preds], models=["a@k8"])
    with pytest.raises(ValueError, match="unknown model.*available: a@k8, b@k8"):
        run([preds], models=["a@k8", "z@k8"])
    with pytest.raises(ValueError, match="no predictions with k in \\[16\\]; the files have k = \\[8\\]"):
        run([preds], ks=[16])
    with pytest.raises(ValueError, match="no slices asked for"):
        run([preds], rules=[])
    with pytest.raises(ValueError, match="do not match"):
        run([preds], data="wordnet-animal-food", rules=["label"])
    with pytest.raises(ValueError, match="share a name"):
        load_outcomes([preds, preds])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"dataset": "x", "seed": 0}) + "\n")
    with pytest.raises(ValueError, match="missing k, method, index, label, correct"):
        load_outcomes([bad])


def test_cli_end_to_end_on_bundled_data_with_the_default_embedder(tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    assert main(["evaluate", "--data", "wordnet-animal-food", "--methods", "tart,logreg,centroid",
                 "--k", "8", "--seeds", "2", "--test-size", "20", "--threads", "1", "--quiet",
                 "--json", str(tmp_path / "eval.json"), "--predictions", str(preds)]) == 0
    out_json, out_png = tmp_path / "slices.json", tmp_path / "slices.png"
    assert main(["analyze", "slices", "--predictions", str(preds), "--json", str(out_json),
                 "--plot", str(out_png)]) == 0
    report = json.loads(out_json.read_text())
    assert report["models"] == ["tart@k8", "logreg@k8", "centroid@k8"] and report["n_items"] == 40
    names = [s["name"] for s in report["slices"]]
    assert {"length:short", "length:long", "label:animal", "label:food"} <= set(names)
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    means = {r["method"]: r["mean"] for r in evaluated["results"]}
    for model, acc in report["routing"]["single"].items():   # same items, same accuracy as tart evaluate
        assert acc == pytest.approx(means[model.split("@")[0]])
    r = report["routing"]
    assert max(r["single"].values()) <= r["oracle"] and 0 <= r["accuracy"] <= r["oracle"]
    assert out_png.stat().st_size > 10_000
    assert "| length:short |" in capsys.readouterr().out
    # two files: models are prefixed with their names; a missing column is a clean exit 2
    assert main(["analyze", "slices", "--predictions", f"one={preds}", f"two={preds}", "--models",
                 "one/tart@k8,two/logreg@k8", "--rules", "label", "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["models"] == ["one/tart@k8", "two/logreg@k8"]
    assert main(["analyze", "slices", "--predictions", str(preds), "--tags-column", "tags"]) == 2
    assert "column 'tags' not found; columns found: text, label" in capsys.readouterr().err
