"""The `tart evaluate` run loop: every method (tart.methods) on the same seeds and splits.

Text is embedded once (stream mode: every text alone) and shared by all runs and vectors methods;
with `embedding_mode` vanilla or loo the embeddings depend on the support set, so they are computed
per run (once, shared by the vectors methods). `embed_seconds` is that cost per run (stream: the
run's share, (k + test) texts at the measured time per text); `seconds` is each method's own time
per run (prompt methods: all of their LM work; setfit: fine-tuning and prediction). Vector data
("sklearn:NAME") needs no embedder; features are standardised on the support set for every method.
Methods that read text (prompt methods need a causal LM) are skipped, with a note, where they cannot
run.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from tart import methods as registry
from tart.data.labels import sorted_labels
from tart.defaults import DEFAULT_HEAD, DEFAULT_N_PERMUTATIONS
from tart.evaluate.report import jsonable, summarize
from tart.evaluate.splits import EvalData, draw

DEFAULT_METHODS = ("tart", "logreg", "centroid", "icl")


def check_methods(names, embedder, vectors: bool, notes: list) -> list[str]:
    """The methods that can run here, in order; a note for each one skipped and why."""
    if not names:
        raise ValueError(f"no method given; known: {', '.join(registry.METHODS)}")
    keep = []
    for name in dict.fromkeys(names):
        method = registry.get(name)  # ValueError naming the known methods
        if method.reads != "vectors" and vectors:
            notes.append(f"{name} skipped: it needs text, and this dataset is vectors")
        elif method.reads == "prompt" and not embedder.is_causal_lm:
            notes.append(f"{name} skipped: {embedder.name} is not a causal LM")
        elif name == "setfit" and importlib.util.find_spec("setfit") is None:
            notes.append("setfit skipped: its package is not installed (pip install 'tart[setfit]')")
        else:
            keep.append(name)
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


def _fit_predict(name, S, Q, data: EvalData, sup, test, seed, ctx) -> tuple[np.ndarray, dict]:
    """One method's predictions on the test set, and extra facts to report (icl's prompt)."""
    model = registry.make(name, seed=seed, **ctx)
    y_sup = [data.labels[i] for i in sup]
    if name in ("tart", "tart-nopool") and data.vectors is None:
        # what the library reads by default on text: the labels' names, and where `tart classify` reads a
        # sample of its corpus, the texts to classify (here the split's test texts) as the unlabelled pool
        from tart.data.label_names import name_texts

        embedder = ctx["embedder"]
        names = embedder.embed(name_texts(y_sup, "auto", embedder.name))
        return model.fit(S, y_sup, unlabeled=Q if name == "tart" else None, name_vectors=names).predict(Q), {}
    if registry.get(name).reads == "vectors":
        return model.fit(S, y_sup).predict(Q), {}
    pred = model.fit([data.texts[i] for i in sup], y_sup).predict([data.texts[i] for i in test])
    extra = {"dropped": model.n_dropped_, "prompt": model.prompt_tokens_} if hasattr(model, "n_dropped_") else {}
    return pred, extra


def evaluate(data: EvalData, ks=(16, 32, 64), seeds: int = 5, methods=DEFAULT_METHODS,
             embedder=None, checkpoint=None, test_size: int | None = 200,
             embedding_mode: str = "stream", n_permutations: int = DEFAULT_N_PERMUTATIONS, icl_max_tokens: int | None = None,
             progress: bool = True, predictions: list | None = None, seed_offset: int = 0,
             setfit_iterations: int = 20) -> dict:
    """The `tart evaluate` report (see the README for its keys).

    Seeds are seed_offset … seed_offset + seeds − 1. If `predictions` is a list, one record per
    (seed, k, method, test example) is appended to it: {"dataset", "embedder", "seed", "k",
    "method", "index" (row in the dataset), "label", "prediction", "correct"}.
    """
    from tqdm.auto import tqdm

    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 1 or seeds < 1:
        raise ValueError(f"need positive k values and at least one seed, got k={ks}, seeds={seeds}")
    is_vectors = data.vectors is not None
    if not is_vectors and embedder is None:
        raise ValueError(f"{data.name} is text: give an embedder")
    if not is_vectors:
        from tart.lm.embedder import resolve_mode

        embedding_mode = resolve_mode(embedding_mode)  # the report names the mode, not an alias
    notes: list[str] = []
    methods = check_methods(list(methods), embedder, is_vectors, notes)
    ctx = {"n_permutations": n_permutations, "icl_max_tokens": icl_max_tokens, "setfit_iterations": setfit_iterations}
    checkpoint_path = None
    ctx["embedder"] = embedder
    if "tart" in methods or "tart-nopool" in methods:
        from tart.head.load import load_head, resolve_checkpoint

        checkpoint_path = resolve_checkpoint(checkpoint or DEFAULT_HEAD)
        ctx["head"] = load_head(checkpoint_path)
    if any(registry.get(m).reads == "prompt" for m in methods):
        from tart.methods.prompting import load_causal_lm

        ctx.update(lm=load_causal_lm(embedder), tokenizer=embedder.tokenizer)
    seed_list = range(seed_offset, seed_offset + seeds)
    draws = [draw(data, ks, s, test_size, notes) for s in seed_list]
    report_embedder = None if is_vectors else embedder.name
    stream = _stream_matrix(data, embedder, draws, ks) if not is_vectors and embedding_mode == "stream" else None

    runs = {(m, k): {"accs": [], "seconds": [], "embed_seconds": [], "extra": [], "seeds": []} for m in methods for k in ks}
    was_progress = getattr(embedder, "progress", False)
    if embedder is not None:
        embedder.progress = False  # one bar: the runs
    bar = tqdm(total=seeds * len(ks) * len(methods), desc=f"evaluate {data.name}", unit="run", disable=not progress)
    try:
        for seed, (supports, test) in zip(seed_list, draws):
            y_test = np.array([data.labels[i] for i in test], dtype=object)
            for k in ks:
                S, Q, embed_seconds = _task_vectors(data, supports[k], test, embedder, embedding_mode, stream)
                for m in methods:
                    t0 = time.perf_counter()
                    try:
                        pred, extra = _fit_predict(m, S, Q, data, supports[k], test, seed, ctx)
                    except ValueError as err:  # this support set does not suit the method (e.g. too few per class)
                        notes.append(f"{m} k={k} seed {seed}: not run: {err}")
                        bar.update()
                        continue
                    run = runs[(m, k)]
                    run["seeds"].append(seed)
                    run["seconds"].append(time.perf_counter() - t0)
                    correct = np.asarray(pred, dtype=object) == y_test
                    run["accs"].append(float(np.mean(correct)))
                    if predictions is not None:
                        predictions.extend(
                            {"dataset": data.name, "embedder": report_embedder, "seed": seed, "k": k,
                             "method": m, "index": i,
                             "label": jsonable(y), "prediction": jsonable(p), "correct": bool(c)}
                            for i, y, p, c in zip(test, y_test, pred, correct))
                    run["embed_seconds"].append(embed_seconds if registry.get(m).reads == "vectors" else 0.0)
                    run["extra"].append(extra)
                    bar.update()
    finally:
        bar.close()
        if embedder is not None:
            embedder.progress = was_progress

    results = [summarize(m, k, run, notes, seeds) for (m, k), run in runs.items()]
    if checkpoint_path is not None and checkpoint_path.resolve().is_relative_to(Path.cwd().resolve()):
        checkpoint_path = checkpoint_path.resolve().relative_to(Path.cwd().resolve())
    return {
        "dataset": data.name,
        "embedder": report_embedder,
        "checkpoint": None if checkpoint_path is None else str(checkpoint_path),
        "embedding_mode": None if is_vectors else embedding_mode,
        "layer": None if is_vectors else embedder.layer,
        "test_size": len(draws[0][1]),
        "classes": sorted_labels(map(str, data.labels)),
        "ks": ks,
        "seeds": seeds,
        "seed_list": list(seed_list),
        "setfit_iterations": setfit_iterations if "setfit" in methods else None,
        "results": results,
        "notes": notes,
    }
