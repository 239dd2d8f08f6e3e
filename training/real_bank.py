"""A bank of real, unlabelled text embeddings for the prior's `real` family.

Real tasks reach the head as embeddings of a language model, whose geometry (a few dominant
directions, clusters, anisotropy) no Gaussian family reproduces. This bank holds embeddings of real
text from a corpus that ships with Python itself: the first sentence of the docstrings of the
standard library's functions and classes, read with `ast` (no module is imported; the same reader as
the task bank's `python-stdlib` source, `tart.training.task_bank.python_docstrings`). It shares no
source with the dev suite, nor with the sets reserved for independent evaluation. Labels are never
taken from it: the `real` family labels the points synthetically.

    python -m tart.training.real_bank [--size 2000] [--embedders minilm-l6,smollm2-135m]

writes `$TART_CACHE_DIR/real-bank/{embedder}.npy` (float32, size × hidden).
"""
from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

import numpy as np

from tart.defaults import PACKAGED_EMBEDDERS
from tart.paths import save_array
from tart.tasks.prior import bank_path
from tart.training.task_bank import python_docstrings


def stdlib_sentences(packages=None) -> list[str]:
    """First sentences of stdlib docstrings, deduplicated, in a fixed order (read as the task bank reads
    them; here without their labels): of the whole stdlib, or of these packages only (faster)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    if packages:
        modules = python_docstrings(root, packages)["package"]
    else:
        modules = python_docstrings(root, stdlib=True)["module"]
    return [text for name in sorted(modules) for text in modules[name]]


def build(embedders, size: int, seed: int = 0, packages=None) -> None:
    from tart.lm.embedder import load_embedder

    sentences = stdlib_sentences(packages)
    rng = np.random.default_rng(seed)
    texts = [sentences[i] for i in rng.choice(len(sentences), min(size, len(sentences)), replace=False)]
    for name in embedders:
        X = load_embedder(name, backend="torch").embed(texts)  # torch: a fixed runtime for a reference bank
        path = bank_path(name)
        save_array(path, X)
        print(f"{path}: {X.shape[0]} texts × {X.shape[1]} dims (of {len(sentences)} sentences)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tart.training.real_bank", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=2000)
    p.add_argument("--embedders", default=",".join(PACKAGED_EMBEDDERS))
    args = p.parse_args(argv)
    build(args.embedders.split(","), args.size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
