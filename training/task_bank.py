"""A bank of real labelled text tasks, for meta-training the head on real episodes.

Learned few-shot heads that beat a tuned probe on frozen features were meta-trained on real labelled
episodes (CAML on CLIP features, TabDPT on real tables), not on a synthetic prior alone. This module
collects labelled short texts from sources that are on every machine of this project (or one
`apt-get update` away, or rebuilt from saved snapshots), none shared with the dev suite or the sets
reserved for independent checks (`tart.training.reserved`), and none of them dictionary glosses:

- `debian-packages`: one-line package descriptions (`apt-cache dumpavail`), labelled by archive
  `Section:` and by each debtags facet (`field::`, `use::`, `works-with::`, `game::`, ...); a package
  counts for a facet only if it has exactly one value in it;
- `man-pages`: the NAME line of installed manual pages (`ls - list directory contents`), the command
  name dropped, labelled by manual section (1 commands, 2 system calls, 3pm Perl modules, ...);
- `python-libraries`: first sentences of docstrings of the installed third-party Python packages,
  labelled by package, and within a large package by its sub-package;
- `python-stdlib`: first sentences of the standard library's docstrings, labelled by module;
- `user-text/{name}`: the `bank` datasets of user-written text (`tart.training.user_text`: intents,
  emotions, questions, spam, news, tweets' sentiment, irony, hate and stance topics), labelled by their
  own labels. They get `USER_SHARE` of the tasks: they are what users classify.

Every class carries a *name*, the text the head reads for it beside the examples: the dataset's own
label (`play_music` -> "play music", or the manifest's name for a code like TREC's "HUM"), the Debian
section's title, the debtags value, the manual section's title, the package or module name.

A *label set* is one labelling of one source (e.g. debian-packages / works-with); a *task* is a set
of 2-10 of its classes, each with a pool of >= 20 texts. `build` enumerates the tasks, embeds every
text with each packaged embedder, and writes under `$TART_CACHE_DIR/task-bank/`:
`bank.json` (texts, names, sources, label sets, tasks), `{embedder}.npy` (float32, texts × hidden),
`{embedder}-names.npy` (the names as `tart.data.label_names.name_text` writes them for that embedder) and
`manifest.json` (sources, licences, counts), committed as training/task_bank_manifest.json.

    python -m tart.training.task_bank [--embedders minilm-l6,smollm2-135m] [--per-class 100] [--rebuild]
                                      [--manifest training/task_bank_manifest.json]
"""
from __future__ import annotations

import argparse
import ast
import gzip
import json
import re
import subprocess
import sysconfig
from collections import defaultdict
from pathlib import Path

import numpy as np

from tart.defaults import PACKAGED_EMBEDDERS
from tart.tasks.episodes import bank_dir
from tart.data.label_names import default_name, name_text
from tart.training import reserved, user_text

MIN_POOL = 20  # texts per class, at least
MAX_CLASSES = 10
USER_SHARE = 0.4  # of the tasks, from user-written text
MANIFEST = Path(__file__).with_name("task_bank_manifest.json")

# The sources, each reviewed for the bank's rule (no dev-suite source, no set reserved for independent
# checks, no dictionary glosses); a new source gets an entry here once it is reviewed.
LICENCES = {
    "debian-packages": "Debian archive metadata (bookworm main): each description under its package's licence "
                       "(DFSG-free); built locally from apt's index, not redistributed",
    "man-pages": "manual pages installed on the machine (man-pages project and each package's own, DFSG-free); "
                 "built locally, not redistributed",
    "python-libraries": "docstrings of installed PyPI packages (BSD / MIT / Apache-2.0); built locally, not redistributed",
    "python-stdlib": "CPython standard library docstrings (PSF licence); built locally, not redistributed",
    **{f"user-text/{d['name']}": d["licence"] for d in user_text.datasets("bank")},
}
MAN_SECTIONS = {"1": "user commands", "2": "system calls", "3": "library functions", "4": "devices",
                "5": "file formats", "6": "games", "7": "conventions and miscellany", "8": "administration"}
