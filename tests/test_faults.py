"""Kill -9 at random points of a long run of insertions and deletions (the harness is
benchmarks/fault_injection.py): every reopened state is a fresh fit of the set before or
after the interrupted operation, passes verify(), and leaks no deleted text."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_injection", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")
def test_kill_9_at_240_points_never_leaves_a_half_applied_change(tmp_path: Path) -> None:
    faults = _harness()
    report = faults.run_faults(kills=240, seed=11, directory=tmp_path)
    assert report.kills == 240
    assert all(count > 0 for count in report.by_point.values())
    # both outcomes happen: kills before COMMIT lose the operation, kills after keep it
    assert report.interrupted_before > 0 and report.interrupted_after > 0
    assert report.ops_completed > report.kills
