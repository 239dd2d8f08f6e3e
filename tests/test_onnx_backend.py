"""ONNX Runtime embedder backends (tart.lm.onnx) on tiny random models built here: no download.

The export must keep the attention mask's padding logic (a legacy trace once froze it as a constant):
padded batches of mixed lengths and unpadded single texts must match torch, in every embedding mode.
"""
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tart import memo  # noqa: E402
from tart.lm import onnx as O  # noqa: E402
from tart.lm.embedder import Embedder  # noqa: E402

TEXTS = ["a cat", "the cat sat on the mat", "dogs", "a dog and a cat sat on a very long mat in the sun today",
         "", "sun mat dog the a"]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in TEXTS + ["0", "1", ":"] for w in t.split()})
    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]"] + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")


# the causal LM's exports take ~25 s of the default run: slow (`pytest -m slow tests/test_onnx_backend.py`)
@pytest.fixture(scope="module", params=["bert", pytest.param("llama", marks=pytest.mark.slow)])
def tiny(request, tmp_path_factory):
    """A tiny random encoder or causal LM with its tokenizer, saved as a transformers folder."""
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    size = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=128)
    if request.param == "bert":
        model = BertModel(BertConfig(**size))
    else:
        model = LlamaForCausalLM(LlamaConfig(**size, num_key_value_heads=2))
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    _tokenizer().save_pretrained(folder)
    return str(folder), tmp_path_factory.mktemp("cache")


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("backend,floor", [("onnx", 0.9999), ("onnx-int8", 0.99)])
def test_padded_and_unpadded_batches_match_torch(tiny, backend, floor):
    folder, cache = tiny
    ref = Embedder(folder, cache_dir=cache, progress=False, dtype="float32").embed(TEXTS)
    padded = Embedder(folder, cache_dir=cache, progress=False, backend=backend, batch_tokens=10_000)
    alone = Embedder(folder, cache_dir=cache, progress=False, backend=backend, batch_tokens=1)
    a, b = padded.embed(TEXTS), alone.embed(TEXTS)
    assert padded.n_forward_calls == 1 and alone.n_forward_calls == len(TEXTS)  # one padded batch; no padding
    assert a.shape == ref.shape and a.dtype == np.float32
    assert _cosines(a, ref).min() >= floor and _cosines(b, ref).min() >= floor
    if backend == "onnx":
        np.testing.assert_allclose(a, ref, atol=1e-5)
        np.testing.assert_allclose(b, ref, atol=1e-5)


@pytest.mark.parametrize("mode", ["vanilla", "loo"])
def test_task_modes_and_layers_match_torch(tiny, mode):
    """Vanilla / leave-one-out (ONNX re-reads the prompt where torch reuses a causal LM's cache), an
    inner layer, last-token pooling."""
    folder, cache = tiny
    sup, lab, qry = TEXTS[:4], [0, 1, 0, 1], TEXTS[4:]
    for kw in ({}, {"layer": 1, "pooling": "last"}):
        torch_emb = Embedder(folder, cache_dir=cache, progress=False, dtype="float32", **kw)
        onnx_emb = Embedder(folder, cache_dir=cache, progress=False, backend="onnx", **kw)
        for a, b in zip(onnx_emb.embed_task(sup, lab, qry, mode=mode), torch_emb.embed_task(sup, lab, qry, mode=mode)):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_export_is_reused_from_the_cache(tiny, monkeypatch):
    folder, cache = tiny
    Embedder(folder, cache_dir=cache, progress=False, backend="onnx-int8").embed(TEXTS[:1])  # both files exist
    files = {p: p.stat().st_mtime_ns for p in (cache / "onnx").rglob("*.onnx")}
    assert {p.name for p in files} >= {"onnx-last.onnx", "onnx-int8-last.onnx"}
    monkeypatch.setattr(memo, "_LOADED", {})  # a new process, as far as loading goes

    def fail(*args, **kwargs):
        raise AssertionError("exported a second time")

    monkeypatch.setattr(O, "_export", fail)
    monkeypatch.setattr(O, "_quantize", fail)
    for backend in ("onnx", "onnx-int8"):
        emb = Embedder(folder, cache_dir=cache, progress=False, backend=backend)
        assert emb.embed(TEXTS).shape == (len(TEXTS), 32)
    assert {p: p.stat().st_mtime_ns for p in (cache / "onnx").rglob("*.onnx")} == files


