"""The dev suite: where every choice about the head (prior, width, ensembles, default settings) is made.

15 real tasks from 7 sources, each embedded by both packaged embedders (vector tasks need none):
- WordNet noun glosses by supersense (Debian `wordnet-base`): animal/food, act/state, artifact/person,
  plant/communication, and 6 supersenses at once;
- fortune cookies by topic (Debian `fortunes`): computers/politics, and 4 topics at once;
- the Hu & Liu opinion lexicon (Debian `r-cran-tidytext`): positive/negative words;
- scikit-learn's bundled tables: digits (10 classes), breast cancer, wine (3), iris (3);
- user-written text (`USER_TEXT_TASKS`, the `dev` datasets of `tart.training.user_text`, never in the
  task bank): SNIPS assistant intents (7), Amazon / Yelp review sentences (positive/negative), AG News
  topics (4).
The sources that issue 12 reserves for independent evaluation are not used here, for data, training
or tuning.

Every method sees the same support sets and test sets: per (task, k, seed) a class-balanced support
set of k examples and up to `test_size` test examples from the rest, drawn from the seed alone
(`tart.data.splits.balanced_indices` with numpy's draws). A text task is a fixed pool of at most `POOL` rows
of its dataset (a seeded sample, class proportions kept), so that embedding the suite stays within
minutes on two CPU cores. Embeddings are computed
once per (embedder, task) and cached as .npy under the user cache folder (`$TART_CACHE_DIR/dev-suite`).

    python -m tart.evaluate.dev_suite --methods probe,centroid,tart:tart-compact --json F.json [--plot F.png]

Methods: `probe` (logistic regression, C by CV on the support), `centroid` (standardised),
`centroid-raw`, `base:nearest-mean` / `base:lda` (a residual head's base alone: `ResidualBase`), and
`tart:HEAD[,param=value...]` (TartClassifier on the vectors, e.g.
`tart:tart-prior,n_permutations=1,sign_flips=false`); any of them with `names=N` (e.g. `probe,names=1`)
also sees each label's name, embedded, as N more labelled examples on the text tasks (`WithLabelNames`),
except `tart:HEAD,names=1` and `base:side,names=1` (the side-input head's base alone, `SideBase`), which
read names the library's way (fit's `name_vectors`, `WithSideInputs`; `bare=1`: a causal LM's names
without the template), and with `pool=1` the test points as unlabelled pool. `--ks 0` is zero-shot:
those methods and `nearest-name` (cosine to each embedded name) on the text tasks. JSON: {"tasks", "embedders", "ks", "seeds",
"test_size", "methods", "results": [{"task", "embedder", "method", "k", "accs", "mean", "seconds"}],
"summary": [{"embedder", "method", "k", "mean", "tasks"}], "versus_best_baseline": [{"embedder",
"method", "k", "diff", "wins", "tasks"}]}, where a suite's mean is over its 15 tasks (11 text tasks
embedded by that embedder + the 4 vector tasks) and the best baseline is, per embedder and k, the best
mean of probe / centroid / centroid-raw.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tart.data.datasets import load_dataset
from tart.data.labels import LabelledTexts, sorted_labels
from tart.data.splits import balanced_indices
from tart.defaults import DEFAULT_CAUSAL_LM, DEFAULT_EMBEDDER, DEFAULT_SHRINKAGE
from tart.head.load import head_digest
from tart.methods import parse_spec, split_specs

TEXT_TASKS = ("wordnet-animal-food", "wordnet-act-state", "wordnet-artifact-person", "wordnet-plant-communication",
              "fortunes-computers-politics", "opinion-sentiment", "wordnet-6way", "fortunes-4way")
USER_TEXT_TASKS = ("user-text:snips", "user-text:review-sentences", "user-text:ag-news")
TEXT_TASKS = TEXT_TASKS + USER_TEXT_TASKS
VECTOR_TASKS = ("sklearn:digits", "sklearn:breast_cancer", "sklearn:wine", "sklearn:iris")
EMBEDDERS = (DEFAULT_CAUSAL_LM, DEFAULT_EMBEDDER)  # the packaged embedders, SmolLM2 first as in every report so far
BASELINES = ("probe", "centroid", "centroid-raw")
POOL = 500


def _cache_dir() -> Path:
    from tart.paths import cache_dir

    return cache_dir() / "dev-suite"


def task_vectors(task: str, embedder: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of a task: a table, or a bundled text set embedded once and cached."""
    if task.startswith("bank:"):  # bank:SOURCE:i, the i-th fixed task of a task-bank source (tart.tasks.episodes)
        from tart.tasks.episodes import source_tasks

        _, source, i = task.split(":")
        return source_tasks(embedder, source)[int(i)]
    if task.startswith("sklearn:"):  # integer targets: the splits follow their order
        from tart.evaluate.splits import sklearn_table

        X, y, _ = sklearn_table(task.split(":", 1)[1])
        return X, y
    data = task_texts(task)
    digest = hashlib.sha1("\n".join(data.texts).encode()).hexdigest()[:12]
    from tart.lm.dtype import dtype_setting

    dtype = dtype_setting()  # the dtype asked for ($TART_EMBED_DTYPE, else auto) names the file
    backend = _backend()  # an ONNX backend has its own vectors
    path = _cache_dir() / f"{embedder}-{dtype if backend == 'torch' else backend}-{task}-{digest}.npy"
    if not path.exists():
        from tart.paths import save_array

        save_array(path, _embedder(embedder).embed(data.texts))  # batched by tokens, with a progress bar
    return np.load(path), np.asarray(data.labels)


