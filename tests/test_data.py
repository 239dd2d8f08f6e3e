"""Bundled datasets, file loaders, their error messages, and balanced_split."""
import json
from collections import Counter

import pytest

from tart.data.datasets import DATASETS_DIR, list_datasets, load_dataset
from tart.data.labels import LabelledTexts, sorted_labels
from tart.data.splits import balanced_split

EXPECTED = {
    "wordnet-animal-food", "wordnet-act-state", "wordnet-artifact-person",
    "wordnet-plant-communication", "wordnet-6way", "fortunes-computers-politics",
    "fortunes-4way",
}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ bundled

def test_expected_datasets_are_bundled():
    assert EXPECTED <= set(list_datasets())


@pytest.mark.parametrize("name", list_datasets())
def test_bundled_dataset_loads(name):
    data = load_dataset(name)
    assert data.name == name
    assert len(data) == len(data.labels) > 0
    assert len(data.classes) >= 2
    assert all(isinstance(t, str) and t.strip() for t in data.texts)
    assert all(isinstance(label, str) for label in data.labels)


def test_index_matches_files():
    index = json.loads((DATASETS_DIR / "index.json").read_text(encoding="utf-8"))
    described = {d["name"]: d for d in index["datasets"]}
    assert set(described) == set(list_datasets())
    for name, info in described.items():
        data = load_dataset(name)
        assert len(data) == info["rows"]
        assert sorted(info["classes"]) == data.classes
        assert info["task"] == ("binary" if len(data.classes) == 2 else "multiclass")
        assert set(Counter(data.labels).values()) == {info["rows_per_class"]}
        assert info["source"]["package"] in (DATASETS_DIR / "LICENSES.md").read_text()


# ------------------------------------------------------------------ loaders

def test_csv_custom_columns_and_quoting(tmp_path):
    path = write(tmp_path / "d.csv",
                 'id,sentence,tag\n1,"hello, world",a\n2,"two\nlines ""quoted""",b\n3,x,1\n')
    data = load_dataset(path, text_column="sentence", label_column="tag")
    assert data.name == "d"
    assert data.texts == ["hello, world", 'two\nlines "quoted"', "x"]
    assert data.labels == ["a", "b", "1"]  # CSV labels stay strings
    assert data.classes == ["1", "a", "b"]


def test_jsonl_custom_columns_keeps_json_types(tmp_path):
    rows = [{"review": "great", "stars": 5}, {"review": "bad", "stars": 1},
            {"review": "fine", "stars": 5}]
    path = write(tmp_path / "r.jsonl", "\n".join(map(json.dumps, rows)) + "\n\n")
    data = load_dataset(str(path), text_column="review", label_column="stars")
    assert data.texts == ["great", "bad", "fine"]
    assert data.labels == [5, 1, 5]
    assert data.classes == [1, 5]


def test_sorted_labels_one_order_for_any_labels():
    assert sorted_labels(["b", "a", "b", "1"]) == ["1", "a", "b"]
    assert sorted_labels(["a", 2, 1, "a"]) == [1, 2, "a"]  # mixed types: by type name, then value
    assert sorted_labels([("t", "x"), 0, ("t", 1)]) == [("t", "x"), 0, ("t", 1)]  # unorderable: as first seen


def test_json_list_and_json_lines_under_json_name(tmp_path):
    rows = [{"text": "a", "label": True}, {"text": "b", "label": False}]
    as_list = load_dataset(write(tmp_path / "l.json", json.dumps(rows)))
    as_lines = load_dataset(write(tmp_path / "m.json", "\n".join(map(json.dumps, rows))))
    assert as_list.labels == as_lines.labels == [True, False]


# ------------------------------------------------------------------ errors

def test_unknown_dataset_name_lists_known_ones():
    with pytest.raises(ValueError, match="no-such-set") as err:
        load_dataset("no-such-set")
    assert "wordnet-animal-food" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        load_dataset(tmp_path / "nothere.csv")


def test_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"\.txt"):
        load_dataset(write(tmp_path / "d.txt", "text,label\na,b\n"))


