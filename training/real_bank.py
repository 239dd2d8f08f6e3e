"""A bank of real, unlabelled text embeddings for the prior's `real` family.

Real tasks reach the head as embeddings of a language model, whose geometry (a few dominant
directions, clusters, anisotropy) no Gaussian family reproduces. This bank holds embeddings of real
text from a corpus that ships with Python itself: the first sentence of the docstrings of the
standard library's functions and classes, read with `ast` (no module is imported). It shares no
source with the dev suite, nor with the sets reserved for independent evaluation. Labels are never
taken from it: the `real` family labels the points synthetically.

    python -m tart.training.real_bank [--size 2000] [--embedders minilm-l6,smollm2-135m]

writes `$TART_CACHE_DIR/real-bank/{embedder}.npy` (float32, size × hidden).
"""
from __future__ import annotations

import argparse
import ast
import sysconfig
from pathlib import Path

import numpy as np

from tart.paths import save_array
from tart.prior import bank_path


def stdlib_sentences(min_chars: int = 25, max_chars: int = 200) -> list[str]:
    """First sentences of stdlib docstrings, deduplicated, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = {}
    for path in sorted(root.rglob("*.py")):
        if any(part in ("test", "tests", "idlelib", "site-packages") for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc:
                    first = " ".join(doc.strip().split("\n\n")[0].split()).split(". ")[0].rstrip(".")
                    if min_chars <= len(first) <= max_chars:
                        found.setdefault(first, None)
    return list(found)


def build(embedders, size: int, seed: int = 0) -> None:
    from tart.embeddings import load_embedder

    sentences = stdlib_sentences()
    rng = np.random.default_rng(seed)
    texts = [sentences[i] for i in rng.choice(len(sentences), min(size, len(sentences)), replace=False)]
    for name in embedders:
        X = load_embedder(name).embed(texts)  # batched by tokens, with a progress bar
        path = bank_path(name)
        save_array(path, X)
        print(f"{path}: {X.shape[0]} texts × {X.shape[1]} dims (of {len(sentences)} sentences)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tart.training.real_bank", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=2000)
    p.add_argument("--embedders", default="minilm-l6,smollm2-135m")
    args = p.parse_args(argv)
    build(args.embedders.split(","), args.size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