def task_texts(task: str) -> LabelledTexts:
    """A text task's labelled texts as the suite embeds them: at most POOL, a seeded stratified sample."""
    data = _user_text(task.split(":", 1)[1]) if task.startswith("user-text:") else load_dataset(task)
    if len(data) > POOL:  # stratified: every class keeps its share
        labels = np.asarray(data.labels)
        rng = np.random.default_rng(0)
        keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), round(POOL * np.mean(labels == c)), replace=False)
                               for c in sorted_labels(data.labels)])
        data = data.subset(sorted(keep.tolist()))
    return data


def _backend() -> str:
    """The embedder backend the suite runs: $TART_EMBED_BACKEND where it names one, else torch. Not `auto`:
    the suite's vectors are the reference results are compared by, across commits, so a named runtime
    makes them, never a table of speeds that may change."""
    from tart.lm.backends import resolve_backend

    backend = resolve_backend()
    return "torch" if backend == "auto" else backend


def _embedder(name: str):
    from tart.lm.embedder import load_embedder

    return load_embedder(name, backend=_backend())


def _user_text(name: str) -> LabelledTexts:
    """A dev dataset of user-written text (`tart.training.user_text`); a bank dataset never is one."""
    from tart.training import user_text

    if name not in {d["name"] for d in user_text.datasets("dev")}:
        raise ValueError(f"{name!r} is not a dev dataset of tart.training.user_text")
    by_label = user_text.read(name)
    return LabelledTexts(name, [t for c in by_label for t in by_label[c]], [c for c in by_label for _ in by_label[c]])


