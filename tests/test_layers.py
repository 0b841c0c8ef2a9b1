"""The package's layers: each sub-package imports only the layers below it.

Every module of the package is read (all of them, found by walking the tree, so a new
module is checked without being listed) and each ``import`` statement, also those inside
functions, is checked against the layer table.
"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

import langchain_erase
from langchain_erase._moved import MOVED

PACKAGE = Path(langchain_erase.__file__).parent

#: Layer (a sub-package, or "" for the top-level modules) -> the langchain_erase modules
#: and packages it may import. Outside libraries are free unless listed in FORBIDDEN.
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": ("core", "errors"),
    "storage": ("storage", "errors"),
    "replication": ("replication", "storage", "core", "errors"),
    "models": ("models", "errors"),
    "selector": (
        "selector",
        "replication",
        "storage",
        "core",
        "errors",
        "inputs",
        "receipts",
        "selections",
    ),
}
#: Outside libraries a layer must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("langchain_core", "langchain_community", "langchain"),
    "storage": ("langchain_core", "langchain_community", "langchain"),
    "replication": ("langchain_core", "langchain_community", "langchain"),
}
#: Layers nothing below the top may import.
TOP = ("cli", "evaluation")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer(source: Path) -> str:
    parts = source.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def _imports(source: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "langchain_erase":
                names.extend(f"langchain_erase.{alias.name}" for alias in node.names)
    return names


def _target(name: str) -> str | None:
    """The first component under langchain_erase (module or sub-package), else None."""
    parts = name.split(".")
    if parts[0] != "langchain_erase" or len(parts) < 2:
        return None
    return parts[1]


@pytest.mark.parametrize("source", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_layers_below(source: Path) -> None:
    layer = _layer(source)
    for name in _imports(source):
        target = _target(name)
        root = name.split(".")[0]
        assert root not in FORBIDDEN.get(layer, ()), (layer, name)
        if target is None:
            continue
        if layer in ALLOWED:
            assert target in ALLOWED[layer], f"{source.name} ({layer}) imports {name}"
        elif layer not in TOP:
            assert target not in TOP, f"{source.name} ({layer or 'top'}) imports {name}"
        if layer == "evaluation":
            assert target != "cli", f"{source.name} imports {name}"


def test_the_walk_sees_every_layer() -> None:
    layers = {_layer(source) for source in _modules()}
    assert {
        "",
        "core",
        "storage",
        "replication",
        "models",
        "selector",
        "evaluation",
        "cli",
    } <= layers


def test_the_check_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from langchain_erase.inputs import parse_example\n")
    assert "langchain_erase.inputs" in _imports(bad)
    assert _target("langchain_erase.inputs") not in ALLOWED["replication"]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_moved_modules_keep_their_old_import_path(old: str) -> None:
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


@pytest.mark.parametrize("source", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_evaluation_imports_langchain_community(source: Path) -> None:
    # langchain-community is archived upstream: it stays only where it is the comparison
    if _layer(source) == "evaluation":
        return
    assert not [n for n in _imports(source) if n.split(".")[0] == "langchain_community"]
