"""scripts/choice_oracle.py: the bounds on choosing among the methods, and its committed output."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("choice_oracle", ROOT / "scripts" / "choice_oracle.py")
choice_oracle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(choice_oracle)


def test_oracles_on_a_small_report():
    """Two tasks, two seeds: the default is best on task a; on task b another method wins one seed."""
    accs = {m: {"a": [0.5, 0.5], "b": [0.6, 0.6]} for m in choice_oracle.CHOICES}
    accs[choice_oracle.DEFAULT] = {"a": [0.9, 0.9], "b": [0.6, 0.6]}
    accs["probe"] = {"a": [0.1, 0.1], "b": [0.8, 0.5]}  # mean 0.65: the per-task choice on b
    report = {"tasks": ["a", "b"], "results": [{"task": t, "method": m, "k": 8, "accs": a[t]}
                                               for m, a in accs.items() for t in ("a", "b")]}
    gains = choice_oracle.oracle_gains(report, 8)
    assert gains["per_task"] == pytest.approx([0.0, 5.0])
    assert gains["per_split"] == pytest.approx([0.0, 10.0])  # seed 0 takes the probe's 0.8, seed 1 the default's 0.6


def test_committed_output_matches_the_reports():
    with open(ROOT / "results" / "dev-suite" / "choice-oracle.json") as f:
        committed = json.load(f)
    for row in committed["rows"]:
        with open(ROOT / choice_oracle.REPORT.format(row["embedder"])) as f:
            gains = choice_oracle.oracle_gains(json.load(f), row["k"])
        assert row["per_task"] == choice_oracle.summary(gains["per_task"])
        assert row["per_split"] == choice_oracle.summary(gains["per_split"])
