#!/usr/bin/env python
"""Rebuild the small labelled text datasets vendored in tart/data/bundled/.

Every source is a Debian package, fetched with `apt-get download` and unpacked
with `dpkg -x` into a temporary folder (no root, nothing installed):

- wordnet-base     usr/share/wordnet/data.noun: noun glosses by supersense; also the
                   synonym table wordnet-synonyms.tsv.gz (see scripts/build_synonyms.py)
- fortunes         usr/share/games/fortunes/<topic>: fortune cookies by topic
- r-cran-tidytext  the `sentiments` object (Hu & Liu opinion lexicon) in the
                   package's R lazy-load database; reading it needs the `rdata`
                   PyPI package. That dataset is skipped when `rdata` is missing.
                   `rdata` is a build-time tool only, never a runtime dependency.

Sampling is seeded and balanced, so a rebuild with the same package versions
and seed gives the same files. Writes one CSV per dataset (columns text,label),
index.json and LICENSES.md.

    python scripts/build_datasets.py [--out tart/data/bundled] [--seed 0]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# WordNet lexicographer file numbers for nouns (lexnames, WordNet 3.0).
NOUN_LEXNAMES = {
    3: "Tops", 4: "act", 5: "animal", 6: "artifact", 7: "attribute", 8: "body",
    9: "cognition", 10: "communication", 11: "event", 12: "feeling", 13: "food",
    14: "group", 15: "location", 16: "motive", 17: "object", 18: "person",
    19: "phenomenon", 20: "plant", 21: "possession", 22: "process", 23: "quantity",
    24: "relation", 25: "shape", 26: "state", 27: "substance", 28: "time",
}

# name -> (classes, rows per class)
WORDNET_SETS = {
    "wordnet-animal-food": (["animal", "food"], 400),
    "wordnet-act-state": (["act", "state"], 400),
    "wordnet-artifact-person": (["artifact", "person"], 400),
    "wordnet-plant-communication": (["plant", "communication"], 400),
    "wordnet-6way": (["act", "animal", "artifact", "food", "location", "person"], 250),
}
FORTUNE_SETS = {
    "fortunes-computers-politics": (["computers", "politics"], 300),
    "fortunes-4way": (["computers", "politics", "science", "work"], 250),
}
OPINION_SETS = {"opinion-sentiment": (["negative", "positive"], 500)}
MAX_FORTUNE_CHARS = 400


# ---------------------------------------------------------------- packages

def fetch(package: str, workdir: Path) -> tuple[Path, str]:
    """Download and unpack one Debian package; return (root folder, version)."""
    subprocess.run(["apt-get", "download", package], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    deb = next(workdir.glob(f"{package}_*.deb"))
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    root = workdir / package
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root, version


# ---------------------------------------------------------------- parsers

def wordnet_glosses(data_noun: Path) -> dict[str, list[str]]:
    """Supersense name -> "lemma: definition" texts, in file order."""
    by_class: dict[str, list[str]] = {}
    for line in data_noun.read_text(encoding="utf-8").splitlines():
        if line.startswith(" ") or " | " not in line:  # licence header
            continue
        head, gloss = line.split(" | ", 1)
        fields = head.split()
        supersense = NOUN_LEXNAMES[int(fields[1])]
        lemma = fields[4].replace("_", " ")
        definition = gloss.split(";", 1)[0].strip()
        text = f"{lemma}: {definition}"
        if definition:
            by_class.setdefault(supersense, []).append(text)
    return by_class


def fortune_records(path: Path) -> list[str]:
    """Records of one fortune file, overstrike removed, short ones only."""
    text = path.read_text(encoding="utf-8", errors="replace")
    text = re.sub(r".\x08", "", text)  # "_\bW" (underline) and "W\bW" (bold)
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)
    records = (r.strip() for r in re.split(r"\n%\n", "\n" + text + "\n"))
    return [r for r in records if r and r != "%" and len(r) <= MAX_FORTUNE_CHARS]


def opinion_lexicon(data_dir: Path) -> dict[str, list[str]]:
    """tidytext's `sentiments` data frame: sentiment -> words."""
    import rdata  # build-time only

    index = rdata.conversion.convert(
        rdata.parser.parse_data(gzip.decompress((data_dir / "Rdata.rdx").read_bytes())))
    offset, length = (int(v) for v in index["variables"]["sentiments"])
    blob = (data_dir / "Rdata.rdb").read_bytes()[offset:offset + length]
    size = struct.unpack(">I", blob[:4])[0]  # lazy-load entry: length, then zlib
    raw = zlib.decompress(blob[4:])
    assert len(raw) == size, "unexpected R lazy-load entry"
    frame = rdata.conversion.convert(rdata.parser.parse_data(raw))
    by_class: dict[str, list[str]] = {}
    for word, sentiment in zip(frame["word"], frame["sentiment"]):
        by_class.setdefault(str(sentiment), []).append(str(word))
    return by_class


# ---------------------------------------------------------------- sampling

def single_label(pool: dict[str, list[str]]) -> dict[str, list[str]]:
    """Drop texts filed under more than one class; dedupe within a class."""
    owners: dict[str, set[str]] = {}
    for label, texts in pool.items():
        for text in texts:
            owners.setdefault(text, set()).add(label)
    return {label: list(dict.fromkeys(t for t in texts if len(owners[t]) == 1))
            for label, texts in pool.items()}


