"""Direct logit attribution of in-context classification to attention heads and MLPs.

After Chang, Thomason & Jia, "When Parts are Greater Than Sums: Individual LLM Components Can
Outperform Full Models" (arXiv 2406.13131). The causal LM reads the ICL prompt of
`tart.baselines.ICLClassifier` ("Input: text\\nLabel: label\\n\\n" blocks, then "Input: query\\nLabel:");
the label words are the first tokens of " label" for each class.

At the final position the residual stream is a sum of components,

    r = e + Σ_l Σ_h W_O^l[:, h] z_{l,h} + Σ_l m_l + Σ_l b_O^l

with e the embedding term (the input to layer 0), z_{l,h} head h's output before the output
projection of layer l (W_O^l[:, h] its slice of the projection), m_l the MLP output and b_O^l the
attention output biases (GPT-2 only). The final norm is linear once its scale s is fixed from the
full residual r:

    RMSNorm (Llama-style):  N(x) = γ ⊙ x · s,               s = 1 / sqrt(mean(r²) + ε)
    LayerNorm (GPT-2):      N(x) = γ ⊙ (x − mean(x)) · s,   s = 1 / sqrt(var(r) + ε)   (+ β once)

so the logit of label word t splits exactly into one term per component,

    ℓ_t = u_t · N(r) + b_t = Σ_i u_t · N(c_i) + [u_t · β + b_t]

(u_t the unembedding row, b_t the LM head's bias if any). Terms that belong to no single component
(attention output biases, the final norm's β, the LM head's bias) form one "bias" component, present
only when the model has them. Each component alone predicts argmax_t of its own term; its accuracy
on a labelled set is the paper's per-component accuracy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUPPORTED = ("llama", "gpt2")  # model types whose layout `_parts` knows


@dataclass
class Decomposition:
    """Label-word logits of each component at the final position of each query."""

    logits: np.ndarray       # (n_queries, n_components, n_classes): the components' terms
    full: np.ndarray         # (n_queries, n_classes): the model's own logits
    components: list[tuple]  # (kind, layer, head): ("embed",), ("head", l, h), ("mlp", l), ("bias",), None-padded

    @property
    def max_error(self) -> float:
        """Largest |Σ components − model logit| over queries and labels."""
        return float(np.abs(self.logits.sum(1) - self.full).max())


def component_name(kind, layer, head) -> str:
    return {"head": f"L{layer}.H{head}", "mlp": f"L{layer}.MLP"}.get(kind, kind)


def _parts(lm):
    """Where the pieces of a supported model live: layers, attention output projections as
    (in, hidden) matrices and biases, MLPs, the final norm, and the unembedding."""
    kind = getattr(lm.config, "model_type", None)
    base = lm.base_model
    if kind == "llama":
        layers = list(base.layers)
        projs = [layer.self_attn.o_proj for layer in layers]
        weights = [p.weight.T for p in projs]  # nn.Linear stores (out, in)
        norm, rms, eps = base.norm, True, base.norm.variance_epsilon
    elif kind == "gpt2":
        layers = list(base.h)
        projs = [layer.attn.c_proj for layer in layers]
        weights = [p.weight for p in projs]  # GPT-2's Conv1D stores (in, out)
        norm, rms, eps = base.ln_f, False, base.ln_f.eps
    else:
        raise ValueError(f"component decomposition supports model types {', '.join(SUPPORTED)}; "
                         f"got {kind!r} ({type(lm).__name__})")
    head = lm.get_output_embeddings()
    return dict(layers=layers, projs=projs, weights=weights, biases=[p.bias for p in projs],
                mlps=[layer.mlp for layer in layers], norm=norm, rms=rms, eps=eps,
                unembed=head.weight, unembed_bias=getattr(head, "bias", None),
                n_heads=lm.config.num_attention_heads)


def label_tokens(icl) -> list[int]:
    """The first token of " label" per class of a fitted ICLClassifier; they must differ."""
    firsts = [ids[0] for ids in icl.label_ids_]
    if len(set(firsts)) < len(firsts):
        clash = [str(c) for c, t in zip(icl.classes_, firsts) if firsts.count(t) > 1]
        raise ValueError(f"label words collide: labels {', '.join(clash)} start with the same token; "
                         "rename the labels so their first tokens differ")
    return firsts


def _first(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def decompose(icl, queries, progress: bool = False) -> Decomposition:
    """Direct logit attribution for each query under the prompt of a fitted ICLClassifier."""
    import torch
    from tqdm.auto import tqdm

    if not len(queries):
        raise ValueError("no queries to decompose")
    p = _parts(icl.lm)
    tokens = label_tokens(icl)
    n_layers, n_heads = len(p["layers"]), p["n_heads"]
    has_bias = any(b is not None for b in p["biases"]) or not p["rms"] or p["unembed_bias"] is not None
    components = [("embed", None, None)]
    for layer in range(n_layers):
        components += [("head", layer, h) for h in range(n_heads)] + [("mlp", layer, None)]
    components += [("bias", None, None)] if has_bias else []

    seen: dict = {}  # hook name -> the tensor this batch produced
    def keep(name, output=False):
        if output:
            return lambda module, args, out: seen.__setitem__(name, out)
        return lambda module, args, kwargs: seen.__setitem__(name, _first(args, kwargs))
    hooks = [p["layers"][0].register_forward_pre_hook(keep("embed"), with_kwargs=True),
             p["norm"].register_forward_pre_hook(keep("resid"), with_kwargs=True)]
    for layer in range(n_layers):
        hooks.append(p["projs"][layer].register_forward_pre_hook(keep(("z", layer)), with_kwargs=True))
        hooks.append(p["mlps"][layer].register_forward_hook(keep(("mlp", layer), output=True)))

    U = p["unembed"][tokens].detach().float()                                              # (K, D)
    attn_bias = sum(b for b in p["biases"] if b is not None) if has_bias else 0.0
    constant = torch.zeros(len(tokens))  # added after the norm: the norm's β and the LM head's bias
    if getattr(p["norm"], "bias", None) is not None:
        constant = constant + U @ p["norm"].bias.detach().float()
    if p["unembed_bias"] is not None:
        constant = constant + p["unembed_bias"][tokens].detach().float()
    qs = [icl._query_ids(q) for q in queries]
    logits, full = [], []
    try:
        with torch.inference_mode():
            prompt, past = icl.prompt_cache(max(map(len, qs)))
            rows = icl.batch_rows(prompt, max(map(len, qs)))
            for start in tqdm(range(0, len(qs), rows), desc="decompose", unit="batch", disable=not progress):
                seqs = qs[start : start + rows]
                out = icl.forward(prompt, past, seqs)
                at = (torch.arange(len(seqs)), torch.tensor([len(s) - 1 for s in seqs]))  # final real token
                full.append(out.logits[at][:, tokens].float())
                terms = [seen["embed"][at].unsqueeze(1)]
                for layer in range(n_layers):
                    z = seen[("z", layer)][at].unflatten(-1, (n_heads, -1))                    # (B, H, d)
                    W = p["weights"][layer].unflatten(0, (n_heads, -1))                       # (H, d, D)
                    terms += [torch.einsum("bhd,hdD->bhD", z, W), seen[("mlp", layer)][at].unsqueeze(1)]
                if has_bias:
                    terms.append(torch.zeros_like(terms[0]) + attn_bias)
                parts = torch.cat(terms, 1).float()                                           # (B, C, D)
                resid = seen["resid"][at].float()
                if not p["rms"]:  # LayerNorm's centring is linear: centre each component
                    parts = parts - parts.mean(-1, keepdim=True)
                    resid = resid - resid.mean(-1, keepdim=True)
                scale = torch.rsqrt(resid.pow(2).mean(-1) + p["eps"])                        # fixed from r
                normed = parts * scale[:, None, None] * p["norm"].weight.float()
                term = normed @ U.T                                                           # (B, C, K)
                if has_bias:
                    term[:, -1] += constant
                logits.append(term)
    finally:
        for h in hooks:
            h.remove()
    return Decomposition(torch.cat(logits).numpy(), torch.cat(full).numpy(), components)


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
    from tart.analysis.component_reweighting import CalibratedICLClassifier, ComponentReweightingClassifier
    from tart.baselines import ICLClassifier

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


def add_parser(subparsers):
    p = subparsers.add_parser("components", help="direct logit attribution to heads/MLPs; component reweighting")
    p.add_argument("--model", default="smollm2-135m", help="causal LM: embedder short name or local folder")
    p.add_argument("--data", required=True, help="bundled dataset name or .csv/.jsonl/.json file")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--k", type=int, default=16, help="labelled support examples (class-balanced)")
    p.add_argument("--n", type=int, default=100, help="evaluated examples (others than the support set)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-demos", type=int, default=4, help="support examples in the decomposed prompt; "
                   "the other k - n_demos train the component weights")
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--l1", type=float, default=0.01)
    p.add_argument("--json", help="write the report here (else it is printed)")
    p.add_argument("--plot", help="write the layer × head accuracy heatmap here (PNG)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_components)
    return p


def load_lm(spec: str):
    """The causal LM (with its LM head) and tokenizer for an embedder short name or folder."""
    from tart.baselines import load_causal_lm
    from tart.embeddings import load_embedder

    embedder = load_embedder(spec, progress=False)
    if not embedder.is_causal_lm:
        raise ValueError(f"{spec}: not a causal LM (an encoder has no next-token logits to decompose)")
    return load_causal_lm(embedder), embedder.tokenizer


def cmd_components(args) -> None:
    from tart.data import balanced_split, load_dataset

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.k < 1 or args.n < 1:
        raise ValueError(f"--k and --n must be positive, got k={args.k}, n={args.n}")
    data = load_dataset(args.data, args.text_column, args.label_column)
    if len(data.classes) < 2:
        raise ValueError(f"{data.name}: one class only ({data.classes[0]!r}); need at least two")
    support, evaluated = balanced_split(data, args.k, args.seed, test_size=args.n)
    lm, tokenizer = load_lm(args.model)
    report = analyze(lm, tokenizer, support, evaluated, n_demos=args.n_demos, seed=args.seed,
                     progress=not args.quiet, epochs=args.epochs, lr=args.lr, l1=args.l1)
    report["model"] = args.model
    if args.plot:
        where = [(r["kind"], r["layer"], r["head"]) for r in report["components"]]
        grid = accuracy_grid(np.array([r["accuracy"] for r in report["components"]]), where)
        biased = accuracy_grid(np.array([r["label_biased"] for r in report["components"]], dtype=float), where)
        plot_heatmap(grid, biased, report["full_model_accuracy"], 1.0 / len(report["classes"]),
                     f"{data.name} · {args.model} · {report['prompt_examples']}-shot prompt · n={len(evaluated)}",
                     args.plot)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
        a = report["accuracy"]
        print(f"{data.name}: full model ({report['prompt_examples']}-shot) {a['full_model_prompt_examples']:.3f}, "
              f"comprw {a['comprw']:.3f}, icl ({args.k}-shot) {a['icl']:.3f}, icl-cal {a['icl_cal']:.3f}; "
              f"{len(report['better_than_full_model'])} components beat the full model "
              f"({report['better_than_full_model_not_label_biased']} not label-biased); "
              f"decomposition error {report['decomposition_max_abs_error']:.2e}")
    else:
        print(text)
