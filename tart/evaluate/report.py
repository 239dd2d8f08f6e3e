"""A `tart evaluate` report's pieces: per-(method, k) results, the Markdown table, the plot, and
per-prediction records (the input of `tart analyze slices`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PROMPT_NOTES = ("icl", "icl-cal")  # methods that report their prompt length and truncation


def summarize(method: str, k: int, run: dict, notes: list, n_seeds: int) -> dict:
    """One result entry from a (method, k)'s runs: accuracies, mean, sample std, seconds; `seeds_run`
    when the method could not run on some seeds' support sets (mean None when on none)."""
    accs = run["accs"]
    if not accs:
        return {"method": method, "k": k, "mean": None, "std": None, "accs": [], "seconds": None,
                "embed_seconds": None, "seeds_run": []}
    entry = {"method": method, "k": k, "mean": float(np.mean(accs)),
             "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,  # sample std over seeds
             "accs": accs, "seconds": float(np.mean(run["seconds"])),
             "embed_seconds": float(np.mean(run["embed_seconds"]))}
    if len(accs) < n_seeds:  # some seeds' support sets did not suit the method (see the notes)
        entry["seeds_run"] = run["seeds"]
    if method in PROMPT_NOTES:
        dropped = [x["dropped"] for x in run["extra"]]
        entry["prompt_tokens"] = float(np.mean([x["prompt"] for x in run["extra"]]))
        if any(dropped):
            entry["note"] = (f"prompt truncated from the left in {sum(d > 0 for d in dropped)}/{len(accs)} "
                             f"runs (up to {max(dropped)} of {k} examples dropped)")
            notes.append(f"{method} k={k}: {entry['note']}")
    return entry


def jsonable(value):
    """numpy scalars (labels from sklearn data or predict) as plain Python values."""
    return value.item() if isinstance(value, np.generic) else value


def write_predictions(records: list[dict], path) -> None:
    """One JSON object per line (the input of `tart analyze slices`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def plot_report(report: dict, path) -> None:
    """Accuracy vs k, one line per method, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for method in dict.fromkeys(r["method"] for r in report["results"]):
        rows = [r for r in report["results"] if r["method"] == method and r["mean"] is not None]
        ax.errorbar([r["k"] for r in rows], [r["mean"] for r in rows], yerr=[r["std"] for r in rows],
                    marker="o", capsize=3, label=method)
    ax.set_xscale("log", base=2)
    ax.set_xticks(report["ks"], [str(k) for k in report["ks"]])
    ax.set_xlabel("k (labelled examples)")
    ax.set_ylabel(f"accuracy ({report['test_size']} test examples)")
    ax.set_title(f"{report['dataset']} · {report['embedder'] or 'vectors'} · {report['seeds']} seeds", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(report: dict) -> str:
    """A Markdown table: one row per method, mean ± std per k."""
    ks = report["ks"]
    lines = ["| method | " + " | ".join(f"k={k}" for k in ks) + " | s/run |",
             "|---|" + "---|" * (len(ks) + 1)]
    for method in dict.fromkeys(r["method"] for r in report["results"]):
        rows = {r["k"]: r for r in report["results"] if r["method"] == method}
        cells = [f"{rows[k]['mean']:.3f} ± {rows[k]['std']:.3f}" if rows[k]["mean"] is not None else "–" for k in ks]
        secs = np.mean([rows[k]["seconds"] for k in ks if rows[k]["seconds"] is not None] or [np.nan])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {secs:.2f} |")
    return "\n".join(lines)
