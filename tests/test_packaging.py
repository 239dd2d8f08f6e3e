"""pyproject.toml lists every importable folder of the installed packages (setuptools warns "Package would be
ignored" for one it finds but `packages` lacks, as it did for tart.data.bundled and tart.training.configs)."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_importable_folder_is_a_listed_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, dirs = set(config["packages"]), config["package-dir"]

    def folder(package: str) -> Path:  # the longest mapped prefix decides (tart.training.configs -> training/configs)
        parts = package.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in dirs:
                return ROOT / dirs[".".join(parts[:n])] / "/".join(parts[n:])
        return ROOT / "/".join(parts)

    missing = []
    for package in packages:
        for sub in folder(package).iterdir():
            if sub.is_dir() and sub.name.isidentifier() and sub.name != "__pycache__" and any(sub.iterdir()):
                if f"{package}.{sub.name}" not in packages:
                    missing.append(f"{package}.{sub.name}")
    assert not missing, f"importable folders absent from [tool.setuptools] packages: {sorted(missing)}"