def make_method(spec: str, seed: int, embedder: str | None = None):
    """A method of the suite by its spec (`tart.methods.parse_spec`'s grammar): a baseline of the registry,
    `base:nearest-mean|lda[,n_dims=,shrinkage=]`, `base:side`, `nearest-name` or `tart:HEAD[,param=value...]`;
    with `names=N` each label's name as N more examples on a text task (`WithLabelNames`), or for tart
    and base:side read the library's way, with `pool=1` the test points as unlabelled pool (`WithSideInputs`)."""
    from tart import methods

    parsed = methods.parse_spec(spec)
    params = dict(parsed.params)
    copies, pool, bare = params.pop("names", 0), params.pop("pool", 0), params.pop("bare", 0)
    if parsed.name == "nearest-name":
        return NearestName(embedder)
    side_base = parsed.name == "base" and parsed.arg == "side"
    if side_base or (parsed.name == "tart" and parsed.arg and (copies or pool)):
        # names and unlabelled points read the library's way (fit's name_vectors and unlabeled), not as copies
        if side_base:
            method = SideBase(**params)
        else:
            from tart.classifier import TartClassifier

            method = TartClassifier(head=parsed.arg, embedder=None, random_state=seed,
                                    label_names="auto" if copies else None, **params)
        return WithSideInputs(method, embedder if copies else None, bool(pool), bool(bare))
    if parsed.name in BASELINES and not parsed.arg and not params:
        # from the one registry; the suite calls the logistic-regression probe "probe"
        method = methods.make("logreg" if parsed.name == "probe" else parsed.name, seed=seed)
    elif parsed.name == "base" and parsed.arg in ("nearest-mean", "lda"):  # e.g. base:nearest-mean,n_dims=64
        method = ResidualBase(lda=parsed.arg == "lda", **params)
    elif parsed.name == "tart" and parsed.arg:
        from tart.classifier import TartClassifier

        method = TartClassifier(head=parsed.arg, embedder=None, random_state=seed, **params)
    else:
        raise ValueError(f"unknown method {spec!r}: probe, centroid, centroid-raw, base:nearest-mean, base:lda, "
                         "base:side or tart:HEAD[,param=value...], each with an optional names=N (and pool=1 "
                         "for tart and base:side: the test points as the unlabelled pool)")
    return WithLabelNames(method, embedder, copies) if copies and embedder else method


class WithLabelNames:
    """A method that also sees each label's name (the label itself, e.g. "animal"), embedded by the task's
    embedder, as `copies` more labelled examples: knowledge of the task that its support set alone lacks,
    and that every method can use. Only where labels are words: the suite's text tasks."""

    def __init__(self, method, embedder: str, copies: int):
        self.method, self.embedder, self.copies = method, embedder, copies

    def fit(self, X, y):
        names = np.asarray(sorted_labels(y))
        vectors = _embedder(self.embedder).embed([str(n) for n in names])  # as task_vectors embeds
        self.method.fit(np.concatenate([X] + [vectors] * self.copies), np.concatenate([y] + [names] * self.copies))
        return self

    def predict(self, X):
        return self.method.predict(X)

    def predict_proba(self, X):
        return self.method.predict_proba(X)

    @property
    def classes_(self):
        return self.method.classes_


def reads_names(spec: str) -> bool:
    """Whether a method spec can classify from the labels' names alone (k = 0)."""
    from tart import methods

    parsed = methods.parse_spec(spec)
    return parsed.name == "nearest-name" or (parsed.name in ("tart", "base") and bool(parsed.params.get("names")))


def _embed_names(labels, embedder: str, bare: bool = False) -> np.ndarray:
    """Each class's name, embedded by the task's embedder as the library embeds it (tart.data.label_names), or
    `bare`: without the causal LMs' template (to choose it)."""
    from tart.data.label_names import name_texts

    return _embedder(embedder).embed(name_texts(labels, "auto", None if bare else embedder))


class NearestName:
    """Zero-shot baseline: each text gets the label whose name, embedded, is nearest by cosine."""

    def __init__(self, embedder: str):
        self.embedder = embedder

    def fit(self, X, y):
        self.classes_ = np.asarray(sorted_labels(list(y) or self.classes))
        N = _embed_names(self.classes_.tolist(), self.embedder)
        self.names_ = N / np.linalg.norm(N, axis=1, keepdims=True)
        return self

    def predict(self, X):
        return self.classes_[(X @ self.names_.T / np.linalg.norm(X, axis=1, keepdims=True)).argmax(1)]


