"""The Transformer's share on task-bank episodes: a side-input head against its own base, on episodes drawn
as training draws them (the prior's `bank` family), from the sources one names.

On the dev suite a head's share (head − its base) is what counts; here it is measured where the head was
trained (or, for a head trained without a source, where it was not), so the two together say whether a
head's gain is learned skill or only holds on the sources it saw. Same episodes for every head (seeded),
differences paired by episode, ± standard error over episodes.

    python -m tart.evaluate.bank_share --heads tart-reader --sources user-text/hwu64,user-text/trec \
        --json results/dev-suite/bank-share.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

BASE = "base"  # the side base with its initial weights (a name = 1 example, an unlabelled point 1/2)


@torch.no_grad()
def episode_accuracies(heads: dict, prior, k: int, batches: int, batch_size: int = 64, n_queries: int = 32,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Per episode, the accuracy of each head and of the base on its queries (argmax of the soft target)."""
    from tart.head.model import initial_base_scores
    from tart.tasks.prior import sample_prior_batch
    from tart.tasks.synthetic import make_generator

    config = next(iter(heads.values())).config  # the heads share their input size and slots
    out = {name: [] for name in [BASE, *heads]}
    for i in range(batches):
        b = sample_prior_batch(batch_size, k, n_queries, config.n_dims, config.n_classes, prior,
                               make_generator(seed + 1000 * k + i, "cpu"), family="bank")
        y = b.p_query.argmax(-1)
        side = {"x_names": b.x_names, "names_mask": b.names_mask, "x_unlabeled": b.x_unlabeled}
        for name, head in heads.items():
            logits = head(b.x_context, b.y_context, b.x_query, class_mask=b.class_mask, **side).logits
            out[name].append((logits.argmax(-1) == y).float().mean(1).numpy())
        scores = initial_base_scores(b.x_context, b.y_context, b.x_query, torch.full((y.shape[1],), k),
                                     config.n_classes, b.x_names, b.names_mask, b.x_unlabeled, None, steps=2,
                                     name_weight=config.max_name_weight / 2,
                                     unlabeled_weight=config.max_unlabeled_weight / 2)
        out[BASE].append((scores.masked_fill(~b.class_mask[:, None, :], float("-inf")).argmax(-1) == y)
                         .float().mean(1).numpy())
    return {name: np.concatenate(accs) for name, accs in out.items()}


def measure(heads: list[str], sources: list[str], ks: list[int], names: bool, batches: int, prior,
            embedder: str | None = None) -> dict:
    """Accuracy of the base and each head, and each head − base, per k, on episodes of `sources` only,
    drawn by `prior` (a training config's PriorSettings)."""
    from tart.head.load import load_head
    from tart.tasks.episodes import load_bank

    every = load_bank(embedder or prior.bank_embedders[0]).sources()

    def chosen(source: str, name: str) -> bool:  # a group: user-text = user-text/*
        return source == name or source.startswith(name + "/")

    unknown = [x for x in sources if not any(chosen(s, x) for s in every)]
    if unknown:
        raise ValueError(f"no bank source {unknown}: the bank has {every}")
    sources = [s for s in every if any(chosen(s, x) for x in sources)]
    prior = dataclasses.replace(prior, bank_exclude=tuple(s for s in every if s not in sources),
                                bank_embedders=(embedder,) if embedder else prior.bank_embedders,
                                p_names=1.0 if names else 0.0)
    loaded = {h: load_head(h).eval() for h in heads}
    rows = []
    for k in ks:
        accs = episode_accuracies(loaded, prior, k, batches)
        for h in heads:
            diff = accs[h] - accs[BASE]
            rows.append({"k": k, "head": h, "base": float(accs[BASE].mean()), "acc": float(accs[h].mean()),
                         "share": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
                         "episodes": len(diff)})
            print(f"k={k:3d} {h}: {rows[-1]['acc']:.3f} vs base {rows[-1]['base']:.3f}: "
                  f"{100 * rows[-1]['share']:+.1f} ± {100 * rows[-1]['se']:.1f}", flush=True)
    return {"sources": sources, "names": names, "ks": ks, "batches": batches, "embedder": prior.bank_embedders[0],
            "rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tart.evaluate.bank_share", description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", required=True, help="comma-separated side-input heads (names or folders)")
    p.add_argument("--sources", required=True, help="comma-separated task-bank sources, e.g. user-text/hwu64, "
                   "or groups (user-text: every user-text/ source)")
    p.add_argument("--ks", default="8,16,32,64")
    p.add_argument("--names", type=int, default=1, help="1: every episode named (as p_names = 1), 0: none")
    p.add_argument("--batches", type=int, default=4, help="batches of 64 episodes per k")
    p.add_argument("--config", default="training/configs/reader-stage6-more-text.toml",
                   help="the training config whose prior draws the episodes")
    p.add_argument("--embedder", help="whose bank embeddings (default: the config's first bank embedder)")
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    from tart.training.config import load_config

    torch.set_num_threads(1)  # comparable across machines; the heads are small
    report = measure(args.heads.split(","), args.sources.split(","), [int(k) for k in args.ks.split(",")],
                     bool(args.names), args.batches, load_config(args.config).prior, args.embedder)
    report["config"] = args.config
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
