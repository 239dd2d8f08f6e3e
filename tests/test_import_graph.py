"""The package's import graph (scripts/import_graph.py): no cycle, the library never imports the
analyses or the CLI, the analyses never import the CLI, nothing imports the generic top-level names `training` / `serving`, and
`tart --help` loads no torch."""
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
ig = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ig)


def test_no_cycle_and_no_arrow_from_library_into_tools():
    edges = ig.graph()
    assert "tart.methods" in edges and "tart.evaluate.runner" in edges and "tart.serving.store" in edges
    assert "tart.methods" in edges["tart.evaluate.runner"]  # the harness uses the one registry
    assert "tart.methods" in edges["tart.analysis.models"]  # and so do the analyses
    assert ig.cycles(edges) == []
    assert ig.bad_arrows(edges) == []
    assert ig.generic_imports() == []


def test_the_checks_catch_what_they_look_for():
    assert ig.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert ig.bad_arrows({"tart.evaluate.runner": {"tart.analysis.models"}, "tart.cli.evaluate": {"tart.methods"},
                          "tart.analysis.slices": {"tart.cli.args"}, "tart.cli.analyze_slices": {"tart.analysis.slices"}}) \
        == [("tart.evaluate.runner", "tart.analysis.models"), ("tart.analysis.slices", "tart.cli.args")]
    # the foundations (head, language models, data, tasks) never import what is built on them
    assert ig.bad_arrows({"tart.head.ensemble": {"tart.classifier", "tart.head.model"}, "tart.lm.embedder": {"tart.serving.cost"},
                          "tart.corpus.job": {"tart.lm.embedder"}}) \
        == [("tart.head.ensemble", "tart.classifier"), ("tart.lm.embedder", "tart.serving.cost")]


def test_committed_import_graph_is_the_current_one():
    """results/import-graph.txt is regenerated with the code (`python scripts/import_graph.py > results/import-graph.txt`)."""
    edges = ig.graph()
    lines = [f"{a} -> {b}" for a, targets in edges.items() for b in sorted(targets)]
    assert (ROOT / "results" / "import-graph.txt").read_text().splitlines() == lines


def test_cli_help_imports_no_torch():
    code = "import sys; from tart.cli import build_parser; build_parser(); print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_pyproject_lists_every_package():
    """pyproject.toml names the packages (the mapping needs it): a new subpackage must be added there,
    or a non-editable install silently leaves it out."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {name for name, path in ig.modules().items() if path.name == "__init__.py"}
    assert found <= listed, sorted(found - listed)


def test_readme_layout_table_is_the_current_one():
    """README.md's table of modules and their jobs is generated from the docstrings (scripts/layout_table.py)."""
    spec = importlib.util.spec_from_file_location("layout_table", ROOT / "scripts" / "layout_table.py")
    layout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert layout.readme_with_table(readme) == readme, "run: python scripts/layout_table.py --write"
    assert "| `tart/head/` |" in readme and "`embedder_client.py`" in readme
