"""Packaging: the package, its local models included, imports and runs without
langchain-community (only the eval extra, and the tests, need it), and the version comes from
the distribution's metadata."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import tomllib

import langchain_erase

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: a meta-path finder refuses langchain_community, as if it were
# not installed, then the package and everything it exports must still import.
_BLOCKED_IMPORT = """
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "langchain_community" or name.startswith("langchain_community."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
import langchain_erase
from langchain_erase import caches, cli, embeddings, evaluation, example_selectors, llms
for name in langchain_erase.__all__:
    getattr(langchain_erase, name)
print("wrapper:", type(llms.local_chat_model("smollm2-135m", n_ctx=64)).__name__)
assert not any(m.startswith("langchain_community") for m in sys.modules)
print("ok")
"""


def test_package_imports_without_langchain_community() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == ["wrapper: ChatLocalLlamaCpp", "ok"], result.stdout


def test_wrappers_import_without_the_sunset_warning() -> None:
    def run(module: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-W", "error::DeprecationWarning", "-c", f"import {module}"]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)

    assert run("langchain_community").returncode != 0  # the warning this test is about
    result = run("langchain_erase.models.local_models")
    assert result.returncode == 0, result.stderr


def test_version_comes_from_distribution_metadata() -> None:
    assert langchain_erase.__version__ == version("langchain-erase")


def test_langchain_community_is_only_in_the_extras_that_use_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {r.split(">")[0].split("<")[0].split("=")[0].strip() for r in requirements}

    assert "langchain-community" not in names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert {e for e, reqs in extras.items() if "langchain-community" in names(reqs)} == {
        "eval",
        "test",
    }
