"""How often `tart classify` reads a corpus (issue 27): once to check every row, count them and sample the
unlabelled pool (before any model loads), once to label; never a third time to count rows."""
import json

from tart.cli import main


def test_the_corpus_is_read_twice_check_and_label(tmp_path, capsys, monkeypatch):
    import tart.corpus.job as job
    import tart.corpus.reader as reader

    reads = []
    rows = reader._rows
    monkeypatch.setattr(reader, "_rows", lambda path, *a: reads.append(path) or rows(path, *a))
    monkeypatch.setattr(job, "count_rows", lambda path: (_ for _ in ()).throw(AssertionError("counted again")))
    examples = tmp_path / "examples.csv"
    examples.write_text("text,label\na cat on the sofa,animal\na dog in the park,animal\n"
                        "fresh bread,food\ntomato soup,food\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                              for i, t in enumerate(["a horse", "an apple pie", "a parrot"])))
    out = tmp_path / "labels.jsonl"
    assert main(["classify", "--examples", str(examples), "--texts", str(corpus), "--id-column", "id",
                 "--output", str(out)]) == 0, capsys.readouterr().err
    assert reads == [str(corpus), str(corpus)]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [0, 1, 2]