class WithSideInputs:
    """A method that reads what a user has besides examples the library's own way (`fit(X, y, unlabeled,
    name_vectors)`): each label's name embedded by the task's embedder (`tart.data.label_names`), and with
    `pool` the test points as its unlabelled pool, of which the method keeps a seeded sample, as
    `tart classify` reads a corpus and `tart evaluate` a split's test texts."""

    def __init__(self, method, embedder: str | None, pool: bool, bare: bool = False):
        self.method, self.embedder, self.pool, self.bare = method, embedder, pool, bare

    def fit(self, X, y):
        self.X_, self.y_ = X, y
        return self

    def predict(self, X):
        from tart.data.label_names import default_name

        labels = list(self.y_) if len(self.y_) else list(self.classes)  # k = 0: the task's classes, named
        names = _embed_names(labels, self.embedder, self.bare) if self.embedder else None
        if not len(self.y_):
            self.method.classes = sorted_labels(labels)  # the side base
            if hasattr(self.method, "set_params"):  # TartClassifier: zero-shot over these names
                self.method.set_params(label_names={c: default_name(c) for c in sorted_labels(labels)})
        return self.method.fit(self.X_, self.y_, unlabeled=X if self.pool else None, name_vectors=names).predict(X)


class SideBase:
    """The side-input head's base alone (`tart.head.model.side_mean_scores` with fixed weights: by default a
    head's initial ones, a name counts as one example, an unlabelled point half, 2 rounds of soft k-means),
    projected as TartClassifier projects (`shrunk_std`: as a head with that config); `base:side` in the
    suite, e.g. `base:side,names=1,pool=1,shrunk_std=1,shrinkage=1,name_weight=2,unlabeled_weight=1`;
    `name_norm=texts` reads names as such a head does (TartConfig.name_norm)."""

    def __init__(self, n_dims: int = 64, shrinkage: float = DEFAULT_SHRINKAGE, max_unlabeled: int = 64, steps: int = 2,
                 shrunk_std: bool = False, name_weight: float = 1.0, unlabeled_weight: float = 0.5,
                 name_norm: str = "raw"):
        self.n_dims, self.shrinkage, self.max_unlabeled, self.steps = n_dims, shrinkage, max_unlabeled, steps
        self.shrunk_std, self.name_weight, self.unlabeled_weight = shrunk_std, name_weight, unlabeled_weight
        self.name_norm = name_norm

    def fit(self, X, y, unlabeled=None, name_vectors=None):
        import torch

        from tart.classifier import MIN_POINTS_TO_STANDARDIZE, read_names  # projected as TartClassifier projects
        from tart.head.ensemble import fit_task_projection, project

        self.classes_ = np.asarray(sorted_labels(list(y)) if len(y) else self.classes)  # k = 0: the named classes
        y_index = np.searchsorted(self.classes_, y) if len(y) else np.zeros(0, dtype=np.int64)
        U = None
        if unlabeled is not None:
            U = unlabeled[np.sort(np.random.default_rng(0).permutation(len(unlabeled))[: self.max_unlabeled])]
        name_vectors, shrinkage = read_names(name_vectors, X, U, self.name_norm, self.shrinkage)
        fit_on = [X] + ([name_vectors] if name_vectors is not None else [])  # as TartClassifier fits it
        fit_on = np.concatenate(fit_on)
        self.projection_ = fit_task_projection(fit_on, self.n_dims, shrinkage,
                                               len(fit_on) >= MIN_POINTS_TO_STANDARDIZE, bool(self.shrunk_std))
        as_batch = lambda A: None if A is None else torch.as_tensor(project(self.projection_, A))[None]
        self.S_, self.y_ = as_batch(X), torch.from_numpy(y_index)[None]
        self.names_, self.U_ = as_batch(name_vectors), as_batch(U)
        return self

    def predict(self, X):
        import torch

        from tart.head.ensemble import project
        from tart.head.model import initial_base_scores

        Q = torch.as_tensor(project(self.projection_, X))[None]
        C = len(self.classes_)
        names_mask = None if self.names_ is None else torch.ones(1, C, dtype=torch.bool)
        scores = initial_base_scores(self.S_, self.y_, Q, torch.tensor([self.S_.shape[1]]), C, self.names_, names_mask,
                                     self.U_, None, self.steps, name_weight=float(self.name_weight),
                                     unlabeled_weight=float(self.unlabeled_weight))[0]
        return self.classes_[scores.argmax(-1).numpy()]


