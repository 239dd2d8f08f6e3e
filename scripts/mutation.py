"""Mutation testing of the modules where a wrong answer would hide (issue 28), one mutant at a time.

Why a driver of our own instead of `mutmut run`: mutmut 3 copies the code into `mutants/` and puts that
folder first on sys.path, which works for `tart/...` but not for `serving/` (installed as `tart.serving`
through the editable install's package-dir mapping, so the tests would import the unmutated copy), and
its stats run walks the whole suite. This driver uses mutmut's own mutation generation
(`mutmut.mutation.file_mutation.create_mutations`: the same operators, the same `# pragma: no mutate`
handling, mutations inside functions and methods as mutmut makes them) and runs each mutant like this:

- the working tree is never written: the mutated source is served by an import hook (a meta-path
  finder placed first, compiling the mutated text under the real file name) in a forked child, so the
  other people working in the same tree never see a mutated file and nothing can be left behind;
- the parent imports the heavy third-party modules once (torch, numpy, scikit-learn, pytest), and each
  child runs `pytest.main(<the module's targeted tests> -x -q -p no:cacheprovider)` with a timeout;
- a mutant is killed when the tests fail (any exit status but 0 and 5), survives when they pass, and
  is a timeout when the child runs past the limit (counted as killed, as mutmut does);
- before the mutants: the clean tests must pass, and a canary mutant (the module raising on import)
  must be killed, which proves that the tests import the mutated code.

Tests that start a subprocess (tests/test_batch.py's SIGKILL-and-resume test) cannot see a mutant
and are deselected for the run.

Usage (one worker, nice, HF offline):
    HF_HUB_OFFLINE=1 nice -n 10 python scripts/mutation.py all --phase before --sample 40 --tests-from <rev>
    HF_HUB_OFFLINE=1 nice -n 10 python scripts/mutation.py all --phase after --sample 40
Writes results/mutation/<module>.json (one entry per phase: total, killed, survived, timeout, score,
and each survivor's line and diff).
"""
from __future__ import annotations

import argparse
import difflib
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "mutation"
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-m", "not slow"]

# module key: (file, the names it is imported under, targeted tests)
MODULES = {
    "projection": ("tart/head/projection.py", ["tart.head.projection"],
                   ["tests/test_inference.py",
                    "tests/test_prior.py::test_training_projects_through_the_inference_projection",
                    "tests/test_prior.py::test_relevance_power_puts_the_signal_where_the_projection_keeps_it"]),
    "ensemble": ("tart/head/ensemble.py", ["tart.head.ensemble"],
                 ["tests/test_inference.py", "tests/test_classifier.py"]),
    "classifier": ("tart/classifier.py", ["tart.classifier"],
                   ["tests/test_classifier.py", "tests/test_label_names.py"]),
    "output": ("tart/corpus/output.py", ["tart.corpus.output"],
               ["tests/test_batch.py", "--deselect",
                "tests/test_batch.py::test_sigkill_half_way_then_resume_gives_one_row_per_id"]),
    "cost": ("serving/cost.py", ["tart.serving.cost", "serving.cost"], ["tests/test_serving_cost.py"]),
    "store": ("serving/store.py", ["tart.serving.store", "serving.store"], ["tests/test_serving_store.py"]),
}


