"""Emergence by layer: MINE mutual information across each transformer block (arXiv 2405.12617).

Chen et al., "Quantifying Emergence in Large Language Models", treat the passage of token
representations through a transformer block as one step of a Markov process and compare the
entropy reduction (mutual information between the block's input and output) at the macroscopic,
sequence level with that at the microscopic, token level.  We could read the paper's abstract and
its released code (MINE between a block's input and output, per layer and per token position), but
not the body with its exact equation, so the score below is our reading of it, in the Ψ-style form
of Rosas et al. that it builds on (macroscopic information minus the mean microscopic information):

    h_t^l         state of token t entering block l (h^0 = token embeddings; h^{l+1} = block l's
                  output, taken *before* the final RMSNorm: transformers puts the normed state in
                  hidden_states[-1], so the states are read with hooks on the blocks instead)
    macro_l     = I(h_T^l ; h_T^{l+1})        T = the text's last token: under causal attention the
                                               only state that has read the whole sequence
    micro_l(p)  = I(h_p^l ; h_p^{l+1})        token position p = 0 .. P-1 (the first P tokens)
    E_l         = macro_l - (1/P) sum_p micro_l(p)      (nats; one sample per text)

E_l > 0 says block l carries more information forward for the whole sequence than for its
tokens one at a time.  The layer with the largest E_l is suggested as an embedding layer.

Mutual information is estimated with MINE (Belghazi et al. 2018): a statistics network T(x, z)
(an MLP on the concatenation [x, z]) maximises the Donsker-Varadhan lower bound

    I(X; Z) >= E_P[T(x, z)] - log E_{P_x (x) P_z}[exp T(x, z)],

with product-of-marginals samples made by shuffling z within the batch.  The gradient of the log
term is biased on mini-batches; following the paper, its denominator E[exp T] is replaced by an
exponential moving average m <- (1 - a) m + a * mean(exp T) (rate a = `ema_rate`, kept in log
space), i.e. the surrogate loss is -(mean T_joint - mean(exp T_marg) / m).  Adam, seeded.  The
reported value is the bound evaluated on held-out samples (a `holdout` fraction never trained on),
with the marginal term averaged over many shifted pairings of the held-out set, so an overfitted
network does not inflate the estimate (it can only lower it).

Dimension: a block's output is a near-deterministic function of its 576-wide input, so the
mutual information of the full states is unbounded and MINE cannot be trained on a few hundred
576+576-dim samples on a CPU.  Both states are therefore standardised per coordinate over the
texts (this tames the few "massive activation" coordinates of Llama-style residual streams), then
mapped by one fixed Gaussian random projection to `dim` coordinates (the same matrix for every
layer, input and output, so layers are compared on equal terms), then standardised again.  The
estimates are information between these projections: comparable across layers of one run, not
absolute bits of the model.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from tart.defaults import DEFAULT_CAUSAL_LM

MAX_PAIRS = 200_000  # held-out product-of-marginals pairs evaluated for the final estimate


# -- MINE ------------------------------------------------------------------------------------
def _as_2d(a, name):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D or 2-D array of samples, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _log_mean_exp(t):
    import torch
    return torch.logsumexp(t, 0) - math.log(t.numel())


def mine_estimate(x, z, steps: int = 1000, batch_size: int = 256, hidden: int = 64, ema_rate: float = 0.01,
                  lr: float = 1e-3, holdout: float = 0.2, seed: int = 0) -> float:
    """MINE estimate of I(x; z) in nats: x (n, dx) and z (n, dz) are paired samples (rows).

    Trains T on the first (1 - holdout) of a seeded shuffle of the rows for `steps` Adam steps on
    mini-batches of `batch_size`, then returns the Donsker-Varadhan bound on the held-out rows.
    """
    import torch

    x, z = _as_2d(x, "x"), _as_2d(z, "z")
    if len(x) != len(z):
        raise ValueError(f"x and z must have the same number of samples, got {len(x)} and {len(z)}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    if steps < 1 or batch_size < 2 or hidden < 1 or not 0 < ema_rate <= 1:
        raise ValueError("need steps >= 1, batch_size >= 2, hidden >= 1 and 0 < ema_rate <= 1")
    n_test = int(round(len(x) * holdout))
    if n_test < 2 or len(x) - n_test < 2:
        raise ValueError(f"{len(x)} samples are too few for MINE with holdout={holdout}")

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the network's initial weights
    order = torch.randperm(len(x), generator=gen)
    X, Z = torch.from_numpy(x)[order], torch.from_numpy(z)[order]
    Xtr, Ztr, Xte, Zte = X[n_test:], Z[n_test:], X[:n_test], Z[:n_test]
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1] + z.shape[1], hidden), torch.nn.ELU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ELU(), torch.nn.Linear(hidden, 1))
    T = lambda a, b: net(torch.cat([a, b], 1)).squeeze(1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    log_ma = None  # log of the moving average of E_marginal[exp T]
    b = min(batch_size, len(Xtr))
    for _ in range(steps):
        idx = torch.randperm(len(Xtr), generator=gen)[:b]
        xb, zb = Xtr[idx], Ztr[idx]
        t_joint = T(xb, zb)
        t_marg = T(xb, zb[torch.randperm(b, generator=gen)])  # shuffle z: product of marginals
        lme = _log_mean_exp(t_marg).detach()
        log_ma = lme if log_ma is None else torch.logaddexp(log_ma + math.log(1 - ema_rate),
                                                             lme + math.log(ema_rate))
        # bias-corrected gradient: the denominator of d log E[e^T] is the moving average
        loss = -(t_joint.mean() - torch.exp(t_marg - log_ma).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()

    with torch.no_grad():  # DV bound on held-out rows; marginal over shifted pairings
        n = len(Xte)
        perm = torch.randperm(n, generator=gen)
        shifts = range(1, min(n - 1, max(1, MAX_PAIRS // n)) + 1)
        t_marg = torch.cat([T(Xte[perm], Zte[perm].roll(s, 0)) for s in shifts])
        value = T(Xte, Zte).mean() - _log_mean_exp(t_marg)
    return float(value)


# -- hidden states ---------------------------------------------------------------------------
def _blocks(model):
    """The model's list of transformer blocks (Llama-style `layers`, GPT-2-style `h`)."""
    for path in ("layers", "h", "model.layers", "transformer.h"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is not None and len(obj):
            return obj
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")


def block_states(texts, model: str = DEFAULT_CAUSAL_LM, positions: int = 4, max_length: int = 128,
                 batch_size: int = 16, progress: bool = True):
    """States around every block of a causal LM, read with hooks (pre-final-norm).

    Returns (last, first, lengths): last (n_blocks + 1, n_texts, hidden) at each text's last token,
    first (n_blocks + 1, n_texts, positions, hidden) at its first `positions` tokens; index l is
    block l's input and l + 1 its output.  Texts shorter than `positions` tokens are an error.
    """
    import torch

    from tart.lm.embedder import load_embedder
    from tart.lm.token_batches import pad_right

    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("no texts: emergence needs at least a few texts")
    if positions < 1:
        raise ValueError(f"positions must be >= 1, got {positions}")
    emb = load_embedder(model, backend="torch")  # torch: its blocks are hooked; a clear error for an unknown model
    if not emb.is_causal_lm:
        raise ValueError(f"model {model!r} is not a causal LM: emergence uses the last token as the "
                         f"sequence-level state, which only causal attention makes a summary of the text")
    lm, tok = emb.model, emb.tokenizer
    blocks = _blocks(lm)
    ids = [tok(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    short = [i for i, s in enumerate(ids) if len(s) < positions]
    if short:
        raise ValueError(f"{len(short)} texts have fewer than positions={positions} tokens "
                         f"(e.g. {texts[short[0]]!r}); use longer texts or fewer positions")
    n, H = len(texts), lm.config.hidden_size
    last = np.zeros((len(blocks) + 1, n, H), np.float32)
    first = np.zeros((len(blocks) + 1, n, positions, H), np.float32)
    rows, lens = [], None  # set per batch, read by the hooks

    def keep(slot, h):
        h = (h[0] if isinstance(h, tuple) else h).float()
        last[slot, rows] = h[torch.arange(len(rows)), lens - 1].numpy()
        first[slot, rows] = h[:, :positions].numpy()

    hooks = [blocks[0].register_forward_pre_hook(
        lambda m, a, kw: keep(0, a[0] if a else kw["hidden_states"]), with_kwargs=True)]
    for i, block in enumerate(blocks):
        hooks.append(block.register_forward_hook(lambda m, a, out, i=i: keep(i + 1, out)))
    order = sorted(range(n), key=lambda i: len(ids[i]))  # similar lengths pad little
    chunks = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="hidden states", unit="batch")
    try:
        with torch.inference_mode():
            for chunk in chunks:
                batch, mask = pad_right(tok, [ids[i] for i in chunk])  # each text's last token at lens - 1
                rows[:] = chunk
                lens = mask.sum(1)
                lm(input_ids=batch.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return last, first, np.array([len(s) for s in ids])


def project(states, dim: int, seed: int = 0):
    """Standardise each coordinate over samples, random-project to `dim`, standardise again.

    states (..., n_samples, hidden) -> (..., n_samples, dim); one projection matrix for all.
    """
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((states.shape[-1], dim)).astype(np.float32) / np.sqrt(states.shape[-1])
    std = lambda a: (a - a.mean(-2, keepdims=True)) / (a.std(-2, keepdims=True) + 1e-6)
    return std(std(states) @ R)


# -- emergence -------------------------------------------------------------------------------
def emergence(texts, model: str = DEFAULT_CAUSAL_LM, layers=None, positions: int = 4, dim: int = 4,
              steps: int = 500, batch_size: int = 256, hidden: int = 64, ema_rate: float = 0.01,
              lr: float = 1e-3, holdout: float = 0.2, seed: int = 0, max_length: int = 128,
              repeats: int = 1, progress: bool = True) -> dict:
    """Macro / micro MINE information and the emergence score E_l for blocks `layers` (default all).

    Every estimate is the mean of `repeats` MINE runs (other seeds: other held-out split and
    initial weights); `*_sd` is their standard deviation (0 for one run), a guide to the noise.
    Returns the JSON report (stable keys; see the README of results/examples/emergence).
    """
    from tart.lm.embedder import load_embedder

    start = time.time()
    if len(texts) < 10:
        raise ValueError(f"{len(texts)} texts are too few to estimate mutual information (need >= 10)")
    n_blocks = load_embedder(model, backend="torch").model.config.num_hidden_layers  # checked before the slow part
    layers = list(range(n_blocks)) if layers is None else [int(l) for l in layers]
    bad = [l for l in layers if not 0 <= l < n_blocks]
    if bad or not layers:
        raise ValueError(f"layers {bad or layers} out of range: {model!r} has {n_blocks} blocks (0..{n_blocks - 1})")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    last, first, lengths = block_states(texts, model, positions, max_length, progress=progress)
    # (states, texts, dim) and (states, positions, texts, dim)
    last_p = project(last, dim, seed)
    first_p = project(first.transpose(0, 2, 1, 3), dim, seed)
    mine = lambda a, b, s: mine_estimate(a, b, steps=steps, batch_size=batch_size, hidden=hidden,
                                         ema_rate=ema_rate, lr=lr, holdout=holdout, seed=s)
    rows = []
    it = layers
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(layers, desc="MINE by layer", unit="layer")
    for l in it:
        # est[r, 0] macro, est[r, 1 + p] micro at position p; seeds differ per layer, slot and repeat
        est = np.array([[mine(last_p[l], last_p[l + 1], seed + 100_000 * r + 1000 * l)]
                        + [mine(first_p[l, p], first_p[l + 1, p], seed + 100_000 * r + 1000 * l + p + 1)
                           for p in range(positions)] for r in range(repeats)])
        e = est[:, 0] - est[:, 1:].mean(1)
        rows.append({"layer": l, "macro_mi": float(est[:, 0].mean()), "macro_mi_sd": float(est[:, 0].std()),
                     "micro_mi": est[:, 1:].mean(0).tolist(), "micro_mi_mean": float(est[:, 1:].mean()),
                     "emergence": float(e.mean()), "emergence_sd": float(e.std())})
    best = max(rows, key=lambda r: r["emergence"])["layer"]
    return {
        "model": model, "n_texts": len(texts), "n_blocks": n_blocks,
        "mean_tokens": float(lengths.mean()), "positions": positions, "dim": dim,
        "mine": {"steps": steps, "batch_size": batch_size, "hidden": hidden, "ema_rate": ema_rate,
                 "lr": lr, "holdout": holdout, "repeats": repeats},
        "seed": seed, "units": "nats",
        "formula": "E_l = I(h_T^l; h_T^{l+1}) - mean_{p<P} I(h_p^l; h_p^{l+1}); T = last token",
        "layers": rows, "best_layer": best,
        # block l's output is hidden_states[l + 1], i.e. `tart evaluate --layer l+1`
        "best_embedding_layer": best + 1,
        "seconds": round(time.time() - start, 1),
    }


def plot_emergence(report: dict, path) -> None:
    """Emergence by layer (top) and the macro / micro information it is made of (bottom)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = [r["layer"] for r in report["layers"]]
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    a.errorbar(L, [r["emergence"] for r in report["layers"]], yerr=[r["emergence_sd"] for r in report["layers"]],
               fmt="o-", color="C3", capsize=2)  # bars: sd over the MINE repeats
    a.axhline(0, color="grey", lw=0.5)
    a.set_ylabel("emergence E_l (nats)")
    a.set_title(f"{report['model']}: {report['n_texts']} texts, MINE on {report['dim']}-dim projections")
    b.plot(L, [r["macro_mi"] for r in report["layers"]], "o-", label="macro: last token")
    b.plot(L, [r["micro_mi_mean"] for r in report["layers"]], "s-", label=f"micro: mean of first {report['positions']} tokens")
    for p in range(report["positions"]):
        b.plot(L, [r["micro_mi"][p] for r in report["layers"]], color="C1", alpha=0.25, lw=0.8)
    b.set_xlabel("block l (input hidden_states[l] -> output hidden_states[l+1])")
    b.set_ylabel("I(input; output) (nats)")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- command line ----------------------------------------------------------------------------
def read_texts(spec: str, text_column: str = "text") -> list[str]:
    """Texts from a bundled dataset name, a .csv/.jsonl/.json file (`text_column`), or a text file
    with one text per line."""
    from tart.data.datasets import list_datasets, load_dataset

    path = Path(spec)
    if spec in list_datasets() and not path.exists():
        return load_dataset(spec).texts
    if not path.is_file():
        raise FileNotFoundError(f"no such file or bundled dataset: {spec!r}")
    if path.suffix.lower() in (".csv", ".jsonl", ".json"):
        # labels are not needed: reuse the loader's checks with the text column as the label
        return load_dataset(path, text_column=text_column, label_column=text_column).texts
    from tart.data.readers import read_lines

    texts = read_lines(path)
    if not texts:
        raise ValueError(f"{spec}: no texts (one text per line)")
    return texts
