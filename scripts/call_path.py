"""Which of the project's files a request or a call goes through, in order: measured, not read.

    python scripts/call_path.py --json results/layout/call-paths.json

Runs, in this process: `POST /classify` and `POST /tasks/classify` on the service (in-process through
Starlette's test client, the embedding worker local), the library's `fit` + `predict_proba` on texts, and
`tart classify` on a small corpus. A profiler records every call whose code is in this repository's
packages (tart/, serving/, training/) whose nearest caller in those packages is another file (or none: a
worker thread's first call): a file's `visits` is how many times control entered it from another of the
project's files. Calls within a file, also through a library in between (torch calling a module's
`forward`), do not count. Warm-up runs first, so what is loaded once is not counted.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = tuple(str(ROOT / name) + os.sep for name in ("tart", "serving", "training"))


class Recorder:
    """Entries into repository files from other files, while `recording` is set."""

    def __init__(self):
        self.recording = False
        self.visits: list[str] = []

    def profile(self, frame, event, arg):
        if event != "call" or not self.recording:
            return
        path = frame.f_code.co_filename
        if not path.startswith(PACKAGES):
            return
        caller = frame.f_back
        while caller is not None and not caller.f_code.co_filename.startswith(PACKAGES):
            caller = caller.f_back  # through torch, asyncio, starlette... to the project's code that called
        if caller is None or caller.f_code.co_filename != path:
            self.visits.append(os.path.relpath(path, ROOT))

    def measure(self, run) -> dict:
        self.visits, self.recording = [], True
        try:
            run()
        finally:
            self.recording = False
        order = list(dict.fromkeys(self.visits))
        return {"files": order, "n_files": len(order), "visits": {f: self.visits.count(f) for f in order},
                "sequence": self.visits}


def _service(recorder: Recorder, tmp: Path) -> dict:
    import torch
    from starlette.testclient import TestClient

    os.environ.update({"TART_STORE_PATH": str(tmp / "tasks.sqlite3"), "TART_CONFIG": "", "BENTOML_DO_NOT_TRACK": "true"})
    import tart.serving.service as service

    service = importlib.reload(service)
    examples = [{"text": t, "label": y} for t, y in [("the striker scored a goal", "sport"), ("the team won the cup", "sport"),
                                                     ("the chef baked bread", "food"), ("rice and beans for dinner", "food")]]
    texts = ["a penalty in the final minute", "soup with fresh herbs"]
    threads = torch.get_num_threads()
    out = {}
    with TestClient(service.Tart.to_asgi()) as client:
        def classify():
            r = client.post("/classify", json={"examples": examples, "texts": texts})
            assert r.status_code == 200, r.text
        task_id = client.post("/tasks/create", json={"name": "sport-food", "examples": examples}).json()["id"]

        def classify_task():
            r = client.post("/tasks/classify", json={"task_id": task_id, "texts": texts})
            assert r.status_code == 200, r.text
        classify(), classify_task()  # warm-up: models and caches loaded once
        out["POST /classify"] = recorder.measure(classify)
        out["POST /tasks/classify"] = recorder.measure(classify_task)
    torch.set_num_threads(threads)
    return out


def _library(recorder: Recorder) -> dict:
    from tart import TartClassifier

    X, y = ["the striker scored a goal", "the team won the cup", "the chef baked bread", "rice and beans"], \
        ["sport", "sport", "food", "food"]
    TartClassifier().fit(X, y).predict_proba(["a penalty"])  # warm-up
    return {"TartClassifier.fit + predict_proba (texts)":
            recorder.measure(lambda: TartClassifier().fit(X, y).predict_proba(["a penalty", "soup"]))}


def _corpus_job(recorder: Recorder, tmp: Path) -> dict:
    from tart.cli import main

    (tmp / "examples.csv").write_text("text,label\nthe striker scored a goal,sport\nthe team won the cup,sport\n"
                                      "the chef baked bread,food\nrice and beans for dinner,food\n")
    (tmp / "texts.csv").write_text("id,text\n1,a penalty in the final minute\n2,soup with fresh herbs\n")

    def run(name: str):
        main(["classify", "--examples", str(tmp / "examples.csv"), "--texts", str(tmp / "texts.csv"),
              "--id-column", "id", "--output", str(tmp / f"{name}.jsonl")])
    run("warm-up")
    return {"tart classify": recorder.measure(lambda: run("labels"))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    recorder = Recorder()
    sys.setprofile(recorder.profile)
    threading.setprofile(recorder.profile)
    with tempfile.TemporaryDirectory() as tmp:
        report = {**_service(recorder, Path(tmp)), **_library(recorder), **_corpus_job(recorder, Path(tmp))}
    sys.setprofile(None)
    threading.setprofile(None)
    for name, path in report.items():
        print(f"{name}: {path['n_files']} files; entered more than once: "
              f"{ {f: n for f, n in path['visits'].items() if n > 1} }")
        print("  " + " -> ".join(path["files"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
