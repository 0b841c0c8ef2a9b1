"""The reference service (examples/service/app.py) for real: two app instances, 4 uvicorn
workers each, on one PostgreSQL, driven over HTTP on 127.0.0.1.

Mixed requests from 4 client threads; after every DELETE response no later select from any
worker returns that example; one worker is killed with SIGKILL mid-run; at the end every
worker reports the same digest and log position, `verify()` holds, and the store holds
exactly the acknowledged changes (requests cut by the kill may have gone either way).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pg_helpers import PgTestServer, create_database

from langchain_erase import ERASEExampleSelector

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "examples" / "service"
KEY = "service-test-log-key"
WORKERS = 4
#: The issue asks for 2,000 requests; ERASE_SERVICE_REQUESTS scales it for slow machines.
REQUESTS = int(os.environ.get("ERASE_SERVICE_REQUESTS", "2000"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Instance:
    """One `uvicorn --workers 4` app instance on a free local port."""

    def __init__(self, url: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "ERASE_STORE": url,
            "ERASE_DIM": "32",
            "LANGCHAIN_ERASE_LOG_KEY": KEY,
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(APP_DIR),
                "app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(WORKERS),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A new connection per request, so the kernel spreads requests over the workers.
        with httpx.Client(base_url=self.base, timeout=60) as client:
            return client.request(method, path, **kwargs)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"uvicorn exited: {self.proc.stderr.read()[-3000:]}")
            try:
                if self.request("GET", "/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError("the service did not start")

    def every_worker(self, expected: int, verify: bool = False) -> dict[int, dict[str, Any]]:
        """Health reports until `expected` distinct workers answered (bounded)."""
        seen: dict[int, dict[str, Any]] = {}
        for _ in range(400):
            body = self.request("GET", "/health", params={"verify": verify}).json()
            seen[body["pid"]] = body
            if len(seen) >= expected:
                break
        return seen

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    server = PgTestServer.start()
    yield create_database(server.url())
    server.stop()


class Ledger:
    """What the clients were told, with the time of each answer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: dict[str, str] = {}  # id -> input text, acknowledged adds not deleted
        self.deleted_at: dict[str, float] = {}  # input text -> time its DELETE answered
        self.unknown: set[str] = set()  # ids whose request was cut (either outcome)
        self.violations: list[str] = []
        self.counts = {"select": 0, "add": 0, "delete": 0, "cut": 0}


def drive(
    instances: list[Instance], ledger: Ledger, seed: int, count: int, kill: threading.Event
) -> None:
    rng = np.random.default_rng(seed)
    for i in range(count):
        inst = instances[int(rng.integers(len(instances)))]
        roll = rng.random()
        try:
            with ledger.lock:
                victims = sorted(ledger.live)
            if roll < 0.2 and victims:
                victim = victims[int(rng.integers(len(victims)))]
                with ledger.lock:
                    if victim not in ledger.live:
                        continue
                    text = ledger.live.pop(victim)
                try:
                    r = inst.request("DELETE", f"/examples/{victim}")
                except httpx.TransportError:
                    ledger.unknown.add(victim)
                    ledger.counts["cut"] += 1
                    continue
                assert r.status_code == 200, r.text
                with ledger.lock:
                    ledger.deleted_at[text] = time.monotonic()
                    ledger.counts["delete"] += 1
            elif roll < 0.5:
                text = f"<c{seed}-{i:05d}> words {rng.integers(1000)}"
                try:
                    r = inst.request(
                        "POST", "/examples", json={"examples": [{"input": text, "output": "y"}]}
                    )
                except httpx.TransportError:
                    ledger.counts["cut"] += 1
                    continue
                assert r.status_code == 200, r.text
                with ledger.lock:
                    ledger.live[r.json()["ids"][0]] = text
                    ledger.counts["add"] += 1
            else:
                sent = time.monotonic()
                try:
                    r = inst.request("POST", "/select", json={"input": f"<c{seed}-{i:05d}>"})
                except httpx.TransportError:
                    ledger.counts["cut"] += 1
                    continue
                assert r.status_code == 200, r.text
                with ledger.lock:
                    ledger.counts["select"] += 1
                    for example in r.json()["examples"]:
                        answered = ledger.deleted_at.get(example["input"])
                        if answered is not None and answered < sent:
                            ledger.violations.append(example["input"])
        finally:
            if i == count // 2 and seed == 0:
                kill.set()


def exercise(target: str, instances_count: int, requests: int, kill_one: bool) -> None:
    """Start the instances on `target`, drive them, kill a worker (optionally), check all."""
    instances = [Instance(target) for _ in range(instances_count)]
    try:
        deadline = time.monotonic() + 180
        for inst in instances:
            inst.wait_ready(deadline)
        seeds = [{"input": f"<seed-{i}> words", "output": "x"} for i in range(40)]
        seed_ids = instances[0].request("POST", "/examples", json={"examples": seeds}).json()
        ledger = Ledger()
        ledger.live.update({i: e["input"] for i, e in zip(seed_ids["ids"], seeds, strict=True)})
        kill = threading.Event()
        victim_pid: list[int] = []

        def killer() -> None:
            kill.wait()
            pid = instances[0].request("GET", "/health").json()["pid"]
            os.kill(pid, signal.SIGKILL)
            victim_pid.append(pid)

        started = time.monotonic()
        with ThreadPoolExecutor(5) as pool:
            if kill_one:
                pool.submit(killer)
            jobs = [pool.submit(drive, instances, ledger, s, requests // 4, kill) for s in range(4)]
            for job in jobs:
                job.result()
        seconds = time.monotonic() - started
        print(f"\n{target[:10]}: {requests} requests in {seconds:.1f} s: {ledger.counts}")
        assert bool(victim_pid) == kill_one
        assert ledger.violations == []

        reports: list[dict[str, Any]] = []
        for inst in instances:
            workers = inst.every_worker(WORKERS, verify=True)
            assert len(workers) >= WORKERS - 1  # a killed worker may not be replaced
            assert not set(victim_pid) & set(workers)
            reports += workers.values()
        assert len({(r["digest"], r["position"]) for r in reports}) == 1, reports
        assert all(r["verified"] and r["consistency_repairs"] == 0 for r in reports)

        check = ERASEExampleSelector.open(target, _embeddings(), log_key=KEY)
        present = set(check.ids)
        acknowledged = set(ledger.live)
        assert acknowledged <= present  # no committed add lost
        assert not (present - acknowledged - ledger.unknown) - _cut_adds(check, ledger)
        assert check.state_digest() == reports[0]["digest"] and check.verify()
        check.close()
    finally:
        for inst in instances:
            inst.stop()


def test_two_instances_of_four_workers_on_one_postgres(service_url: str) -> None:
    exercise(service_url, instances_count=2, requests=REQUESTS, kill_one=True)


def test_one_instance_of_four_workers_on_sqlite(tmp_path: Path) -> None:
    exercise(str(tmp_path / "store.db"), instances_count=1, requests=200, kill_one=False)


def _embeddings() -> Any:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    return DeterministicFakeEmbedding(size=32)


def _cut_adds(selector: ERASEExampleSelector, ledger: Ledger) -> set[str]:
    """Ids present whose add request was cut by the kill (committed before the worker died,
    answer lost): their texts are client texts never acknowledged."""
    known = set(ledger.live.values()) | set(ledger.deleted_at)
    return {i for i in selector.ids if selector.get_example(i)["input"] not in known}
