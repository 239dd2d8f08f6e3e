"""Compare two folders written by scripts/layout_outputs.sh: the corpus job's and the service's answers
byte for byte, the dev suite's rows without their timings. Prints and writes one JSON object."""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads(path.read_text())["results"]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--revisions", nargs=2, metavar=("BEFORE", "AFTER"), help="the commits the folders come from")
    args = p.parse_args()
    report = {"revisions": args.revisions} if args.revisions else {}
    report |= {name: {"before_sha256": _sha(args.before / name), "after_sha256": _sha(args.after / name),
                     "identical": _sha(args.before / name) == _sha(args.after / name)}
              for name in ("corpus.jsonl", "service.json")}
    before, after = _rows(args.before / "dev.json"), _rows(args.after / "dev.json")
    report["dev.json"] = {"rows": len(before), "methods": sorted({r["method"] for r in before}),
                          "identical_without_timings": before == after}
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    same = all(v.get("identical", v.get("identical_without_timings")) for v in report.values() if isinstance(v, dict))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