MAN_SUFFIXES = {"pm": "Perl modules", "ssl": "OpenSSL", "perl": "Perl", "tcl": "Tcl", "x": "X11", "ncurses": "ncurses"}
# The Debian archive's section titles (packages.debian.org); a section not here is named by itself.
DEBIAN_SECTIONS = {
    "admin": "administration utilities", "cli-mono": "Mono and CLI", "comm": "communication programs",
    "database": "databases", "debug": "debug symbols", "devel": "development", "doc": "documentation",
    "editors": "editors", "education": "education", "electronics": "electronics", "embedded": "embedded software",
    "fonts": "fonts", "games": "games", "gnu-r": "GNU R", "golang": "Go", "graphics": "graphics",
    "hamradio": "ham radio", "httpd": "web servers", "interpreters": "interpreters", "introspection":
    "GObject introspection", "kernel": "kernels", "libdevel": "library development", "libs": "libraries",
    "localization": "language packs", "mail": "mail", "math": "mathematics", "metapackages": "metapackages",
    "misc": "miscellaneous", "net": "network", "news": "newsgroups", "oldlibs": "old libraries",
    "otherosfs": "other operating systems and file systems", "science": "science", "shells": "shells",
    "sound": "sound and music", "tasks": "tasks", "tex": "TeX", "text": "text processing", "utils": "utilities",
    "vcs": "version control systems", "video": "video", "web": "web software", "x11": "X Window System software",
}


def class_name(source: str, label_set: str, label: str) -> str:
    """The name of one class: what the head reads for it beside the examples."""
    if source == "debian-packages" and label_set == "section":
        return DEBIAN_SECTIONS.get(label, default_name(label))
    if source == "man-pages":
        title = MAN_SECTIONS.get(label[0], label)
        return f"{title}, {MAN_SUFFIXES.get(label[1:], label[1:])}" if len(label) > 1 else title
    if source.startswith("user-text/"):
        names = next(d for d in user_text.datasets() if f"user-text/{d['name']}" == source).get("label_names", {})
        return names.get(label, default_name(label))
    return default_name(label)


def _clean(text: str, min_chars: int = 12, max_chars: int = 240) -> str | None:
    text = " ".join(text.split())
    return text if min_chars <= len(text) <= max_chars else None


# --- sources: each returns {label set: {class: [texts]}} ---------------------------------------------

def debian_packages(dump: str | None = None) -> dict[str, dict[str, list[str]]]:
    """Package descriptions by Section and by debtags facet (needs apt's index: `apt-get update`)."""
    if dump is None:
        dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    sets: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    seen = set()
    for record in dump.split("\n\n"):
        fields, last = {}, None
        for line in record.splitlines():
            if line[:1] in (" ", "\t") and last:
                fields[last] += " " + line.strip()
            elif ":" in line:
                last, _, value = line.partition(":")
                fields[last] = value.strip()
        text = _clean(fields.get("Description", ""))
        if not text or text.lower() in seen:  # one package per description: -dev / -doc twins say the same
            continue
        seen.add(text.lower())
        section = fields.get("Section", "").split("/")[-1]
        if section:
            sets["section"][section].append(text)
        facets = defaultdict(set)
        for tag in filter(None, (t.strip() for t in fields.get("Tag", "").split(","))):
            facet, _, value = tag.partition("::")
            if value and not value.startswith("TODO") and facet != "suite":
                facets[facet].add(value)
        for facet, values in facets.items():
            if len(values) == 1:  # unambiguous
                sets[facet][values.pop()].append(text)
    return sets


def man_pages(root: str = "/usr/share/man") -> dict[str, dict[str, list[str]]]:
    """NAME lines of the English manual pages, by section (the file's suffix: 1, 3pm, 8, ...)."""
    sections: dict[str, list[str]] = defaultdict(list)
    seen = set()
    for path in sorted(Path(root).glob("man[1-8]/*.gz")):
        section = path.name[:-3].rsplit(".", 1)[-1]
        try:
            with gzip.open(path, "rt", errors="replace") as f:
                page = f.read(20000)
        except (OSError, EOFError):
            continue
        match = re.search(r"^\.S[Hh]\s+\"?(NAME|NOM|NAMN)\"?\s*\n(.*?)(?=^\.S[Hh]|\Z)", page, re.M | re.S)
        if not match:
            continue
        body = " ".join(line for line in match.group(2).splitlines() if not line.startswith((".", "'")))
        body = re.sub(r"\\f[BIRP]|\\\(em|\\\(en|\\&|\\-|\\", lambda m: "-" if m.group() == "\\-" else "", body)
        _, dash, description = body.partition(" - ")
        text = _clean(description) if dash else None
        if text and text.lower() not in seen:
            seen.add(text.lower())
            sections[section if section[0] != "3" or len(section) > 1 else "3"].append(text)
    return {"section": sections}


def _first_sentences(root: Path, files) -> dict[Path, list[str]]:
    """First sentence of each function / class docstring, per file (read with ast: nothing is imported)."""
    found = {}
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        texts = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc:
                    first = " ".join(doc.strip().split("\n\n")[0].split()).split(". ")[0].rstrip(".")
                    text = _clean(first, min_chars=25, max_chars=200)
                    if text:
                        texts.append(text)
        found[path.relative_to(root)] = texts
    return found


