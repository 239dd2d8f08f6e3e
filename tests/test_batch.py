"""`tart classify` on a corpus (tart.corpus.reader, tart.corpus.job): formats, chunking, resume after SIGKILL, bad input."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tart.cli import main
from tart.corpus.job import TaskSpec, classify_corpus
from tart.corpus.output import journal_path

EXAMPLES = [("a cat sleeping on the sofa", "animal"), ("a dog barking at the mailman", "animal"),
            ("a cow grazing in the meadow", "animal"), ("fresh bread from the oven", "food"),
            ("a bowl of tomato soup", "food"), ("a plate of spaghetti", "food")]
WORDS = ["a horse", "cheese", "a goat", "rice pudding", "a sparrow", "apple pie", "a lizard", "noodles"]
EMBEDDER = "minilm-l6"


def corpus_texts(n):
    return [f"{WORDS[i % len(WORDS)]} number {i}" for i in range(n)]


@pytest.fixture(scope="module")
def spec():
    return TaskSpec.from_examples([t for t, _ in EXAMPLES], [y for _, y in EXAMPLES], embedder=EMBEDDER)


@pytest.fixture(scope="module")
def labeller(spec):
    return spec.load()


@pytest.fixture()
def examples_csv(tmp_path):
    path = tmp_path / "examples.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in EXAMPLES))
    return path


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def same_rows(a, b):
    """Same ids and labels in the same order; scores equal to float noise (chunks batch differently)."""
    return [(r["id"], r["label"]) for r in a] == [(r["id"], r["label"]) for r in b] and np.allclose(
        [list(r["scores"].values()) for r in a], [list(r["scores"].values()) for r in b], atol=1e-5)


def test_chunks_give_the_classifiers_and_the_services_answers(spec, labeller, tmp_path):
    from tart.classifier import TartClassifier
    from tart.serving.cost import QUERY_BATCH

    texts = corpus_texts(40)
    (tmp_path / "c.txt").write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    stats = classify_corpus(spec, str(tmp_path / "c.txt"), str(out), chunk_size=7, labeller=labeller)
    rows = read_jsonl(out)
    assert stats["texts"] == 40 and [r["id"] for r in rows] == list(range(1, 41))  # plain text: line numbers
    assert not journal_path(out).exists()
    # the library in one call, fitted on the examples' texts
    clf = TartClassifier(embedder=EMBEDDER).fit([t for t, _ in EXAMPLES], [y for _, y in EXAMPLES])
    proba = clf.predict_proba(texts)
    assert [r["label"] for r in rows] == clf.predict(texts).tolist()
    assert np.allclose([[r["scores"][c] for c in ("animal", "food")] for r in rows], proba, atol=1e-5)
    # the classifier as the service fits a task (serving.service.Tart._classifier), on the same vectors
    served = TartClassifier(head=clf.head_, embedder=None, n_permutations=4, random_state=0,
                            query_batch_size=QUERY_BATCH).fit(spec.support, spec.labels)
    assert [r["label"] for r in rows] == served.predict(labeller.embedder.embed(texts)).tolist()


def test_every_format_gives_the_same_rows(labeller, spec, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts = corpus_texts(12)
    ids = [f"doc-{i}" for i in range(12)]
    (tmp_path / "c.csv").write_text("doc,body\n" + "".join(f'{i},"{t}"\n' for i, t in zip(ids, texts)))
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"doc": i, "body": t}) + "\n" for i, t in zip(ids, texts)))
    pq.write_table(pa.table({"doc": ids, "body": texts}), tmp_path / "c.parquet")
    results = {}
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"{fmt}.jsonl"
        classify_corpus(spec, str(tmp_path / f"c.{fmt}"), str(out), text_column="body", id_column="doc",
                        chunk_size=5, labeller=labeller)
        results[fmt] = read_jsonl(out)
    assert results["csv"] == results["jsonl"] == results["parquet"]
    assert [r["id"] for r in results["csv"]] == ids
    out = tmp_path / "out.parquet"
    classify_corpus(spec, str(tmp_path / "c.csv"), str(out), text_column="body", id_column="doc", labeller=labeller)
    table = pq.read_table(out).to_pylist()  # another chunking: the same labels, scores to float noise
    assert [(r["id"], r["label"]) for r in table] == [(r["id"], r["label"]) for r in results["csv"]]
    assert np.allclose([r["scores"]["food"] for r in table], [r["scores"]["food"] for r in results["csv"]], atol=1e-5)


def test_sigkill_half_way_then_resume_gives_one_row_per_id(examples_csv, tmp_path, labeller, spec):
    n = 240
    texts = corpus_texts(n)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "tart.cli", "classify", "--examples", str(examples_csv), "--texts", str(corpus),
           "--embedder", EMBEDDER, "--output", str(out), "--chunk-size", "8", "--unlabeled-sample", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = journal_path(out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= n // 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed half-way"
    assert not out.exists()  # an unfinished run is only ever the marked journal
    done_before = journal.read_bytes().count(b"\n")
    assert n // 4 <= done_before < n
    assert main(cmd[3:] + ["--resume"]) == 0  # resumed in this process: the same command, faster to start
    rows = read_jsonl(out)
    assert sorted(r["id"] for r in rows) == list(range(1, n + 1))  # every line once: none twice, none lost
    assert not journal.exists()
    # and the same labels as one uninterrupted run
    whole = tmp_path / "whole.jsonl"
    classify_corpus(spec, str(corpus), str(whole), labeller=labeller)
    expected = {r["id"]: r["label"] for r in read_jsonl(whole)}
    assert {r["id"]: r["label"] for r in rows} == expected


def test_cli_reads_a_sample_of_the_corpus_as_the_library_reads_unlabelled_texts(examples_csv, tmp_path, capsys):
    from tart.classifier import TartClassifier
    from tart.corpus.reader import check_corpus

    texts = corpus_texts(90)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(texts) + "\n")
    n, sample = check_corpus(str(corpus), sample=64)
    assert n == 90 and len(sample) == 64 and len(set(sample)) == 64 and set(sample) <= set(texts)
    assert check_corpus(str(corpus), sample=64)[1] == sample  # seeded: a resumed run reads the same pool
    assert main(["classify", "--examples", str(examples_csv), "--texts", str(corpus), "--embedder", EMBEDDER]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    clf = TartClassifier(embedder=EMBEDDER).fit([t for t, _ in EXAMPLES], [y for _, y in EXAMPLES], unlabeled=sample)
    proba = clf.predict_proba(texts)
    assert np.allclose([[r["scores"][c] for c in clf.classes_] for r in rows], proba, atol=1e-4)  # printed to 4 places


def test_a_torn_last_line_is_dropped_and_labelled_again(spec, labeller, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_texts(10)) + "\n")
    whole = tmp_path / "whole.jsonl"
    classify_corpus(spec, str(corpus), str(whole), labeller=labeller)
    lines = whole.read_text().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    journal_path(out).write_text("".join(lines[:4]) + lines[4][:20])  # killed in the middle of a write
    stats = classify_corpus(spec, str(corpus), str(out), resume=True, labeller=labeller)
    assert stats["resumed_from"] == 4 and stats["texts"] == 6
    assert same_rows(read_jsonl(out), read_jsonl(whole))
    # a finished output resumed: nothing to redo; without --resume it is never overwritten
    assert classify_corpus(spec, str(corpus), str(out), resume=True, labeller=labeller)["texts"] == 0
    with pytest.raises(FileExistsError, match="--resume"):
        classify_corpus(spec, str(corpus), str(out), labeller=labeller)


@pytest.mark.parametrize("name, content, message", [
    ("c.csv", "id,body\n1,a cat\n", "column 'text' not found; columns found: id, body"),
    ("c.jsonl", '{"text": "a cat"}\n{"body": "a dog"}\n', "c.jsonl line 2: column 'text' not found"),
    ("c.csv", "text\na cat\n\"  \"\n", "c.csv line 3: empty text in column 'text'"),
    ("c.jsonl", '{"text": "a cat"}\n{"text": 3}\n', "c.jsonl line 2: text in column 'text' must be a string"),
    ("c.jsonl", '{"text": "a cat"}\n{"text": "a do\n', "c.jsonl line 2: malformed JSON"),
    ("c.csv", "text\na cat\nb,c\n", "c.csv line 3: 2 fields, but the header has 1"),
    # an unclosed quote: before, the csv module read the rest of the file into one field and dropped every
    # later row, exit 0 (issue 28, item 1)
    ("c.csv", 'id,text\n1,a goal\n2,"an unclosed quote\n3,bread\n4,a server\n',
     "c.csv line 3: malformed CSV (a quote opened in this record is never closed)"),
    ("c.csv", 'id,text\n1,a goal\n2,"an unclosed quote\n3,"bread, warm"\n', "c.csv line 3: malformed CSV"),
    ("c.json", "[]", "write one object per line as .jsonl"),
    # zero-width spaces are not whitespace to str.strip(), and a tokenizer drops them: 0 tokens (item 7)
    ("c.csv", "text\na cat\n\u200b\u200b\ufeff\n", "c.csv line 3: empty text in column 'text' (nothing but"),
])
def test_bad_input_names_the_row_or_column(spec, labeller, tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=re.escape(message)):
        classify_corpus(spec, str(tmp_path / name), str(out), labeller=labeller)
    assert not out.exists() and not journal_path(out).exists()  # nothing written: nothing left behind


def test_a_bad_row_mid_corpus_leaves_the_marked_journal_and_resume_finishes(spec, labeller, tmp_path):
    texts = corpus_texts(12)
    corpus = tmp_path / "c.jsonl"
    rows = [json.dumps({"id": f"r{i}", "text": t}) for i, t in enumerate(texts)]
    corpus.write_text("\n".join(rows[:9] + ['{"id": "r9", "text": ""}'] + rows[10:]) + "\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=r"c.jsonl line 10: empty text .* 8 rows labelled so far are in .*partial"):
        classify_corpus(spec, str(corpus), str(out), id_column="id", chunk_size=4, labeller=labeller)
    assert not out.exists() and len(read_jsonl(journal_path(out))) == 8
    corpus.write_text("\n".join(rows) + "\n")  # fixed
    classify_corpus(spec, str(corpus), str(out), id_column="id", chunk_size=4, resume=True, labeller=labeller)
    assert [r["id"] for r in read_jsonl(out)] == [f"r{i}" for i in range(12)]


def test_duplicate_ids_are_refused(spec, labeller, tmp_path):
    (tmp_path / "c.csv").write_text("id,text\na,one\nb,two\na,three\n")
    with pytest.raises(ValueError, match="c.csv line 4: id 'a' in column 'id' was already used"):
        classify_corpus(spec, str(tmp_path / "c.csv"), str(tmp_path / "o.jsonl"), id_column="id", labeller=labeller)


def test_cli_task_from_the_store_and_unknown_task(spec, labeller, examples_csv, tmp_path, capsys):
    from tart.serving.store import TaskStore

    store = TaskStore(tmp_path / "tasks.sqlite3")
    task = store.create("animal-food", [t for t, _ in EXAMPLES], [y for _, y in EXAMPLES], spec.support, EMBEDDER)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_texts(6)) + "\n")
    common = ["classify", "--texts", str(corpus), "--embedder", EMBEDDER]
    assert main(common + ["--task", task.id, "--store", str(store.path)]) == 0
    by_task = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(common + ["--examples", str(examples_csv)]) == 0
    by_examples = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in by_task] == [r["label"] for r in by_examples] and len(by_task) == 6
    assert by_task[0]["text"] == corpus_texts(1)[0]
    assert main(common + ["--task", "nope", "--store", str(store.path), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "no task with id 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists() and not journal_path(tmp_path / "o.jsonl").exists()


# -- what a run may touch, and what fails before a model loads (issue 28, items 2 and 5-7) ----------------

NO_MODEL = "/no/such/embedder"  # loading it would fail: an error about anything else came before any load


def cli_error(capsys, *args, texts=None, examples=None):
    """Run `tart classify` with an embedder that cannot load; the one-line error it prints."""
    argv = ["classify", "--examples", str(examples), "--embedder", NO_MODEL, *map(str, args)]
    assert main(argv + (["--texts", str(texts)] if texts else [])) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and NO_MODEL not in err
    return err


def test_resume_leaves_a_file_that_is_not_ours_as_it_is(spec, labeller, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_texts(3)) + "\n")
    # a user's notes, and JSON lines that look close (an id, but not our result rows)
    for content in ["my notes\n", '{"id": 1}\n', '{"id": 1, "label": "a", "scores": {"a": 1.0}}\n{"id": 2']:
        out = tmp_path / "notes.jsonl"
        out.write_text(content)
        with pytest.raises(ValueError, match="notes.jsonl line (1|2): not a result line; .* left as it is"):
            classify_corpus(spec, str(corpus), str(out), resume=True, labeller=labeller)
        assert out.read_text() == content and not journal_path(out).exists()  # before: renamed to .partial
    # a journal that is not ours is refused too, and left as it is
    out.unlink()
    journal_path(out).write_text("my notes\n")
    with pytest.raises(ValueError, match="notes.jsonl.partial line 1: not a result line"):
        classify_corpus(spec, str(corpus), str(out), resume=True, labeller=labeller)
    assert journal_path(out).read_text() == "my notes\n"


def test_resume_leaves_a_parquet_file_that_is_not_ours_as_it_is(spec, labeller, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_texts(3)) + "\n")
    out = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"id": ["1"], "price": [3.5]}), out)
    before = out.read_bytes()
    with pytest.raises(ValueError, match="mine.parquet: not a tart classify output"):
        classify_corpus(spec, str(corpus), str(out), resume=True, labeller=labeller)
    assert out.read_bytes() == before and not journal_path(out).exists()


@pytest.mark.parametrize("resume", [False, True])
def test_an_output_that_is_a_directory_is_refused_untouched(examples_csv, tmp_path, capsys, resume):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a cat\n")
    folder = tmp_path / "out.jsonl"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    err = cli_error(capsys, "--output", folder, *(["--resume"] if resume else []), texts=corpus,
                    examples=examples_csv)
    assert err.endswith(f"--output {folder}: {folder} is a directory; name a .jsonl or .parquet file")
    assert [p.name for p in folder.iterdir()] == ["keep.txt"] and not journal_path(folder).exists()


def unwritable_folder(tmp_path) -> Path:
    """A folder this process really cannot write in: a read-only one, or, as root (whom permissions do not
    stop), /sys, which is read-only on Linux."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            (candidate / "probe").touch()
            (candidate / "probe").unlink()
        except OSError:
            return candidate
    pytest.skip("no folder here refuses writes")