class ResidualBase:
    """A residual head's base alone (`tart.head.model.class_mean_scores`), without the Transformer: what
    the head adds to it is the difference. Projected as TartClassifier projects (32 dims, shrinkage 0.5
    by default)."""

    def __init__(self, lda: bool, n_dims: int = 32, shrinkage: float = DEFAULT_SHRINKAGE):
        self.lda, self.n_dims, self.shrinkage = lda, n_dims, shrinkage

    def fit(self, X, y):
        self.classes_, self.y_ = np.unique(y, return_inverse=True)
        self.X_ = X
        return self

    def predict(self, X):
        import torch

        from tart.head.ensemble import project_task
        from tart.head.model import class_mean_scores

        S, Q = project_task(self.X_, X, self.n_dims, self.shrinkage, True)
        scores = class_mean_scores(S[None], torch.from_numpy(self.y_)[None], Q[None], torch.tensor([len(S)]),
                                   len(self.classes_), lda=self.lda)[0]
        return self.classes_[scores.argmax(-1).numpy()]


def vectors_digest(X: np.ndarray) -> str:
    """A short digest of a task's vectors, recorded per (embedder, task) in each report."""
    return hashlib.sha1(np.ascontiguousarray(X, dtype=np.float32).tobytes()).hexdigest()[:12]


def run(methods, ks=(8, 16, 32, 64), seeds: int = 5, test_size: int = 200, embedders=EMBEDDERS,
        tasks=TEXT_TASKS + VECTOR_TASKS, progress: bool = True, reuse: dict | None = None) -> dict:
    """`reuse`: an earlier report of the same suite; its rows for any of `methods` are taken as they are
    (same tasks, splits and seeds), so adding a method does not rerun the others. Only rows computed on the
    very vectors this run reads are reused (the report's `vectors` digests): another machine embeds a task a
    few float roundings apart, which flips a query here and there, and a gap between rows of two machines
    would measure that too. Rows of a report without digests are computed again. So are a head's rows where
    its config or weights, or the code that runs a head, changed since (the report's `heads` digests)."""
    for spec in methods:
        make_method(spec, 0)  # a bad spec fails before any work
    code = _head_code_digest()
    heads = {h: f"{head_digest(h)}-{code}" for h in dict.fromkeys(filter(None, map(_head_of, methods)))}
    candidates, reused_vectors = [], (reuse or {}).get("vectors", {})
    if reuse:
        if (reuse["seeds"], reuse["test_size"]) != (seeds, test_size):
            raise ValueError("--reuse: the earlier report used other seeds or test_size")
        changed = [h for h in heads if (reuse.get("heads") or {}).get(h) != heads[h]]
        if changed:
            print(f"reuse: rows of {', '.join(changed)} computed again, the head or the code that runs it changed "
                  "since the earlier report, or it is unrecorded", file=sys.stderr)
        candidates = [r for r in reuse["results"] if r["method"] in methods and r["k"] in ks and r["task"] in tasks
                      and _head_of(r["method"]) not in changed]
    pairs = [(t, None if t.startswith("sklearn:") else e) for t in tasks for e in embedders]
    pairs = list(dict.fromkeys(pairs))  # vector tasks once
    results, vectors, stale = [], {}, []
    bar = tqdm(total=len(pairs) * len(ks) * seeds * len(methods), desc="dev suite", disable=not progress)
    for task, embedder in pairs:
        X, y = task_vectors(task, embedder)
        key = f"{embedder or 'none'}/{task}"
        vectors[key] = vectors_digest(X)
        rows = [r for r in candidates if (r["task"], r["embedder"]) == (task, embedder or "none")]
        if rows and reused_vectors.get(key) != vectors[key]:
            stale.append(key)
            rows = []
        results += rows
        done = {(r["k"], r["method"]) for r in rows}
        for k in ks:
            todo = [m for m in methods if (k, m) not in done]
            if k == 0:  # zero-shot: the methods that read names, on the text tasks
                todo = [m for m in todo if embedder and reads_names(m)]
            else:  # the nearest name is a zero-shot baseline only
                todo = [m for m in todo if m != "nearest-name"]
            bar.update(seeds * (len(methods) - len(todo)))
            if (k and k < len(np.unique(y))) or not todo:
                bar.update(seeds * len(todo) if todo else 0)
                continue
            accs = {m: [] for m in todo}
            seconds = {m: 0.0 for m in todo}
            for seed in range(seeds):
                support, test = suite_split(y, k, seed, test_size)
                for m in todo:
                    start = time.perf_counter()
                    method = make_method(m, seed, embedder)
                    if not k:
                        method.classes = sorted_labels(y)  # what a zero-shot method names (its support has none)
                    pred = method.fit(X[support], y[support]).predict(X[test])
                    seconds[m] += time.perf_counter() - start
                    accs[m].append(float((np.asarray(pred) == y[test]).mean()))
                    bar.update()
            for m in todo:
                results.append({"task": task, "embedder": embedder or "none", "method": m, "k": k, "accs": accs[m],
                                "mean": float(np.mean(accs[m])), "seconds": seconds[m] / seeds})
    bar.close()
    if stale:
        print(f"reuse: rows of {len(stale)} task(s) computed again, the earlier report's vectors differ from "
              f"these or are unrecorded: {', '.join(stale)}", file=sys.stderr)
    report = {"tasks": list(tasks), "embedders": list(embedders), "ks": list(ks), "seeds": seeds,
              "test_size": test_size, "methods": list(methods), "results": results, "vectors": vectors,
              "heads": heads}
    report.update(summarize(results, methods, ks, embedders))
    return report


