"""The task bank of real labelled text (tart.training.task_bank) and its episodes (tart.tasks.episodes)."""
import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tart.head import projection
from tart.tasks import episodes
from tart.tasks.prior import PriorSettings, sample_prior_batch
from tart.training import reserved, task_bank, user_text

DUMP = """Package: a
Description: Real-time strategy game of ancient warfare
Tag: game::strategy, interface::graphical,
 use::gameplaying
Section: games

Package: a-data
Description: Real-time strategy game of ancient warfare
Section: games

Package: b
Description: Command-line tool to convert images between formats
Tag: use::converting, works-with::image, works-with::file
Section: contrib/graphics
"""


def test_debian_source_reads_sections_and_unambiguous_facets():
    sets = task_bank.debian_packages(DUMP)
    assert sets["section"] == {"games": ["Real-time strategy game of ancient warfare"],
                               "graphics": ["Command-line tool to convert images between formats"]}
    assert sets["use"]["gameplaying"] and sets["use"]["converting"]
    assert "works-with" not in sets  # b has two works-with values: ambiguous, left out
    assert sets["game"] == {"strategy": ["Real-time strategy game of ancient warfare"]}  # a-data: duplicate text


def test_man_source_reads_name_lines_by_section(tmp_path):
    for section, name, line in [("1", "ls", r"ls \- list directory contents"),
                                ("2", "open", r"open, openat \- open and possibly create a file"),
                                ("3pm", "Foo::Bar", r"Foo::Bar \- portable operations on file names")]:
        (tmp_path / f"man{section[0]}").mkdir(exist_ok=True)
        with gzip.open(tmp_path / f"man{section[0]}" / f"{name}.{section}.gz", "wt") as f:
            f.write(f'.TH X\n.SH NAME\n{line}\n.SH SYNOPSIS\n.B x\n')
    sections = task_bank.man_pages(str(tmp_path))["section"]
    assert sections == {"1": ["list directory contents"], "2": ["open and possibly create a file"],
                        "3pm": ["portable operations on file names"]}


def test_docstring_source_labels_by_package_and_subpackage(tmp_path):
    for rel, doc in [("pkga/stats/core.py", "Compute the mean of an array along an axis."),
                     ("pkga/signal/filters.py", "Apply a digital filter forward and backward to a signal."),
                     ("pkgb/io.py", "Read a comma-separated file into a table of records."),
                     ("pkgb/tests/test_io.py", "This docstring belongs to a test and is skipped.")]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'def f():\n    """{doc} More words.\n\n    Details."""\n')
    sets = task_bank.python_docstrings(tmp_path, ["pkga", "pkgb"])
    assert {c: sorted(t) for c, t in sets["package"].items()} == {
        "pkga": ["Apply a digital filter forward and backward to a signal", "Compute the mean of an array along an axis"],
        "pkgb": ["Read a comma-separated file into a table of records"]}
    assert set(sets["pkga-subpackage"]) == {"stats", "signal"}


def test_tasks_are_distinct_and_of_2_to_10_classes():
    label_sets = [{"source": "s", "name": "big", "classes": {f"c{i}": [i] for i in range(30)}},
                  {"source": "s", "name": "small", "classes": {"x": [0], "y": [1], "z": [2]}}]
    tasks = task_bank.enumerate_tasks(label_sets, 200)
    keys = {(t["label_set"], tuple(t["classes"])) for t in tasks}
    assert len(keys) == len(tasks) == 200
    assert all(2 <= len(t["classes"]) <= 10 for t in tasks)
    assert {"label_set": 1, "classes": ["x", "y", "z"]} in tasks  # a small label set, whole


def _names_and_origins(info: dict) -> list[str]:
    """Every name a manifest gives its sources, label sets and datasets, and where they come from."""
    names = list(info.get("sources", {})) + [ls["source"] for ls in info.get("label_sets", [])]
    names += [ls["name"] for ls in info.get("label_sets", [])] + [d["name"] for d in info.get("datasets", [])]
    return names + [json.dumps(info.get("origins", {})), json.dumps([d["origins"] for d in info.get("datasets", [])])]


