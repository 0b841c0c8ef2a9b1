"""Selectors sharing one example set on a real PostgreSQL server: exactness against a fresh
fit, several processes, racing writers, catch-up, a server restart, erasure and the
hardening rules (refused adds, model fingerprint, fork, ids in messages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from langchain_core.embeddings import Embeddings
from pg_helpers import PgTestServer, create_database, key_salts
from store_helpers import examples, fake, race_to_delete

from langchain_erase.errors import (
    DuplicateExampleError,
    EmbeddingModelMismatchError,
    ForkedProcessError,
    StateFileError,
    StoreUnavailableError,
    UnknownExampleError,
)
from langchain_erase.example_selectors import ERASEExampleSelector

PARAMS: dict[str, Any] = {"k": 3, "seed": 7}
KEY = "test-log-key"
REPO = Path(__file__).resolve().parents[1]


def opened(url: str, **kwargs: Any) -> ERASEExampleSelector:
    return ERASEExampleSelector.open(url, fake(), log_key=KEY, **{**PARAMS, **kwargs})


def fresh(selector: ERASEExampleSelector) -> ERASEExampleSelector:
    """The in-memory selector fitted from scratch on the selector's surviving examples."""
    ids = selector.ids
    return ERASEExampleSelector.from_examples(
        [selector.get_example(i) for i in ids], fake(), ids=ids, **PARAMS
    )


QUERIES = [{"input": f"<ex-{i:04d}> some words"} for i in range(0, 60, 7)]


def selections(selector: ERASEExampleSelector) -> list[list[dict[str, Any]]]:
    return [selector.select_examples(q) for q in QUERIES]


def test_two_selectors_on_one_set_equal_a_fresh_fit_after_every_change(
    postgres_url: str,
) -> None:
    a, b = opened(postgres_url), opened(postgres_url)
    rng = np.random.default_rng(11)
    pool = examples(60)
    added: list[str] = []
    for step in range(24):
        writer, reader = (a, b) if step % 2 else (b, a)
        if added and rng.random() < 0.4:
            victims = [added.pop(int(rng.integers(len(added)))) for _ in range(2)][: len(added)]
            for victim in victims:
                writer.delete_example(victim)
        else:
            batch = [pool.pop() for _ in range(int(rng.integers(1, 5)))]
            added += writer.add_examples(batch)
        reference = fresh(writer)
        assert selections(reader) == selections(reference)  # strong: caught up first
        assert reader.state_digest() == writer.state_digest() == reference.state_digest()
        assert reader.log_position == writer.log_position
    assert a.verify() and b.verify() and a.consistency_repairs == b.consistency_repairs == 0
    a.close()
    b.close()


WORKER = """
import json, sys
import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_erase.errors import UnknownExampleError
from langchain_erase.example_selectors import ERASEExampleSelector
url, tag = sys.argv[1], sys.argv[2]
s = ERASEExampleSelector.open(url, DeterministicFakeEmbedding(size=16), log_key="test-log-key",
                              k=3, seed=7)
rng = np.random.default_rng(abs(hash(tag)) % 1000)
added, deleted = [], []
for i in range(int(sys.argv[3])):
    if added and rng.random() < 0.35:
        victim = added.pop(int(rng.integers(len(added))))
        s.delete_example(victim)
        deleted.append(victim)
    else:
        added += s.add_examples([{"input": f"<{tag}-{i:04d}> words", "output": "x"}])
    s.select_examples({"input": f"<{tag}-{i:04d}> words"})
    assert s.state_digest() == s.store.head()[1] or s.log_position < s.store.head()[0]
print(json.dumps({"added": added, "deleted": deleted, "digest": s.state_digest(),
                  "position": s.log_position}))
s.close()
"""


def run_workers(url: str, count: int, steps: int) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, f"w{n}", str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(count)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_several_processes_writing_at_once_lose_nothing_and_agree(postgres_url: str) -> None:
    results = run_workers(postgres_url, count=3, steps=25)
    survivors = sorted(i for r in results for i in r["added"])
    check = opened(postgres_url)
    assert check.ids == survivors  # every committed add and delete of every process is there
    assert check.verify() and check.state_digest() == fresh(check).state_digest()
    assert check.log_position == sum(len(r["added"]) + 2 * len(r["deleted"]) for r in results)
    check.close()


def test_two_selectors_racing_to_delete_one_id(postgres_url: str) -> None:
    a = opened(postgres_url)
    [victim] = a.add_examples(examples(1))
    a.add_examples(examples(8, "other"))
    selectors = [a, opened(postgres_url)]
    outcomes = race_to_delete(lambda s: s.delete_example(victim), selectors)
    assert outcomes == ["deleted", "unknown"]
    for selector in selectors:
        selector.sync()
        assert victim not in selector and selector.state_digest() == fresh(selector).state_digest()
        selector.close()


