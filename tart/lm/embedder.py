"""Embedders over frozen `transformers` models, with TART's three embedding modes.

stream: each text alone.  vanilla: one pass over a prompt of all k "text: label"
lines, each example's text span pooled; each query gets the whole prompt before
it.  loo (leave-one-out): example i is read after the other k-1 labelled examples.

Which model a name means, its files, its dtype and loading it once are tart.lm.registry's,
tart.lm.dtype's and tart.lm.loading's job.
The model runs in torch, or in ONNX Runtime (`backend="onnx"` / `"onnx-int8"`, see tart.lm.onnx), or, by
default (`auto`), in whichever of them tart.lm.backends picks for each call's shape.
"""
from __future__ import annotations

import inspect
import warnings
from collections import Counter

import numpy as np
import torch

from tart.defaults import DEFAULT_EMBEDDER
from tart.lm.backends import BATCH_TOKENS, onnx_runtime_installed, resolve_backend, table_backend, table_backends
from tart.lm.dtype import resolve_dtype
from tart.lm.loading import check_layer, load_config, load_model, load_onnx_model, load_tokenizer
from tart.memo import once
from tart.lm.registry import is_causal
from tart.lm.token_batches import continue_cache, pad_right, plan_batches, prefix_cache

MODES = ("stream", "vanilla", "loo")
MODE_ALIASES = {"leave-one-out": "loo"}


def resolve_mode(mode: str) -> str:
    """The embedding mode `mode` names (`leave-one-out` is `loo`); ValueError for any other."""
    mode = MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"mode must be one of stream, vanilla, leave-one-out (loo), not {mode!r}")
    return mode


