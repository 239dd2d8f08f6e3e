"""`tart classify --engine ray` on a local 2-CPU Ray: the same labels as the local engine (slow: `-m slow`)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")

from tart.corpus.job import TaskSpec, classify_corpus  # noqa: E402
from tart.corpus.ray_engine import _whole_parts, check_ray_job, classify_corpus_ray  # noqa: E402

from tart.cli import main  # noqa: E402

from tests.test_batch import EMBEDDER, EXAMPLES, corpus_texts  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow  # ~80 s on the 2-core VM: Ray's start, two actors each loading the embedder and head
@pytest.mark.timeout(300)
def test_ray_labels_equal_the_local_engines(ray_local, tmp_path):
    import pyarrow.parquet as pq

    spec = TaskSpec.from_examples([t for t, _ in EXAMPLES], [y for _, y in EXAMPLES], embedder=EMBEDDER)
    texts = corpus_texts(60)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    local = tmp_path / "local.jsonl"
    classify_corpus(spec, str(corpus), str(local), id_column="id", chunk_size=16)
    out = tmp_path / "ray.parquet"
    stats = classify_corpus_ray(spec, str(corpus), str(out), id_column="id", chunk_size=16, actors=2)
    assert stats["actors"] == 2 and out.is_dir() and not (tmp_path / "ray.parquet.partial").exists()
    by_ray = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    by_local = {r["id"]: r for r in map(json.loads, local.read_text().splitlines())}
    assert sorted(by_ray) == sorted(by_local) and len(by_ray) == 60
    assert {i: r["label"] for i, r in by_ray.items()} == {i: r["label"] for i, r in by_local.items()}
    assert np.allclose([by_ray[i]["scores"]["food"] for i in by_local], [r["scores"]["food"] for r in by_local.values()],
                       atol=1e-5)
    # an empty text is an error naming the row and the column; the unfinished output keeps its .partial name
    corpus.write_text(json.dumps({"id": "a", "text": "a cat"}) + "\n" + json.dumps({"id": "b", "text": " "}) + "\n")
    with pytest.raises(ValueError, match="row with id 'b': empty text in column 'text'"):
        classify_corpus_ray(spec, str(corpus), str(tmp_path / "bad.parquet"), id_column="id", actors=1)
    assert not (tmp_path / "bad.parquet").exists()


@pytest.mark.slow  # Ray's start and one actor loading the embedder and head
@pytest.mark.timeout(300)
def test_a_parquet_corpus_with_the_default_actors_finishes(ray_local, tmp_path):
    """With one actor per CPU the Parquet read's file listing found no CPU and waited for ever (issue 28,
    item 4): the default pool leaves one CPU to Ray Data's own tasks."""
    import pyarrow.parquet as pq

    spec = TaskSpec.from_examples([t for t, _ in EXAMPLES], [y for _, y in EXAMPLES], embedder=EMBEDDER)
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": list(range(40)), "text": corpus_texts(40)}), corpus)
    stats = classify_corpus_ray(spec, str(corpus), str(tmp_path / "out.parquet"), id_column="id", chunk_size=16)
    assert stats["actors"] == 1  # 2 CPUs: one actor, one CPU for reading and writing
    assert sorted(int(r["id"]) for r in pq.read_table(tmp_path / "out.parquet").to_pylist()) == list(range(40))


