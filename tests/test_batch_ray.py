"""`tart classify --engine ray` on a local 2-CPU Ray: the same labels as the local engine (slow: `-m slow`)."""
import json

import numpy as np
import pytest

pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")

from tart.corpus.job import TaskSpec, classify_corpus  # noqa: E402
from tart.corpus.ray_engine import check_ray_job, classify_corpus_ray  # noqa: E402

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


def test_what_the_ray_engine_refuses_up_front(tmp_path):
    with pytest.raises(ValueError, match="not plain text"):
        check_ray_job(str(tmp_path / "c.txt"), "o.parquet", "id", False)
    with pytest.raises(ValueError, match="needs --id-column"):
        check_ray_job(str(tmp_path / "c.csv"), "o.parquet", None, False)
    with pytest.raises(ValueError, match="writes Parquet"):
        check_ray_job(str(tmp_path / "c.csv"), "o.jsonl", "id", False)
    with pytest.raises(ValueError, match="--resume is for --engine local"):
        check_ray_job(str(tmp_path / "c.csv"), "o.parquet", "id", True)
