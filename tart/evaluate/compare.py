"""`tart compare`: every method × embedder × k over several datasets, on the same seeds and splits.

One `evaluate` report per (embedder, dataset); the summary table averages each (method, embedder, k)
over the datasets it ran on, with its seconds per task (one task = one seed's support set of k and
its test set: the method's own time plus, for vectors methods, the embedding time charged to it).
"""
from __future__ import annotations

import numpy as np

from tart.evaluate.runner import evaluate
from tart.evaluate.splits import load_eval_data


def compare(datasets, embedders, methods, ks=(16, 32, 64), seeds: int = 5, progress: bool = True,
            **options) -> dict:
    """{"datasets", "embedders", "methods", "ks", "seeds", "rows", "reports"}; options go to evaluate."""
    from tart.embeddings import load_embedder

    reports = []
    for name in embedders:
        embedder = load_embedder(name, progress=False)
        for spec in datasets:
            reports.append(evaluate(load_eval_data(spec), ks=ks, seeds=seeds, methods=methods,
                                    embedder=embedder, progress=progress, **options))
    return {"datasets": list(datasets), "embedders": list(embedders), "methods": list(methods),
            "ks": sorted(set(ks)), "seeds": seeds, "rows": summary_rows(reports), "reports": reports}


def summary_rows(reports) -> list[dict]:
    """Per (method, embedder, k): mean accuracy over datasets, seconds per task, datasets counted."""
    cells: dict = {}
    for rep in reports:
        for r in rep["results"]:
            cell = cells.setdefault((r["method"], rep["embedder"], r["k"]), {"acc": [], "sec": [], "data": []})
            cell["acc"].append(r["mean"])
            cell["sec"].append(r["seconds"] + r["embed_seconds"])
            cell["data"].append(rep["dataset"])
    return [{"method": m, "embedder": e, "k": k, "accuracy": float(np.mean(c["acc"])),
             "seconds_per_task": float(np.mean(c["sec"])), "datasets": c["data"]}
            for (m, e, k), c in cells.items()]


def format_comparison(result: dict) -> str:
    """Markdown: one row per (method, embedder), accuracy per k, mean seconds per task."""
    ks = result["ks"]
    lines = ["| method | embedder | " + " | ".join(f"k={k}" for k in ks) + " | s/task | datasets |",
             "|---|---|" + "---|" * (len(ks) + 2)]
    groups: dict = {}
    for row in result["rows"]:
        groups.setdefault((row["method"], row["embedder"]), {})[row["k"]] = row
    for (method, embedder), by_k in groups.items():
        cells = [f"{by_k[k]['accuracy']:.3f}" if k in by_k else "–" for k in ks]
        seconds = np.mean([r["seconds_per_task"] for r in by_k.values()])
        n = len(next(iter(by_k.values()))["datasets"])
        lines.append(f"| {method} | {embedder} | " + " | ".join(cells) + f" | {seconds:.2f} | {n} |")
    return "\n".join(lines)