@pytest.mark.slow  # two Ray starts (the killed job's, this process's), the embedder loaded three times
@pytest.mark.timeout(400)
def test_a_killed_ray_job_resumes_with_exactly_one_row_per_id(ray_local, tmp_path):
    import pyarrow.parquet as pq

    n = 1500
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(corpus_texts(n))))
    examples = tmp_path / "examples.csv"
    examples.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in EXAMPLES))
    out, partial = tmp_path / "out.parquet", tmp_path / "out.parquet.partial"
    cmd = [sys.executable, "-m", "tart.cli", "classify", "--examples", str(examples), "--texts", str(corpus),
           "--embedder", EMBEDDER, "--output", str(out), "--id-column", "id", "--chunk-size", "8",
           "--unlabeled-sample", "0", "--engine", "ray", "--actors", "1"]
    # its own session: the kill takes the driver and the Ray it started
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.is_dir() and len(list(partial.glob("*.parquet"))) >= 3:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL, "the job ended before it could be killed"
    assert not out.exists()  # an unfinished job is only ever the .partial folder
    done = sum(pq.read_metadata(p).num_rows for p in _whole_parts(partial, remove_torn=False))
    assert 0 < done < n
    with pytest.raises(FileExistsError, match="pass --resume"):
        check_ray_job(str(corpus), str(out), "id", False)
    assert main(cmd[3:] + ["--resume"]) == 0
    rows = pq.read_table(out).to_pylist()
    assert sorted(int(r["id"]) for r in rows) == list(range(n))  # every row once: none twice, none lost
    assert not partial.exists()
    spec = TaskSpec.from_examples([t for t, _ in EXAMPLES], [y for _, y in EXAMPLES], embedder=EMBEDDER)
    whole = tmp_path / "whole.jsonl"
    classify_corpus(spec, str(corpus), str(whole), id_column="id")
    expected = {str(r["id"]): r["label"] for r in map(json.loads, whole.read_text().splitlines())}
    assert {str(r["id"]): r["label"] for r in rows} == expected


def test_resume_refuses_a_folder_that_is_not_a_ray_output(tmp_path):
    out = tmp_path / "out.parquet"
    (tmp_path / "out.parquet.partial").mkdir()
    (tmp_path / "out.parquet.partial" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a tart classify --engine ray output"):
        check_ray_job(str(tmp_path / "c.csv"), str(out), "id", True)
    assert (tmp_path / "out.parquet.partial" / "notes.txt").read_text() == "mine"
    out.mkdir()
    with pytest.raises(FileExistsError, match="which one to continue is unclear"):
        check_ray_job(str(tmp_path / "c.csv"), str(out), "id", True)


def test_what_the_ray_engine_refuses_up_front(tmp_path):
    with pytest.raises(ValueError, match="remote corpus .* needs .* --id-column"):
        check_ray_job("s3://bucket/c.csv", "o.parquet", None, False)
    with pytest.raises(ValueError, match="remote corpus"):
        check_ray_job("s3://bucket/c.txt", "o.parquet", "id", False)
    with pytest.raises(ValueError, match="not standard input"):
        check_ray_job("-", "o.parquet", None, False)
    with pytest.raises(ValueError, match="writes Parquet"):
        check_ray_job(str(tmp_path / "c.csv"), "o.jsonl", "id", False)
    with pytest.raises(ValueError, match="needs a local output folder"):
        check_ray_job(str(tmp_path / "c.csv"), "s3://bucket/o.parquet", "id", True)


@pytest.mark.slow  # one actor loading the embedder and head
@pytest.mark.timeout(300)
def test_without_ids_the_ray_engine_numbers_rows_as_the_local_engine(ray_local, tmp_path):
    import pyarrow.parquet as pq

    spec = TaskSpec.from_examples([t for t, _ in EXAMPLES], [y for _, y in EXAMPLES], embedder=EMBEDDER)
    lines = corpus_texts(30)
    lines.insert(7, "")  # a blank line is skipped, and the numbers after it count it, as locally
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(lines) + "\n")
    local = tmp_path / "local.jsonl"
    classify_corpus(spec, str(corpus), str(local))
    out = tmp_path / "ray.parquet"
    classify_corpus_ray(spec, str(corpus), str(out), chunk_size=8, actors=1)
    by_ray = {int(r["id"]): r["label"] for r in pq.read_table(out).to_pylist()}  # Parquet ids are strings
    by_local = {r["id"]: r["label"] for r in map(json.loads, local.read_text().splitlines())}
    assert by_ray == by_local and sorted(by_ray) == [i for i in range(1, 32) if i != 8]