def _skip(path: Path) -> bool:
    return any(p in ("test", "tests", "testing", "_vendor", "vendor", "idlelib", "site-packages") for p in path.parts[:-1])


def python_docstrings(root: Path, packages=None, stdlib: bool = False) -> dict[str, dict[str, list[str]]]:
    """Docstrings by top-level package (or stdlib module), and, within each package large enough, by
    its sub-package."""
    root = Path(root)
    if stdlib:
        files = [p for p in sorted(root.rglob("*.py")) if not _skip(p.relative_to(root))]
    else:
        files = [p for name in packages for p in sorted((root / name).rglob("*.py")) if not _skip(p.relative_to(root))]
    sets: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    seen = set()
    for rel, texts in _first_sentences(root, files).items():
        top = rel.parts[0].removesuffix(".py")
        if top.startswith("_") or top in ("tart", "pip", "setuptools", "pkg_resources"):
            continue
        for text in texts:
            if text.lower() in seen:
                continue
            seen.add(text.lower())
            sets["module" if stdlib else "package"][top].append(text)
            if len(rel.parts) > 2 and not rel.parts[1].startswith("_"):
                sets[f"{top}-subpackage"][rel.parts[1].removesuffix(".py")].append(text)
    return sets


THIRD_PARTY = ("numpy", "scipy", "sklearn", "torch", "transformers", "matplotlib", "bentoml", "pydantic",
               "accelerate", "safetensors", "tokenizers", "huggingface_hub", "sympy", "networkx", "jinja2",
               "starlette", "fastapi", "httpx", "aiohttp", "opentelemetry", "prometheus_client", "click", "rich",
               "yaml", "packaging", "fsspec", "tensorboard", "PIL", "attr", "attrs", "simple_di", "pygments",
               "gguf", "psutil", "uvicorn", "anyio", "h11", "google", "grpc", "markdown", "werkzeug")


def collect(per_class: int, seed: int = 0) -> dict:
    """Every source's label sets, classes with >= MIN_POOL texts, pools capped at per_class (seeded)."""
    site = Path(sysconfig.get_paths()["purelib"])
    raw = {
        "debian-packages": debian_packages(),
        "man-pages": man_pages(),
        "python-libraries": python_docstrings(site, [p for p in THIRD_PARTY if (site / p).is_dir()]),
        "python-stdlib": python_docstrings(Path(sysconfig.get_paths()["stdlib"]), stdlib=True),
        **{f"user-text/{d['name']}": {d["name"]: user_text.read(d["name"])} for d in user_text.datasets("bank")},
    }
    rng = np.random.default_rng(seed)
    index, names, label_sets = {}, {}, []
    for source, sets in raw.items():
        for name, classes in sorted(sets.items()):
            kept = {c: t for c, t in sorted(classes.items()) if len(t) >= MIN_POOL}
            if len(kept) < 2:
                continue
            pools = {}
            for c, pool in kept.items():
                pool = [pool[i] for i in sorted(rng.choice(len(pool), min(per_class, len(pool)), replace=False))]
                pools[c] = [index.setdefault(t, len(index)) for t in pool]
            label_sets.append({"source": source, "name": name, "classes": pools,
                               "names": {c: names.setdefault(class_name(source, name, c), len(names)) for c in pools}})
    return {"texts": list(index), "names": list(names), "label_sets": label_sets}


def enumerate_tasks(label_sets: list[dict], n_tasks: int, seed: int = 0, user_share: float = 0.0) -> list[dict]:
    """Distinct tasks: every label set of <= 10 classes whole, then random class subsets (2-10 classes)
    spread over label sets in proportion to the square root of their class count; `user_share` of the
    tasks from the user-text label sets (as far as they have distinct tasks), the rest from the others."""
    user = [i for i, ls in enumerate(label_sets) if ls["source"].startswith("user-text/")]
    other = [i for i in range(len(label_sets)) if i not in user]
    if user_share <= 0 or not user or not other:
        return _enumerate(label_sets, range(len(label_sets)), n_tasks, seed)
    n_user = round(user_share * n_tasks)
    return _enumerate(label_sets, user, n_user, seed) + _enumerate(label_sets, other, n_tasks - n_user, seed)


