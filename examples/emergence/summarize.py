"""Tables for examples/emergence/README.md from the committed JSONs (no model is run).

    python examples/emergence/summarize.py            # prints Markdown; writes summary.json
"""
import json
import re
from pathlib import Path

HERE = Path(__file__).parent


def emergence_table(report):
    rows = ["| block l | macro I (last token) | micro I (mean of first P) | E_l ± sd |", "|---|---|---|---|"]
    for r in report["layers"]:
        rows.append(f"| {r['layer']} | {r['macro_mi']:.3f} | {r['micro_mi_mean']:.3f} | "
                    f"{r['emergence']:+.3f} ± {r['emergence_sd']:.3f} |")
    return "\n".join(rows)


def layer_results():
    """{dataset: {layer: {(method, k): (mean, std)}}} from layers/<dataset>_layer<L>.json."""
    out = {}
    for path in sorted((HERE / "layers").glob("*_layer*.json")):
        data, layer = re.match(r"(.+)_layer(-?\d+)\.json", path.name).groups()
        report = json.loads(path.read_text())
        out.setdefault(data, {})[int(layer)] = {f"{r['method']}@k={r['k']}": (r["mean"], r["std"])
                                                for r in report["results"]}
    return out


def layer_table(results):
    cols = sorted({c for d in results.values() for l in d.values() for c in l})
    rows = ["| dataset | layer | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for data, layers in results.items():
        for layer in sorted(layers, key=lambda l: (l < 0, l)):
            cells = [f"{layers[layer][c][0]:.3f} ± {layers[layer][c][1]:.3f}" if c in layers[layer] else "" for c in cols]
            rows.append(f"| {data} | {layer} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    report = json.loads((HERE / "emergence_smollm2.json").read_text())
    results = layer_results()
    print(emergence_table(report), end="\n\n")
    print(f"best block: {report['best_layer']} -> embedding layer {report['best_embedding_layer']}\n")
    print(layer_table(results))
    (HERE / "summary.json").write_text(json.dumps(
        {"best_layer": report["best_layer"], "best_embedding_layer": report["best_embedding_layer"],
         "layers": {d: {str(l): {c: {"mean": m, "std": s} for c, (m, s) in v.items()} for l, v in ls.items()}
                    for d, ls in results.items()}}, indent=2))
