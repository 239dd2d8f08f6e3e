"""Skill slices: where each model wins, whether it is significant, and routing by slice.

After "Unearthing Skill-Level Insights for Understanding Trade-offs of Foundation Models" (Moayeri et
al., arXiv 2410.13826). The paper groups evaluation instances into *skill slices* (instances that need
a common skill, parsed from LLM-written rationales), compares models slice by slice and routes each
instance to the model strongest on its skills. Here slices come offline from a tags column the user
supplies and/or built-in text rules, and the models are the runs of `tart evaluate --predictions`.

Items. Every prediction record {"dataset", "seed", "k", "method", "index", "label", "correct"} is one
model's outcome on one item; an item is a (seed, index) pair, so with several seeds the same text
can be several items (each seed has its own support set). A model is "METHOD@kK", prefixed "NAME/"
when several files are given (NAME from NAME=FILE, else the file's stem). All models must have been
scored on the same items.

Slices (a row can be in many; items inherit their row's slices):
  tag:T            T in the tags column, tags separated by ";" (--tag-sep)
  length:short|medium|long   word count in the terciles of the evaluated texts: n <= q1 < n <= q2 < n
  negation         not, no, never, none, nothing, nobody, nowhere, neither, nor, cannot, without, n't
  number           a digit or a number word (two ... ten, hundred, thousand, million, billion; not
                   "one", which is mostly a pronoun)
  question         contains "?"
  uppercase        a word of two or more capital letters (acronyms, shouting)
  label:Y          gold label Y
Empty slices and slices of fewer than `min_size` items are dropped, with a note.

Per slice s and model m, with c_m(i) in {0, 1} the outcome on item i:
  acc_m(s) = mean_{i in s} c_m(i);  gain_m(s) = acc_m(s) - mean_{o != m} acc_o(s)
  per-slice test: exact sign test (binomial, p = 1/2) on d_i = c_m(i) - mean_{o != m} c_o(i) over
  the items of s with d_i != 0 (for two models this is McNemar's exact test); p values are
  Holm-adjusted over all (slice, model) pairs and flagged when below alpha (default 0.01).
  A model's *strong slices* are the flagged ones with gain > 0, largest gain first.
  Across slices: Wilcoxon signed-rank test of acc_m(s) vs mean_{o != m} acc_o(s) over the slices
  (one p per model, and per pair of models), flagged when p < alpha. Slices overlap, so this treats
  them as if independent; with n slices the exact two-sided p cannot go below 2 / 2^n (n >= 8 is
  needed to reach 0.01).

Routing. For item i in row r and model m, the leave-one-out accuracy of m on slice s excludes every
item of row r (the same text under other seeds too):
  loo_m(s, i) = (hits_m(s) - hits_m(r)) / (|s| - n(r))
  score_m(i) = sum_{s ∋ i} loo_m(s, i) / |s|  /  sum_{s ∋ i} 1 / |s|
over the slices s that contain i, except the label:Y slices (they need the gold label, which a
router does not have; user tags that encode the label would leak it the same way). i goes to
argmax_m score_m(i); ties, and items in no slice, go to the best single model (the model with the
best accuracy over all items). Reported: routed accuracy, each single model's accuracy, and the
oracle router (right when any model is right). Leaving out is pessimistic where models are tied on
a slice: the one right on the item loses 1 / (|s| - n(r)) of accuracy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RULES = ("length", "negation", "number", "question", "uppercase", "label")
_REQUIRED = ("dataset", "seed", "k", "method", "index", "label", "correct")
_NEGATION = re.compile(r"\b(not|no|never|none|nothing|nobody|nowhere|neither|nor|cannot|without)\b|n't\b",
                       re.IGNORECASE)
_NUMBER = re.compile(r"\d|\b(two|three|four|five|six|seven|eight|nine|ten|hundreds?|thousands?|millions?"
                     r"|billions?)\b", re.IGNORECASE)
_UPPERCASE = re.compile(r"\b[A-Z]{2,}\b")
_LENGTHS = ["length:short", "length:medium", "length:long"]


@dataclass
class Outcomes:
    """Which model got which item right: correct[m, i] for models[m] on items[i] = (seed, row)."""

    dataset: str
    models: list[str]
    items: list[tuple[int, int]]
    labels: list
    correct: np.ndarray
    sources: list[dict] = field(default_factory=list)


def _split_spec(spec: str) -> tuple[str | None, Path]:
    """NAME=FILE or FILE."""
    name, sep, path = str(spec).partition("=")
    if sep and name and "/" not in name and not Path(spec).exists():
        return name, Path(path)
    return None, Path(spec)


def load_outcomes(specs, ks=None, models=None) -> Outcomes:
    """Read prediction files (NAME=FILE or FILE), keep the chosen k values / models, align the items."""
    from tart.data.datasets import read_rows

    specs = list(specs or [])
    if not specs:
        raise ValueError("no prediction files given")
    named = [_split_spec(s) for s in specs]
    names = [n or p.stem for n, p in named]
    if len(specs) > 1 and len(set(names)) < len(names):
        raise ValueError(f"prediction files share a name ({', '.join(names)}): give them as NAME=FILE")
    outcomes, labels, datasets, sources, available = {}, {}, set(), [], set()
    for (given, path), name in zip(named, names):
        prefix = f"{name}/" if len(specs) > 1 or given else ""
        if path.suffix.lower() not in (".jsonl", ".json"):
            raise ValueError(f"{path}: expected a .jsonl file written by tart evaluate --predictions")
        _, rows = read_rows(path)
        if not rows:
            raise ValueError(f"{path}: no predictions in it")
        for line, r in rows:
            missing = [key for key in _REQUIRED if key not in r]
            if missing:
                raise ValueError(f"{path} line {line}: missing {', '.join(missing)}; a prediction record "
                                 f"has {', '.join(_REQUIRED)} (tart evaluate --predictions)")
            available.add(int(r["k"]))
            if ks and int(r["k"]) not in ks:
                continue
            model, item = f"{prefix}{r['method']}@k{r['k']}", (int(r["seed"]), int(r["index"]))
            if item in outcomes.setdefault(model, {}):
                raise ValueError(f"{path} line {line}: {model} has two records for seed {item[0]}, index {item[1]}")
            outcomes[model][item] = bool(r["correct"])
            if labels.setdefault(item, r["label"]) != r["label"]:
                raise ValueError(f"{path} line {line}: seed {item[0]}, index {item[1]} has label {r['label']!r} "
                                 f"here but {labels[item]!r} in another record")
            datasets.add(str(r["dataset"]))
        sources.append({"name": name, "path": str(path), "records": len(rows)})
    if not outcomes:
        raise ValueError(f"no predictions with k in {sorted(ks)}; the files have k = {sorted(available)}")
    if len(datasets) > 1:
        raise ValueError(f"predictions come from several datasets ({', '.join(sorted(datasets))}); "
                         "analyse one dataset at a time")
    if models:
        unknown = [m for m in models if m not in outcomes]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)}; available: {', '.join(outcomes)}")
        outcomes = {m: outcomes[m] for m in dict.fromkeys(models)}
    if len(outcomes) < 2:
        raise ValueError(f"need at least two models to compare, found {', '.join(outcomes)}")
    items = sorted(next(iter(outcomes.values())))
    for m, got in outcomes.items():
        if set(got) != set(items):
            first = next(iter(outcomes))
            raise ValueError(f"models were not scored on the same examples: {first} has {len(items)} items, "
                             f"{m} has {len(got)}, {len(set(got) & set(items))} shared "
                             "(pick comparable runs with --k / --models)")
    correct = np.array([[outcomes[m][i] for i in items] for m in outcomes], dtype=bool)
    return Outcomes(datasets.pop(), list(outcomes), items, [labels[i] for i in items], correct, sources)


def _column(rows, column: str, path) -> list:
    for line, row in rows:
        if column not in row:
            raise ValueError(f"{path} line {line}: column {column!r} not found; "
                             f"columns found: {', '.join(map(str, row)) or '(none)'}")
    return [row[column] for _, row in rows]


def _tags(value, sep: str) -> list[str]:
    """Tags from one cell: "a;b" (or a JSON list of strings); empty cells have none."""
    if value is None:
        return []
    values = value if isinstance(value, list) else str(value).split(sep)
    return [str(v).strip() for v in values if str(v).strip()]


def rule_slices(texts: list[str], labels: list, rules=RULES) -> tuple[list[set[str]], list[float] | None]:
    """The rule slices each text is in, and the word-count tercile bounds (q1, q2) if "length" is used."""
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(unknown)}; known: {', '.join(RULES)}")
    out = [set() for _ in texts]
    bounds = None
    if "length" in rules and texts:
        words = np.array([len(t.split()) for t in texts])
        bounds = [float(q) for q in np.quantile(words, [1 / 3, 2 / 3])]
        for s, n in zip(out, words):
            s.add("length:short" if n <= bounds[0] else "length:medium" if n <= bounds[1] else "length:long")
    checks = {"negation": _NEGATION.search, "number": _NUMBER.search, "question": lambda t: "?" in t,
              "uppercase": _UPPERCASE.search}
    for rule in rules:
        if rule in checks:
            for s, t in zip(out, texts):
                if checks[rule](t):
                    s.add(rule)
    if "label" in rules:
        for s, y in zip(out, labels):
            s.add(f"label:{y}")
    return out, bounds


def _slice_order(name: str) -> tuple:
    """Tags first (by name), then rule slices in RULES order, lengths short -> long."""
    if name.startswith("tag:"):
        return (0, 0, 0, name)
    rule = name.split(":")[0]
    return (1, RULES.index(rule), _LENGTHS.index(name) if rule == "length" else 0, name)


def build_slices(outcomes: Outcomes, data=None, text_column="text", label_column="label", tags_column=None,
                 tag_sep=";", rules=RULES, min_size=5) -> tuple[dict[str, np.ndarray], dict]:
    """Slice name -> boolean mask over outcomes.items, and facts to report (length bounds, notes)."""
    from tart.data.datasets import read_rows

    if min_size < 2:
        raise ValueError(f"min_size must be at least 2 (leave-one-out needs another item), got {min_size}")
    if not rules and not tags_column:
        raise ValueError("no slices asked for: give --tags-column and/or --rules")
    path, rows = read_rows(data or outcomes.dataset)
    texts = _column(rows, text_column, path)
    gold = _column(rows, label_column, path)
    tags = _column(rows, tags_column, path) if tags_column else None
    used = sorted({row for _, row in outcomes.items})
    if used[-1] >= len(rows):
        raise ValueError(f"{path} has {len(rows)} rows but the predictions refer to row {used[-1]}: wrong --data?")
    for (seed, row), y in zip(outcomes.items, outcomes.labels):
        if str(gold[row]) != str(y):
            raise ValueError(f"predictions do not match {path}: row {row} is labelled {gold[row]!r} there "
                             f"but {y!r} in the predictions (seed {seed}): wrong --data or --label-column?")

    names_by_row, bounds = rule_slices([str(texts[r]) for r in used], [gold[r] for r in used], list(rules))
    names_by_row = dict(zip(used, names_by_row))
    if tags is not None:
        for r in used:
            names_by_row[r] |= {f"tag:{t}" for t in _tags(tags[r], tag_sep)}
    rows_of_items = np.array([row for _, row in outcomes.items])
    order = sorted({n for names in names_by_row.values() for n in names}, key=_slice_order)
    slices, notes = {}, []
    if tags is not None and not any(n.startswith("tag:") for n in order):
        notes.append(f"column {tags_column!r} has no tags on the evaluated rows")
    if "length" in rules and bounds and bounds[0] == bounds[1]:
        notes.append("length:medium is empty (the word-count terciles coincide)")
    small = []
    for name in order:
        mask = np.array([name in names_by_row[r] for r in rows_of_items])
        if mask.sum() < min_size:
            small.append(f"{name} ({int(mask.sum())})")
        else:
            slices[name] = mask
    if small:
        notes.append(f"dropped {len(small)} slice(s) under {min_size} items: {', '.join(small)}")
    absent = [r for r in ("negation", "number", "question", "uppercase") if r in rules
              and not any(r in names for names in names_by_row.values())]
    if absent:
        notes.append(f"empty rule slice(s) dropped: {', '.join(absent)}")
    if not slices:
        raise ValueError("no slice left: " + ("; ".join(notes) or "every slice is empty"))
    return slices, {"length_bounds": bounds, "notes": notes}


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p values (same shape)."""
    flat = p.ravel()
    order = np.argsort(flat)
    adjusted = np.maximum.accumulate((len(flat) - np.arange(len(flat))) * flat[order])
    out = np.empty_like(flat)
    out[order] = np.minimum(adjusted, 1.0)
    return out.reshape(p.shape)


