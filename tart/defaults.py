"""Defaults that every entry point shares, defined once (no imports: the service's settings read them
without loading torch).

- DEFAULT_HEAD: the shipped head that `TartClassifier`, `tart classify` and `tart serve` use (the pipeline
  takes its head as `model=`, as every transformers pipeline does).
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
  prior that trains the heads (so that they see their inputs scaled as at inference).
"""
DEFAULT_HEAD = "tart-residual"
DEFAULT_EMBEDDER = "minilm-l6"
DEFAULT_CAUSAL_LM = "smollm2-135m"
PACKAGED_EMBEDDERS = (DEFAULT_EMBEDDER, DEFAULT_CAUSAL_LM)
SETFIT_BODY = "minilm-l6"
DEFAULT_N_PERMUTATIONS = 4
DEFAULT_SHRINKAGE = 0.5
DEFAULT_MAX_UNLABELED = 64
EMBED_DTYPES = ("auto", "bfloat16", "float32")
EMBED_BACKENDS = ("torch", "onnx", "onnx-int8")  # embedder runtimes (tart.lm.onnx runs the ONNX ones)