def test_committed_manifest_has_only_reviewed_sources_and_enough_tasks():
    info = json.loads(task_bank.MANIFEST.read_text())
    # no set reserved for independent evaluation, by name, alias or origin (a `reuters-topics` label set fails)
    assert not reserved.reserved_names(*_names_and_origins(info))
    assert set(info["sources"]) == set(task_bank.LICENCES)  # the reviewed sources, no other
    dev_suite = ("wordnet", "fortunes", "opinion")  # the dev suite's sources: never trained on
    assert not any(d in ls["source"] or d in ls["name"] for d in dev_suite for ls in info["label_sets"])
    assert len(info["sources"]) >= 4 and info["tasks"] >= 2000 and info["user_text_share"] >= 0.3
    assert info["min_pool"] >= 20 and info["max_classes"] == 10
    assert all(e["licence"] for e in info["sources"].values())
    # no dictionary glosses of any source (the dev suite's WordNet tasks are glosses)
    assert not any("gloss" in ls["name"] or "wordnet" in ls["name"] for ls in info["label_sets"])


@pytest.fixture
def tiny_bank(tmp_path):
    """Three label sets, two sources, random 24-dim 'embeddings' with class structure."""
    rng = np.random.default_rng(0)
    texts, label_sets, X = [], [], []
    for s, source in enumerate(("src-a", "src-a", "src-b")):
        classes = {}
        for c in range(4):
            rows = list(range(len(texts), len(texts) + 30))
            texts += [f"{source} {s} {c} {i}" for i in range(30)]
            X.append(rng.normal(size=(30, 24)) + 3 * rng.normal(size=24))
            classes[f"class{c}"] = rows
        label_sets.append({"source": source, "name": f"set{s}", "classes": classes})
    bank = {"texts": texts, "label_sets": label_sets, "tasks": task_bank.enumerate_tasks(label_sets, 20)}
    (tmp_path / "bank.json").write_text(json.dumps(bank))
    np.save(tmp_path / "minilm-l6.npy", np.concatenate(X).astype(np.float32))
    episodes.load_bank.cache_clear()
    yield tmp_path
    episodes.load_bank.cache_clear()
    episodes._read_bank.cache_clear()


def test_bank_episodes_are_balanced_and_labelled_by_their_class(tiny_bank):
    bank = episodes.load_bank("minilm-l6", str(tiny_bank))
    rng = np.random.default_rng(1)
    x, y, C = episodes.sample_bank_episodes(bank, 16, 12, 8, torch.full((16,), 3), rng)
    assert x.shape == (16, 20, 24) and y.shape == (16, 20)
    for b in range(16):
        counts = torch.bincount(y[b, :12], minlength=int(C[b]))
        assert counts.max() - counts.min() <= 1 and 2 <= int(C[b]) <= 3
        # each label is the class whose pool the row came from: the tiny bank's classes are far apart,
        # so the support's class means label the queries
        means = torch.stack([x[b, :12][y[b, :12] == c].mean(0) for c in range(int(C[b]))])
        assert torch.equal(torch.cdist(x[b, 12:], means).argmin(1), y[b, 12:])
    only_b = episodes.load_bank("minilm-l6", str(tiny_bank), only=("src-b",))
    assert only_b.sources() == ["src-b"]
    with pytest.raises(ValueError, match="no task left"):
        episodes.load_bank("minilm-l6", str(tiny_bank), exclude=("src-a", "src-b"))


def test_bank_episodes_by_source_draw_every_source_equally_often(tiny_bank):
    bank = episodes.load_bank("minilm-l6", str(tiny_bank))
    texts = json.loads((tiny_bank / "bank.json").read_text())["texts"]
    n_b = sum(source == "src-b" for _, source in bank.tasks)
    assert 0 < n_b < len(bank.tasks) / 2  # src-a has two label sets, so more tasks

    def share_of_b(by_source):
        x, _, _ = episodes.sample_bank_episodes(bank, 400, 4, 2, torch.full((400,), 2),
                                                np.random.default_rng(2), by_source=by_source)
        rows = torch.cdist(x[:, 0], bank.vectors).argmin(1)  # each episode's first row, found in the bank
        return np.mean([texts[i].startswith("src-b") for i in rows.tolist()])

    assert abs(share_of_b(True) - 0.5) < 0.08
    assert abs(share_of_b(False) - n_b / len(bank.tasks)) < 0.08


