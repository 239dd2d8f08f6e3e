"""How one method moved between two dev-suite reports of the same suite (same seeds and splits, e.g. a head
before and after a change): per embedder, task kind (text / vector) and k, the mean of the per-task paired
differences (new - old) ± one SE across tasks. Prints and writes one JSON object.

    python scripts/report_change.py OLD.json NEW.json --method "tart:tart-base,names=1,pool=1" --json F.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tart.evaluate.dev_suite import VECTOR_TASKS


def changes(old: dict, new: dict, method: str) -> list[dict]:
    if (old["seeds"], old["test_size"]) != (new["seeds"], new["test_size"]):
        raise SystemExit("the reports used other seeds or test sizes: their rows are not paired")
    before = {(r["task"], r["embedder"], r["k"]): r for r in old["results"] if r["method"] == method}
    out = []
    for embedder in new["embedders"]:
        for kind in ("text", "vector"):
            for k in sorted(new["ks"]):
                diffs = [np.mean(r["accs"]) - np.mean(before[key]["accs"]) for r in new["results"]
                         if r["method"] == method and r["k"] == k and r["embedder"] in (embedder, "none")
                         and (r["task"] in VECTOR_TASKS) == (kind == "vector")
                         and (key := (r["task"], r["embedder"], k)) in before]
                if diffs:
                    se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else None
                    out.append({"embedder": embedder, "kind": kind, "k": k, "diff": float(np.mean(diffs)),
                                "se_tasks": se, "tasks": len(diffs)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--method", required=True)
    p.add_argument("--json")
    args = p.parse_args()
    old, new = (json.loads(Path(f).read_text()) for f in (args.old, args.new))
    report = {"old": args.old, "new": args.new, "method": args.method, "changes": changes(old, new, args.method)}
    for c in report["changes"]:
        se = "" if c["se_tasks"] is None else f" ± {100 * c['se_tasks']:.1f}"
        print(f"{c['embedder']:>13} {c['kind']:>6} k={c['k']:>2}: {100 * c['diff']:+.2f}{se} ({c['tasks']} tasks)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
