"""`tart classify --engine ray`: the corpus job as a Ray Data pipeline, for corpora past one machine.

    read_csv / read_json / read_parquet  ->  map_batches(Labelling actors)  ->  write_parquet

Each actor of the pool loads the embedder and fits the task once (tart.corpus.job.Labeller, from the same
TaskSpec as the local engine, so the labels are the same), then labels batch after batch; with GPUs in
the cluster each actor takes one (`num_gpus=1`) and embeds on it. Without an address a local Ray is
started. The output is a Parquet dataset (a folder of part files, readable as one table by pyarrow,
pandas or Ray): written under OUTPUT.partial and renamed to OUTPUT when every part is written (a remote
URI such as s3://... is written in place).

Ray's readers give no line numbers: without an id column (and for plain text) the driver reads a local
corpus itself, with the local engine's reader, so that the ids are the same line / row numbers, and hands
Ray the numbered rows (held in Ray's object store, which spills to disk); a remote corpus needs an id
column. Ray's own retries recover from a lost actor; `--resume` recovers from a killed job: every part
file in OUTPUT.partial that reads whole holds rows that are done, a torn one (its write cut short) is
removed, and only the rows whose ids are not done are labelled, into new part files beside them.

Ray is an optional extra (`pip install "tart[ray]"`), imported only here.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from tart.corpus.job import TaskSpec
from tart.corpus.output import arrow_table, result_rows
from tart.corpus.reader import corpus_format
from tart.data.readers import is_blank


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError('--engine ray needs Ray: pip install "tart[ray]"') from None
    return ray


def check_ray_job(texts: str, output: str | None, id_column: str | None, resume: bool) -> None:
    """What the Ray engine cannot do, said before anything starts."""
    if "://" in texts and (not id_column or corpus_format(texts) == "text"):
        raise ValueError(f"--engine ray with a remote corpus ({texts}) needs .csv / .jsonl / .parquet with "
                         "--id-column: Ray's readers give no line numbers to use as ids")
    if texts == "-":
        raise ValueError("--engine ray reads a file, not standard input; use --engine local")
    if not output or not output.endswith(".parquet"):
        raise ValueError(f"--engine ray writes Parquet: pass --output NAME.parquet (got {output!r})")
    if "://" in output:
        if resume:
            raise ValueError(f"--resume with --engine ray needs a local output folder, not {output}")
    else:
        found = [path for path in (Path(output), Path(f"{output}.partial")) if path.exists()]
        if found and not resume:
            raise FileExistsError(f"{found[0]} exists; pass --resume to continue the run that wrote it, or "
                                  "remove it")
        if len(found) == 2:
            raise FileExistsError(f"both {found[0]} and {found[1]} exist: which one to continue is unclear; "
                                  "remove one")
        for path in found:
            _whole_parts(path, remove_torn=False)  # ours to continue, or refused untouched
    _import_ray()


def _whole_parts(folder: Path, remove_torn: bool):
    """A Ray output folder's part files that read whole. A part without a Parquet footer was cut short by
    a kill: removed (with remove_torn), its rows labelled again. A folder that is not a tart classify
    output is refused, untouched."""
    from tart.corpus.output import RESULT_KEYS
    from tart.corpus.reader import import_pyarrow

    pq = import_pyarrow().parquet
    refused = ValueError(f"{folder}: not a tart classify --engine ray output (a folder of Parquet parts with "
                         "columns id, label, scores), and is left as it is")
    if not folder.is_dir():
        raise refused
    parts = sorted(folder.iterdir())
    if any(not p.is_file() or p.suffix != ".parquet" for p in parts):
        raise refused
    whole = []
    for part in parts:
        try:
            schema = pq.read_schema(part)
        except Exception:  # no footer: a torn write (pyarrow's errors have no common base)
            if remove_torn:
                part.unlink()
            continue
        if set(schema.names) != RESULT_KEYS:
            raise refused
        whole.append(part)
    return whole


def _done_ids(folder: Path):
    """The ids in a resumed job's whole parts (one pyarrow array, or None if there are none); torn parts
    are removed."""
    from tart.corpus.reader import import_pyarrow

    pa = import_pyarrow()
    ids = [c for part in _whole_parts(folder, remove_torn=True)
           for c in pa.parquet.read_table(part, columns=["id"]).column("id").chunks]
    return pa.concat_arrays(ids) if ids else None


def _not_done(batch, done, id_column: str):
    """The rows of a batch whose ids are not in `done` (a resumed job)."""
    import pyarrow.compute as pc

    ids = batch.column(id_column)
    done = done.cast(ids.type)  # the same reader infers the same type; a cast keeps it so
    return batch.filter(pc.invert(pc.is_in(ids, value_set=done)))


class _Labelling:
    """One actor: the task loaded once, then batch after batch (pyarrow tables) of id + text."""

    def __init__(self, spec: TaskSpec, text_column: str, id_column: str):
        self.labeller = spec.load()
        self.text_column, self.id_column = text_column, id_column

    def __call__(self, batch):
        ids = batch.column(self.id_column).to_pylist()
        texts = batch.column(self.text_column).to_pylist()
        for key, text in zip(ids, texts):
            if key is None or key == "":
                raise ValueError(f"a row has no id in column {self.id_column!r} (its text: {str(text)[:80]!r})")
            if not isinstance(text, str) or is_blank(text):
                raise ValueError(f"row with id {key!r}: empty text in column {self.text_column!r}")
        return arrow_table(result_rows(ids, self.labeller(texts), self.labeller.classes), self.labeller.classes)


# Reading and writing take no CPU of their own in Ray's accounting: with one actor per CPU, a read that
# waits for a free CPU would wait forever (seen on a 2-CPU Ray: 3/2 CPUs requested, nothing ran).
IO = {"num_cpus": 0}


def _numbered(ray, texts: str, text_column: str, chunk_size: int, done):
    """A local corpus without ids, read by the driver as the local engine reads it: line / row numbers as
    ids, every row checked, the rows a resumed job has done left out."""
    from tart.corpus.reader import import_pyarrow, read_corpus

    pa = import_pyarrow()
    skip = set() if done is None else {str(i) for i in done.to_pylist()}
    blocks = [pa.table({"id": ids, "text": chunk})
              for ids, chunk in read_corpus(texts, text_column, None, max(chunk_size, 4096), skip=skip)]
    if not blocks and not skip:
        raise ValueError(f"{texts}: no texts to classify")
    return ray.data.from_arrow(blocks) if blocks else None  # None: a resumed job found every row done


def _read(ray, texts: str):
    """The corpus as Ray reads it; the caller selects the two columns (Ray pushes that into the read)."""
    fmt = corpus_format(texts)
    if fmt == "parquet":
        return ray.data.read_parquet(texts, **IO)
    if fmt == "jsonl":
        return ray.data.read_json(texts, lines=True, **IO)
    return ray.data.read_csv(texts, **IO)


def _user_error(err: BaseException) -> ValueError | None:
    """The ValueError an actor raised, out of Ray's wrappers (RayTaskError, UserCodeException)."""
    seen, chain = err, set()
    while seen is not None and id(seen) not in chain:
        chain.add(id(seen))
        if type(seen) is ValueError:
            return ValueError(str(seen).splitlines()[0])
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
    lines = [line for line in str(err).splitlines() if line.startswith("ValueError: ")]
    return ValueError(lines[-1].removeprefix("ValueError: ")) if lines else None


