"""Shared invariances between two few-shot classifiers (SCoPE; Rawal & Toneva, "Perturbed examples
reveal invariances shared by language models", arXiv 2311.04166).

A *reference* model M1 and a *target* model M2 (any classifier over texts with `predict_proba`
and `classes_`, e.g. a model spec of tart.analysis.models) are fitted on the same support set.
For each evaluated text x and each perturbation type:

1. Candidates. `n_candidates` (default 3) seeded perturbations of x:
   - synonym: one word (not a stop word) replaced by a WordNet synonym from the vendored table
     tart/data/bundled/wordnet-synonyms.tsv.gz (built by scripts/build_synonyms.py; case kept);
   - typo: in one word of length >= 4 that is not a stop word, two adjacent interior characters
     swapped (the first and last characters stay).
2. Selection by M1. With p1(.) M1's class probabilities and D1 = p1(x') - p1(x), keep the
   candidate x' with the highest invariance score 1 / (1 + ||D1||_1), and keep the example only if
   M1's predicted label is unchanged, argmax p1(x') = argmax p1(x) ("M1-invariant").
3. Measures on M2 over the M1-invariant examples, with D2 = p2(x') - p2(x):
   - Hard-SCoPE = mean of h, h = 1[argmax p2(x') = argmax p2(x)]  (M2's label unchanged too);
   - Soft-SCoPE = mean of s, s = h * r(d), d = ||D1 - D2||_1 (in [0, 4]),
     r(d) = 1 if d <= tol, 0 if d >= cutoff, (cutoff - d) / (cutoff - tol) in between
     (defaults tol = 0.1, cutoff = 1.0; for two classes d = 2 |dp1 - dp2|, so a gap of 5
     probability points still counts fully and one of 50 points counts nothing).
   Soft refines Hard: an example counts fully only if M2 keeps its label *and* its output moves
   the way M1's did. Hence 0 <= Soft <= Hard <= 1 on every sample, Soft = Hard when
   tol >= 4, and M2 = M1 gives Hard = Soft = 1 (D1 = D2, d = 0).
   A target that predicts at random keeps its label by chance: Hard is about 1/C for C classes.
4. Confidence intervals: percentile bootstrap over the M1-invariant examples (`n_boot`
   resamples, seeded), 95% by default.

`tart analyze invariance --reference SPEC --target SPEC [--target SPEC ...] --data FILE --k 16
--n 200 --json F --plot F.png`: a balanced support set of k examples drawn from the data with the
seed; up to n of the others are evaluated. JSON keys are listed in `run_invariance`.
"""
from __future__ import annotations

import gzip
import re
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