def test_support_quota_balances_within_the_pools():
    assert list(episodes._support_quota(np.array([100, 100]), 7)) in ([3, 4], [4, 3])
    assert list(episodes._support_quota(np.array([10, 100]), 64)) == [10, 54]
    assert episodes._support_quota(np.array([10, 10, 10]), 40) is None


def test_bank_family_projects_through_the_inference_projection(tiny_bank, monkeypatch):
    from tart.head.ensemble import project_task

    monkeypatch.setenv("TART_CACHE_DIR", str(tiny_bank.parent))
    monkeypatch.setattr(episodes, "bank_dir", lambda: tiny_bank)
    raw = []
    fit = projection.fit_projection

    def spy(X, *args, **kwargs):
        raw.append(X)
        return fit(X, *args, **kwargs)

    monkeypatch.setattr(projection, "fit_projection", spy)
    s = dataclasses.replace(PriorSettings(), bank_embedders=("minilm-l6",), p_binary=0.5)
    b = sample_prior_batch(8, 16, 8, 32, 10, s, torch.Generator().manual_seed(0), family="bank")
    assert b.family == "bank" and b.x_context.shape == (8, 16, 32)
    # the targets are the real labels (one-hot), on the slots of the context's classes
    assert torch.all(b.p_query.max(-1).values == 1) and torch.all(b.p_query.argmax(-1) == b.y_query)
    assert torch.all(b.class_mask.gather(1, b.y_query))
    bank_x = np.load(tiny_bank / "minilm-l6.npy")
    label_sets = json.loads((tiny_bank / "bank.json").read_text())["label_sets"]
    bank_class = {r: (ls["name"], c) for ls in label_sets for c, rows in ls["classes"].items() for r in rows}
    for i in range(8):  # each task projected exactly as TartClassifier projects a user's support set
        fitted_on = raw[0][i].numpy()
        # what the projection was fitted on is the bank's own rows, as stored (not normalised, not rescaled)
        gap = np.abs(fitted_on[:, None] - bank_x[None]).max(-1)
        assert gap.min(1).max() < 1e-6
        context_rows = gap[:16].argmin(1)
        S_p, bank_p = project_task(fitted_on, bank_x, 32, s.shrinkage, s.standardize)
        assert torch.allclose(b.x_context[i], S_p[:16], atol=1e-4)
        # each query is a bank row projected by the same fit (not one of its own)
        gap = torch.cdist(b.x_query[i].double(), torch.as_tensor(bank_p).double())
        assert gap.min(1).values.max() < 1e-3
        query_rows = gap.argmin(1).tolist()
        # and every row keeps its own label: one slot per bank class, in the context and the queries alike
        slot = {}
        labels = b.y_context[i].tolist() + b.y_query[i].tolist()
        for row, y in zip(context_rows.tolist() + query_rows, labels):
            assert slot.setdefault(bank_class[row], y) == y, f"task {i}: row {row} is not labelled by its class"
        assert len(set(slot.values())) == len(slot) >= 2



def test_user_text_datasets_are_recorded_and_either_bank_or_dev():
    info = json.loads(user_text.MANIFEST.read_text())
    assert not reserved.reserved_names(*_names_and_origins(info))
    kinds = {d["kind"] for d in info["datasets"]}
    assert len(info["datasets"]) >= 6 and {"intents", "emotions", "questions", "spam messages"} <= kinds
    for d in info["datasets"]:
        assert d["role"] in ("bank", "dev") and d["licence"] and d["rows"] <= 5000
        assert all(o["repo"] and len(o["commit"]) == 40 and o["paths"] for o in d["origins"])
    from tart.evaluate.dev_suite import USER_TEXT_TASKS

    dev = {d["name"] for d in user_text.datasets("dev")}
    assert {t.split(":")[1] for t in USER_TEXT_TASKS} <= dev  # leave-one-source-out: dev sets never train
    assert not dev & {s.removeprefix("user-text/") for s in task_bank.LICENCES}


