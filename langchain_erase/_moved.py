"""Import paths of modules that moved into sub-packages keep working.

``import langchain_erase.replica`` (and the other paths in `MOVED`) imports the module at
its new place and registers it under the old name too, so both names are the same module
object; a `DeprecationWarning` names the new path. The finder is installed by the package's
``__init__`` and resolves only the names listed here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED", "install"]

#: Old module path -> new module path.
MOVED: dict[str, str] = {
    "langchain_erase.replica": "langchain_erase.replication.replica",
    "langchain_erase.local_models": "langchain_erase.models.local_models",
    "langchain_erase.llama_locks": "langchain_erase.models.llama_locks",
    "langchain_erase.gguf_convert": "langchain_erase.models.gguf_convert",
    "langchain_erase.sisa": "langchain_erase.evaluation.sisa",
    "langchain_erase.cost": "langchain_erase.evaluation.cost",
    "langchain_erase.cli_args": "langchain_erase.cli.args",
    "langchain_erase.evaluation.cli_commands": "langchain_erase.cli.eval_commands",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self._new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self._new}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self._new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was executed under its new name."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder for moved modules on `sys.meta_path` (once)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
