"""`tart compare`: every method × embedder × k over several datasets, on the same seeds and splits.

One `evaluate` report per (embedder, dataset); the summary table averages each (method, embedder, k)
over the datasets it ran on, with its seconds per task (one task = one seed's support set of k and
its test set: the method's own time plus, for vectors methods, the embedding time charged to it).
Methods that bring their own encoder (setfit) do not depend on the embedder: they run with the
first embedder only, and their rows say "own encoder".
"""
from __future__ import annotations

import numpy as np

from tart import methods as registry
from tart.evaluate.runner import evaluate

OWN_ENCODER = "own encoder"
from tart.evaluate.splits import load_eval_data


def compare(datasets, embedders, methods, ks=(16, 32, 64), seeds: int = 5, progress: bool = True,
            on_report=None, **options) -> dict:
    """{"datasets", "embedders", "methods", "ks", "seeds", "rows", "reports"}; options go to evaluate.
    `on_report(result so far)` is called after each report (to save partial results of long runs)."""
    from tart.lm.embedder import load_embedder

    reports = []

    def result():
        return {"datasets": list(datasets), "embedders": list(embedders), "methods": list(methods),
                "ks": sorted(set(ks)), "seeds": seeds, "rows": summary_rows(reports), "reports": reports}
    for i, name in enumerate(embedders):
        embedder = load_embedder(name, progress=False)
        run = [m for m in methods if i == 0 or registry.get(m).reads != "text"]
        for spec in datasets:
            reports.append(evaluate(load_eval_data(spec), ks=ks, seeds=seeds, methods=run,
                                    embedder=embedder, progress=progress, **options))
            if on_report:
                on_report(result())
    return result()


def summary_rows(reports) -> list[dict]:
    """Per (method, embedder, k): mean accuracy over datasets, seconds per task, datasets counted."""
    cells: dict = {}
    for rep in reports:
        for r in rep["results"]:
            if r["mean"] is None:  # the method could run on none of this dataset's support sets
                continue
            embedder = OWN_ENCODER if registry.get(r["method"]).reads == "text" else rep["embedder"]
            cell = cells.setdefault((r["method"], embedder, r["k"]), {"acc": [], "sec": [], "data": []})
            cell["acc"].append(r["mean"])
            cell["sec"].append(r["seconds"] + r["embed_seconds"])
            cell["data"].append(rep["dataset"])
    return [{"method": m, "embedder": e, "k": k, "accuracy": float(np.mean(c["acc"])),
             "seconds_per_task": float(np.mean(c["sec"])), "datasets": c["data"]}
            for (m, e, k), c in cells.items()]


def merge(results: list[dict]) -> dict:
    """Several compare results (same settings, other datasets) as one: every report, rows recomputed."""
    reports = [rep for r in results for rep in r["reports"]]
    first = results[0]
    return {**first, "datasets": [d for r in results for d in r["datasets"]], "rows": summary_rows(reports),
            "reports": reports}


def format_comparison(result: dict) -> str:
    """Markdown: one row per (method, embedder), accuracy per k, mean seconds per task, and the
    datasets averaged (per k when a method could not run everywhere)."""
    ks = result["ks"]
    lines = ["| method | embedder | " + " | ".join(f"k={k}" for k in ks) + " | s/task | datasets |",
             "|---|---|" + "---|" * (len(ks) + 2)]
    groups: dict = {}
    for row in result["rows"]:
        groups.setdefault((row["method"], row["embedder"]), {})[row["k"]] = row
    for (method, embedder), by_k in groups.items():
        cells = [f"{by_k[k]['accuracy']:.3f}" if k in by_k else "–" for k in ks]
        seconds = np.mean([r["seconds_per_task"] for r in by_k.values()])
        counts = [len(by_k[k]["datasets"]) for k in ks if k in by_k]
        n = str(counts[0]) if len(set(counts)) == 1 else " / ".join(map(str, counts))
        lines.append(f"| {method} | {embedder} | " + " | ".join(cells) + f" | {seconds:.2f} | {n} |")
    return "\n".join(lines)