def suite_split(y, k: int, seed: int, test_size: int = 200) -> tuple[list, list]:
    """The suite's (support, test) indices for one (task, k, seed): a class-balanced support of k and up to
    test_size test points from the rest; zero-shot (k = 0), no support and a seeded sample of test points."""
    if k:
        return balanced_indices(y, k, seed, min(test_size, len(y) - k), sampler="numpy")
    return [], sorted(np.random.default_rng(seed).permutation(len(y))[:test_size].tolist())


def _head_code_digest() -> str:
    """A short digest of the code between a head's files and its answers: tart/head and tart/classifier.py."""
    package = Path(__file__).resolve().parent.parent
    sha = hashlib.sha1()
    for path in sorted((package / "head").glob("*.py")) + [package / "classifier.py"]:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:12]


def _head_of(spec: str) -> str | None:
    """The head a `tart:HEAD[,…]` method runs, else None."""
    parsed = parse_spec(spec)
    return parsed.arg if parsed.name == "tart" and parsed.arg else None


def _rows(results, method, k, embedder) -> dict:
    """{task: row} of one method at one k in one embedder's suite (its text tasks + the vector tasks)."""
    return {r["task"]: r for r in results if r["method"] == method and r["k"] == k and r["embedder"] in (embedder, "none")}


def standard_error(values) -> float:
    """The standard error of the mean of `values` (nan for fewer than 2)."""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def paired_gap(a: dict, b: dict) -> dict:
    """Method a minus method b on the tasks both have ({task: row} each): the mean of the per-task
    differences, its standard error over every (task, seed) pair (both saw the same support and test
    sets there) and over tasks (`se_tasks`: the per-task differences as the sample, tasks as the unit),
    and on how many tasks a is ahead."""
    tasks = [t for t in a if t in b]
    diffs = [a[t]["mean"] - b[t]["mean"] for t in tasks]
    pairs = np.concatenate([np.subtract(a[t]["accs"], b[t]["accs"]) for t in tasks]) if tasks else np.zeros(0)
    return {"diff": float(np.mean(diffs)) if tasks else float("nan"), "se": standard_error(pairs),
            "se_tasks": standard_error(diffs),
            "wins": int(sum(d > 0 for d in diffs)), "tasks": len(tasks)}