def _wilcoxon(diff: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if not np.any(np.abs(diff) > 1e-12):
        return 1.0  # identical on every slice: nothing to test
    return float(wilcoxon(diff).pvalue)


def route(correct: np.ndarray, membership: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each item, the index of the model it is routed to (see the module docstring)."""
    C, B = correct.astype(float), membership.astype(float)  # (M, N), (N, S)
    size = B.sum(0)
    hits = C @ B                                             # (M, S)
    _, inverse = np.unique(rows, return_inverse=True)
    row_hits = np.stack([np.bincount(inverse, weights=c)[inverse] for c in C])  # (M, N): hits of the item's row
    row_n = np.bincount(inverse)[inverse]                    # (N,) items of the item's row
    rest = size[None, :] - row_n[:, None]                    # (N, S) items left in s without row r
    weight = np.where(membership & (rest > 0), 1.0 / np.maximum(size, 1), 0.0)
    loo = (hits[:, None, :] - row_hits[:, :, None]) / np.maximum(rest, 1)[None]
    total = weight.sum(1)
    score = (loo * weight[None]).sum(2) / np.where(total > 0, total, 1.0)
    # Ties go to the best model overall, in-sample like the "best single" baseline: a leave-one-out
    # overall accuracy would send every tie to the model that is wrong on the item.
    tied = np.isclose(score, score.max(0), rtol=0, atol=1e-12) | (total == 0)[None]
    return np.argmax(np.where(tied, C.mean(1)[:, None], -np.inf), axis=0)


def analyze(outcomes: Outcomes, slices: dict[str, np.ndarray], alpha: float = 0.01) -> dict:
    """Per-slice accuracy, gains, tests and routing (keys documented in results/examples/slices/README.md)."""
    from scipy.stats import binomtest

    models, C = outcomes.models, outcomes.correct
    names = list(slices)
    B = np.stack([slices[n] for n in names], axis=1)                 # (N, S)
    size = B.sum(0)
    acc = (C.astype(float) @ B) / size                                # (M, S)
    M = len(models)
    others = (acc.sum(0)[None] - acc) / (M - 1)
    gain = acc - others
    p = np.ones_like(acc)
    for m in range(M):
        d = C[m].astype(float) - (C.sum(0) - C[m]) / (M - 1)         # item-wise vs the others' mean
        for s in range(len(names)):
            ds = d[B[:, s]]
            wins, losses = int((ds > 0).sum()), int((ds < 0).sum())
            if wins + losses:
                p[m, s] = binomtest(wins, wins + losses, 0.5).pvalue
    p_holm = _holm(p)
    flagged = p_holm < alpha

    rows = np.array([row for _, row in outcomes.items])
    # label slices need the gold label, which a router cannot know: they are not used for routing
    routable = [not n.startswith("label:") for n in names]
    choice = route(C, B[:, routable], rows)
    routed = C[choice, np.arange(C.shape[1])]
    single = C.mean(1)
    best = int(np.argmax(single))

    per_model = []
    for m, model in enumerate(models):
        strong = [names[s] for s in np.argsort(-gain[m]) if flagged[m, s] and gain[m, s] > 0]
        weak = [names[s] for s in np.argsort(gain[m]) if flagged[m, s] and gain[m, s] < 0]
        pw = _wilcoxon(acc[m] - others[m])
        per_model.append({"model": model, "accuracy": float(single[m]), "mean_gain": float(gain[m].mean()),
                          "wilcoxon_p": pw, "flagged": pw < alpha, "strong_slices": strong, "weak_slices": weak})
    pairs = []
    for a in range(M):
        for b in range(a + 1, M):
            pw = _wilcoxon(acc[a] - acc[b])
            pairs.append({"a": models[a], "b": models[b], "mean_diff": float((acc[a] - acc[b]).mean()),
                          "wilcoxon_p": pw, "flagged": pw < alpha})
    return {
        "dataset": outcomes.dataset,
        "sources": outcomes.sources,
        "models": models,
        "n_items": int(C.shape[1]),
        "n_rows": int(len(set(rows.tolist()))),
        "seeds": sorted({seed for seed, _ in outcomes.items}),
        "alpha": alpha,
        "slices": [{"name": n, "size": int(size[s]), "rows": int(len(set(rows[B[:, s]].tolist()))),
                    "accuracy": {mod: float(acc[m, s]) for m, mod in enumerate(models)},
                    "router_accuracy": float(routed[B[:, s]].mean()),
                    "gain": {mod: float(gain[m, s]) for m, mod in enumerate(models)},
                    "p_value": {mod: float(p[m, s]) for m, mod in enumerate(models)},
                    "p_holm": {mod: float(p_holm[m, s]) for m, mod in enumerate(models)},
                    "flagged": {mod: bool(flagged[m, s]) for m, mod in enumerate(models)}}
                   for s, n in enumerate(names)],
        "per_model": per_model,
        "pairs": pairs,
        "routing": {"accuracy": float(routed.mean()), "oracle": float(C.any(0).mean()),
                    "best_single": models[best], "best_single_accuracy": float(single[best]),
                    "gain_over_best": float(routed.mean() - single[best]),
                    "single": {mod: float(single[m]) for m, mod in enumerate(models)},
                    "choices": {mod: int((choice == m).sum()) for m, mod in enumerate(models)},
                    "slices_used": [n for n, use in zip(names, routable) if use]},
    }


def plot_report(report: dict, path) -> None:
    """Heatmap of per-slice accuracy (models and the router × slices) and routed vs single vs oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, slices = report["models"], report["slices"]
    grid = np.array([[s["accuracy"][m] for s in slices] for m in models]
                    + [[s["router_accuracy"] for s in slices]])
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(max(8.0, 0.6 * len(slices) + 5), 1.0 + 0.45 * len(grid) + 1.6),
                                   gridspec_kw={"width_ratios": [max(3, len(slices) * 0.6), 2.2]})
    low = np.floor(grid.min() * 10) / 10  # the colour range spans the data, so small gaps show
    image = ax.imshow(grid, vmin=low, vmax=1, cmap="viridis", aspect="auto")
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            star = "*" if r < len(models) and slices[c]["flagged"][models[r]] else ""
            ax.text(c, r, f"{grid[r, c]:.2f}{star}", ha="center", va="center", fontsize=7,
                    color="black" if grid[r, c] > low + 0.6 * (1 - low) else "white")
    ax.set_xticks(range(len(slices)), [f"{s['name']} ({s['size']})" for s in slices], rotation=60, ha="right",
                  fontsize=7)
    ax.set_yticks(range(grid.shape[0]), models + ["router"], fontsize=8)
    ax.set_title(f"{report['dataset']}: accuracy per slice (items); "
                 "* = differs from the others' mean, either way (Holm p < alpha)", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.03)
    routing = report["routing"]
    names = models + ["router", "oracle"]
    values = [routing["single"][m] for m in models] + [routing["accuracy"], routing["oracle"]]
    bars.barh(range(len(names)), values, color=["tab:gray"] * len(models) + ["tab:blue", "tab:green"])
    for i, v in enumerate(values):
        bars.text(v, i, f" {v:.3f}", va="center", fontsize=7)
    bars.set_yticks(range(len(names)), names, fontsize=8)
    bars.invert_yaxis()
    bars.set_xlim(min(values) - 0.1 if min(values) > 0.1 else 0, 1.08)
    bars.set_title(f"accuracy on {report['n_items']} items", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(report: dict) -> str:
    """Markdown: accuracy per slice and model (flagged gains marked *), then the routing line."""
    models = report["models"]
    lines = ["| slice | n | " + " | ".join(models) + " | router |", "|---|---|" + "---|" * (len(models) + 1)]
    for s in report["slices"]:
        cells = [f"{s['accuracy'][m]:.3f}{'*' if s['flagged'][m] else ''}" for m in models]
        lines.append(f"| {s['name']} | {s['size']} | " + " | ".join(cells) + f" | {s['router_accuracy']:.3f} |")
    r = report["routing"]
    lines.append(f"\nrouted {r['accuracy']:.3f} · best single {r['best_single']} {r['best_single_accuracy']:.3f}"
                 f" · oracle {r['oracle']:.3f}")
    return "\n".join(lines)


def run(predictions, ks=None, models=None, data=None, text_column="text", label_column="label",
        tags_column=None, tag_sep=";", rules=RULES, min_size=5, alpha=0.01) -> dict:
    """Load, slice and analyse: the whole `tart analyze slices` report."""
    outcomes = load_outcomes(predictions, ks=ks, models=models)
    slices, facts = build_slices(outcomes, data, text_column, label_column, tags_column, tag_sep, rules, min_size)
    report = analyze(outcomes, slices, alpha)
    report.update({"data": str(data or outcomes.dataset), "tags_column": tags_column, "rules": list(rules),
                   "min_size": min_size, "length_bounds": facts["length_bounds"], "notes": facts["notes"]})
    return report