def classify_corpus_ray(spec: TaskSpec, texts: str, output: str, text_column: str = "text",
                        id_column: str | None = None, chunk_size: int = 512, address: str | None = None,
                        actors: int | None = None, num_cpus: int | None = None, cpus_per_actor: float = 1,
                        resume: bool = False) -> dict:
    """Label `texts` into the Parquet dataset `output` on Ray (see the module docstring). `num_cpus`
    caps a local Ray (ignored with an address). Returns the number of actors and GPUs used, and the rows
    a resumed job found done."""
    ray = _import_ray()
    remote = "://" in output
    target = output if remote else f"{output}.partial"
    done = None
    if resume and not remote:
        if Path(output).exists():  # a finished run: continued like the local engine's, new rows beside its own
            Path(output).replace(target)
        if Path(target).exists():
            done = _done_ids(Path(target))
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    # on CPUs, one is left to Ray Data's own tasks: a Parquet read lists its files in a task that needs a
    # CPU, and with every CPU held by an actor it waits for ever (seen on 2 CPUs: "ListFiles 0/1, 3/2 CPU")
    n_actors = actors or max(1, gpus or int(resources.get("CPU", 1) // cpus_per_actor) - 1)
    if gpus:  # each actor embeds on its own GPU
        spec = dataclasses.replace(spec, device="cuda")
    if not id_column or corpus_format(texts) == "text":  # numbered by the driver, done rows left out
        ds, id_column, text_column = _numbered(ray, texts, text_column, chunk_size, done), "id", "text"
    else:
        ds = _read(ray, texts)
        names = ds.schema().names
        for column in (text_column, id_column):
            if column not in names:
                raise ValueError(f"{texts}: column {column!r} not found; columns found: {', '.join(names)}")
        ds = ds.select_columns([id_column, text_column])
        if done is not None:
            ds = ds.map_batches(_not_done, fn_kwargs={"done": done, "id_column": id_column},
                                batch_format="pyarrow", **IO)
    ds = ds.map_batches(
        _Labelling, fn_constructor_kwargs={"spec": spec, "text_column": text_column, "id_column": id_column},
        batch_size=chunk_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=n_actors),
        num_cpus=cpus_per_actor, num_gpus=1 if gpus else 0)
    try:
        if ds is not None:
            ds.write_parquet(target, ray_remote_args=IO)
    except Exception as err:
        user = _user_error(err)
        if user is not None:
            raise user from None
        raise
    if not remote:
        Path(target).replace(output)
    return {"actors": n_actors, "gpus": gpus, "resumed_from": 0 if done is None else len(done)}