def test_reserved_texts_are_found_and_ordinary_texts_pass():
    assert reserved.reserved_texts(["Simplistic, silly and tedious.", "How would you say fly in Italian?",
                                    "It is a truth universally acknowledged, that a single man in possession of "
                                    "a good fortune, must be in want of a wife.",
                                    "ichthyosaur: any of several marine reptiles of the Mesozoic having a body like "
                                    "a porpoise with dorsal and tail fins and paddle-shaped limbs"]) == [
        "Simplistic, silly and tedious.", "How would you say fly in Italian?",
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want "
        "of a wife.", "ichthyosaur: any of several marine reptiles of the Mesozoic having a body like a porpoise "
        "with dorsal and tail fins and paddle-shaped limbs"]
    assert not reserved.reserved_texts(["Command-line tool to convert images between formats", "wake me up at 7am"])


def test_the_built_bank_and_dev_texts_hold_no_reserved_text():
    """Over the collected texts: the bank built in the user cache and the dev suite's user-text sets."""
    bank = episodes.bank_dir() / "bank.json"
    if not bank.is_file() or not (user_text.data_dir() / "snips.jsonl.gz").is_file():
        pytest.skip("no task bank or user-text datasets built here")
    texts = json.loads(bank.read_text())["texts"]
    texts += [t for d in user_text.datasets("dev") for pool in user_text.read(d["name"]).values() for t in pool]
    assert not reserved.reserved_texts(texts)


def test_user_text_tasks_get_their_share_and_classes_their_names():
    label_sets = [{"source": "user-text/intents", "name": "intents", "classes": {f"do_{i}": [i] for i in range(12)}},
                  {"source": "debian-packages", "name": "section", "classes": {f"s{i}": [i] for i in range(30)}}]
    tasks = task_bank.enumerate_tasks(label_sets, 100, user_share=0.4)
    assert sum(t["label_set"] == 0 for t in tasks) == 40 and len(tasks) == 100
    assert task_bank.class_name("debian-packages", "section", "admin") == "administration utilities"
    assert task_bank.class_name("man-pages", "section", "3pm") == "library functions, Perl modules"
    assert task_bank.class_name("user-text/trec", "trec", "HUM") == "person"  # the manifest's name for a code
    assert task_bank.class_name("user-text/hwu64", "hwu64", "play_music") == "play music"


@pytest.fixture
def named_bank(tiny_bank):
    """The tiny bank with a name per class: its class centre, so a name's place can be checked."""
    bank = json.loads((tiny_bank / "bank.json").read_text())
    X = np.load(tiny_bank / "minilm-l6.npy")
    bank["names"], centres = [], []
    for ls in bank["label_sets"]:
        ls["names"] = {}
        for c, rows in ls["classes"].items():
            ls["names"][c] = len(bank["names"])
            bank["names"].append(f"{ls['name']} {c}")
            centres.append(X[rows].mean(0))
    (tiny_bank / "bank.json").write_text(json.dumps(bank))
    np.save(tiny_bank / "minilm-l6-names.npy", np.stack(centres).astype(np.float32))
    yield tiny_bank


def test_bank_episodes_carry_each_class_name_in_its_class_row(named_bank):
    bank = episodes.load_bank("minilm-l6", str(named_bank))
    x, y, C, names = episodes.sample_bank_episodes(bank, 16, 12, 8, torch.full((16,), 3), np.random.default_rng(1),
                                                   with_names=True)
    assert names.shape == (16, int(C.max()), 24)
    for b in range(16):
        means = torch.stack([x[b][y[b] == c].mean(0) for c in range(int(C[b]))])
        # class c's name is its class centre: nearer to class c's rows than to any other class's
        assert torch.equal(torch.cdist(means, names[b, : int(C[b])]).argmin(1), torch.arange(int(C[b])))
        assert not names[b, int(C[b]):].any()
    old = episodes.load_bank("minilm-l6", str(named_bank), only=("src-b",))
    assert old.names is not None and len(old.name_ids) == len(old.tasks)


