"""The architecture's rules, checked on the source: layers import downwards only, and every package installs."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: folder -> the import name it installs under
FOLDERS = {"banditspec": "banditspec", "envs": "banditspec.envs", "baselines": "banditspec.baselines"}
#: a package -> the packages it must never import
FORBIDDEN = {
    "banditspec.bandits": ("banditspec.speculative", "banditspec.apps", "banditspec.envs", "banditspec.baselines"),
    "banditspec.speculative": ("banditspec.apps", "banditspec.envs", "banditspec.baselines"),
    "banditspec.apps": ("banditspec.envs", "banditspec.baselines"),
    "banditspec.testing": ("banditspec.apps", "banditspec.envs", "banditspec.baselines"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, name in FOLDERS.items():
        for file in (ROOT / folder).rglob("*.py"):
            parts = file.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((name, *parts))] = file
    return found


def _imports(file: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(_modules()))
def test_layers_import_downwards_only(module: str) -> None:
    imported = _imports(_modules()[module])
    for package, forbidden in FORBIDDEN.items():
        if module == package or module.startswith(package + "."):
            bad = sorted(i for i in imported for f in forbidden if i == f or i.startswith(f + "."))
            assert not bad, f"{module} imports {bad}, above its layer"
    top_level = sorted(i for i in imported if i.split(".")[0] in ("envs", "baselines"))
    assert not top_level, f"{module} imports {top_level}: they install as banditspec.envs / banditspec.baselines"


def test_every_package_is_installed() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    packages = {name for name, file in _modules().items() if file.name == "__init__.py"}
    assert listed == packages, f"setup.cfg lists {sorted(listed - packages)} too many, {sorted(packages - listed)} too few"