class Embedder:
    """Frozen-model text embedder; `embed` (stream mode) and `embed_task` (all three modes)."""

    def __init__(self, model=DEFAULT_EMBEDDER, pooling="mean", layer=-1, max_length=256,
                 batch_tokens=None, cache_dir=None, device="cpu", progress=True, dtype=None, backend=None,
                 cache_size: int = 50_000):
        self.model_name, self.pooling, self.layer = model, pooling, layer
        self.dtype = dtype  # weights: None ($TART_EMBED_DTYPE, else auto: see resolve_dtype), "auto", or a name
        # auto, torch, onnx, onnx-int8 (None: $TART_EMBED_BACKEND, else auto: per call, see _backend_for)
        self.backend = resolve_backend(backend)
        # padded tokens per forward: None -> the backend's (tart.lm.backends.BATCH_TOKENS: torch 8192, ONNX 1024);
        # under auto, that of the backend each call runs in
        self.batch_tokens = batch_tokens or (None if self.backend == "auto" else BATCH_TOKENS[self.backend])
        self.max_length, self.cache_dir = max_length, cache_dir
        self.device, self.progress = device, progress
        if pooling not in ("mean", "last"):
            raise ValueError(f"pooling must be 'mean' or 'last', not {pooling!r}")
        self.n_forward_calls = self.n_texts_embedded = self.n_truncated = 0
        # token ids -> vector, this instance's (its model, pooling and layer are fixed; under auto, from the
        # backend that embedded the text first: every backend auto picks is faithful to torch)
        self._cache: dict = {}
        self.cache_size = cache_size  # in-memory embeddings kept, oldest dropped first (0: none, for a corpus pass)
        self._models: dict = {}  # backend -> its model, loaded on first use
        self._onnx_installed = None  # whether auto may use ONNX Runtime (asked once)
        self.backend_calls: Counter = Counter()  # calls (each a set of forward passes) per backend that ran them
        self._tokenizer = self._wrap = None  # the tokenizer, and the special tokens it wraps a text in

    def _device(self, backend: str) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() and backend == "torch" else "cpu"
        return self.device

    def _model(self, backend: str):
        """`backend`'s model, loaded lazily, once; shared between the Embedders of this process."""
        if backend not in self._models:
            dev = self._device(backend)
            if backend == "torch":
                model = load_model(self.model_name, self.cache_dir, dev, resolve_dtype(self.dtype, dev))
                check_layer(self.layer, model.config, self.model_name)
            else:
                model = load_onnx_model(self.model_name, self.cache_dir, dev, backend, self.layer)
            self._models[backend] = model
        return self._models[backend]

    def _onnx_usable(self) -> bool:
        """Whether auto may run this embedder in ONNX Runtime: where torch would run on the CPU (not on a
        GPU), with ONNX Runtime installed."""
        if self._onnx_installed is None:
            self._onnx_installed = onnx_runtime_installed()
        return self._device("torch") == "cpu" and self._onnx_installed

    def _backend_for(self, lengths, task: bool = False) -> str:
        """The backend a call of sequences of these lengths runs in: the one asked for, or under auto the
        table's for its shape (tart.lm.backends), but torch where ONNX Runtime cannot serve (not installed,
        a GPU) and for a causal LM's vanilla / leave-one-out passes (`task`): torch computes their prompt
        once, an ONNX graph would re-read it for every query."""
        if self.backend != "auto":
            return self.backend
        if task and self.is_causal_lm:
            return "torch"
        choice = table_backend(self.model_name, len(lengths), sum(lengths) / max(1, len(lengths)))
        return choice if choice == "torch" or self._onnx_usable() else "torch"

    @property
    def model(self):
        """The model: the backend's; under auto, the one a single short text runs in (`dim`, `config` and
        the like are the same in every backend; each call runs in the backend chosen for it)."""
        return self._model(self._backend_for([1]))

    def load(self) -> "Embedder":
        """Load now every model a stream call may run in (under auto, the backend of each of the table's
        rows for this model): a bad name or layer fails here, and no call waits for a load or an export."""
        wanted = [self.backend]
        if self.backend == "auto":
            wanted = table_backends(self.model_name) if self._onnx_usable() else ["torch"]
        for backend in wanted:
            self._model(backend)
        return self

    @property
    def loaded(self) -> dict[str, str]:
        """Each backend whose model is loaded -> the dtype of its weights (onnx-int8's: qint8)."""
        return {b: str(m.dtype).replace("torch.", "") for b, m in self._models.items()}

    name = property(lambda self: self.model_name)
    dim = property(lambda self: self.model.config.hidden_size)
    # from the config alone: deciding a call's backend must not load (or export) another backend's model
    is_causal_lm = property(lambda self: is_causal(load_config(self.model_name, self.cache_dir)))

    @property
    def tokenizer(self):
        """The model's tokenizer, loaded once per process and apart from the model: a service counts
        tokens with it alone."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_name, self.cache_dir)
        return self._tokenizer

    # -- tokens ---------------------------------------------------------------------------
    def tokenize(self, texts) -> list[list[int]]:
        """Each text's token ids, without special tokens and before any cut at `max_length`: what a
        caller counts (a cost, a truncation) and then hands to `embed_ids`, so a text is tokenised once."""
        texts = [str(t) for t in texts]
        # verbose=False: no warning for a text past the model's length; it is cut at max_length when read
        return self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []

    def tokens_read(self, counts) -> int:
        """Tokens the model reads for texts of these token counts: each cut at max_length, at least one
        token (an empty text gets a filler), plus the special tokens around it."""
        return sum(min(max(n, 1), self.max_length) + self.n_special_tokens for n in counts)

    n_special_tokens = property(lambda self: sum(map(len, self._specials())))

    def _specials(self):
        """Special tokens the tokenizer wraps a text in (e.g. [CLS] ... [SEP]): prefix, suffix."""
        if self._wrap is None:
            tok = self.tokenizer
            bare = tok("x", add_special_tokens=False)["input_ids"]
            full = tok("x")["input_ids"]
            i = next(i for i in range(len(full)) if full[i:i + len(bare)] == bare)
            self._wrap = full[:i], full[i + len(bare):]
        return self._wrap

    def _cut(self, ids, truncate=True):
        """Token ids ready to read: an empty text gets one filler token (a span to pool), and each is
        cut at max_length (with a warning) unless `truncate` is False."""
        tok = self.tokenizer
        filler = next(i for i in (tok.unk_token_id, tok.eos_token_id, tok.pad_token_id, 0) if i is not None)
        ids = [list(x) or [filler] for x in ids]
        if not truncate:
            return ids
        cut = sum(len(x) > self.max_length for x in ids)
        if cut:
            self.n_truncated += cut
            warnings.warn(f"{cut} of {len(ids)} texts were longer than max_length={self.max_length} "
                          f"tokens and were truncated", stacklevel=3)
        return [x[:self.max_length] for x in ids]

    def _pieces(self, texts, truncate=True):
        return self._cut(self.tokenize(texts), truncate)

    # -- forward --------------------------------------------------------------------------
    def _run(self, seqs, spans, prefix=(), task=False):
        """Embed token sequences: spans[i] lists (start, end) ranges of seqs[i], one output row
        each (vanilla pools k spans from one pass), rows in order of i, then of the ranges.
        `prefix` goes before every sequence; a causal LM computes its keys/values only once.
        One backend runs the call (`task`: a vanilla / leave-one-out pass, see _backend_for)."""
        prefix = list(prefix)
        backend = self._backend_for([len(prefix) + len(s) for s in seqs], task)
        model = self._model(backend)
        # bidirectional, or an ONNX graph (no key/value cache in or out): the prefix must be re-read
        if prefix and not (self.is_causal_lm and backend == "torch"):
            seqs = [prefix + s for s in seqs]
            spans = [[(a + len(prefix), b + len(prefix)) for a, b in sp] for sp in spans]
            prefix = []
        rows = np.cumsum([0] + [len(s) for s in spans])
        out = np.zeros((rows[-1], model.config.hidden_size), dtype=np.float32)
        if not seqs:
            return out
        limit = getattr(model.config, "max_position_embeddings", None)
        longest = len(prefix) + max(map(len, seqs))
        if limit and longest > limit:
            raise ValueError(f"a sequence of {longest} tokens exceeds {self.name}'s limit of {limit}; "
                             f"use fewer examples, a smaller max_length, or mode='stream'")
        budget = self.batch_tokens or BATCH_TOKENS[backend]
        batches = plan_batches([len(x) for x in seqs], budget, len(prefix))  # similar lengths together
        if self.progress and rows[-1] > 64:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc=f"embedding ({self.name})", unit="batch")
        # an ONNX graph returns its exported layer as last_hidden_state
        hidden_needed = self.layer not in (-1, model.config.num_hidden_layers) and backend == "torch"
        device = model.device
        self.backend_calls[backend] += 1
        with torch.inference_mode():
            past = None
            if prefix:  # read once; every batch continues a copy of its keys/values
                past = prefix_cache(model, prefix)
                self.n_forward_calls += 1
            no_cache = {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters else {}
            for batch in batches:
                ids, mask = pad_right(self.tokenizer, [seqs[i] for i in batch], len(prefix))
                kw = no_cache if past is None else continue_cache(model, past, len(batch))
                res = model(input_ids=ids.to(device), attention_mask=mask.to(device),
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
        return self.embed_ids(self.tokenize(texts))

    def embed_ids(self, ids) -> np.ndarray:
        """`embed` for texts already tokenised (`tokenize`'s ids); repeated ones come from the cache."""
        keys = [tuple(x) for x in self._cut(ids)]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        new = {}
        if todo:
            pre, suf = self._specials()
            seqs = [pre + list(k) + suf for k in todo]
            new = dict(zip(todo, self._run(seqs, [[(0, len(s))] for s in seqs])))
            self._cache.update(new)
            while len(self._cache) > self.cache_size:
                self._cache.pop(next(iter(self._cache)))
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        # this call's new vectors from `new`: the cache may already have dropped them
        return np.stack([new[k] if k in new else self._cache[k] for k in keys]).astype(np.float32)

    # -- vanilla / leave-one-out -----------------------------------------------------------
    def embed_task(self, support_texts, support_labels, query_texts, mode=None):
        """(support_vecs, query_vecs) in `mode` (default: self.mode). See the module docstring."""
        mode = resolve_mode(mode or self.mode)
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
        support = self._run([j[0] for j in jobs], [j[1] for j in jobs], task=True)
        # queries: each after the whole prompt, never after one another (one sequence each)
        qs = self._pieces([str(q) for q in query_texts])
        queries = self._run([q + suf for q in qs], [[(0, len(q))] for q in qs], prefix=pre + sum(lines, []), task=True)
        return support, queries


def load_embedder(name: str = DEFAULT_EMBEDDER, **kw) -> Embedder:
    """The same Embedder (model loaded once, embedding cache shared) for the same arguments."""
    kw["backend"] = resolve_backend(kw.get("backend"))  # $TART_EMBED_BACKEND's now, so part of the key
    emb = once(("embedder", name, *sorted((k, str(v)) for k, v in kw.items())), lambda: Embedder(name, **kw))
    emb.load()  # now, so a bad name or layer fails here and not on first use
    return emb