def balanced_sample(pool: dict[str, list[str]], classes: list[str], per_class: int,
                    seed: int) -> list[tuple[str, str]]:
    """per_class texts of each class, seeded, then shuffled together."""
    rng = random.Random(seed)
    rows = []
    for label in classes:
        texts = pool[label]
        if len(texts) < per_class:
            raise SystemExit(f"class {label!r} has {len(texts)} texts, need {per_class}")
        rows += [(t, label) for t in rng.sample(texts, per_class)]
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "tart" / "datasets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    index, licences = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def build(name, pool, classes, per_class, package, version, source_file, desc):
            rows = balanced_sample(pool, classes, per_class, args.seed)
            write_csv(args.out / f"{name}.csv", rows)
            index.append({
                "name": name, "file": f"{name}.csv",
                "task": "binary" if len(classes) == 2 else "multiclass",
                "classes": classes, "rows": len(rows), "rows_per_class": per_class,
                "description": desc,
                "source": {"package": package, "version": version, "file": source_file},
            })
            print(f"{name}: {len(rows)} rows, classes {classes}")

        def licence(package, version, root, title, note=""):
            text = (root / "usr/share/doc" / package / "copyright").read_text(encoding="utf-8")
            licences.append(f"## {title}\n\nDebian package `{package}` {version}, "
                            f"file `/usr/share/doc/{package}/copyright`:{note}\n\n"
                            f"```\n{text.rstrip()}\n```\n")

        root, version = fetch("wordnet-base", work)
        data_noun = "usr/share/wordnet/data.noun"
        glosses = single_label(wordnet_glosses(root / data_noun))
        for name, (classes, per_class) in WORDNET_SETS.items():
            build(name, glosses, classes, per_class, "wordnet-base", version, data_noun,
                  "WordNet 3.0 noun glosses ('lemma: definition', first sense definition), "
                  "labelled by supersense (lexicographer file)")
        from build_synonyms import TABLE_NAME, synonym_table, write_table  # this folder

        write_table(synonym_table(root / "usr/share/wordnet"), args.out / TABLE_NAME, version)
        licence("wordnet-base", version, root, f"WordNet 3.0 (wordnet-* datasets and {TABLE_NAME})")

        root, version = fetch("fortunes", work)
        topics = sorted({t for classes, _ in FORTUNE_SETS.values() for t in classes})
        records = single_label(
            {t: fortune_records(root / "usr/share/games/fortunes" / t) for t in topics})
        for name, (classes, per_class) in FORTUNE_SETS.items():
            build(name, records, classes, per_class, "fortunes", version,
                  "usr/share/games/fortunes/{" + ",".join(classes) + "}",
                  f"fortune cookies (at most {MAX_FORTUNE_CHARS} characters) labelled by "
                  "the topic file they come from")
        licence("fortunes", version, root, "fortune-mod cookie files (fortunes-* datasets)",
                "\n\nThe cookies are quotations and jokes collected by the fortune-mod "
                "project, redistributed by Debian (section main) with the notes below.")

        try:
            import rdata  # noqa: F401
        except ImportError:
            print("rdata not installed (pip install rdata): opinion-sentiment not rebuilt")
        else:
            root, version = fetch("r-cran-tidytext", work)
            data_dir = "usr/lib/R/site-library/tidytext/data"
            lexicon = single_label(opinion_lexicon(root / data_dir))
            for name, (classes, per_class) in OPINION_SETS.items():
                build(name, lexicon, classes, per_class, "r-cran-tidytext", version,
                      f"{data_dir}/Rdata.rdb, object sentiments",
                      "single words of the Hu & Liu opinion lexicon as shipped in "
                      "tidytext's `sentiments`, labelled positive/negative")
            licence("r-cran-tidytext", version, root, "tidytext (opinion-sentiment)",
                    "\n\nThe lexicon is by Minqing Hu and Bing Liu, \"Mining and Summarizing "
                    "Customer Reviews\", KDD 2004; tidytext bundles it as `sentiments`.")

    (args.out / "index.json").write_text(json.dumps(
        {"seed": args.seed, "built_by": "scripts/build_datasets.py",
         "columns": ["text", "label"], "datasets": sorted(index, key=lambda d: d["name"])},
        indent=2) + "\n", encoding="utf-8")
    sources = "\n".join(
        f"- `{d['name']}`: {d['rows']} rows, from Debian package `{d['source']['package']}` "
        f"{d['source']['version']}, `{d['source']['file']}`"
        for d in sorted(index, key=lambda d: d["name"]))
    sources += ("\n- `wordnet-synonyms.tsv.gz`: single-word synonyms for `tart analyze invariance`, from "
                "`usr/share/wordnet/{data,index}.{noun,verb,adj,adv}` of the same `wordnet-base` "
                "(scripts/build_synonyms.py)")
    (args.out / "LICENSES.md").write_text(
        "# Bundled datasets: sources and licences\n\n"
        "Small seeded subsets, rebuilt by `scripts/build_datasets.py` from Debian packages.\n\n"
        f"{sources}\n\n" + "\n".join(licences), encoding="utf-8")


if __name__ == "__main__":
    main()