def test_an_output_folder_that_cannot_be_written_fails_before_the_model_loads(examples_csv, tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a cat\n")
    folder = unwritable_folder(tmp_path)
    err = cli_error(capsys, "--output", folder / "o.jsonl", texts=corpus, examples=examples_csv)
    assert err.endswith(f"--output {folder / 'o.jsonl'}: cannot write in folder {folder} (Permission denied)")
    err = cli_error(capsys, "--output", tmp_path / "nope" / "o.jsonl", texts=corpus, examples=examples_csv)
    assert err.endswith(f"folder {tmp_path / 'nope'} does not exist")


@pytest.mark.parametrize("name, content, message", [
    ("e.jsonl", b"", "e.jsonl: no texts to classify"),
    ("e.txt", b"\n  \n", "e.txt: no texts to classify"),
    ("h.csv", b"id,text\n", "h.csv: no texts to classify"),
    ("l.csv", b"text\na cat\ncaf\xe9 au lait\n", "l.csv line 3: not UTF-8 text (byte 0xe9 at column 4)"),
    ("l.jsonl", b'{"text": "a cat"}\n{"text": "caf\xe9"}\n', "l.jsonl line 2: not UTF-8 text (byte 0xe9 at"),
    ("l.txt", b"a cat\n\x89PNG\r\n", "l.txt line 2: not UTF-8 text (byte 0x89 at column 1)"),
    # late in the file: before, hundreds of rows were labelled before the error (and a quote swallowed rows)
    ("q.csv", b"id,text\n" + b"".join(b"%d,a cat\n" % i for i in range(2000)) + b'2000,"open\n2001,x\n',
     "q.csv line 2002: malformed CSV (a quote opened in this record is never closed)"),
])
def test_bad_or_empty_input_fails_before_the_model_loads(examples_csv, tmp_path, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    err = cli_error(capsys, "--output", tmp_path / "o.jsonl", texts=tmp_path / name, examples=examples_csv)
    assert message in err
    assert not (tmp_path / "o.jsonl").exists() and not journal_path(tmp_path / "o.jsonl").exists()


def test_stdin_that_is_not_utf8_names_its_line(spec, labeller, monkeypatch, tmp_path):
    import io

    # a real text stream over bytes, as a pipe gives (its own decoding is not used: the bytes are read)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a cat\ncaf\xe9\n"), errors="surrogateescape"))
    with pytest.raises(ValueError, match=r"standard input line 2: not UTF-8 text \(byte 0xe9 at column 4\)"):
        classify_corpus(spec, "-", None, labeller=labeller)


def test_a_huge_csv_field_is_read_as_the_same_text_in_jsonl_is(spec, labeller, tmp_path):
    text = "a sleepy cat " * 20_000  # 260k characters: past the csv module's default limit of 128 KiB
    (tmp_path / "c.csv").write_text(f"text\n{text}\na dog\n")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": text}) + "\n" + json.dumps({"text": "a dog"}) + "\n")
    rows = {}
    for name in ("c.csv", "c.jsonl"):
        out = tmp_path / f"{name}.out.jsonl"
        with pytest.warns(UserWarning, match="1 of 2 texts were longer than max_length"):  # said, then cut
            classify_corpus(spec, str(tmp_path / name), str(out), labeller=labeller)
        rows[name] = read_jsonl(out)
    assert len(rows["c.csv"]) == 2
    assert np.allclose(rows["c.csv"][0]["scores"]["animal"], rows["c.jsonl"][0]["scores"]["animal"], atol=1e-5)


# ---- the journal and the output (tart.corpus.output), without a model ----

def _result_line(i, label="animal", p=0.75):
    return json.dumps({"id": i, "label": label, "scores": {"animal": p, "food": 1 - p}}) + "\n"


def test_result_rows_label_is_the_most_likely_class():
    from tart.corpus.output import result_rows

    rows = result_rows(["a", 7], np.array([[0.2, 0.8], [0.9, 0.1]]), [0, "food"])
    assert rows == [{"id": "a", "label": "food", "scores": {"0": 0.2, "food": 0.8}},
                    {"id": 7, "label": 0, "scores": {"0": 0.9, "food": 0.1}}]


def test_a_journal_keeps_its_whole_lines_and_refuses_what_is_not_ours(tmp_path):
    from tart.corpus.output import read_journal, scan_journal

    journal = tmp_path / "out.jsonl.partial"
    whole = _result_line(1) + _result_line("b") + _result_line(3)
    journal.write_text(whole + _result_line(4)[:15])  # a write cut by a kill
    assert scan_journal(journal) == ({"1", "b", "3"}, len(whole.encode()))  # reads only
    assert journal.read_text().endswith(_result_line(4)[:15])
    assert read_journal(journal) == {"1", "b", "3"}
    assert journal.read_text() == whole  # the torn line is cut off the file
    assert read_journal(journal) == {"1", "b", "3"} and journal.read_text() == whole  # nothing more to cut
    # a finished output is written whole: its last line, without a newline, is a row
    finished = tmp_path / "out.jsonl"
    finished.write_text(whole + _result_line(4).rstrip("\n"))
    assert scan_journal(finished, finished=True)[0] == {"1", "b", "3", "4"}
    for n, bad in enumerate(['{"id": 1, "label": "a"}', '[1, 2]', '{"id": 1, "label": "a", "scores": [1]}',
                             '{"id": 1, "label": "a", "scores": {}, "extra": 0}', "not json"]):
        path = tmp_path / f"bad{n}.partial"
        path.write_text(_result_line(0) + bad + "\n" + _result_line(2))
        with pytest.raises(ValueError, match=f"bad{n}.partial line 2: not a result line"):
            read_journal(path)
        assert path.read_text() == _result_line(0) + bad + "\n" + _result_line(2)  # left as it is


def test_check_output_refuses_before_anything_runs(tmp_path):
    from tart.corpus.output import check_output

    check_output(None, resume=False)  # printed to stdout: nothing to check
    with pytest.raises(ValueError, match="--resume needs --output"):
        check_output(None, resume=True)
    with pytest.raises(ValueError, match="unknown suffix"):
        check_output(str(tmp_path / "out.csv"), resume=False)
    with pytest.raises(ValueError, match="does not exist"):
        check_output(str(tmp_path / "nowhere" / "out.jsonl"), resume=False)
    check_output(str(tmp_path / "OUT.JSONL"), resume=False)  # suffixes in any case
    check_output(str(tmp_path / "out.jsonl"), resume=True)  # nothing yet: a resume starts afresh
    out = tmp_path / "out.jsonl"
    out.write_text(_result_line(1))
    with pytest.raises(FileExistsError, match="a file of that name"):
        check_output(str(out), resume=False)
    check_output(str(out), resume=True)  # a finished output of ours
    out.unlink()
    (tmp_path / "out.jsonl.partial").write_text(_result_line(1) + '{"torn')
    with pytest.raises(FileExistsError, match="an unfinished run's results"):
        check_output(str(out), resume=False)
    check_output(str(out), resume=True)
    (tmp_path / "out.jsonl.partial").write_text("id,label\n1,a\n")
    with pytest.raises(ValueError, match="not a result line"):
        check_output(str(out), resume=True)
    (tmp_path / "other.jsonl").write_text("id,label\n1,a")
    with pytest.raises(ValueError, match="line 1: not a result line"):
        check_output(str(tmp_path / "other.jsonl"), resume=True)
    (tmp_path / "other.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="not a tart classify output"):
        check_output(str(tmp_path / "other.parquet"), resume=True)
    assert (tmp_path / "other.parquet").read_text() == "not parquet"


def test_a_parquet_output_without_pyarrow_fails_before_the_run(tmp_path, monkeypatch):
    from tart.corpus import output

    def no_pyarrow():
        raise ValueError("Parquet needs pyarrow")

    monkeypatch.setattr(output, "import_pyarrow", no_pyarrow)
    for name in ("out.parquet", "OUT.PARQUET"):
        with pytest.raises(ValueError, match="Parquet needs pyarrow"):
            output.check_output(str(tmp_path / name), resume=False)
    output.check_output(str(tmp_path / "out.jsonl"), resume=False)  # JSON lines need no pyarrow


def test_finish_and_resume_round_trip_in_both_formats(tmp_path):
    """A journal becomes the output (renamed, or converted to Parquet and removed); resuming a finished
    output turns it back into the journal with the same rows, to which new rows are added."""
    pq = pytest.importorskip("pyarrow.parquet")
    from tart.corpus.output import finish, journal_path, resume_from

    lines = [_result_line(i, label, p) for i, label, p in [(1, "animal", 0.75), ("x", "food", 0.25)]]
    for suffix in (".jsonl", ".parquet"):
        out = tmp_path / f"out{suffix}"
        journal = journal_path(out)
        journal.write_text("".join(lines))
        assert resume_from(out, journal, resume=False) == set() and journal.exists()  # no resume: no reading
        finish(journal, out, ["animal", "food"])
        assert out.exists() and not journal.exists()
        if suffix == ".parquet":
            table = pq.read_table(out)
            assert table.column_names == ["id", "label", "scores"]
            assert table.to_pylist() == [{"id": "1", "label": "animal", "scores": {"animal": 0.75, "food": 0.25}},
                                         {"id": "x", "label": "food", "scores": {"animal": 0.25, "food": 0.75}}]
        else:
            assert out.read_text() == "".join(lines)
        assert resume_from(out, journal, resume=True) == {"1", "x"}
        assert not out.exists() and [json.loads(line)["scores"] for line in journal.read_text().splitlines()] == \
            [json.loads(line)["scores"] for line in lines]
        assert resume_from(tmp_path / f"none{suffix}", journal_path(tmp_path / f"none{suffix}"), resume=True) == set()
    # Parquet labels keep their type: integers stay integers; mixed types are written as strings
    for classes, label, expected in [([0, 1], 1, 1), ([0, "food"], 0, "0"), ([0, "food"], "food", "food")]:
        out = tmp_path / "typed.parquet"
        journal_path(out).write_text(json.dumps({"id": 5, "label": label, "scores": {str(c): 0.5 for c in classes}}))
        finish(journal_path(out), out, classes)
        assert pq.read_table(out).to_pylist()[0]["label"] == expected
        out.unlink()
    empty = tmp_path / "empty.parquet"
    journal_path(empty).write_text("")
    finish(journal_path(empty), empty, [0, 1])  # nothing labelled: the schema, no rows
    table = pq.read_table(empty)
    assert table.num_rows == 0 and table.schema.field("scores").type.num_fields == 2
