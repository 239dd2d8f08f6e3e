"""`tart compare`: the summary table averages each (method, embedder, k) over datasets, and the CLI
writes the JSON and the Markdown table."""
import json

import pytest

from tart.cli import main
from tart.evaluate.compare import OWN_ENCODER, format_comparison, summary_rows


def _report(dataset, embedder, results):
    return {"dataset": dataset, "embedder": embedder,
            "results": [{"method": m, "k": k, "mean": acc, "seconds": s, "embed_seconds": e}
                        for m, k, acc, s, e in results]}


def test_summary_rows_average_datasets_and_add_embedding_time():
    reports = [_report("a", "emb", [("tart", 8, 0.6, 0.1, 1.0), ("setfit", 8, 0.9, 5.0, 0.0)]),
               _report("b", "emb", [("tart", 8, 0.8, 0.3, 1.0), ("setfit", 8, 0.7, 7.0, 0.0)])]
    rows = {(r["method"], r["embedder"], r["k"]): r for r in summary_rows(reports)}
    tart, setfit = rows[("tart", "emb", 8)], rows[("setfit", OWN_ENCODER, 8)]
    assert tart["accuracy"] == pytest.approx(0.7) and tart["seconds_per_task"] == pytest.approx(1.2)
    assert setfit["accuracy"] == pytest.approx(0.8) and setfit["seconds_per_task"] == pytest.approx(6.0)
    assert tart["datasets"] == ["a", "b"]
    table = format_comparison({"ks": [8, 16], "rows": list(rows.values())})
    assert "| tart | emb | 0.700 | – | 1.20 | 2 |" in table


def test_cli_one_table(tmp_path, capsys):
    out, md = tmp_path / "c.json", tmp_path / "c.md"
    assert main(["compare", "--data", "wordnet-animal-food", "--embedders", "minilm-l6", "--methods",
                 "tart,centroid,icl", "--k", "8", "--seeds", "1", "--test-size", "20", "--quiet",
                 "--json", str(out), "--markdown", str(md)]) == 0
    result = json.loads(out.read_text())
    assert [(r["method"], r["k"]) for r in result["rows"]] == [("tart", 8), ("centroid", 8)]
    assert "icl skipped: minilm-l6 is not a causal LM" in result["reports"][0]["notes"]
    assert all(0.6 <= r["accuracy"] <= 1 for r in result["rows"])  # a clear binary task, 20 test texts
    assert md.read_text() == capsys.readouterr().out


def test_merge_recomputes_rows_and_counts_datasets_per_k():
    from tart.evaluate.compare import merge

    one = {"datasets": ["a"], "ks": [8, 16], "reports": [_report("a", "emb", [("comprw", 16, 0.8, 1.0, 0.0)])]}
    two = {"datasets": ["b"], "ks": [8, 16], "reports": [_report("b", "emb", [("comprw", 8, 0.6, 1.0, 0.0),
                                                                               ("comprw", 16, 0.6, 1.0, 0.0)])]}
    merged = merge([one, two])
    assert merged["datasets"] == ["a", "b"] and len(merged["reports"]) == 2
    assert "| comprw | emb | 0.600 | 0.700 | 1.00 | 1 / 2 |" in format_comparison(merged)