def test_a_selector_that_was_idle_catches_up_on_10000_changes(postgres_url: str) -> None:
    idle, busy = opened(postgres_url), opened(postgres_url)
    ids: list[str] = []
    for batch in range(6):
        ids += busy.add_examples(examples(1000, f"b{batch}"))
    for start in range(0, 4000, 1000):
        busy.delete_examples(ids[start : start + 1000])
    assert busy.log_position == 10_000
    started = time.perf_counter()
    assert idle.sync() == 10_000
    seconds = time.perf_counter() - started
    print(f"catch-up of 10,000 changes on PostgreSQL: {seconds:.2f} s")
    assert idle.state_digest() == busy.state_digest() == fresh(idle).state_digest()
    assert idle.consistency_repairs == 0
    idle.close()
    busy.close()


def test_a_server_restart_never_loses_a_change_nor_leaves_a_selector_stale(
    pg_server: PgTestServer,
) -> None:
    url = create_database(pg_server.url())
    a, b = opened(url), opened(url)
    ids = a.add_examples(examples(20))
    b.delete_example(ids[0])
    pg_server.kill_and_restart()  # crash: every pooled connection of both selectors dies
    assert all(ids[0] not in [e["input"] for e in sel] for sel in selections(a))
    assert ids[0] not in a and a.state_digest() == b.state_digest()
    pg_server.stop_server()
    try:
        with pytest.raises(StoreUnavailableError):
            a.select_examples(QUERIES[0])  # a strong read cannot check the head: typed error
        with pytest.raises(StoreUnavailableError):
            b.delete_example(ids[1])
    finally:
        pg_server.start_server()
    assert ids[1] in a and ids[1] in b  # the refused deletion changed nothing
    a.delete_example(ids[2])
    assert ids[2] not in b.ids and b.state_digest() == a.state_digest() == fresh(a).state_digest()
    assert a.verify() and b.verify()
    a.close()
    b.close()


def test_deleted_examples_leave_no_bytes_in_the_data_directory(pg_server: PgTestServer) -> None:
    url = create_database(pg_server.url())
    sel = opened(url)
    tag = os.urandom(8).hex()  # markers no other test's database holds
    huge = {"input": f"<huge-{tag}> " + os.urandom(6000).hex(), "output": "x"}  # TOAST
    ids = sel.add_examples([huge, *examples(30, tag)])
    # Rows inserted last sit lowest in their page: a page compaction would not overwrite them.
    victims = [ids[0], ids[10], ids[-2], ids[-1]]
    secrets = []
    for victim in victims:
        secrets += [
            victim.encode(),
            sel.get_example(victim)["input"][:40].encode(),
            sel.view().stored_vector(victim).astype("<f4").tobytes()[:32],
        ]
    keys = key_salts(url, "default", KEY.encode(), victims)  # what decrypts the rows
    kept = key_salts(url, "default", KEY.encode(), [ids[5]])
    assert pg_server.residue(url, secrets) == {}  # content is never stored in the clear
    receipts = [sel.delete_example(victims[0]), *sel.delete_examples(victims[1:])]
    assert all(r.position is not None for r in receipts)
    assert sel.store is not None and sel.store.complete_erasure(10)  # the eraser's work
    assert pg_server.residue(url, keys) == {}
    assert len(pg_server.residue(url, kept)) == 1  # the scan does see live keys
    sel.close()


def test_a_refused_add_leaves_nothing_on_disk(pg_server: PgTestServer) -> None:
    url = create_database(pg_server.url())
    sel = opened(url)
    sel.add_examples(examples(10))
    with psycopg.connect(url, autocommit=True) as conn:  # the log refuses the next change
        conn.execute("ALTER TABLE erase_changes ADD CONSTRAINT log_full CHECK (position <= 10)")
    refused = examples(20, "refused-" + os.urandom(8).hex())
    before = (sel.state_digest(), sel.ids)
    with pytest.raises(StateFileError):
        sel.add_examples(refused)
    assert (sel.state_digest(), sel.ids) == before and sel.verify()
    assert not sel.store or sel.store.complete_erasure(10)
    found = pg_server.residue(url, [e["input"].encode() for e in refused])
    assert found == {}
    sel.close()


class OtherModel(Embeddings):
    """Another embedding model of the same dimension (the fake's vectors, reversed)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v[::-1] for v in fake().embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        return fake().embed_query(text)[::-1]


def test_another_embedding_model_is_refused(postgres_url: str) -> None:
    opened(postgres_url).add_examples(examples(3))
    with pytest.raises(EmbeddingModelMismatchError):
        ERASEExampleSelector.open(postgres_url, OtherModel(), log_key=KEY)


def test_a_forked_child_is_refused(postgres_url: str) -> None:
    sel = opened(postgres_url)
    sel.add_examples(examples(5))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sel.select_examples(QUERIES[0])
        except ForkedProcessError:
            code = 0
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert sel.select_examples(QUERIES[0]) and sel.verify()
    sel.close()


def test_errors_do_not_print_ids(postgres_url: str) -> None:
    sel = opened(postgres_url)
    secret = "alice@example.com"
    sel.add_examples(examples(1), ids=[secret])
    with pytest.raises(DuplicateExampleError) as dup:
        sel.add_examples(examples(1, "again"), ids=[secret])
    with pytest.raises(UnknownExampleError) as unknown:
        sel.delete_example("bob@example.com")
    assert "example.com" not in str(dup.value) + str(unknown.value)
    sel.close()