SYNONYMS_FILE = Path(__file__).resolve().parent.parent / "data" / "bundled" / "wordnet-synonyms.tsv.gz"
PERTURBATIONS = ("synonym", "typo")
SOFT_TOL, SOFT_CUTOFF = 0.1, 1.0
# Function words: replacing or misspelling them says little about a model's grasp of the content.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves one also may might must shall upon
""".split())
_WORD = re.compile(r"[A-Za-z]+")


# -- perturbations ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_synonyms(path=SYNONYMS_FILE) -> dict[str, tuple[str, ...]]:
    """word -> its WordNet synonyms (most frequent senses first)."""
    table = {}
    for line in gzip.decompress(Path(path).read_bytes()).decode("utf-8").splitlines():
        if line and not line.startswith("#"):
            word, synonyms = line.split("\t")
            table[word] = tuple(synonyms.split())
    return table


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[0].isupper() else word


def synonym(text: str, rng: np.random.Generator) -> str | None:
    """Replace one content word by a WordNet synonym; None if no word has one."""
    table = load_synonyms()
    words = [m for m in _WORD.finditer(text) if m.group().lower() in table and m.group().lower() not in STOP_WORDS]
    if not words:
        return None
    m = words[rng.integers(len(words))]
    options = table[m.group().lower()]
    new = _match_case(options[rng.integers(len(options))], m.group())
    return text[: m.start()] + new + text[m.end():]


def typo(text: str, rng: np.random.Generator) -> str | None:
    """Swap two adjacent interior characters of one word (length >= 4, not a stop word); None if
    no word qualifies."""
    spots = [(m, i) for m in _WORD.finditer(text) if len(m.group()) >= 4 and m.group().lower() not in STOP_WORDS
             for i in range(1, len(m.group()) - 2) if m.group()[i] != m.group()[i + 1]]
    if not spots:
        return None
    m, i = spots[rng.integers(len(spots))]
    w = m.group()
    return text[: m.start()] + w[:i] + w[i + 1] + w[i] + w[i + 2:] + text[m.end():]


_PERTURB = {"synonym": synonym, "typo": typo}


def candidates(text: str, kind: str, n: int, rng: np.random.Generator) -> list[str]:
    """Up to n distinct perturbations of `text` that differ from it (a few extra draws allowed)."""
    out: list[str] = []
    for _ in range(4 * n):
        new = _PERTURB[kind](text, rng)
        if new is None:
            break
        if new != text and new not in out:
            out.append(new)
            if len(out) == n:
                break
    return out


# -- measures --------------------------------------------------------------------------------------
def soft_credit(distance, tol: float = SOFT_TOL, cutoff: float = SOFT_CUTOFF) -> np.ndarray:
    """r(d): 1 up to tol, 0 from cutoff on, linear in between."""
    return np.clip((cutoff - np.asarray(distance, dtype=np.float64)) / (cutoff - tol), 0.0, 1.0)


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of the mean (scipy.stats.bootstrap); None for no values."""
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return None
    if len(values) < 2 or np.ptp(values) == 0:  # one value, or all equal: the interval is that value
        return [float(values[0])] * 2
    res = bootstrap((values,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile",
                    rng=np.random.default_rng(seed))
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def _proba(model, texts: list[str], cache: dict) -> dict[str, np.ndarray]:
    """`cache` (text -> class probabilities) after scoring the texts it lacks in one call: each text
    is scored once per model however many perturbation types and measures need it (ICL is slow)."""
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    if missing:
        cache.update(zip(missing, np.asarray(model.predict_proba(missing), dtype=np.float64)))
    return cache


def select_perturbations(reference, texts: list[str], kind: str, n_candidates: int = 3, seed: int = 0,
                         cache: dict | None = None):
    """Per text: (original, chosen perturbation, invariance score) for the M1-invariant ones, how
    many texts had at least one candidate, and the reference's probabilities (`cache`, filled)."""
    if kind not in _PERTURB:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    kind_id = PERTURBATIONS.index(kind)
    cands = [candidates(t, kind, n_candidates, np.random.default_rng([seed, kind_id, i])) for i, t in enumerate(texts)]
    p1 = _proba(reference, [t for t, c in zip(texts, cands) if c] + [x for c in cands for x in c],
                {} if cache is None else cache)
    kept = []
    for t, c in zip(texts, cands):
        if not c:
            continue
        scores = [1.0 / (1.0 + np.abs(p1[x] - p1[t]).sum()) for x in c]
        best = c[int(np.argmax(scores))]
        if np.argmax(p1[best]) == np.argmax(p1[t]):
            kept.append((t, best, float(max(scores))))
    return kept, sum(bool(c) for c in cands), p1


def shared_invariance(p1: dict, p2: dict, kept, tol: float = SOFT_TOL, cutoff: float = SOFT_CUTOFF):
    """Per M1-invariant example: hard h, soft s and distance d (see the module docstring)."""
    if not 0 <= tol < cutoff:
        raise ValueError(f"need 0 <= soft tol < soft cutoff, got tol={tol}, cutoff={cutoff}")
    h, d = np.zeros(len(kept)), np.zeros(len(kept))
    for j, (x, xp, _) in enumerate(kept):
        h[j] = float(np.argmax(p2[xp]) == np.argmax(p2[x]))
        d[j] = np.abs((p1[xp] - p1[x]) - (p2[xp] - p2[x])).sum()
    return h, h * soft_credit(d, tol, cutoff), d


def scope(reference, targets: dict, texts: list[str], perturbations=PERTURBATIONS, n_candidates: int = 3,
          seed: int = 0, tol: float = SOFT_TOL, cutoff: float = SOFT_CUTOFF, n_boot: int = 1000,
          caches: dict | None = None) -> dict:
    """Hard/Soft-SCoPE of each fitted target against the fitted reference on `texts`:
    {"counts": {kind: {...}}, "results": [...], "samples": {kind: [...]}} (see run_invariance).
    `caches` maps id(model) to its text -> probabilities cache, if some are already scored."""
    from tqdm.auto import tqdm

    if not texts:
        raise ValueError("no texts to perturb")
    if not targets:
        raise ValueError("no target model given")
    ref_classes = list(np.asarray(reference.classes_).tolist())
    for name, model in targets.items():
        if list(np.asarray(model.classes_).tolist()) != ref_classes:
            raise ValueError(f"target {name!r} has classes {list(model.classes_)}, the reference {ref_classes}")
    caches = {} if caches is None else caches
    counts, results, samples = {}, [], {}
    for kind in perturbations:
        kept, perturbed, p1 = select_perturbations(reference, texts, kind, n_candidates, seed,
                                                   caches.setdefault(id(reference), {}))
        counts[kind] = {"examples": len(texts), "perturbed": perturbed, "kept": len(kept)}
        samples[kind] = [{"original": x, "perturbed": xp, "invariance": round(sc, 4)} for x, xp, sc in kept[:3]]
        for name, model in tqdm(targets.items(), desc=f"targets ({kind})", leave=False):
            p2 = _proba(model, [t for x, xp, _ in kept for t in (x, xp)], caches.setdefault(id(model), {}))
            h, s, d = shared_invariance(p1, p2, kept, tol, cutoff)
            results.append({
                "perturbation": kind, "target": name, "n": len(kept),
                "hard": float(h.mean()) if len(h) else None, "hard_ci": bootstrap_ci(h, n_boot, seed),
                "soft": float(s.mean()) if len(s) else None, "soft_ci": bootstrap_ci(s, n_boot, seed),
                "mean_distance": float(d.mean()) if len(d) else None,
            })
    return {"counts": counts, "results": results, "samples": samples}


# -- the command -----------------------------------------------------------------------------------
def run_invariance(data, reference: str, targets: list[str], k: int = 16, n: int = 200, seed: int = 0,
                   perturbations=PERTURBATIONS, n_candidates: int = 3, tol: float = SOFT_TOL,
                   cutoff: float = SOFT_CUTOFF, n_boot: int = 1000) -> dict:
    """The JSON report. Keys: dataset, reference, targets, classes, k, n (texts evaluated), seed,
    perturbations, n_candidates, soft_tol, soft_cutoff, n_boot, ci_level, accuracy (each model's
    accuracy on the evaluated texts), counts ({kind: {examples, perturbed, kept}}), results
    ([{perturbation, target, n, hard, hard_ci, soft, soft_ci, mean_distance}]), samples ({kind:
    [{original, perturbed, invariance}]}), seconds, notes."""
    from tart.analysis.models import model_from_spec
    from tart.data.splits import balanced_split

    t0 = time.perf_counter()
    if n < 1 or n_candidates < 1 or n_boot < 1:
        raise ValueError(f"n, n_candidates and n_boot must be positive, got {n}, {n_candidates}, {n_boot}")
    if not 0 <= tol < cutoff:
        raise ValueError(f"need 0 <= soft tol < soft cutoff, got tol={tol}, cutoff={cutoff}")
    unknown = [p for p in perturbations if p not in PERTURBATIONS]
    if unknown or not perturbations:
        raise ValueError(f"unknown perturbation(s) {unknown or '(none given)'}; known: {', '.join(PERTURBATIONS)}")
    notes = []
    available = len(data) - k
    if available < 1:
        raise ValueError(f"{data.name}: {len(data)} examples leave none to evaluate after a support set of k={k}")
    if n > available:
        notes.append(f"n capped at the {available} examples left after the support set")
        n = available
    support, test = balanced_split(data, k, seed, test_size=n)
    models = {}
    for spec in dict.fromkeys([reference, *targets]):
        models[spec] = model_from_spec(spec, seed).fit(support.texts, support.labels)
    caches = {id(m): {} for m in models.values()}  # the originals' scores serve accuracy and every kind
    accuracy = {}
    for spec, m in models.items():
        p = _proba(m, test.texts, caches[id(m)])
        accuracy[spec] = float(np.mean([m.classes_[np.argmax(p[t])] == y for t, y in zip(test.texts, test.labels)]))
    out = scope(models[reference], {t: models[t] for t in targets}, test.texts, perturbations, n_candidates,
                seed, tol, cutoff, n_boot, caches)
    for kind, c in out["counts"].items():
        if not c["kept"]:
            notes.append(f"{kind}: no M1-invariant perturbation ({c['perturbed']} of {c['examples']} texts "
                         "could be perturbed): its scores are null")
    return {"dataset": data.name, "reference": reference, "targets": list(targets), "classes": data.classes,
            "k": k, "n": n, "seed": seed, "perturbations": list(perturbations), "n_candidates": n_candidates,
            "soft_tol": tol, "soft_cutoff": cutoff, "n_boot": n_boot, "ci_level": 0.95, "accuracy": accuracy,
            **out, "seconds": round(time.perf_counter() - t0, 1), "notes": notes}


def plot_report(report: dict, path) -> None:
    """Hard- and Soft-SCoPE per perturbation type, one bar per target, 95% bootstrap intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds, targets = report["perturbations"], report["targets"]
    width = 0.8 / len(targets)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for ax, key, title in zip(axes, ("hard", "soft"), ("Hard-SCoPE", "Soft-SCoPE")):
        for j, target in enumerate(targets):
            rows = {r["perturbation"]: r for r in report["results"] if r["target"] == target}
            xs = np.arange(len(kinds)) + (j - (len(targets) - 1) / 2) * width
            vals = [rows[kd][key] if rows[kd][key] is not None else np.nan for kd in kinds]
            errs = np.array([[v - rows[kd][key + "_ci"][0], rows[kd][key + "_ci"][1] - v] if rows[kd][key + "_ci"]
                             else [0, 0] for v, kd in zip(vals, kinds)]).T
            ax.bar(xs, vals, width, yerr=errs, capsize=3, label=target)
        if key == "hard":
            ax.axhline(1 / len(report["classes"]), color="grey", ls="--", lw=1, label="random target (1/C)")
        ax.set_xticks(np.arange(len(kinds)),
                      [f"{kd}\n({report['counts'][kd]['kept']} kept)" for kd in kinds])
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"shared invariance with {report['reference']}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=min(len(targets) + 1, 4), fontsize=7)
    fig.suptitle(f"{report['dataset']} · k={report['k']} · n={report['n']} · seed {report['seed']}", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 * (1 + len(targets) // 4), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
