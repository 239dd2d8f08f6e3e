"""`tart evaluate`: TART against the usual few-shot baselines, on text or on vectors.

For each seed: a class-balanced pool of max(k) support examples and a held-out test set (a seeded
sample of at most `test_size` of the rest) are drawn once; for each k the support set is a balanced
k-subset of that pool, so every k of a seed is scored on the same test set. Methods (see
tart/baselines.py): `tart` (the head, on the embeddings), `logreg` (probe on the same embeddings),
`centroid`, `icl` (prompting the same LM, causal LMs only), `icl-cal` (icl with contextual
calibration) and `comprw` (component reweighting: 4 of the k examples in the prompt, the others
train one weight per head/MLP; see tart/analysis/component_reweighting.py), both causal LMs only,
and `setfit` (only if installed).

Text is embedded once (stream mode: every text alone) and shared by all runs and methods; with
`embedding_mode` vanilla or loo the embeddings depend on the support set, so they are computed per
run (once, shared by tart/logreg/centroid). `embed_seconds` is that cost per run (stream: the
run's share, (k + test) texts at the measured time per text); `seconds` is each method's own time
per run (for `icl`, `icl-cal` and `comprw`, all of their LM work). Vector data ("sklearn:NAME")
needs no embedder; features are standardised on the support set for every method.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tart.data import LabelledTexts, balanced_split, load_dataset

METHODS = ("tart", "logreg", "centroid", "icl", "icl-cal", "comprw", "setfit")
LM_METHODS = ("icl", "icl-cal", "comprw")  # prompt the causal LM itself: text and causal LMs only
SKLEARN_DATASETS = ("digits", "digits-pairs", "digits-A-B (e.g. digits-3-8)", "breast_cancer", "wine")


@dataclass
class EvalData:
    name: str
    labels: list
    texts: list[str] | None = None     # text data
    vectors: np.ndarray | None = None  # vector data (any modality)
    pairs: bool = False                # digits-pairs: each seed draws its own pair of classes

    def for_seed(self, seed: int) -> tuple[LabelledTexts, str | None]:
        """The examples a seed draws from, as a LabelledTexts whose 'texts' are row indices."""
        rows = range(len(self.labels))
        note = None
        if self.pairs:
            pair = sorted(np.random.default_rng(seed).choice(sorted(set(self.labels)), 2, replace=False).tolist())
            rows = [i for i in rows if self.labels[i] in pair]
            note = f"seed {seed}: digits {pair[0]} vs {pair[1]}"
        return LabelledTexts(self.name, [str(i) for i in rows], [self.labels[i] for i in rows]), note


def load_eval_data(spec: str, text_column: str = "text", label_column: str = "label") -> EvalData:
    """A bundled dataset name or .csv/.jsonl/.json file (text), or "sklearn:NAME" (vectors)."""
    if not str(spec).startswith("sklearn:"):
        data = load_dataset(spec, text_column, label_column)
        return EvalData(data.name, data.labels, texts=data.texts)
    from sklearn import datasets

    name = spec.split(":", 1)[1]
    if not name.startswith("digits"):
        name = name.replace("-", "_")  # breast-cancer or breast_cancer
    loaders = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
               "wine": datasets.load_wine}
    base = "digits" if name.startswith("digits") else name
    if base not in loaders:
        raise ValueError(f"unknown dataset {spec!r}; vector datasets are sklearn:"
                         + ", sklearn:".join(SKLEARN_DATASETS))
    bunch = loaders[base]()
    X, y = bunch.data.astype(np.float32), bunch.target
    names = [str(n) for n in bunch.target_names]
    pairs = name == "digits-pairs"
    if base == "digits" and name not in ("digits", "digits-pairs"):
        parts = name.split("-")[1:]
        if len(parts) != 2 or not all(p.isdigit() and len(p) == 1 for p in parts) or parts[0] == parts[1]:
            raise ValueError(f"unknown dataset {spec!r}: digit pairs are named like sklearn:digits-3-8")
        keep = np.isin(y, [int(p) for p in parts])
        X, y = X[keep], y[keep]
    return EvalData(spec, [names[i] for i in y], vectors=X, pairs=pairs)


def _draw(data: EvalData, ks, seed: int, test_size: int | None, notes: list):
    """Support indices per k and the test indices for one seed."""
    pool_data, note = data.for_seed(seed)
    if note:
        notes.append(note)
    available = len(pool_data) - max(ks)
    if test_size is not None and test_size > available:
        notes.append(f"seed {seed}: test set capped at the {available} examples left after k={max(ks)}")
        test_size = available
    pool, test = balanced_split(pool_data, max(ks), seed, test_size=test_size)
    supports = {k: [int(t) for t in balanced_split(pool, k, seed)[0].texts] for k in ks}
    return supports, [int(t) for t in test.texts]


def _check_methods(methods, embedder, vectors: bool, notes: list) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(METHODS)}")
    keep = []
    for m in dict.fromkeys(methods):
        if m in LM_METHODS + ("setfit",) and vectors:
            notes.append(f"{m} skipped: it needs text, and this dataset is vectors")
        elif m in LM_METHODS and not embedder.is_causal_lm:
            notes.append(f"{m} skipped: {embedder.name} is not a causal LM")
        elif m == "setfit":
            import importlib.util

            why = "its package is not installed (pip install setfit)" if importlib.util.find_spec("setfit") \
                else "not implemented in this harness yet"
            notes.append(f"setfit skipped: {why}")
        else:
            keep.append(m)
    if not keep:
        raise ValueError("no method left to run: " + "; ".join(notes))
    return keep


def _stream_matrix(data: EvalData, embedder, draws, ks):
    """Stream mode: every text the runs need, embedded once; and the measured seconds per text."""
    needed = sorted({i for supports, test in draws for i in test + supports[ks[-1]]})
    t0 = time.perf_counter()
    matrix = np.zeros((len(data.labels), embedder.dim), dtype=np.float32)
    matrix[needed] = embedder.embed([data.texts[i] for i in needed])
    return matrix, (time.perf_counter() - t0) / len(needed)


def _task_vectors(data: EvalData, sup, test, embedder, mode, stream):
    """Support and test vectors for one run, and the embedding seconds charged to it."""
    t0 = time.perf_counter()
    if data.vectors is not None:  # standardised on the support set, for every method
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(data.vectors[sup])
        return scaler.transform(data.vectors[sup]), scaler.transform(data.vectors[test]), 0.0
    if stream is not None:
        matrix, per_text = stream
        return matrix[sup], matrix[test], per_text * (len(sup) + len(test))
    S, Q = embedder.embed_task([data.texts[i] for i in sup], [str(data.labels[i]) for i in sup],
                               [data.texts[i] for i in test], mode=mode)
    return S, Q, time.perf_counter() - t0


def _predict(method, S, Q, data: EvalData, sup, test, seed, ctx) -> tuple[np.ndarray, dict]:
    """One method's predictions on the test set, and extra facts to report (icl's prompt)."""
    from tart import baselines
    from tart.classifier import TartClassifier

    y_sup = [data.labels[i] for i in sup]
    if method in ("icl", "icl-cal"):
        from tart.analysis.component_reweighting import CalibratedICLClassifier

        kind = baselines.ICLClassifier if method == "icl" else CalibratedICLClassifier
        icl = kind(ctx["lm"], ctx["tokenizer"], max_prompt_tokens=ctx["icl_max_tokens"])
        pred = icl.fit([data.texts[i] for i in sup], y_sup).predict([data.texts[i] for i in test])
        return pred, {"dropped": icl.n_dropped_, "prompt": icl.prompt_tokens_}
    if method == "comprw":
        from tart.analysis.component_reweighting import ComponentReweightingClassifier

        rw = ComponentReweightingClassifier(ctx["lm"], ctx["tokenizer"], random_state=seed)
        return rw.fit([data.texts[i] for i in sup], y_sup).predict([data.texts[i] for i in test]), {}
    model = {"tart": lambda: TartClassifier(head=ctx["head"], embedder=None, random_state=seed,
                                            n_permutations=ctx["n_permutations"]),
             "logreg": lambda: baselines.LogRegProbe(random_state=seed),
             "centroid": baselines.CentroidClassifier}[method]()
    return model.fit(S, y_sup).predict(Q), {}


def _result(method, k, run, notes) -> dict:
    accs = run["accs"]
    entry = {"method": method, "k": k, "mean": float(np.mean(accs)),
             "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,  # sample std over seeds
             "accs": accs, "seconds": float(np.mean(run["seconds"])),
             "embed_seconds": float(np.mean(run["embed_seconds"]))}
    if method in ("icl", "icl-cal"):
        dropped = [x["dropped"] for x in run["extra"]]
        entry["prompt_tokens"] = float(np.mean([x["prompt"] for x in run["extra"]]))
        if any(dropped):
            entry["note"] = (f"prompt truncated from the left in {sum(d > 0 for d in dropped)}/{len(accs)} "
                             f"runs (up to {max(dropped)} of {k} examples dropped)")
            notes.append(f"{method} k={k}: {entry['note']}")
    return entry


def evaluate(data: EvalData, ks=(16, 32, 64), seeds: int = 5, methods=("tart", "logreg", "centroid", "icl"),
             embedder=None, checkpoint="tart-compact", test_size: int | None = 200,
             embedding_mode: str = "stream", n_permutations: int = 4, icl_max_tokens: int | None = None,
             progress: bool = True, predictions: list | None = None) -> dict:
    """The `tart evaluate` report (see the module docstring and README for its keys).

    If `predictions` is a list, one record per (seed, k, method, test example) is appended to it:
    {"dataset", "embedder", "seed", "k", "method", "index" (row in the dataset), "label", "prediction",
    "correct"}.
    """
    from tqdm.auto import tqdm

    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 1 or seeds < 1:
        raise ValueError(f"need positive k values and at least one seed, got k={ks}, seeds={seeds}")
    is_vectors = data.vectors is not None
    if not is_vectors and embedder is None:
        raise ValueError(f"{data.name} is text: give an embedder")
    notes: list[str] = []
    methods = _check_methods(list(methods), embedder, is_vectors, notes)
    ctx = {"head": None, "lm": None, "n_permutations": n_permutations, "icl_max_tokens": icl_max_tokens,
           "tokenizer": None if is_vectors else embedder.tokenizer}
    checkpoint_path = None
    if "tart" in methods:
        from tart.checkpoint_io import load_head, resolve_checkpoint

        checkpoint_path = resolve_checkpoint(checkpoint)
        ctx["head"] = load_head(checkpoint_path)
    if set(LM_METHODS) & set(methods):
        from tart.baselines import load_causal_lm

        ctx["lm"] = load_causal_lm(embedder)
    draws = [_draw(data, ks, s, test_size, notes) for s in range(seeds)]
    report_embedder = None if is_vectors else embedder.name
    stream = _stream_matrix(data, embedder, draws, ks) if not is_vectors and embedding_mode == "stream" else None

    runs = {(m, k): {"accs": [], "seconds": [], "embed_seconds": [], "extra": []} for m in methods for k in ks}
    was_progress = getattr(embedder, "progress", False)
    if embedder is not None:
        embedder.progress = False  # one bar: the runs
    bar = tqdm(total=seeds * len(ks) * len(methods), desc=f"evaluate {data.name}", unit="run", disable=not progress)
    try:
        for seed, (supports, test) in enumerate(draws):
            y_test = np.array([data.labels[i] for i in test], dtype=object)
            for k in ks:
                S, Q, embed_seconds = _task_vectors(data, supports[k], test, embedder, embedding_mode, stream)
                for m in methods:
                    t0 = time.perf_counter()
                    pred, extra = _predict(m, S, Q, data, supports[k], test, seed, ctx)
                    run = runs[(m, k)]
                    run["seconds"].append(time.perf_counter() - t0)
                    correct = np.asarray(pred, dtype=object) == y_test
                    run["accs"].append(float(np.mean(correct)))
                    if predictions is not None:
                        predictions.extend(
                            {"dataset": data.name, "embedder": report_embedder, "seed": seed, "k": k,
                             "method": m, "index": i,
                             "label": _jsonable(y), "prediction": _jsonable(p), "correct": bool(c)}
                            for i, y, p, c in zip(test, y_test, pred, correct))
                    run["embed_seconds"].append(0.0 if m in LM_METHODS else embed_seconds)
                    run["extra"].append(extra)
                    bar.update()
    finally:
        bar.close()
        if embedder is not None:
            embedder.progress = was_progress

    results = [_result(m, k, run, notes) for (m, k), run in runs.items()]
    if checkpoint_path is not None and checkpoint_path.resolve().is_relative_to(Path.cwd().resolve()):
        checkpoint_path = checkpoint_path.resolve().relative_to(Path.cwd().resolve())
    return {
        "dataset": data.name,
        "embedder": report_embedder,
        "checkpoint": None if checkpoint_path is None else str(checkpoint_path),
        "embedding_mode": None if is_vectors else embedding_mode,
        "layer": None if is_vectors else embedder.layer,
        "test_size": len(draws[0][1]),
        "classes": sorted(set(map(str, data.labels))),
        "ks": ks,
        "seeds": seeds,
        "results": results,
        "notes": notes,
    }


def _jsonable(value):
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
        rows = [r for r in report["results"] if r["method"] == method]
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
        cells = [f"{rows[k]['mean']:.3f} ± {rows[k]['std']:.3f}" for k in ks]
        secs = np.mean([rows[k]["seconds"] for k in ks])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {secs:.2f} |")
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="TART vs logistic regression, nearest centroid and ICL on a dataset")
    p.add_argument("--data", required=True, help="bundled dataset name, .csv/.jsonl/.json file, or sklearn:NAME "
                   f"for vectors ({', '.join(SKLEARN_DATASETS)})")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--k", type=_int_list, default=[16, 32, 64], help="support-set sizes (default 16,32,64)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1), default 5")
    p.add_argument("--embedder", default="smollm2-135m", help="model short name or path (ignored for sklearn:)")
    p.add_argument("--checkpoint", default="tart-compact", help="head folder or shipped name")
    p.add_argument("--methods", default="tart,logreg,centroid,icl",
                   help=f"comma-separated, from {','.join(METHODS)} ({', '.join(LM_METHODS)}: causal LMs only)")
    p.add_argument("--test-size", type=int, default=200, help="test examples per seed (default 200; 0 = all)")
    p.add_argument("--embedding-mode", default="stream", choices=["stream", "vanilla", "loo", "leave-one-out"])
    p.add_argument("--permutations", type=int, default=4, help="support orders TART averages over")
    p.add_argument("--icl-max-tokens", type=int, default=None, help="prompt budget for icl (default: model context)")
    p.add_argument("--layer", type=int, default=-1,
                   help="hidden layer the embedder pools (default -1: the last; 0 = the token embeddings)")
    p.add_argument("--json", help="write the report here (else it is printed)")
    p.add_argument("--plot", help="write accuracy vs k here (PNG)")
    p.add_argument("--predictions", help="write every test prediction here (JSONL, one line per example and run)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is much faster when other jobs keep the cores busy)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)
    return p


def cmd_evaluate(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = load_eval_data(args.data, args.text_column, args.label_column)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    embedder = None
    if data.vectors is None:
        from tart.embeddings import load_embedder

        embedder = load_embedder(args.embedder, layer=args.layer, progress=not args.quiet)
    predictions = [] if args.predictions else None
    report = evaluate(data, ks=args.k, seeds=args.seeds, methods=methods, embedder=embedder,
                      checkpoint=args.checkpoint, test_size=args.test_size or None,
                      embedding_mode="loo" if args.embedding_mode == "leave-one-out" else args.embedding_mode,
                      n_permutations=args.permutations, icl_max_tokens=args.icl_max_tokens,
                      progress=not args.quiet, predictions=predictions)
    if args.predictions:
        write_predictions(predictions, args.predictions)
    if args.plot:
        plot_report(report, args.plot)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"{report['dataset']} · {report['embedder'] or 'vectors'} · test {report['test_size']}\n"
              + format_table(report) + "".join(f"\nnote: {n}" for n in report["notes"]))
    else:
        print(json.dumps(report, indent=2))


def main(argv=None) -> int:
    """`python -m tart.evaluate evaluate ...`: the same command without the `tart` entry point."""
    import sys

    parser = argparse.ArgumentParser(prog="python -m tart.evaluate")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"tart evaluate: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
