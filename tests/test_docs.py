"""The README's Python examples run, in order, in one namespace, from an empty folder with a fresh
task store, and print what the ```text block right after each shows (numbers within 0.02: embedder
arithmetic differs a little between CPUs)."""
import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```python\n(.*?)```\s*```text\n(.*?)```", re.S)
NUMBER = re.compile(r"-?\d+\.\d+")


def examples(path: Path) -> list[tuple[str, str]]:
    """(code, expected output) for every python block followed directly by a text block."""
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def same_output(got: str, want: str, tol: float = 0.02) -> bool:
    if NUMBER.sub("#", got.strip()) != NUMBER.sub("#", want.strip()):
        return False
    return all(abs(float(a) - float(b)) <= tol for a, b in zip(NUMBER.findall(got), NUMBER.findall(want)))


def test_readme_examples_print_what_they_show(tmp_path, monkeypatch):
    blocks = examples(ROOT / "README.md")
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # an empty folder: the shipped head must resolve from the package
    monkeypatch.setenv("TART_STORE_PATH", str(tmp_path / "tasks.sqlite3"))
    monkeypatch.delenv("TART_EMBED_BACKEND", raising=False)  # the default backend (auto), as a reader runs them
    namespace: dict = {}
    for code, want in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), namespace)
        assert same_output(out.getvalue(), want), f"README block printed:\n{out.getvalue()}\nit shows:\n{want}"


@pytest.mark.parametrize("got, want, same", [("[[0.66 0.34]]", "[[0.66 0.34]]", True),
                                              ("[[0.67 0.33]]", "[[0.66 0.34]]", True),
                                              ("[[0.70 0.30]]", "[[0.66 0.34]]", False),
                                              ("['food' 'food']", "['animal' 'food']", False)])
def test_output_comparison(got, want, same):
    assert same_output(got, want) is same


def test_ci_runs_the_readmes_test_command_then_the_slow_tests():
    """.ci/run calls the README's test command first, then the slow tests; the README names both."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.findall(r"^run (python -m pytest[^|]*?) \|\|", ci, re.M) == [
        "python -m pytest -q", "python -m pytest -q -m slow"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "The test command is `python -m pytest -q`" in readme and "`python -m pytest -q -m slow`" in readme
