"""ONNX Runtime backends for the embedders: `onnx` (float32) and `onnx-int8` (dynamic int8 weights).

The frozen model is exported once per model, backend and layer with torch's dynamo exporter
(`torch.onnx.export(..., dynamo=True)`), from the same local weights the torch backend loads, and kept
in the user cache (`tart.paths.cache_dir()/onnx/`), like the converted GGUF weights. Nothing is
downloaded. The exported graph takes `input_ids` and `attention_mask` with dynamic batch and length
and returns one layer's hidden states; tokenising, truncation, batching, pooling and the embedding
cache stay in `tart.lm.embedder.Embedder`, so every backend shares them.

`onnx-int8` is the float32 export with its MatMul weights quantised to int8 (per output channel) by
ONNX Runtime's `quantize_dynamic`; activations are quantised per call at run time (see _quantize).

`python -m tart.lm.onnx --prepare MODEL` makes the exports a backend (by default `auto`, see
tart.lm.backends) runs MODEL with, ahead of use: scripts/install.sh and the Bento's setup run it.

Needs the `onnx` extra (pip install "tart[onnx]"): onnx, onnxruntime and onnxscript, imported only here.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from tart.lm.backends import import_onnx
from tart.paths import atomic_path, file_stamp

# what the one-time export costs, said before it starts (measured on a 2-core VM: MiniLM-L6 11-14 s,
# SmolLM2-135M 157 s; docs/embedder-backends.md)
EXPORT_TIME = "on 2 CPU cores about 15 s for MiniLM-L6, 3 min for SmolLM2-135M"


class _OneLayer(torch.nn.Module):
    """The model as the exporter sees it: (input_ids, attention_mask) -> hidden states of `layer`."""

    def __init__(self, lm, layer: int):
        super().__init__()
        self.lm, self.layer = lm, layer
        self.all_layers = layer not in (-1, lm.config.num_hidden_layers)
        self.no_cache = {"use_cache": False} if "use_cache" in inspect.signature(lm.forward).parameters else {}

    def forward(self, input_ids, attention_mask):
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=self.all_layers,
                      **self.no_cache)
        return out.hidden_states[self.layer] if self.all_layers else out.last_hidden_state


def _key(folder: Path) -> str:
    """Changes when the weights do (path, size and time of every file of the folder)."""
    parts = [str(folder.resolve())]
    for f in sorted(folder.iterdir()):
        if f.is_file():
            parts.append(f"{f.name}|{file_stamp(f)}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:12]


def _export(folder: Path, layer: int, path: Path) -> None:
    """float32 export through the dynamo exporter: dynamic batch and length, checked with ONNX Runtime."""
    from transformers import AutoModel

    import_onnx("onnx", "onnxscript")  # the dynamo exporter's (imported here only: 1.3 s)

    # eager attention: the padding mask is a plain tensor op in the graph, identical for every shape
    lm = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32,
                                   attn_implementation="eager").eval()
    model = _OneLayer(lm, layer).eval()
    # an example with padding and more than one row, so neither batch, length nor the mask specialise
    ids = torch.randint(5, min(lm.config.vocab_size, 1000), (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    shapes = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    # the exporter's own notes (deprecations, torchvision ops it skips) are not the user's business
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (ids, mask), dynamo=True, dynamic_shapes=shapes,
                                        input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                                        optimize=True, verbose=False)
    finally:
        log.setLevel(level)
    program.save(str(path), external_data=False)


def _quantize(folder: Path, src: Path, path: Path) -> None:
    """int8 weights, one scale per output channel, for every MatMul with a weight, except each block's
    MLP down-projection: its input (after the activation function) has outlier channels that per-tensor
    activation quantisation cannot hold. Measured on MiniLM (80 mixed texts): per-tensor weights, all
    MatMuls: cosine to float32 0.903 at worst; per-channel: 0.987; per-channel, down-projections kept
    float32: 0.993, at 1.7x float32's speed."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    graph = onnx.load(str(src)).graph
    shapes = {w.name: tuple(w.dims) for w in graph.initializer}
    down = (getattr(config, "intermediate_size", None), config.hidden_size)  # (in, out) as exported
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and shapes.get(n.input[1]) == down]
    root = logging.getLogger()  # the quantiser logs advice on the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(src, path, op_types_to_quantize=["MatMul"], per_channel=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=keep)
    finally:
        root.setLevel(level)


