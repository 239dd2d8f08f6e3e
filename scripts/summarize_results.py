"""Print Markdown tables from `tart evaluate` JSON reports (as written by scripts/run_evaluations.sh).

    python scripts/summarize_results.py [RESULTS_DIR or JSON files ...]

Reports are grouped by what they hold: vector datasets (no embedder), embedding-mode comparisons
(files under a `modes/` folder) and text results (the rest), one section per embedder, pooled
layer, head and embedding mode, plus each other layer, head or mode against the default (last
layer, tart-compact, stream) on the same datasets:

    python scripts/summarize_results.py results   (results/mixed-alpha: the head fine-tuned on mixed alpha) Files named
`sanity-*.json` are included only when passed explicitly, and so are the files under a results folder's
examples/, benchmarks/, training/ and dev-suite/ (other outputs: analyses, benchmarks, training runs, dev-suite reports).
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

DEFAULT_HEAD = "checkpoints/tart-compact"
OTHER_OUTPUTS = {"examples", "benchmarks", "training", "dev-suite"}  # sub-folders of results/ that hold no such tables
DEFAULT = (None, -1, DEFAULT_HEAD, "stream")  # what other layers, heads and modes are compared with


def load_reports(args: list[str]) -> list[tuple[Path, dict]]:
    paths = []
    for arg in args or ["results"]:
        p = Path(arg)
        paths += sorted(q for q in p.rglob("*.json") if not q.name.startswith("sanity-")
                        and q.relative_to(p).parts[0] not in OTHER_OUTPUTS) if p.is_dir() else [p]
    reports = [(p, json.loads(p.read_text())) for p in paths]
    reports = [(p, r) for p, r in reports if "ks" in r and "results" in r]  # `tart evaluate` reports only
    for _, r in reports:  # a method that ran on none of a dataset's support sets has no numbers
        r["results"] = [x for x in r["results"] if x["mean"] is not None]
    return reports


def merge_by_dataset(reports: list[dict]) -> list[dict]:
    """One report per dataset: the ICL runs live in their own files (e.g. `<dataset>-icl.json`), and a
    dataset counts once and gets one "best" per k over every method."""
    merged: dict = {}
    for rep in reports:
        if rep["dataset"] not in merged:
            merged[rep["dataset"]] = {**rep, "results": list(rep["results"]), "ks": list(rep["ks"])}
        else:
            into = merged[rep["dataset"]]
            into["results"] += rep["results"]
            into["ks"] = sorted(set(into["ks"]) | set(rep["ks"]))
    return list(merged.values())


def _cell(r: dict) -> str:
    return f"{r['mean']:.3f} ± {r['std']:.3f}"


def per_dataset_table(reports: list[dict]) -> list[str]:
    ks = sorted({k for rep in reports for k in rep["ks"]})
    lines = ["| dataset | method | " + " | ".join(f"k={k}" for k in ks) + " | s/run |",
             "|---|---|" + "---|" * (len(ks) + 1)]
    for rep in sorted(reports, key=lambda r: r["dataset"]):
        methods = list(dict.fromkeys(r["method"] for r in rep["results"]))
        for m in methods:
            rows = {r["k"]: r for r in rep["results"] if r["method"] == m}
            best = {k: max(round(r["mean"], 3) for r in rep["results"] if r["k"] == k) for k in ks if k in rows}
            rivals = {k: sum(r["k"] == k for r in rep["results"]) for k in ks}  # bold needs a comparison
            cells = [("**" + _cell(rows[k]) + "**" if round(rows[k]["mean"], 3) == best[k] and rivals[k] > 1
                      else _cell(rows[k]))
                     if k in rows else "" for k in ks]
            secs = np.mean([r["seconds"] for r in rows.values()])
            lines.append(f"| {rep['dataset']} | {m} | " + " | ".join(cells) + f" | {secs:.2f} |")
    return lines


def average_table(reports: list[dict]) -> list[str]:
    """Mean accuracy over datasets, per method and k (only datasets that ran that method)."""
    ks = sorted({k for rep in reports for k in rep["ks"]})
    acc = defaultdict(list)
    for rep in reports:
        for r in rep["results"]:
            acc[(r["method"], r["k"])].append(r["mean"])
    methods = list(dict.fromkeys(m for m, _ in acc))
    lines = ["| method | " + " | ".join(f"k={k}" for k in ks) + " | datasets |",
             "|---|" + "---|" * (len(ks) + 1)]
    for m in methods:
        cells = [f"{np.mean(acc[(m, k)]):.3f}" if acc[(m, k)] else "" for k in ks]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {max(len(acc[(m, k)]) for k in ks)} |")
    return lines


def _describe(key) -> str:
    embedder, layer, head, mode = key
    return ", ".join([embedder, "last layer" if layer == -1 else f"hidden layer {layer}", f"head {head}",
                      f"{mode} embeddings"])


def comparison_table(reports: list[dict], base: dict) -> list[str]:
    """Per method and k: mean over the datasets run both ways, and on how many this way is better."""
    acc = defaultdict(list)
    for rep in reports:
        if rep["dataset"] not in base:
            continue
        before = {(r["method"], r["k"]): r["mean"] for r in base[rep["dataset"]]["results"]}
        for r in rep["results"]:
            if (r["method"], r["k"]) in before:
                acc[(r["method"], r["k"])].append((before[(r["method"], r["k"])], r["mean"]))
    lines = ["| method | k | default | this way | difference | datasets better / all |",
             "|---|---|---|---|---|---|"]
    for (m, k), pairs in acc.items():
        before, after = np.array(pairs).T
        lines.append(f"| {m} | {k} | {before.mean():.3f} | {after.mean():.3f} | {after.mean() - before.mean():+.3f} "
                     f"| {(after > before).sum()} / {len(pairs)} |")
    return lines


def modes_table(reports: list[dict]) -> list[str]:
    lines = ["| dataset | embedder | mode | k | tart | logreg | centroid | embedding s/task |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"stream": 0, "vanilla": 1, "loo": 2}
    for rep in sorted(reports, key=lambda r: (r["dataset"], r["embedder"], order.get(r["embedding_mode"], 3))):
        for k in rep["ks"]:
            rows = {r["method"]: r for r in rep["results"] if r["k"] == k}
            accs = [_cell(rows[m]) if m in rows else "" for m in ("tart", "logreg", "centroid")]
            embed = np.mean([r.get("embed_seconds", 0.0) for r in rows.values()])
            lines.append(f"| {rep['dataset']} | {rep['embedder']} | {rep['embedding_mode']} | {k} | "
                         + " | ".join(accs) + f" | {embed:.2f} |")
    return lines


def summarize(pairs: list[tuple[Path, dict]]) -> str:
    vectors = [rep for _, rep in pairs if rep.get("embedder") is None]
    modes = [rep for p, rep in pairs if rep.get("embedder") and "modes" in p.parts]
    # (embedder, pooled layer, head, embedding mode) -> reports; reports from before "layer" was
    # recorded pooled the last (-1); icl reports use no head
    text = defaultdict(list)
    for p, rep in pairs:
        if rep.get("embedder") and "modes" not in p.parts:
            key = (rep["embedder"], rep.get("layer", -1), rep.get("checkpoint") or DEFAULT_HEAD,
                   rep.get("embedding_mode") or "stream")
            text[key].append(rep)
    text = {key: merge_by_dataset(reps) for key, reps in text.items()}
    out = []
    for key, reps in sorted(text.items(), key=lambda kv: (kv[0][0], kv[0][1:] != DEFAULT[1:], str(kv[0]))):
        out += [f"## Text, embedder {_describe(key)}", "",
                f"Mean accuracy over {len(reps)} datasets:", ""] + average_table(reps) + [""]
        out += ["Per dataset (mean ± std over seeds; best per k in bold):", ""] + per_dataset_table(reps) + [""]
    for key, reps in text.items():
        base = {r["dataset"]: r for r in text.get((key[0], *DEFAULT[1:]), [])}
        if key[1:] != DEFAULT[1:] and any(r["dataset"] in base for r in reps):
            out += [f"## {_describe(key)} vs the default ({_describe((key[0], *DEFAULT[1:]))}; same seeds "
                    "and splits)", ""]
            out += comparison_table(reps, base) + [""]
    if modes:
        out += ["## Embedding modes", ""] + modes_table(modes) + [""]
    if vectors:
        out += ["## Vectors (scikit-learn datasets, features standardised on the support set)", ""]
        out += per_dataset_table(vectors) + [""]
    notes = sorted({f"{rep['dataset']}: {n}" for _, rep in pairs for n in rep.get("notes", [])
                    if not n.startswith("seed ")})
    if notes:
        out += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    print(summarize(load_reports(sys.argv[1:])))
