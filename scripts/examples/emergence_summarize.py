"""Tables for results/examples/emergence/README.md from the committed JSONs (no model is run).

    python scripts/examples/emergence_summarize.py            # prints Markdown; writes summary.json
"""
import json
import re
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[2] / "results" / "examples" / "emergence"  # the outputs
RUNS = {"seed 0": "emergence_smollm2.json", "seed 1": "emergence_smollm2_seed1.json"}


def ranks(v):
    return np.argsort(np.argsort(v))


def emergence_table(reports):
    names = list(reports)
    head = " | ".join(f"macro I, micro I, E_l ± sd ({n})" for n in names)
    rows = [f"| block l | {head} |", "|---|" + "---|" * len(names)]
    for i, r0 in enumerate(reports[names[0]]["layers"]):
        cells = [f"{r['macro_mi']:.2f}, {r['micro_mi_mean']:.2f}, **{r['emergence']:+.2f}** ± {r['emergence_sd']:.2f}"
                 for r in (reports[n]["layers"][i] for n in names)]
        rows.append(f"| {r0['layer']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def layer_results():
    """{dataset: {layer: {"method@k=K": accs per seed}}} from layers/<dataset>_layer<L>.json."""
    out = {}
    for path in sorted((HERE / "layers").glob("*_layer*.json")):
        data, layer = re.match(r"(.+)_layer(-?\d+)\.json", path.name).groups()
        report = json.loads(path.read_text())
        out.setdefault(data, {})[int(layer)] = {f"{r['method']}@k={r['k']}": r["accs"] for r in report["results"]}
    return out


def layer_table(results):
    """Mean accuracy over seeds; in brackets the paired difference to the last layer (-1) ± its
    standard error over the seeds (the seeds draw the same splits at every layer)."""
    cols = sorted({c for d in results.values() for l in d.values() for c in l})
    rows = ["| dataset | layer | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for data, layers in results.items():
        for layer in sorted(layers, key=lambda l: (l < 0, l)):
            cells = []
            for c in cols:
                a, base = np.array(layers[layer][c]), np.array(layers[-1][c])
                d = a - base
                diff = "" if layer == -1 else f" ({d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f})"
                cells.append(f"{a.mean():.3f}{diff}")
            rows.append(f"| {data} | {layer} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    reports = {n: json.loads((HERE / f).read_text()) for n, f in RUNS.items() if (HERE / f).exists()}
    results = layer_results()
    print(emergence_table(reports), end="\n\n")
    es = {n: np.array([r["emergence"] for r in rep["layers"]]) for n, rep in reports.items()}
    top = {n: [int(i) for i in np.argsort(-e)[:5]] for n, e in es.items()}
    for n, rep in reports.items():
        print(f"{n}: best block {rep['best_layer']} -> embedding layer {rep['best_embedding_layer']}; top 5 blocks {top[n]}")
    rank_corr = None
    if len(es) == 2:
        a, b = es.values()
        rank_corr = float(np.corrcoef(ranks(a), ranks(b))[0, 1])
        print(f"Spearman correlation of E_l between the two runs: {rank_corr:.2f}")
    print()
    print(layer_table(results))
    (HERE / "summary.json").write_text(json.dumps(
        {"best_layer": {n: r["best_layer"] for n, r in reports.items()},
         "best_embedding_layer": {n: r["best_embedding_layer"] for n, r in reports.items()},
         "top5_blocks": top, "spearman_between_runs": rank_corr,
         "accuracy": {d: {str(l): {c: {"mean": float(np.mean(a)), "accs": a} for c, a in v.items()}
                          for l, v in ls.items()} for d, ls in results.items()}}, indent=2))