def exported_model(folder: Path, backend: str, layer: int, cache_dir: Path, announce: bool = True) -> Path:
    """The .onnx file for (model folder, backend, layer): exported (and quantised) once, then reused.
    The export says so on stderr first, progress bars or not: it is a silent half minute or more."""
    import_onnx("onnxruntime")
    target = Path(cache_dir) / "onnx" / f"{folder.name}-{_key(folder)}"
    name = f"layer{layer}" if layer != -1 else "last"
    path = target / f"{backend}-{name}.onnx"
    if path.is_file():
        return path
    if announce:
        print(f"tart: exporting {folder.parent.name}/{folder.name} to ONNX ({backend}, {name} layer) once ({EXPORT_TIME}), "
              f"cached at {path}", file=sys.stderr, flush=True)
    # whole or not at all; another process may have finished first: its copy is as good as this one
    with atomic_path(path) as tmp:
        if backend == "onnx":
            _export(folder, layer, tmp)
        else:
            _quantize(folder, exported_model(folder, "onnx", layer, cache_dir, announce=False), tmp)
    return path


class OnnxModel:
    """An ONNX Runtime session that answers like the part of a transformers model the Embedder uses:
    `config`, `device`, `dtype`, and a call on (input_ids, attention_mask) that returns
    `last_hidden_state` (the exported layer). Runs on CPU, with torch's intra-op thread count."""

    def __init__(self, path: Path, config, backend: str, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between calls: the embedder shares its cores with the head and other work
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.config, self.backend, self.path = config, backend, path
        self.device = torch.device("cpu")
        self.dtype = torch.qint8 if backend == "onnx-int8" else torch.float32

    def forward(self, input_ids, attention_mask, output_hidden_states=False):
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        (hidden,) = self.session.run(["hidden"], feeds)
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden), hidden_states=None)

    __call__ = forward


def load_onnx(folder: Path, config, backend: str, layer: int, cache_dir: Path) -> OnnxModel:
    """A session for (folder, backend, layer), exported on first use; intra-op threads: torch's count
    (tart serve sets it from embed_threads, the commands from --threads)."""
    path = exported_model(Path(folder), backend, layer, cache_dir)
    return OnnxModel(path, config, backend, torch.get_num_threads())


def prepare(model: str, backend: str = "auto", cache_dir=None) -> list[Path]:
    """Make now, once, the exports that `backend` runs `model`'s last layer with (auto: the ONNX backends of
    its rows in the table), so that no request waits for one: `tart serve` before its workers start,
    scripts/install.sh and the Bento's setup through `python -m tart.lm.onnx --prepare`. Says what it
    does on stderr; returns the files."""
    from tart.lm.backends import onnx_runtime_installed, table_backends
    from tart.lm.registry import default_cache_dir, resolve_model_dir

    if backend == "torch":
        return []
    folder = resolve_model_dir(model, cache_dir)  # a bad name fails here
    backends = [b for b in (table_backends(model) if backend == "auto" else [backend]) if b != "torch"]
    if not backends:  # auto, for a model the table does not list
        print(f"tart: auto runs {model} in torch: no ONNX export to make", file=sys.stderr, flush=True)
        return []
    if backend == "auto" and not onnx_runtime_installed():  # auto runs torch then; a forced backend fails below
        print(f"tart: ONNX Runtime is not installed, so auto runs {model} in torch; no export made "
              "(pip install 'tart[onnx]' for the faster backends)", file=sys.stderr, flush=True)
        return []
    paths = [exported_model(folder, b, -1, default_cache_dir(cache_dir)) for b in backends]
    for b, path in zip(backends, paths):
        print(f"tart: {model} in {b}: ready at {path}", file=sys.stderr, flush=True)
    return paths


def main(argv=None) -> int:
    import argparse

    from tart.lm.backends import resolve_backend

    p = argparse.ArgumentParser(prog="python -m tart.lm.onnx",
                                description="Make the ONNX exports an embedder's backend runs with, once, into "
                                            "the user cache (backend: $TART_EMBED_BACKEND, else auto).")
    p.add_argument("--prepare", nargs="+", required=True, metavar="MODEL",
                   help="embedder short names or local model folders")
    args = p.parse_args(argv)
    for model in args.prepare:
        prepare(model, resolve_backend())
    return 0


if __name__ == "__main__":
    sys.exit(main())