def generate(path: Path) -> list[dict]:
    """mutmut's mutants of the file: [{line, col, diff, source}] in source order."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider
    from mutmut.mutation.file_mutation import create_mutations, deep_replace

    code = path.read_text()
    module, mutations, _, _ = create_mutations(str(path), code)
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    out = []
    for m in mutations:
        if m.contained_by_top_level_function is None:  # mutmut mutates functions and methods only
            continue
        mutated = deep_replace(module, m.original_node, m.mutated_node)
        assert isinstance(mutated, cst.Module)
        source = mutated.code
        if source == code:
            continue
        pos = positions.get(m.original_node)
        diff = "".join(difflib.unified_diff(code.splitlines(True), source.splitlines(True), n=0))
        diff = "\n".join(line for line in diff.splitlines() if not line.startswith(("---", "+++", "@@")))
        out.append({"line": pos.start.line if pos else None, "col": pos.start.column if pos else None,
                    "diff": diff, "source": source})
    return out


class _Finder(importlib.abc.MetaPathFinder):
    """Serves `source` for the target module names, compiled under the real file name (never a .pyc)."""

    def __init__(self, names: list[str], path: Path, source: str):
        self.names, self.path, self.source = set(names), path, source

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names:
            return None
        loader = _Loader(fullname, str(self.path), self.source)
        return importlib.util.spec_from_file_location(fullname, str(self.path), loader=loader)


class _Loader(importlib.abc.Loader):
    def __init__(self, name: str, path: str, source: str):
        self.name, self.path, self.source = name, path, source

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__file__ = self.path
        exec(compile(self.source, self.path, "exec", dont_inherit=True), module.__dict__)


def run_one(names: list[str], path: Path, source: str | None, test_args: list[str], timeout: float,
            record: str | None = None, cwd: Path | None = None, killed_by: str | None = None) -> tuple[str, float]:
    """Fork; the child runs the tests against `source` (None: the real file). ('passed'|'failed'|'timeout'|
    'no tests', seconds)."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            os.setpgid(0, 0)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.dont_write_bytecode = True
            if cwd is not None:  # the tests of another revision (--tests-from)
                os.chdir(cwd)
            for name in names:
                assert name not in sys.modules, f"{name} imported before the mutant was installed"
            if source is not None:
                sys.meta_path.insert(0, _Finder(names, path, source))
            import pytest

            class Killers:  # the tests that failed, for the record (a kill by an unrelated test is suspect)
                failed: list[str] = []

                def pytest_runtest_logreport(self, report):
                    if report.failed:
                        self.failed.append(report.nodeid)

                def pytest_collectreport(self, report):  # the mutant breaks an import: collection fails
                    if report.failed:
                        self.failed.append(f"collecting {report.nodeid}")

            killers = Killers()
            code = int(pytest.main(PYTEST_ARGS + test_args, plugins=[killers]))
            if killed_by is not None:
                Path(killed_by).write_text("\n".join(killers.failed))
            if record is not None:
                Path(record).write_text("\n".join(sorted(sys.modules)))
        finally:
            os._exit(code)
    deadline = start + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - start
        time.sleep(0.05)
    seconds = time.monotonic() - start
    if code == 0:
        return "passed", seconds
    if code == 5:
        return "no tests", seconds
    return "failed", seconds


OWN = ("tart", "serving", "training", "tests", "conftest", "test_", "local_server", "__main__", "__mp_main__")


def preload(modules: list[str]) -> None:
    """Import in this (the parent) process the third-party modules the tests imported, so that each
    forked child only imports the project's own modules (which may depend on the one under test)."""
    import importlib
    for name in modules:
        if name.startswith(OWN) or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a module that cannot be imported this way is just not preloaded
            pass
    leaked = [n for n in sys.modules if n.split(".")[0] in ("tart", "serving")]
    for n in leaked:  # a third-party module that imported the project (a plugin): keep the children clean
        del sys.modules[n]


def tests_of(rev: str) -> Path:
    """tests/ as of git revision `rev`, in mutants/tests-<rev>/tests (git-ignored), for a BEFORE run that
    the tests being written in the working tree must not touch."""
    import subprocess
    commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    where = ROOT / "mutants" / f"tests-{commit}"
    if not (where / "tests").is_dir():
        where.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "tests"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


