"""The data reserved for independent evaluation: never in the task bank, the dev suite or any tuning.

Reserved: CLINC150 (oos-eval), BANKING77, the Pang & Lee movie review data and everything built on its
sentences or snippets (MR, SST, SST-2, SST-5, SUBJ), Reuters-21578, Jane Austen and other Project
Gutenberg novels, WordNet verbs; and the bank holds no dictionary gloss at all (the dev suite keeps its
WordNet noun-gloss tasks).

Two checks, because a name can hide its data: `reserved_names` looks for the sets' names and aliases
in the names and origins of sources and label sets; `reserved_texts` looks for known sentences of the
sets (a few dozen fingerprints) and for WordNet glosses (those vendored for the dev suite) in texts.
"""
from __future__ import annotations

import csv
import functools
import re

from tart.data.datasets import DATASETS_DIR

ALIASES = ("clinc", "oos-eval", "oos_eval", "banking77", "banking-77", "banking_77", "pang", "polarity",
           "rt-polarity", "movie-review", "movie_review", "moviereview", "sst", "stanford sentiment",
           "subj", "subjectivity", "reuters", "21578", "austen", "gutenberg", "novel", "wordnet", "gloss",
           "verb", "mr-", "-mr")

# Known sentences of the reserved sets, normalised (`_norm`).
FINGERPRINTS = (
    # Pang & Lee sentence polarity (rt-polarity) / SST
    "the rock is destined to be the 21st century s new conan and that he s going to make a splash even greater than arnold schwarzenegger jean claud van damme or steven segal",
    "the gorgeously elaborate continuation of the lord of the rings trilogy is so huge that a column of words cannot adequately describe co writer director peter jackson s expanded vision of j r r tolkien s middle earth",
    "effective but too tepid biopic",
    "simplistic silly and tedious",
    "it s so laddish and juvenile only teenage boys could possibly find it funny",
    "exploitative and largely devoid of the depth or sophistication that would make watching such a graphic treatment of the crimes bearable",
    "a stirring funny and finally transporting re imagining of beauty and the beast and 1930s horror films",
    "apparently reassembled from the cutting room floor of any given daytime soap",
    "they presume their audience won t sit still for a sociology lesson however entertainingly presented so they trot out the conventional science fiction elements of bug eyed monsters and futuristic women in skimpy clothes",
    # SUBJ
    "smart and alert thirteen conversations about one thing is a small gem",
    "color smart and alert",
    # CLINC150
    "how would you say fly in italian",
    "what s the spanish word for pasta",
    "how would they say butter in zambia",
    "how do you say fast in spanish",
    "what is the word for hello in french",
    "can you tell me how to say i do not speak much spanish in spanish",
    # BANKING77
    "i am still waiting on my card",
    "what can i do if my card still hasn t arrived after 2 weeks",
    "i have been waiting over a week is the card still coming",
    "can i track my card while it is in the process of delivery",
    "how do i know if i will get my card or if it is lost",
    "when did you send me my new card",
    # Reuters-21578
    "showers continued throughout the week in the bahia cocoa zone alleviating the drought since early january and improving prospects for the coming temporao",
    "the u s agriculture department reported the farmer owned reserve national five day average price through february 25 as follows",
    "standard oil co and bp north america inc said they plan to form a venture to manage the money market borrowing and investment activities of both companies",
    # Jane Austen and other Project Gutenberg novels
    "it is a truth universally acknowledged that a single man in possession of a good fortune must be in want of a wife",
    "emma woodhouse handsome clever and rich with a comfortable home and happy disposition seemed to unite some of the best blessings of existence",
    "the family of dashwood had long been settled in sussex",
    "sir walter elliot of kellynch hall in somersetshire was a man who for his own amusement never took up any book but the baronetage",
    "no one who had ever seen catherine morland in her infancy would have supposed her born to be an heroine",
    "it was the best of times it was the worst of times",
    "call me ishmael",
    "happy families are all alike every unhappy family is unhappy in its own way",
    # WordNet verb glosses
    "move fast by using one s feet with one foot off the ground at any given time",
    "have a certain quality or state",
    "take in food used of animals only",
    "cause to move by pulling",
    "make a prediction about tell in advance",
)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def reserved_names(*names: str) -> list[str]:
    """The names (of sources, label sets, datasets, origins) that name a reserved set."""
    return [n for n in names if any(a in str(n).lower() for a in ALIASES)]


@functools.lru_cache(maxsize=1)
def _glosses() -> frozenset[str]:
    """The WordNet noun glosses vendored for the dev suite (`lemma: gloss`), normalised, long ones only
    (a short gloss such as "a person" may well occur in other text)."""
    found = set()
    for path in DATASETS_DIR.glob("wordnet-*.csv"):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                gloss = _norm(row["text"].partition(": ")[2])
                if len(gloss) >= 30:
                    found.add(gloss)
    return frozenset(found)


def reserved_texts(texts) -> list[str]:
    """The texts that are (or contain) a known sentence of a reserved set, or a WordNet gloss."""
    glosses = _glosses()
    hits = []
    for text in texts:
        norm = _norm(text)
        if {norm, _norm(text.partition(": ")[2])} & glosses or any(f == norm or (len(f) >= 30 and f in norm) for f in FINGERPRINTS):
            hits.append(text)
    return hits