def test_an_old_bank_without_names_still_loads_and_refuses_names(tiny_bank):
    bank = episodes.load_bank("minilm-l6", str(tiny_bank))
    assert bank.names is None
    with pytest.raises(ValueError, match="no label names"):
        episodes.sample_bank_episodes(bank, 2, 8, 4, torch.full((2,), 2), np.random.default_rng(0), with_names=True)


def test_bank_family_gives_named_tasks_their_names(named_bank, monkeypatch):
    monkeypatch.setattr(episodes, "bank_dir", lambda: named_bank)
    s = dataclasses.replace(PriorSettings(), bank_embedders=("minilm-l6",), p_binary=0.5, p_names=1.0)
    b = sample_prior_batch(8, 16, 8, 16, 10, s, torch.Generator().manual_seed(0), family="bank")
    assert b.x_names is not None and b.x_names.shape == (8, 10, 16)
    # every class of a task is named (p_names = 1), in its slot, and no other slot
    assert torch.equal(b.names_mask, b.x_names.abs().sum(-1) > 0)
    assert torch.all(b.names_mask.sum(1) >= 2) and torch.all(b.class_mask >= b.names_mask)


def test_bank_share_measures_a_head_against_its_base_on_the_sources_named(named_bank, monkeypatch, tmp_path):
    from tart.evaluate.bank_share import measure
    from tart.head.model import TartConfig, TartReasoningModel

    monkeypatch.setattr(episodes, "bank_dir", lambda: named_bank)
    s = dataclasses.replace(PriorSettings(), bank_embedders=("minilm-l6",), p_binary=0.5)
    config = TartConfig(n_dims=16, n_embd=32, n_layer=2, n_head=2, max_examples=64, n_classes=10,
                        residual="nearest-mean", side_inputs=True)
    torch.manual_seed(0)
    TartReasoningModel(config).save_pretrained(tmp_path / "random")
    base_only = TartReasoningModel(config)
    torch.nn.init.zeros_(base_only.read_out.weight)  # no correction, gates at their start: the base itself
    base_only.save_pretrained(tmp_path / "base-only")
    heads = [str(tmp_path / "random"), str(tmp_path / "base-only")]
    report = measure(heads, ["src-b"], [8], names=True, batches=1, prior=s)
    assert report["sources"] == ["src-b"]
    random, same = report["rows"]
    assert same["share"] == 0 and same["acc"] == same["base"] and same["episodes"] == 64
    assert random["share"] != 0 and random["se"] > 0  # an untrained correction moves answers
    with pytest.raises(ValueError, match="no bank source"):
        measure(heads, ["src-c"], [8], names=True, batches=1, prior=s)


def test_zero_shot_bank_batches_read_only_names_and_unlabelled_points(named_bank, monkeypatch):
    monkeypatch.setattr(episodes, "bank_dir", lambda: named_bank)
    s = dataclasses.replace(PriorSettings(), bank_embedders=("minilm-l6",), p_names=1.0, names_once=True,
                            unlabeled_max=8, p_zero_shot=1.0)
    b = sample_prior_batch(8, 16, 8, 16, 10, s, torch.Generator().manual_seed(0), family="bank")
    assert b.x_context.shape == (8, 0, 16) and b.y_context.shape == (8, 0)
    assert torch.equal(b.class_mask, b.names_mask) and torch.all(b.class_mask.gather(1, b.y_query))
    for t in range(8):  # fitted on the task's names alone: they are centred
        assert b.x_names[t][b.names_mask[t]].mean(0).abs().max() < 1e-4
    fewshot = sample_prior_batch(8, 16, 8, 16, 10, dataclasses.replace(s, p_zero_shot=0.0),
                                 torch.Generator().manual_seed(0), family="bank")
    assert fewshot.x_context.shape == (8, 16, 16)