def run_module(key: str, phase: str, limit: int | None = None, sample: int | None = None, seed: int = 0,
               tests_from: str | None = None) -> dict:
    rel, names, test_args = MODULES[key]
    path = ROOT / rel
    cwd = tests_of(tests_from) if tests_from else None
    mutants = generate(path)
    population = len(mutants)
    for i, m in enumerate(mutants):
        m["index"] = i
    if sample is not None and sample < len(mutants):  # the same sample each run while the file is unchanged
        import random
        mutants = [mutants[i] for i in sorted(random.Random(seed).sample(range(len(mutants)), sample))]
    mutants = mutants[:limit]
    import tempfile
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as record:
        status, _ = run_one(names, path, None, test_args, timeout=600, record=record.name, cwd=cwd)
        if status != "passed":
            raise SystemExit(f"{key}: the clean tests did not pass ({status})")
        preload(record.read().split())
    status, clean_s = run_one(names, path, None, test_args, timeout=600, cwd=cwd)  # timed with the preloads
    canary = path.read_text() + "\nraise RuntimeError('mutation canary')\n"
    status, _ = run_one(names, path, canary, test_args, timeout=600, cwd=cwd)
    if status != "failed":
        raise SystemExit(f"{key}: the canary mutant was not killed ({status}): the tests do not import the mutant")
    timeout = max(15.0, 5 * clean_s)
    counts = {"killed": 0, "survived": 0, "timeout": 0, "no tests": 0}
    survivors, kills = [], []
    import tempfile
    for i, m in enumerate(mutants):
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as failed:
            status, seconds = run_one(names, path, m["source"], test_args, timeout, cwd=cwd, killed_by=failed.name)
            killer = failed.read().split()
        kind = {"failed": "killed", "passed": "survived"}.get(status, status)
        counts[kind] += 1
        if kind != "killed":
            survivors.append({"index": m["index"], "line": m["line"], "col": m["col"], "status": kind,
                              "diff": m["diff"]})
        else:
            kills.append({"index": m["index"], "line": m["line"], "killed_by": killer[:1]})
        print(f"[{key} {i + 1}/{len(mutants)}] line {m['line']}: {kind} ({seconds:.1f}s) {' '.join(killer[:1])}",
              flush=True)
    # the tree is shared: if the clean tests no longer pass (someone's edit elsewhere), the kills are suspect
    clean_at_end, _ = run_one(names, path, None, test_args, timeout=600, cwd=cwd)
    total = len(mutants)
    result = {"file": rel, "tests": test_args, "tests_from": tests_from or "working tree", "mutants_in_file": population,
              "sample": {"size": sample, "seed": seed} if sample is not None and sample < population else None,
              "total": total, "killed": counts["killed"],
              "survived": counts["survived"], "timeout": counts["timeout"], "no_tests": counts["no tests"],
              "score": round((counts["killed"] + counts["timeout"]) / total, 4) if total else None,
              "clean_seconds": round(clean_s, 1), "clean_tests_at_end": clean_at_end,
              "kills": kills,
              "survivors": [s for s in survivors if s["status"] != "timeout"]}
    OUT.mkdir(parents=True, exist_ok=True)
    out_path = OUT / f"{key}.json"
    data = json.loads(out_path.read_text()) if out_path.exists() else {}
    data[phase] = result
    out_path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{key} ({phase}): {result['killed']} killed + {result['timeout']} timeout / {total}, "
          f"{result['survived']} survived, score {result['score']}", flush=True)
    return result


def report() -> str:
    """The per-module table of results/mutation/*.json (before, after, and an after run on a fresh sample
    where there is one), as markdown."""
    lines = ["| module | file | before: killed / sampled | after: killed / sampled | after, fresh sample | "
             "fresh sample, rerun | surviving after (lines) |", "|---|---|---|---|---|---|---|"]
    for key, (rel, _, _) in MODULES.items():
        path = OUT / f"{key}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        cells = []
        for phase in ("before", "after", "after_fresh_sample", "after_fresh_sample_rerun"):
            r = data.get(phase)
            cells.append("-" if r is None else
                         f"{r['killed'] + r['timeout']} / {r['total']} ({100 * r['score']:.1f} %)")
        where = ", ".join(str(s["line"]) for s in (data.get("after") or {}).get("survivors", [])) or "-"
        lines.append(f"| {key} | {rel} | {' | '.join(cells)} | {where} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module", choices=[*MODULES, "all"])
    ap.add_argument("--phase", default="after", help="the key the results are stored under (before / after)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N mutants (a quick check)")
    ap.add_argument("--sample", type=int, default=None, help="a random sample of N mutants per module")
    ap.add_argument("--seed", type=int, default=0, help="the sample's seed")
    ap.add_argument("--tests-from", default=None, metavar="REV",
                    help="run the tests as of this git revision (e.g. HEAD for a BEFORE run while tests change)")
    ap.add_argument("--list", action="store_true", help="print the mutants and run nothing")
    ap.add_argument("--report", action="store_true", help="print the table of the stored results")
    args = ap.parse_args()
    keys = list(MODULES) if args.module == "all" else [args.module]
    if args.report:
        print(report())
        return
    if args.list:
        for key in keys:
            for i, m in enumerate(generate(ROOT / MODULES[key][0])[:args.limit]):
                print(f"{key} #{i} line {m['line']}:\n{m['diff']}\n")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # tests/conftest.py puts caches beside the tests it runs from: keep them in this checkout's (--tests-from)
    os.environ.setdefault("TART_CACHE_DIR", str(ROOT / ".cache" / "tart"))
    os.environ.setdefault("BENTOML_HOME", str(ROOT / ".cache" / "bentoml"))
    os.chdir(ROOT)
    # the heavy third-party imports, once, before the forks (never a module under test)
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import torch
    torch.set_num_threads(1)
    for key in keys:
        run_module(key, args.phase, args.limit, args.sample, args.seed, args.tests_from)


if __name__ == "__main__":
    main()