def _enumerate(label_sets: list[dict], indices, n_tasks: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    indices = list(indices)
    tasks, seen = [], set()

    def add(i, classes):
        key = (i, tuple(sorted(classes)))
        if key not in seen:
            seen.add(key)
            tasks.append({"label_set": i, "classes": sorted(classes)})

    for i in indices:
        if len(label_sets[i]["classes"]) <= MAX_CLASSES:
            add(i, list(label_sets[i]["classes"]))
    weights = np.sqrt([len(label_sets[i]["classes"]) for i in indices])
    weights /= weights.sum()
    for _ in range(50 * n_tasks):
        if len(tasks) >= n_tasks:
            break
        i = indices[int(rng.choice(len(indices), p=weights))]
        names = list(label_sets[i]["classes"])
        size = 2 if rng.random() < 0.4 else int(rng.integers(2, min(MAX_CLASSES, len(names)) + 1))
        add(i, list(rng.choice(names, size, replace=False)))
    return tasks


def manifest(bank: dict) -> dict:
    by_source = defaultdict(lambda: {"label_sets": 0, "classes": 0, "tasks": 0, "texts": set()})
    for ls in bank["label_sets"]:
        entry = by_source[ls["source"]]
        entry["label_sets"] += 1
        entry["classes"] += len(ls["classes"])
        entry["texts"].update(i for rows in ls["classes"].values() for i in rows)
    for task in bank["tasks"]:
        by_source[bank["label_sets"][task["label_set"]]["source"]]["tasks"] += 1
    sources = {s: {**{k: v for k, v in e.items() if k != "texts"}, "texts": len(e["texts"]), "licence": LICENCES[s]}
               for s, e in sorted(by_source.items())}
    user = sum(e["tasks"] for s, e in sources.items() if s.startswith("user-text/"))
    return {"texts": len(bank["texts"]), "tasks": len(bank["tasks"]), "names": len(bank.get("names", [])),
            "user_text_share": round(user / max(1, len(bank["tasks"])), 3), "min_pool": MIN_POOL,
            "max_classes": MAX_CLASSES, "sources": sources,
            "label_sets": [{"source": ls["source"], "name": ls["name"], "classes": len(ls["classes"])}
                           for ls in bank["label_sets"]],
            "origins": {f"user-text/{d['name']}": d["origins"] for d in user_text.datasets("bank")}}


def build(embedders, per_class: int, n_tasks: int, rebuild: bool = False, manifest_path=None, seed: int = 0) -> dict:
    """Collect and enumerate the tasks (or reuse the cached bank.json), then embed with each embedder."""
    from tart.lm.embedder import load_embedder
    from tart.paths import atomic_write, save_array

    out = bank_dir()
    if rebuild or not (out / "bank.json").is_file():
        bank = collect(per_class, seed)
        found = reserved.reserved_texts(bank["texts"])
        if found:
            raise ValueError(f"texts of reserved sets in the bank, e.g. {found[:3]}: remove their source")
        bank["tasks"] = enumerate_tasks(bank["label_sets"], n_tasks, seed, USER_SHARE)
        with atomic_write(out / "bank.json") as f:  # whole or not at all
            json.dump(bank, f)
        for stale in out.glob("*.npy"):  # embeddings of an older bank no longer line up
            stale.unlink()
    else:
        bank = json.loads((out / "bank.json").read_text())
    info = manifest(bank)
    for path in filter(None, (out / "manifest.json", manifest_path)):
        Path(path).write_text(json.dumps(info, indent=2) + "\n")
    print(f"{info['texts']} texts, {info['tasks']} tasks: " +
          ", ".join(f"{s} {e['tasks']} tasks / {e['texts']} texts" for s, e in info["sources"].items()))
    for name in embedders:
        embedder = load_embedder(name, backend="torch")  # a fixed runtime: the bank is a reference, not a speed
        X = embedder.embed(bank["texts"])  # batched by tokens, with a progress bar
        save_array(out / f"{name}.npy", X.astype(np.float32))
        N = embedder.embed([name_text(n, name) for n in bank["names"]])
        save_array(out / f"{name}-names.npy", N.astype(np.float32))
        print(f"{out / name}.npy: {X.shape[0]} × {X.shape[1]}, {len(N)} names")
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tart.training.task_bank", description=__doc__.split("\n")[0])
    p.add_argument("--embedders", default=",".join(PACKAGED_EMBEDDERS))
    p.add_argument("--per-class", type=int, default=100, help="pool size cap per class")
    p.add_argument("--tasks", type=int, default=3000, help="distinct tasks to enumerate")
    p.add_argument("--rebuild", action="store_true", help="collect the texts again (default: reuse bank.json)")
    p.add_argument("--manifest", help=f"also write the manifest here (the committed one is {MANIFEST.name} "
                   "in training/); it is always written beside the bank")
    args = p.parse_args(argv)
    build([e for e in args.embedders.split(",") if e], args.per_class, args.tasks, args.rebuild, args.manifest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
