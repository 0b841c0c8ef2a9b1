"""Run benchmarks/bench_store.py against a private local PostgreSQL 16 (pgserver).

Usage:  python benchmarks/bench_store_postgres.py [bench_store.py options, e.g. --n 2000 --out F]

Starts a throwaway server in a temporary directory (Unix socket only, deleted afterwards),
creates a database, sets a log key and passes ``--target postgresql://...`` on. To measure
another server, run bench_store.py with ``--target`` and LANGCHAIN_ERASE_LOG_KEY yourself.
"""

from __future__ import annotations

import os
import runpy
import sys
import tempfile
from pathlib import Path

import pgserver
import psycopg


def main() -> None:
    server = pgserver.get_server(
        Path(tempfile.mkdtemp(prefix="erase-bench-pg-")), cleanup_mode="delete"
    )
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE erase_bench")
        url = server.get_uri("erase_bench")
        os.environ.setdefault("LANGCHAIN_ERASE_LOG_KEY", "benchmark-log-key")
        sys.argv = ["bench_store.py", "--target", url, *sys.argv[1:]]
        runpy.run_path(str(Path(__file__).with_name("bench_store.py")), run_name="__main__")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
