#!/usr/bin/env python
"""Rebuild the public labelled datasets of user-written text (tart.training.user_text) from saved
snapshots of the public GitHub repositories they come from, without the network.

Each dataset is read with `git show COMMIT:PATH` from a bare snapshot of its repository (the commit
recorded in training/user_text_manifest.json, so a rebuild reads exactly the recorded files),
cleaned (whitespace squeezed, 12-300 characters, duplicates dropped), capped at `--per-class` texts per
class and `--max-rows` in all (seeded), and written as gzip'd JSONL {"text", "label"} to
`$TART_CACHE_DIR/user-text/{name}.jsonl.gz`. The manifest's rows, classes and sha256 are refreshed.

The texts themselves are not committed (the snapshots' content stays out of this repository's history):
the manifest records where each comes from, and this script rebuilds them.

    python scripts/build_user_text.py [--mirror /work/.mirror] [--seed 0]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np

from tart.training import user_text

AG_NEWS = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}  # the dataset's classes.txt order


def _show(mirror: Path, origin: dict, path: str) -> str:
    """One file of a snapshot, at the recorded commit."""
    repo = mirror / origin["repo"].replace("/", "+") / "repo"
    git_dir = repo / ".git" if (repo / ".git").is_dir() else repo
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{origin['commit']}:{path}"],
                          capture_output=True, encoding="utf-8", errors="replace", check=True).stdout


def _csv(text: str, **kwargs):
    return csv.DictReader(io.StringIO(text), **kwargs)


# --- readers: each yields (text, label) from the contents of its files, in the manifest's order --------

def hwu64(files):
    for text in files:  # one file per scenario_intent; answer_from_anno is the text as annotated
        for row in _csv(text, delimiter=";"):
            yield row["answer_from_anno"], f"{row['scenario']}_{row['intent']}"


def goemotions(files):
    names = files[0].split()
    for line in files[1].splitlines():
        text, ids, _ = line.split("\t")
        if "," not in ids:  # single-label comments only: a task's classes must not overlap
            yield text, names[int(ids)]


def trec(files):
    for line in files[0].splitlines():
        label, _, text = line.partition(" ")
        yield text, label.split(":")[0]  # the 6 coarse classes (ABBR, DESC, ENTY, HUM, LOC, NUM)


def trec_fine(files):
    for line in files[0].splitlines():
        label, _, text = line.partition(" ")
        yield text, label  # the 50 fine classes (HUM:ind, LOC:city, ...)


def davidson_hate(files):
    classes = {"0": "hate speech", "1": "offensive language", "2": "neither"}
    for row in _csv(files[0]):
        text = re.sub(r"(\bRT\b|@\w+:?|&amp;|&#\d+;|https?://\S+)", " ", row["tweet"])  # retweet marks, handles
        yield text.strip(" !:"), classes[row["class"]]


def sms_spam(files):
    for row in _csv(files[0], delimiter="\t"):
        yield row["SMS"], row["Label"]


def youtube_spam(files):
    psy, shakira = files  # this copy of the Psy file is reduced to rows of label (spam / ham), text
    for label, text in csv.reader(io.StringIO(psy)):
        yield text, "spam" if label == "spam" else "not spam"
    for row in _csv(shakira):
        yield row["CONTENT"], "spam" if row["CLASS"] == "1" else "not spam"


def bbc_news(files):
    for row in _csv(files[0]):
        yield row["text"][:300].rsplit(" ", 1)[0], row["category"]  # the article's opening words


def snips(files):
    for text in files:
        intent, examples = next(iter(json.loads(text).items()))
        for example in examples:
            yield "".join(part["text"] for part in example["data"]), intent


def review_sentences(files):
    for text in files:  # Amazon and Yelp only: the IMDb third is movie reviews, kept apart
        for line in text.splitlines():
            text, _, score = line.rpartition("\t")
            if score.strip() in ("0", "1"):
                yield text, "positive" if score.strip() == "1" else "negative"


def ag_news(files):
    for row in _csv(files[0]):
        yield f"{row['title']}. {row['description']}".replace("\\", " "), AG_NEWS[row["label"]]


def tweeteval(files):
    """TweetEval's layout: mapping.txt (id, label[, name]), then one tweet per line beside one label id per line."""
    mapping, texts, labels = files
    names = {}
    for line in mapping.splitlines():
        fields = [f for f in line.split("\t") if f.strip()]
        names[fields[0]] = fields[-1].strip("_").replace("_", " ")  # emoji: "_red_heart_" -> "red heart"
    for text, label in zip(texts.splitlines(), labels.splitlines()):
        yield text.replace("@user", "").strip(), names[label.strip()]


def tweet_stance_topics(files):
    topics = ("abortion", "atheism", "climate", "feminist", "hillary")  # the manifest's path order
    for topic, texts in zip(topics, files):
        for text in texts.splitlines():
            yield text.replace("@user", "").replace("#SemST", "").strip(), topic


READERS = {f.__name__.replace("_", "-"): f for f in (hwu64, goemotions, trec, trec_fine, davidson_hate, sms_spam,
                                                     youtube_spam, bbc_news, tweet_stance_topics, snips,
                                                     review_sentences, ag_news)}
READERS.update({f"tweet-{task}": tweeteval for task in ("emotion", "sentiment", "irony", "hate", "offensive")})


def build(mirror: Path, out: Path, per_class: int, max_rows: int, seed: int) -> dict:
    info = json.loads(user_text.MANIFEST.read_text())
    out.mkdir(parents=True, exist_ok=True)
    for entry in info["datasets"]:
        files = [_show(mirror, origin, path) for origin in entry["origins"] for path in origin["paths"]]
        by_class, seen = defaultdict(list), set()
        for text, label in READERS[entry["name"]](files):
            text = " ".join(text.split())
            if 12 <= len(text) <= 300 and text.lower() not in seen:
                seen.add(text.lower())
                by_class[label].append(text)
        rng = np.random.default_rng(seed)
        cap = min(per_class, max(20, max_rows // len(by_class)))
        rows = [{"text": t, "label": c} for c in sorted(by_class)
                for t in (by_class[c] if len(by_class[c]) <= cap else
                          [by_class[c][i] for i in sorted(rng.choice(len(by_class[c]), cap, replace=False))])]
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        path = out / f"{entry['name']}.jsonl.gz"
        path.write_bytes(gzip.compress(data, mtime=0))  # mtime 0: the same rows give the same bytes
        entry.update(rows=len(rows), classes=len(by_class), sha256=hashlib.sha256(data).hexdigest())
        print(f"{entry['name']}: {len(rows)} rows, {len(by_class)} classes ({entry['role']})")
    user_text.MANIFEST.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mirror", default="/work/.mirror", help="folder of the saved snapshots (owner+name/repo)")
    p.add_argument("--per-class", type=int, default=300)
    p.add_argument("--max-rows", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    build(Path(args.mirror), user_text.data_dir(), args.per_class, args.max_rows, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