def test_directory(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("suffix, content", [
    (".csv", "sentence,tag\nhi,a\nho,b\n"),
    (".jsonl", '{"sentence": "hi", "tag": "a"}\n{"sentence": "ho", "tag": "b"}\n'),
])
def test_missing_column_names_the_columns_found(tmp_path, suffix, content):
    path = write(tmp_path / f"d{suffix}", content)
    with pytest.raises(ValueError, match="'text'") as err:
        load_dataset(path)
    assert "sentence" in str(err.value) and "tag" in str(err.value)
    with pytest.raises(ValueError, match="'label'"):
        load_dataset(path, text_column="sentence")


@pytest.mark.parametrize("name, content", [
    ("empty.csv", ""), ("header.csv", "text,label\n"),
    ("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("empty.json", ""), ("list.json", "[]"),
])
def test_empty_file(tmp_path, name, content):
    with pytest.raises(ValueError, match="empty"):
        load_dataset(write(tmp_path / name, content))


def test_single_label(tmp_path):
    with pytest.raises(ValueError, match="at least 2 distinct labels.*'only'"):
        load_dataset(write(tmp_path / "d.csv", "text,label\na,only\nb,only\n"))


def test_empty_text_names_the_line(tmp_path):
    # the record on line 2 spans two lines, so the empty text is on line 4
    path = write(tmp_path / "d.csv", 'text,label\n"multi\nline",a\n"  ",b\nc,a\n')
    with pytest.raises(ValueError, match="line 4: empty text"):
        load_dataset(path)
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "", "label": 2}\n')
    with pytest.raises(ValueError, match="line 2: empty text"):
        load_dataset(path)
    # zero-width spaces and a soft hyphen: not whitespace to str.strip(), and no token to a tokenizer
    path = write(tmp_path / "z.jsonl", '{"text": "a", "label": 1}\n{"text": "\\u200b\\u00ad ", "label": 2}\n')
    with pytest.raises(ValueError, match="line 2: empty text .*invisible"):
        load_dataset(path)


def test_examples_that_are_not_utf8_or_have_an_unclosed_quote_name_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\na,x\ncaf\xe9,y\n")
    with pytest.raises(ValueError, match=r"d.csv line 3: not UTF-8 text \(byte 0xe9 at column 4\)"):
        load_dataset(path)
    path = write(tmp_path / "q.csv", 'text,label\na,x\n"b,y\nc,x\nd,y\n')
    with pytest.raises(ValueError, match="q.csv line 3: malformed CSV .*never closed"):
        load_dataset(path)


def test_malformed_json_line(tmp_path):
    path = write(tmp_path / "d.jsonl",
                 '{"text": "a", "label": 1}\n{"text": "b", "label": 2}\n{"text": "c", label}\n')
    with pytest.raises(ValueError, match="d.jsonl line 3: malformed JSON"):
        load_dataset(path)
    with pytest.raises(ValueError, match="line 2: expected a JSON object"):
        load_dataset(write(tmp_path / "e.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n'))


@pytest.mark.parametrize("label", [None, [1], {"a": 1}, 1.5, ""])
def test_bad_json_label(tmp_path, label):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": label}]
    path = write(tmp_path / "d.jsonl", "\n".join(map(json.dumps, rows)))
    with pytest.raises(ValueError, match="line 2: label"):
        load_dataset(path)


def test_csv_row_with_too_many_fields(tmp_path):
    with pytest.raises(ValueError, match="line 3: 3 fields"):
        load_dataset(write(tmp_path / "d.csv", "text,label\na,x\nb,y,z\n"))


# ------------------------------------------------------------------ balanced_split

def toy(n_per_class=(10, 10, 10)):
    texts, labels = [], []
    for c, n in zip("abc", n_per_class):
        texts += [f"{c}{i}" for i in range(n)]
        labels += [c] * n
    return LabelledTexts("toy", texts, labels)


def test_split_is_balanced_and_disjoint():
    data = load_dataset("wordnet-6way")
    support, test = balanced_split(data, k=14, seed=3)
    counts = Counter(support.labels)
    assert sum(counts.values()) == 14 and set(counts) == set(data.classes)
    assert sorted(counts.values()) == [2, 2, 2, 2, 3, 3]
    assert not set(support.texts) & set(test.texts)
    assert len(support) + len(test) == len(data)


def test_split_is_seeded():
    data = toy()
    a = balanced_split(data, k=7, seed=0, test_size=5)
    b = balanced_split(data, k=7, seed=0, test_size=5)
    c = balanced_split(data, k=7, seed=1, test_size=5)
    assert a == b
    assert a != c
    assert len(a[1]) == 5 and not set(a[0].texts) & set(a[1].texts)


def test_split_interleaves_classes():
    support, _ = balanced_split(toy((50, 50, 50)), k=30, seed=0)
    assert support.labels != sorted(support.labels)


def test_split_errors():
    with pytest.raises(ValueError, match="class 'c' has 2 examples"):
        balanced_split(toy((10, 10, 2)), k=9, seed=0)
    with pytest.raises(ValueError, match="k=2"):
        balanced_split(toy(), k=2, seed=0)
    with pytest.raises(ValueError, match="test_size=100"):
        balanced_split(toy(), k=6, seed=0, test_size=100)