def summarize(results, methods, ks, embedders) -> dict:
    """Per embedder's suite: mean accuracy per method and k, and each non-baseline method's paired
    difference from the best baseline (same tasks, seeds, splits)."""
    summary, versus = [], []
    for e in embedders:
        for k in ks:
            rows = {m: _rows(results, m, k, e) for m in methods}
            means = {m: float(np.mean([r["mean"] for r in rows[m].values()])) for m in methods if rows[m]}
            for m, mean in means.items():
                summary.append({"embedder": e, "method": m, "k": k, "mean": mean, "tasks": len(rows[m])})
            baselines = [m for m in BASELINES if m in means]
            if not baselines:
                continue
            best = max(baselines, key=means.get)
            versus += [{"embedder": e, "method": m, "k": k, "best_baseline": best, **paired_gap(rows[m], rows[best])}
                       for m in means if m not in BASELINES]
    return {"summary": summary, "versus_best_baseline": versus}


def gaps(report: dict, pairs) -> list[dict]:
    """Paired gaps between two methods (a - b), per embedder and k, e.g. a head minus its base alone."""
    out = []
    for a, b in pairs:
        for e in report["embedders"]:
            for k in report["ks"]:
                gap = paired_gap(_rows(report["results"], a, k, e), _rows(report["results"], b, k, e))
                if gap["tasks"]:
                    out.append({"embedder": e, "a": a, "b": b, "k": k, **gap})
    return out


def merge(reports: list[dict]) -> dict:
    """One report from several runs of the same suite (same seeds, splits, test size): a row from a later
    report replaces the same (task, embedder, method, k) row of an earlier one."""
    first = reports[0]
    for r in reports[1:]:
        if (r["seeds"], r["test_size"]) != (first["seeds"], first["test_size"]):
            raise ValueError("cannot merge dev-suite reports with other seeds or test_size")
    rows = {}
    for r in reports:
        for row in r["results"]:
            rows[(row["task"], row["embedder"], row["method"], row["k"])] = row
    methods = list(dict.fromkeys(m for r in reports for m in r["methods"]))
    ks = sorted({k for r in reports for k in r["ks"]})
    embedders = list(dict.fromkeys(e for r in reports for e in r["embedders"]))
    tasks = list(dict.fromkeys(t for r in reports for t in r["tasks"]))
    vectors, heads = {}, {}
    for r in reports:
        for key, digest in r.get("vectors", {}).items():
            if vectors.setdefault(key, digest) != digest:
                raise ValueError(f"cannot merge dev-suite reports computed on other vectors of {key}")
        for head, digest in r.get("heads", {}).items():
            if heads.setdefault(head, digest) != digest:
                raise ValueError(f"cannot merge dev-suite reports computed with other versions of head {head}")
    results = list(rows.values())
    report = {"tasks": tasks, "embedders": embedders, "ks": ks, "seeds": first["seeds"],
              "test_size": first["test_size"], "methods": methods, "results": results, "vectors": vectors,
              "heads": heads}
    report.update(summarize(results, methods, ks, embedders))
    return report


def format_table(report: dict) -> str:
    lines = [f"{g['a']} - {g['b']} ({g['embedder']}, k={g['k']}): {g['diff']:+.3f} ± {g['se']:.3f} (wins {g['wins']}/{g['tasks']})"
             for g in report.get("gaps", [])]
    for e in report["embedders"]:
        lines.append(f"\n{e} suite (mean accuracy over {len(report['tasks'])} tasks, {report['seeds']} seeds)")
        lines.append("method".ljust(48) + "".join(f"k={k}".rjust(8) for k in report["ks"]))
        for m in report["methods"]:
            cells = {r["k"]: r["mean"] for r in report["summary"] if r["embedder"] == e and r["method"] == m}
            lines.append(m[:47].ljust(48) + "".join(f"{cells[k]:8.3f}" if k in cells else " " * 8 for k in report["ks"]))
        for v in report["versus_best_baseline"]:
            if v["embedder"] == e:
                lines.append(f"  {v['method']} k={v['k']}: {v['diff']:+.3f} ± {v.get('se', float('nan')):.3f} vs "
                             f"{v['best_baseline']} (wins {v['wins']}/{v['tasks']})")
    return "\n".join(lines)


