"""Loading frozen models and tokenizers, once per process (through the one memo, tart.memo)."""
from __future__ import annotations

from pathlib import Path

import torch

from tart.lm.registry import default_cache_dir, known_names, resolve_model_dir
from tart.memo import once


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    def make():
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if tok.pad_token is None:  # our own padding is masked out; the id just has to exist
            tok.pad_token = tok.eos_token or tok.unk_token
        return tok

    return once(("tokenizer", str(folder.resolve())), make)


def load_tokenizer(model: str, cache_dir=None):
    """A model's tokenizer alone, loaded once per process (the model's own, when it is loaded too):
    a service counts a request's tokens before its model, in another process, embeds them."""
    folder = resolve_model_dir(model, cache_dir)
    try:
        return _tokenizer(folder)
    except Exception as err:
        raise ValueError(f"could not load the tokenizer of {model!r} from {folder}: {err}; {known_names()}") from err


def check_layer(layer: int, config, name: str) -> None:
    n = config.num_hidden_layers
    if not -(n + 1) <= layer <= n:  # hidden_states has n + 1 entries: embeddings, then each block
        raise ValueError(f"layer {layer} is out of range for {name}: it has {n} layers "
                         f"(use 0..{n}, or -1 for the last)")


def load_model(model: str, cache_dir, device: str, dtype: torch.dtype = torch.float32, lm_head: bool = False):
    """A transformers model, loaded once per process for the same folder, device, dtype and head: the
    bare model (embeddings), or with `lm_head` the causal LM with its head (prompting). Its tokenizer is
    `load_tokenizer`'s."""
    from transformers import AutoModel, AutoModelForCausalLM
    folder = resolve_model_dir(model, cache_dir)
    auto = AutoModelForCausalLM if lm_head else AutoModel

    def make():
        try:
            return auto.from_pretrained(folder, local_files_only=True).to(device, dtype).eval()
        except Exception as err:  # say which input failed, not just a deep transformers error
            raise ValueError(f"could not load model {model!r} from {folder}: {err}; {known_names()}") from err

    return once(("torch", str(folder.resolve()), device, dtype, lm_head), make)


def load_config(model: str, cache_dir=None):
    """A model's transformers config alone, read once per process (no weights loaded)."""
    from transformers import AutoConfig

    folder = resolve_model_dir(model, cache_dir)
    return once(("config", str(folder.resolve())), lambda: AutoConfig.from_pretrained(folder, local_files_only=True))


def load_onnx_model(model: str, cache_dir, device: str, backend: str, layer: int):
    """The ONNX Runtime model of `layer` (tokenised as in torch: `load_tokenizer`); see tart.lm.onnx."""
    from tart.lm.onnx import load_onnx
    if device != "cpu":
        raise ValueError(f"the {backend} embedder backend runs on CPU, not {device!r}; use backend='torch' there")
    folder = resolve_model_dir(model, cache_dir)
    # one session per thread count: ONNX Runtime's threads are fixed when it starts (torch's count, now)
    def make():
        config = load_config(model, cache_dir)
        check_layer(layer, config, model)
        return load_onnx(folder, config, backend, layer, default_cache_dir(cache_dir))

    return once(("onnx", str(folder.resolve()), backend, layer, torch.get_num_threads()), make)
