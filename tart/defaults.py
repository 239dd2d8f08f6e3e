"""Defaults that every entry point shares, defined once (no imports: the service's settings read them
without loading torch).

- DEFAULT_HEAD: the shipped head that `TartClassifier`, the pipeline, `tart classify` and `tart serve` use.
- DEFAULT_EMBEDDER: the packaged embedder they use. MiniLM-L6 leads SmolLM2-135M on the dev suite at
  every k, for the probe and the head (results/dev-suite/default-head-*.json), and embeds ~3x faster.
- EMBED_DTYPES: the embedder weights' dtypes one may ask for (tart.models.resolve_dtype decides `auto`).
- DEFAULT_CAUSAL_LM: the packaged causal LM, for what must prompt or dissect one (in-context prompting,
  `tart evaluate`'s side-by-side with it, the analyses of a causal LM's layers).
"""
DEFAULT_HEAD = "tart-residual"
DEFAULT_EMBEDDER = "minilm-l6"
DEFAULT_CAUSAL_LM = "smollm2-135m"
EMBED_DTYPES = ("auto", "bfloat16", "float32")
