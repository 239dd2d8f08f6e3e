#!/usr/bin/env python
"""Rebuild tart/data/bundled/wordnet-synonyms.tsv.gz, the synonym table of `tart analyze invariance`.

Source: WordNet 3.0 from Debian's `wordnet-base` package (read from /usr/share/wordnet when it is
installed, else fetched with `apt-get download` and unpacked with `dpkg -x`, as
scripts/build_datasets.py does). Nothing is downloaded from anywhere else.

Table: one line per word, `word<TAB>syn1 syn2 ...`, gzip-compressed. A word's synonyms are the
other lemmas of the synsets it belongs to, taken sense by sense in WordNet's frequency order
(sense 1 of every part of speech, then sense 2, ...), at most MAX_SYNONYMS of them. Only
single, all-lowercase alphabetic lemmas are kept on both sides (no phrases, no proper nouns).
Deterministic: the same package version gives the same file.

    python scripts/build_synonyms.py [--out tart/data/bundled/wordnet-synonyms.tsv.gz]
"""
from __future__ import annotations

import argparse
import gzip
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from build_datasets import fetch  # noqa: E402

POS = ("noun", "verb", "adj", "adv")
MAX_SYNONYMS = 8
WORD = re.compile(r"[a-z]+")
TABLE_NAME = "wordnet-synonyms.tsv.gz"


def synset_lemmas(data_file: Path) -> dict[str, list[str]]:
    """Synset offset -> its lemmas, from a data.POS file (adjective markers like "(a)" dropped)."""
    synsets = {}
    for line in data_file.read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):  # licence header
            continue
        fields = line.split(" ", 4 + 2 * int(line.split(" ", 4)[3], 16))
        count = int(fields[3], 16)
        synsets[fields[0]] = [re.sub(r"\(.*\)$", "", fields[4 + 2 * i]) for i in range(count)]
    return synsets


def sense_offsets(index_file: Path) -> dict[str, list[str]]:
    """Lemma -> its synset offsets in sense-frequency order, from an index.POS file."""
    senses = {}
    for line in index_file.read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split()
        n_synsets = int(fields[2])
        senses[fields[0]] = fields[-n_synsets:]
    return senses


def synonym_table(wordnet_dir: Path) -> dict[str, list[str]]:
    """Word -> up to MAX_SYNONYMS single-word synonyms, most frequent senses first."""
    ranked: dict[str, list[list[str]]] = {}  # word -> per sense rank, the synonyms of that rank
    for pos in POS:
        synsets = synset_lemmas(wordnet_dir / f"data.{pos}")
        for word, offsets in sense_offsets(wordnet_dir / f"index.{pos}").items():
            if not WORD.fullmatch(word):
                continue
            for rank, offset in enumerate(offsets):
                lemmas = [w for w in synsets[offset] if WORD.fullmatch(w) and w != word]
                slots = ranked.setdefault(word, [])
                slots.extend([] for _ in range(rank + 1 - len(slots)))
                slots[rank].extend(lemmas)
    table = {}
    for word, slots in ranked.items():
        synonyms = list(dict.fromkeys(w for rank in slots for w in rank))[:MAX_SYNONYMS]
        if synonyms:
            table[word] = synonyms
    return table


def write_table(table: dict[str, list[str]], path: Path, version: str) -> None:
    lines = [f"# WordNet 3.0 synonyms (Debian wordnet-base {version}); built by scripts/build_synonyms.py"]
    lines += [f"{w}\t{' '.join(table[w])}" for w in sorted(table)]
    # mtime=0: the same table gives the same bytes
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))


def installed_version() -> str | None:
    import subprocess

    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "wordnet-base"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def build(out: Path) -> dict[str, list[str]]:
    system = Path("/usr/share/wordnet")
    version = installed_version() if (system / "data.noun").exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        if version:
            folder = system
        else:
            root, version = fetch("wordnet-base", Path(tmp))
            folder = root / "usr/share/wordnet"
        table = synonym_table(folder)
    write_table(table, out, version)
    print(f"{out}: {len(table)} words, {out.stat().st_size / 1e6:.2f} MB (wordnet-base {version})")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "tart" / "datasets" / TABLE_NAME)
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
