"""Kill -9 a store-backed selector at random points of a long run of insertions and deletions.

A forked child opens the store and applies a deterministic sequence of operations, reporting
each operation's index through a pipe before starting it. The parent kills it with SIGKILL
(after a random delay, or the child kills itself at a chosen point: just before COMMIT or
just after it, before the WAL checkpoint), reopens the store and checks that its state is a
fresh fit of the set before or the set after the interrupted operation, that `verify()`
passes, and that no file of the store holds the text of an example that is not in it.

    python benchmarks/fault_injection.py --kills 300 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_erase.example_selectors import ERASEExampleSelector, default_example_id
from langchain_erase.storage.sqlite import SqliteBackend, _Txn

__all__ = ["FaultReport", "pool", "run_faults"]

PARAMS: dict[str, Any] = {"k": 4, "seed": 3, "epsilon": 0.25}
DIMENSION = 16
#: Where a child may kill itself (the store methods it patches), besides random timing.
KILL_POINTS = ("random", "before_commit", "after_commit")
#: A child that neither finishes its self-kill point nor is killed by then is hung.
CHILD_TIMEOUT_S = 60.0
_LOW, _HIGH = 12, 40


@dataclass
class FaultReport:
    """Figures of one run (see docs/reliability.md)."""

    kills: int
    ops_completed: int
    interrupted_before: int
    interrupted_after: int
    by_point: dict[str, int]
    seconds: float


def pool(size: int = 80) -> list[dict[str, str]]:
    """Examples whose texts are unique byte strings (so raw-file searches are exact)."""
    return [
        {"input": f"fault <{i:04d}> sample text", "output": f"label {i % 3}"} for i in range(size)
    ]


def _next_op(seed: int, step: int, present: set[str], ids: list[str]) -> tuple[str, list[str]]:
    """Operation `step`: a function of the run seed, the step and the present set only."""
    rng = random.Random(f"{seed}:{step}")
    absent = [i for i in ids if i not in present]
    grow = len(present) < _LOW or (len(present) <= _HIGH and rng.random() < 0.5)
    if grow and absent:
        return "add", rng.sample(absent, min(len(absent), rng.randint(1, 3)))
    return "delete", rng.sample(sorted(present), min(len(present), rng.randint(1, 3)))


def _apply_set(op: tuple[str, list[str]], present: set[str]) -> set[str]:
    kind, ids = op
    return present | set(ids) if kind == "add" else present - set(ids)


def _self_kill_at(point: str, after_calls: int) -> None:
    """Make the child SIGKILL itself at the `after_calls`-th pass through `point`:
    "before_commit" is after a transaction's writes (rows and change records), just before
    COMMIT; "after_commit" is after COMMIT, before the WAL checkpoint (the WAL still holds
    frames)."""
    owner: Any = _Txn if point == "before_commit" else SqliteBackend
    name = "_append" if point == "before_commit" else "_checkpoint"
    original: Callable[..., Any] = getattr(owner, name)
    calls = [0]

    def wrapper(self: Any, *args: Any) -> Any:
        calls[0] += 1
        if point == "before_commit":
            original(self, *args)
        if calls[0] > after_calls:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args) if point != "before_commit" else None

    setattr(owner, name, wrapper)


def _child(
    path: Path,
    examples: dict[str, dict[str, str]],
    seed: int,
    start: int,
    report_fd: int,
    point: str,
    after_calls: int,
) -> None:
    if point != "random":
        _self_kill_at(point, after_calls)
    ids = sorted(examples)
    selector = ERASEExampleSelector.open(path, DeterministicFakeEmbedding(size=DIMENSION))
    step = start
    while True:
        present = set(selector.ids)
        kind, op_ids = _next_op(seed, step, present, ids)
        os.write(report_fd, struct.pack("<I", step))
        if kind == "add":
            selector.add_examples([examples[i] for i in op_ids], ids=op_ids)
        elif len(op_ids) == 1:
            selector.delete_example(op_ids[0])
        else:
            selector.delete_examples(op_ids)
        step += 1


def _wait_or_kill(pid: int, timeout_s: float) -> int:
    """Wait for the child; a child still alive after `timeout_s` is hung: kill it and fail
    instead of hanging the test run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} hung for {timeout_s} s (deadlock?) and was killed")