def per_task_table(report: dict) -> str:
    """Markdown: one row per (embedder, task), one column per (method, k): mean accuracy over the seeds."""
    methods = report["methods"]
    rows = {(r["embedder"], r["task"], r["method"], r["k"]): r["mean"] for r in report["results"]}
    pairs = list(dict.fromkeys((e, t) for e, t, _, _ in rows))
    head = [f"{m} k={k}" for m in methods for k in report["ks"]]
    lines = ["| embedder | task | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    for e, t in sorted(pairs):
        cells = [rows.get((e, t, m, k)) for m in methods for k in report["ks"]]
        if any(c is not None for c in cells):
            lines.append(f"| {e} | {t} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def plot(report: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(report["embedders"]), figsize=(5 * len(report["embedders"]), 3.8), squeeze=False)
    for ax, e in zip(axes[0], report["embedders"]):
        for m in report["methods"]:
            rows = sorted((r["k"], r["mean"]) for r in report["summary"] if r["embedder"] == e and r["method"] == m)
            ax.plot(*zip(*rows), "s--" if m in BASELINES else "o-", label=m[:40])
        ax.set_xscale("log", base=2)
        ax.set_xticks(report["ks"], [str(k) for k in report["ks"]])
        ax.set_xlabel("k (labelled examples)")
        ax.set_ylabel(f"mean accuracy, {len(report['tasks'])} tasks")
        ax.set_title(f"dev suite, {e}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tart.evaluate.dev_suite", description=__doc__.split("\n")[0])
    p.add_argument("--methods", help="comma-separated; a tart spec's options use ',' too, so "
                   "separate methods with ';' when a spec has options")
    p.add_argument("--ks", default="8,16,32,64")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--test-size", type=int, default=200)
    p.add_argument("--embedders", default=",".join(EMBEDDERS))
    p.add_argument("--tasks", default=",".join(TEXT_TASKS + VECTOR_TASKS))
    p.add_argument("--json", required=True)
    p.add_argument("--plot")
    p.add_argument("--per-task", help="also write a markdown table of every task's accuracy to this file")
    p.add_argument("--reuse", help="an earlier report whose rows are kept for the methods it has")
    p.add_argument("--merge", nargs="+", help="instead of running: merge these reports into --json")
    p.add_argument("--gap", action="append", default=[], metavar="A;B",
                   help="also report the paired gap of method A over method B (repeatable), e.g. a head over its base")
    args = p.parse_args(argv)
    pairs = [tuple(g.split(";")) for g in args.gap]
    if any(len(pair) != 2 for pair in pairs):
        p.error("--gap takes two methods separated by ';'")
    if args.merge:
        report = merge([json.loads(Path(f).read_text()) for f in args.merge])
        report["gaps"] = gaps(report, pairs)
        Path(args.json).write_text(json.dumps(report, indent=1))
        _write_extras(report, args)
        print(format_table(report))
        return 0
    if not args.methods:
        p.error("--methods is required unless --merge is given")
    methods = split_specs(args.methods)
    report = run(methods, [int(k) for k in args.ks.split(",")], args.seeds, args.test_size,
                 args.embedders.split(","), args.tasks.split(","),
                 reuse=json.loads(Path(args.reuse).read_text()) if args.reuse else None)
    report["gaps"] = gaps(report, pairs)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    _write_extras(report, args)
    print(format_table(report))
    return 0


def _write_extras(report: dict, args) -> None:
    if args.plot:
        plot(report, args.plot)
    if args.per_task:
        Path(args.per_task).write_text(per_task_table(report) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
