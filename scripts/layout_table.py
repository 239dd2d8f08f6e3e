"""The layout as a table: each folder of the package and each module with its one-line job, read from the
first line of its docstring (so the table says what the code says).

    python scripts/layout_table.py            # the Markdown table (README.md, "Layout", between its markers)
    python scripts/layout_table.py --write    # rewrite that part of README.md

tests/test_import_graph.py checks that README.md holds the current table.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["tart", "tart/head", "tart/lm", "tart/data", "tart/tasks", "tart/corpus", "tart/methods", "tart/evaluate",
           "tart/analysis", "tart/cli", "training", "serving"]
BEGIN, END = "<!-- layout table: python scripts/layout_table.py --write -->", "<!-- end of layout table -->"


def job(path: Path) -> str:
    """The first sentence of a module's docstring, as one Markdown cell."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=[.:])\s(?=[A-Z`(])", paragraph)[0].replace("|", "\\|")


def table() -> str:
    rows = ["| folder | file | its one job |", "|---|---|---|"]
    for folder in FOLDERS:
        files = sorted((ROOT / folder).glob("*.py"), key=lambda p: (p.name != "__init__.py", p.name))
        for path in files:
            name = "" if path.name == "__init__.py" else path.name
            rows.append(f"| {'`' + folder + '/`' if not name else ''} | {name and '`' + name + '`'} | {job(path)} |")
    return "\n".join(rows)


def readme_with_table(readme: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + table() + "\n" + readme[end:]


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        path = ROOT / "README.md"
        path.write_text(readme_with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(table())