def _run_child(
    path: Path,
    examples: dict[str, dict[str, str]],
    seed: int,
    start: int,
    point: str,
    rng: random.Random,
) -> list[int]:
    """Fork a child, let it be killed, return the indices of the operations it started."""
    read_fd, write_fd = os.pipe()
    after_calls = rng.randint(0, 6)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_fd)
        try:
            _child(path, examples, seed, start, write_fd, point, after_calls)
        finally:
            os._exit(1)
    os.close(write_fd)
    if point == "random":
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
    status = _wait_or_kill(pid, CHILD_TIMEOUT_S)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        raise AssertionError(f"child ended without being killed (status {status})")
    data = b""
    while chunk := os.read(read_fd, 65536):
        data += chunk
    os.close(read_fd)
    return [value for (value,) in struct.iter_unpack("<I", data[: len(data) // 4 * 4])]


class _FreshFits:
    """Digests of fresh fits, cached by set (the reference the store must match)."""

    def __init__(self, examples: dict[str, dict[str, str]]) -> None:
        self.examples = examples
        self.cache: dict[frozenset[str], str] = {}

    def digest(self, ids: frozenset[str]) -> str:
        if ids not in self.cache:
            chosen = sorted(ids)
            selector = ERASEExampleSelector.from_examples(
                [self.examples[i] for i in chosen],
                DeterministicFakeEmbedding(size=DIMENSION),
                ids=chosen,
                **PARAMS,
            )
            self.cache[ids] = selector.state_digest()
        return self.cache[ids]


def _leaked(directory: Path, examples: dict[str, dict[str, str]], absent: set[str]) -> list[str]:
    blobs = [f.read_bytes() for f in directory.iterdir() if f.is_file()]
    return [i for i in absent if any(examples[i]["input"].encode() in blob for blob in blobs)]


def run_faults(kills: int, seed: int = 0, directory: Path | None = None) -> FaultReport:
    """Run `kills` kill points; raise AssertionError at the first violated guarantee."""
    started = time.perf_counter()
    rng = random.Random(seed)
    examples = {default_example_id(e): e for e in pool()}
    fresh = _FreshFits(examples)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "selector.db"
        ERASEExampleSelector.open(
            path, DeterministicFakeEmbedding(size=DIMENSION), **PARAMS
        ).close()
        present: set[str] = set()
        step = 0
        report = FaultReport(kills, 0, 0, 0, dict.fromkeys(KILL_POINTS, 0), 0.0)
        ids = sorted(examples)
        for _ in range(kills):
            point = rng.choice(KILL_POINTS)
            report.by_point[point] += 1
            started_ops = _run_child(path, examples, seed, step, point, rng)
            last = started_ops[-1] if started_ops else None
            for done in range(step, step if last is None else last):  # completed ops
                present = _apply_set(_next_op(seed, done, present, ids), present)
            before = present
            after = (
                before if last is None else _apply_set(_next_op(seed, last, before, ids), before)
            )
            selector = ERASEExampleSelector.open(path, DeterministicFakeEmbedding(size=DIMENSION))
            try:
                state = frozenset(selector.ids)
                if state not in (before, after):
                    raise AssertionError(f"kill {report.kills}: state is neither before nor after")
                if selector.state_digest() != fresh.digest(state):
                    raise AssertionError("reopened digest differs from a fresh fit of its set")
                if not selector.verify():
                    raise AssertionError("verify() failed after reopening")
            finally:
                selector.close()
            leaked = _leaked(Path(tmp), examples, set(examples) - state)
            if leaked:
                raise AssertionError(f"deleted examples still in the store files: {leaked}")
            if last is not None:
                committed = state == after and after != before
                report.ops_completed += last - step + committed
                report.interrupted_after += committed
                report.interrupted_before += not committed
                step = last + 1 if committed else last
            present = set(state)
        report.seconds = time.perf_counter() - started
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(asdict(run_faults(args.kills, args.seed)), indent=2))


if __name__ == "__main__":
    main()
