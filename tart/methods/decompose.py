"""Direct logit attribution of in-context classification to attention heads and MLPs.

After Chang, Thomason & Jia, "When Parts are Greater Than Sums: Individual LLM Components Can
Outperform Full Models" (arXiv 2406.13131). The causal LM reads the ICL prompt of
`tart.methods.prompting.ICLClassifier` ("Input: text\\nLabel: label\\n\\n" blocks, then "Input: query\\nLabel:");
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

from dataclasses import dataclass

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
