"""Defaults that every entry point shares, defined once (no imports: the service's settings read them
without loading torch).

- DEFAULT_HEAD: the shipped head that `TartClassifier`, `tart classify` and `tart serve` use (the pipeline
  takes its head as `model=`, as every transformers pipeline does). `tart-base`, the side base with no
  Transformer blocks (scripts/build_base_head.py): on the dev suite it leads every trained head, with
  names and without (results/dev-suite/default-base-*.json; README, issue 25).
- DEFAULT_EMBEDDER: the packaged embedder they (and the pipeline) use. MiniLM-L6 leads SmolLM2-135M on the
  dev suite at every k, for the probe and the head (results/dev-suite/default-head-*.json), and embeds ~3x
  faster.
- EMBED_DTYPES: the embedder weights' dtypes one may ask for (tart.lm.dtype.resolve_dtype decides `auto`).
- DEFAULT_CAUSAL_LM: the packaged causal LM, for what must prompt or dissect one (in-context prompting,
  `tart evaluate`'s side-by-side with it, the analyses of a causal LM's layers).
- PACKAGED_EMBEDDERS: the two packaged embedders the project measures and trains on: the prior's real
  and task banks are embedded by both, the dev suite and `tart compare` run both.
- SETFIT_BODY: the sentence-transformer SetFit fine-tunes (its own copy of all-MiniLM-L6-v2).
- DEFAULT_N_PERMUTATIONS: support-set orders (with class slots and sign flips) the head's test-time
  ensemble averages, wherever the head classifies (library, `tart classify`, `tart evaluate`).
- DEFAULT_MAX_UNLABELED: unlabelled texts of a task the head reads at most (a seeded sample of the pool):
  what the side-input heads were trained on.
- DEFAULT_SHRINKAGE: the per-task projection's shrinkage of the whitening, at inference and in the
  prior that trains the heads (so that they see their inputs scaled as at inference);
  MIN_POINTS_TO_STANDARDIZE: below it (k < 8, zero-shot) the projection does not standardise features.
- EMBED_BACKENDS: the embedder runtimes one may ask for; `auto` (the default) picks one per call from
  EMBED_BACKEND_TABLE (tart.lm.backends reads it).
"""
DEFAULT_HEAD = "tart-base"
DEFAULT_EMBEDDER = "minilm-l6"
DEFAULT_CAUSAL_LM = "smollm2-135m"
PACKAGED_EMBEDDERS = (DEFAULT_EMBEDDER, DEFAULT_CAUSAL_LM)
SETFIT_BODY = "minilm-l6"
DEFAULT_N_PERMUTATIONS = 4
DEFAULT_SHRINKAGE = 0.5
MIN_POINTS_TO_STANDARDIZE = 8  # a task's projection fitted on fewer points only centres, PCA and whitening
DEFAULT_MAX_UNLABELED = 64
EMBED_DTYPES = ("auto", "bfloat16", "float32")
EMBED_BACKENDS = ("auto", "torch", "onnx", "onnx-int8")  # embedder runtimes (tart.lm.onnx runs the ONNX ones)

# The runtime `auto` embeds a call in, per packaged embedder: rows of (most texts in the call, most tokens
# per text, backend); the first row the call fits wins (None: no bound); a call past every row, or a model
# not listed here, runs in torch. Tokens per text: the mean over the call's sequences, special tokens
# included (the length-planned passes pad little past it). Only backends that pass the fidelity gates of
# docs/embedder-backends.md (cosine >= 0.99 to torch float32 on every benchmark text; dev suite within
# 0.5 points at every k). Speeds against torch bfloat16 (what `auto` dtype runs on this CPU), same runs,
# from results/benchmarks/embed_roofline-minilm-l6.json (1 thread), embed_batching.json (1 thread) and
# embed_backend.json (2 threads). Short texts there average 17 tokens, paragraphs 250.
EMBED_BACKEND_TABLE = {
    # onnx-int8 (cosine >= 0.9943, dev suite within 0.35 points): short texts 2.4x with one per call,
    # 1.09x with 32, 1.03-1.05x with 256; one paragraph alone 1.11x. Paragraphs 32-256 per call:
    # 0.88-0.96x (1 thread; 1.33x in the noisier 2-thread run at load 5), short texts mixed with
    # paragraphs (mean ~64 tokens): 0.97x, so torch there. 32 tokens: twice the short texts' mean.
    "minilm-l6": ((None, 32, "onnx-int8"), (1, None, "onnx-int8"), (None, None, "torch")),
    # int8 fails the cosine gate (0.981); float32 onnx gives torch's vectors (cosine 0.9999998) at 1.30x on
    # short texts, 1.11x on paragraphs (at 128 short texts per forward 0.96x, but ONNX passes hold ~60)
    "smollm2-135m": ((None, None, "onnx"),),
}
