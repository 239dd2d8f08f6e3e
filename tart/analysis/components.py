"""`tart analyze components`: per-component accuracy of a causal LM's in-context classification.

The decomposition itself (direct logit attribution to the embedding, each attention head and each
MLP, after Chang, Thomason & Jia, arXiv 2406.13131) is library code: tart/methods/decompose.py. This
module scores each component alone on a labelled set, plots the layer × head grid, and compares
component reweighting, ICL and calibrated ICL on the same texts.
"""
from __future__ import annotations


import numpy as np

from tart.methods.decompose import component_name, decompose, label_tokens

def component_accuracy(logits: np.ndarray, y) -> np.ndarray:
    """Accuracy of each component alone: logits (n, C, K), y class indices (n,) -> (C,)."""
    return (np.asarray(logits).argmax(-1) == np.asarray(y)[:, None]).mean(0)


def accuracy_grid(acc: np.ndarray, components) -> np.ndarray:
    """Per-component accuracy as a (layers, heads + 1) grid, the MLP in the last column."""
    n_layers = 1 + max(l for k, l, _ in components if k == "head")
    n_heads = 1 + max(h for k, _, h in components if k == "head")
    grid = np.full((n_layers, n_heads + 1), np.nan)
    for a, (kind, layer, head) in zip(acc, components):
        if kind in ("head", "mlp"):
            grid[layer, head if kind == "head" else n_heads] = a
    return grid


def plot_heatmap(grid: np.ndarray, biased: np.ndarray, full_accuracy: float, chance: float, title: str,
                 path) -> None:
    """Heatmap of per-component accuracy by layer × head (+ MLP): dots mark the components more accurate
    than the full model, crosses the label-biased ones (one label for every example; `biased` grid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    n_layers, width = grid.shape
    fig, ax = plt.subplots(figsize=(1.6 + 0.45 * width, 1.2 + 0.22 * n_layers))
    image = ax.imshow(grid, cmap="RdBu", norm=TwoSlopeNorm(vmin=0.0, vcenter=chance, vmax=1.0), aspect="auto")
    above = np.argwhere((grid > full_accuracy) & (biased != 1))
    ax.scatter(above[:, 1], above[:, 0], s=8, c="k", marker="o")
    one_label = np.argwhere(biased == 1)
    ax.scatter(one_label[:, 1], one_label[:, 0], s=10, c="0.35", marker="x", linewidths=0.7)
    ax.set_xticks(range(width), [str(h) for h in range(width - 1)] + ["MLP"], fontsize=7)
    ax.set_yticks(range(n_layers), [str(l) for l in range(n_layers)], fontsize=6)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(f"{title}\n• more accurate alone than the full model ({full_accuracy:.2f}), "
                 "× label-biased (one label for all)", fontsize=8)
    fig.colorbar(image, ax=ax, label="accuracy alone")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _chunked(predict, texts, desc: str, progress: bool, size: int = 20) -> np.ndarray:
    """predict() over chunks of texts, for a progress bar (each chunk recomputes the prompt's cache)."""
    from tqdm.auto import tqdm

    starts = tqdm(range(0, len(texts), size), desc=desc, unit="chunk", disable=not progress)
    return np.concatenate([np.asarray(predict(texts[i : i + size]), dtype=object) for i in starts])


def analyze(lm, tokenizer, support: "LabelledTexts", evaluated: "LabelledTexts", n_demos: int = 4,
            seed: int = 0, progress: bool = True, **reweighting) -> dict:
    """Decompose the evaluated set under the reweighting method's prompt (n_demos of the support
    examples); per-component accuracy, reweighting, and k-shot ICL / calibrated ICL on the same set."""
    from tart.methods.comprw import ComponentReweightingClassifier
    from tart.methods.prompting import CalibratedICLClassifier, ICLClassifier

    rw = ComponentReweightingClassifier(lm, tokenizer, n_demos=n_demos, random_state=seed, progress=progress,
                                        **reweighting).fit(support.texts, support.labels)
    dec = decompose(rw.icl_, evaluated.texts, progress=progress)
    classes = rw.classes_.tolist()
    y = np.array([classes.index(label) for label in evaluated.labels])
    acc = component_accuracy(dec.logits, y)
    full = float((dec.full.argmax(-1) == y).mean())
    one_label = (dec.logits.argmax(-1) == dec.logits.argmax(-1)[:1]).all(0)  # label-biased components
    rows = [{"component": component_name(*c), "kind": c[0], "layer": c[1], "head": c[2], "accuracy": float(a),
             "label_biased": bool(b)} for c, a, b in zip(dec.components, acc, one_label)]
    pred = rw.classes_[(dec.logits * rw.weights_[:, None]).sum(1).argmax(-1)]  # same logits, no second pass
    truth = np.asarray(evaluated.labels, dtype=object)
    icl = _chunked(ICLClassifier(lm, tokenizer).fit(support.texts, support.labels).predict,
                   evaluated.texts, "icl", progress)
    cal = _chunked(CalibratedICLClassifier(lm, tokenizer).fit(support.texts, support.labels).predict,
                   evaluated.texts, "icl-cal", progress)
    return {
        "dataset": support.name, "k": len(support), "n": len(evaluated), "seed": seed, "classes": classes,
        "label_tokens": [tokenizer.decode([t]) for t in label_tokens(rw.icl_)],
        "prompt_examples": len(rw.demo_indices_),
        "full_model_accuracy": full,
        "decomposition_max_abs_error": dec.max_error,
        "n_components": len(dec.components),
        "components": rows,
        "majority_class_accuracy": float(np.bincount(y).max() / len(y)),
        "better_than_full_model": sorted((r for r in rows if r["accuracy"] > full), key=lambda r: -r["accuracy"]),
        "better_than_full_model_not_label_biased": sum(r["accuracy"] > full and not r["label_biased"] for r in rows),
        "accuracy": {"comprw": float(np.mean(pred.astype(object) == truth)),
                     "icl": float(np.mean(np.asarray(icl, dtype=object) == truth)),
                     "icl_cal": float(np.mean(np.asarray(cal, dtype=object) == truth)),
                     "full_model_prompt_examples": full},
        "reweighting": {"epochs": rw.n_epochs_, "train_accuracy": rw.train_accuracy_,
                        "nonzero_weights": int((rw.weights_ > 0).sum()),
                        "weights_below_half": int((rw.weights_ < 0.5).sum()),
                        "top_weights": [{"component": component_name(*dec.components[i]),
                                         "weight": float(rw.weights_[i])}
                                        for i in np.argsort(-rw.weights_)[:10]]},
    }


def load_lm(spec: str):
    """The causal LM (with its LM head) and tokenizer for an embedder short name or folder."""
    from tart.methods.prompting import load_causal_lm
    from tart.lm.embedder import load_embedder

    embedder = load_embedder(spec, progress=False)
    if not embedder.is_causal_lm:
        raise ValueError(f"{spec}: not a causal LM (an encoder has no next-token logits to decompose)")
    return load_causal_lm(embedder), embedder.tokenizer