def test_int8_keeps_the_mlp_down_projection_in_float32(tiny):
    import onnx

    folder, cache = tiny
    emb = Embedder(folder, cache_dir=cache, progress=False, backend="onnx-int8")
    emb.embed(["cat"])
    graph = onnx.load(str(emb.model.path)).graph
    shapes = {w.name: tuple(w.dims) for w in graph.initializer}
    ops = [n.op_type for n in graph.node]
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    float_weights = [shapes.get(n.input[1]) for n in graph.node if n.op_type == "MatMul" and n.input[1] in shapes]
    assert float_weights == [(64, 32)] * 2  # intermediate -> hidden, one per block


def test_export_says_so_once(tiny, capsys, tmp_path, monkeypatch):
    folder, cache = tiny
    exported = Embedder(folder, cache_dir=cache, progress=False, backend="onnx")
    exported.embed(["cat"])
    capsys.readouterr()  # its own export, if this test ran first
    # a stand-in exporter (a copy of the real export): this test is about the message and the cache
    monkeypatch.setattr(O, "_export", lambda folder, layer, path: path.write_bytes(exported.model.path.read_bytes()))
    monkeypatch.setattr(memo, "_LOADED", {})
    # without a progress bar too (tart classify's embedder has none): the export is a silent half minute
    Embedder(folder, cache_dir=tmp_path, progress=False, backend="onnx").embed(["cat"])
    target = tmp_path / "onnx" / f"{Path(folder).name}-{O._key(Path(folder))}" / "onnx-last.onnx"
    assert capsys.readouterr().err == (f"tart: exporting {Path(folder).parent.name}/{Path(folder).name} to ONNX "
                                       f"(onnx, last layer) once ({O.EXPORT_TIME}), cached at {target}\n")
    monkeypatch.setattr(memo, "_LOADED", {})
    Embedder(folder, cache_dir=tmp_path, backend="onnx").embed(["cat"])
    assert "exporting" not in capsys.readouterr().err


def test_bad_backend_name_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of auto, torch, onnx, onnx-int8, not 'onnx-fp16'"):
        Embedder("minilm-l6", backend="onnx-fp16")
    monkeypatch.setenv("TART_EMBED_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match="not 'tensorrt'"):
        Embedder("minilm-l6")
    monkeypatch.setenv("TART_EMBED_BACKEND", "onnx")
    assert Embedder("minilm-l6").backend == "onnx" and Embedder("minilm-l6", backend="torch").backend == "torch"


def test_classifier_takes_the_backend(tiny):
    from tart.classifier import TartClassifier

    folder, _ = tiny
    texts, labels = TEXTS[:4], [0, 1, 0, 1]
    clf = TartClassifier(embedder=folder, embedder_backend="onnx", n_permutations=1).fit(texts, labels)
    assert clf.predict_proba(TEXTS[4:]).shape == (2, 2) and clf.embedder_.backend == "onnx"
    with pytest.raises(ValueError, match="embedder_backend"):
        TartClassifier(embedder=folder, embedder_backend="onnx16").fit(texts, labels)


def test_onnx_runs_on_cpu_only(tiny):
    folder, cache = tiny
    with pytest.raises(ValueError, match="runs on CPU"):
        Embedder(folder, cache_dir=cache, backend="onnx", device="cuda").embed(["cat"])


def test_serving_setting_and_option():
    from tart.serving.cli import server_environment
    from tart.serving.settings import load_settings

    assert load_settings(env={"TART_EMBED_BACKEND": "onnx-int8"}).embed_backend == "onnx-int8"
    assert load_settings(env={}).embed_backend == "auto"
    with pytest.raises(ValueError, match="embed_backend = 'onnx16': input should be 'auto', 'torch', 'onnx' or 'onnx-int8'"):
        load_settings(env={"TART_EMBED_BACKEND": "onnx16"})
    args = __import__("argparse").Namespace(embed_backend="onnx", host="127.0.0.1")
    assert server_environment(args, base={})["TART_EMBED_BACKEND"] == "onnx"


def test_cli_option_sets_the_backend_for_every_command(monkeypatch):
    from tart.cli import main

    monkeypatch.setenv("TART_EMBED_BACKEND", "torch")  # restored after the test (main sets it)
    seen = {}
    monkeypatch.setattr("tart.cli.evaluate.run", lambda args: seen.update(backend=Embedder("minilm-l6").backend))
    main(["--embed-backend", "onnx-int8", "evaluate", "--data", "x.csv"])
    assert seen == {"backend": "onnx-int8"}
