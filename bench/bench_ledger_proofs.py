"""Benchmark: inclusion and consistency proofs at 10,000,000 leaves, on each engine.

Issue 8's figure: each under 5 ms (median) on PostgreSQL and on SQLite. For each engine a
database of its own (``--db``, default ``ctplhub_bench_ledger``) is initialised with
`ctplhub init`, then ``ledger_leaves`` is filled with ``--leaves`` synthetic leaves (leaf
``i``'s entry is ``i`` as 8 bytes, its event id ``i + 1``, which no stored event has; each
row's ``hashes`` are the real stored hashes its append writes, computed with
``CompactRange.iter_append``): PostgreSQL by binary COPY, SQLite by ``executemany`` in
transactions of a million rows; then one tree head for the whole log is signed with the
home's key. ``--reuse`` keeps a database that already holds the log.

Proofs are asked at random indexes: inclusion of a random leaf in the whole tree, and
consistency from a random size to the whole tree. Each is timed twice, one request at a
time: through the service (``LedgerProofs``, the server's own read path, in this process)
and over HTTP against `ctplhub serve` (an httpx loop, keep-alive). Median and p99 are
printed; a sample of the proofs is checked against the signed root.

    .venv/bin/python bench/bench_ledger_proofs.py --reuse              # the issue's scale
    .venv/bin/python bench/bench_ledger_proofs.py --leaves 5000 --samples 200 \
        --db ctplhub_bench_ledger_smoke                                  # a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from common import ENGINES, Home, bench_main, count_rows, db_url, fresh_home, log, server

from ctplhub.ledger import (
    CompactRange,
    TreeHead,
    leaf_hash,
    stored_hash_count,
    verify_consistency,
    verify_inclusion,
)
from ctplhub.security.answer_signing import AnswerSigner
from ctplhub.security.keystore import load_keys
from ctplhub.security.tree_head_signing import tree_head_signer
from ctplhub.services.ledger_proofs import LedgerProofs
from ctplhub.store.readers.ledger import ledger_reader

TARGET_MS = 5.0
_CHUNK = 1_000_000  # leaves per SQLite transaction / progress line
_COLUMNS = "leaf_index, event_id, entry, salts_enc, hashes"
LeafRow = tuple[int, int, bytes, bytes, bytes]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="engines measured"
    )
    parser.add_argument("--db", default="ctplhub_bench_ledger", help="database name per engine")
    parser.add_argument("--leaves", type=int, default=10_000_000, help="leaves in the log")
    parser.add_argument("--samples", type=int, default=5_000, help="proofs timed per kind")
    parser.add_argument("--seed", type=int, default=8, help="random indexes' seed")
    parser.add_argument(
        "--reuse", action="store_true", help="keep a database that already holds the log"
    )


def synthetic_leaves(edge: CompactRange, leaves: int) -> Iterator[LeafRow]:
    """Every ``ledger_leaves`` row of the log of ``leaves`` synthetic leaves, in order, its
    stored hashes in it; ``edge`` (empty at first) holds the log's root once they are all
    consumed."""
    for i in range(leaves):
        entry = i.to_bytes(8, "big")
        hashes = b"".join(value for _, value in edge.iter_append((leaf_hash(entry),)))
        yield i, i + 1, entry, b"", hashes


def _progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    log(f"  {done:,} / {total:,} leaves ({rate:,.0f}/s)")


def fill_postgres(home: Home, leaves: int) -> bytes:
    started, edge = time.monotonic(), CompactRange()
    with psycopg.connect(db_url(home.db)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ledger_leaves ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int8", "bytea", "bytea", "bytea"])
            for row in synthetic_leaves(edge, leaves):
                copy.write_row(row)
                if (row[0] + 1) % _CHUNK == 0:
                    _progress(row[0] + 1, leaves, started)
        conn.commit()
        conn.execute("ANALYZE ledger_leaves")
        conn.commit()
    return edge.root()


def fill_sqlite(home: Home, leaves: int) -> bytes:
    started, edge = time.monotonic(), CompactRange()
    conn = sqlite3.connect(home.sqlite_file, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        batch: list[LeafRow] = []
        for row in synthetic_leaves(edge, leaves):
            batch.append(row)
            if len(batch) == _CHUNK:
                _insert_sqlite(conn, batch)
                batch = []
                _progress(row[0] + 1, leaves, started)
        _insert_sqlite(conn, batch)
        conn.execute("ANALYZE ledger_leaves")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return edge.root()


def _insert_sqlite(conn: sqlite3.Connection, rows: list[LeafRow]) -> None:
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO ledger_leaves ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


def root_of(leaves: int) -> bytes:
    edge = CompactRange()
    edge.extend(leaf_hash(i.to_bytes(8, "big")) for i in range(leaves))
    return edge.root()


def store_tree_head(home: Home, leaves: int, root: bytes) -> None:
    keys = load_keys(home.path)
    signer = AnswerSigner(keys.signing_keys, keys.active_signing_kid)
    try:
        stamp = int(datetime.now(UTC).timestamp() * 1000)
        signed = tree_head_signer(signer)(TreeHead(leaves, root, stamp))
    finally:
        signer.close()
    row = (leaves, root, stamp, signed.kid, signed.signature)
    sql = (
        "INSERT INTO ledger_tree_heads (tree_size, root_hash, timestamp_ms, kid, signature) "
        "VALUES ({0}, {0}, {0}, {0}, {0})"
    )
    if home.engine == "postgresql":
        with psycopg.connect(db_url(home.db)) as conn:
            conn.execute(sql.format("%s"), row)
    else:
        with sqlite3.connect(home.sqlite_file) as conn:
            conn.execute(sql.format("?"), row)


def ensure_log(args: argparse.Namespace, engine: str) -> tuple[Home, dict[str, Any]]:
    home = Home.for_db(args.db, engine)
    state = home.read_state() if args.reuse else None
    if (
        state
        and state.get("leaves") == args.leaves
        and count_rows(home, "ledger_leaves") == args.leaves
    ):
        log(f"{engine}: reusing {args.leaves:,} leaves in {home.db}")
        return home, state
    log(f"{engine}: filling {args.leaves:,} leaves ({stored_hash_count(args.leaves):,} hashes)")
    fresh_home(home)
    started = time.monotonic()
    root = (fill_postgres if engine == "postgresql" else fill_sqlite)(home, args.leaves)
    store_tree_head(home, args.leaves, root)
    state = {"leaves": args.leaves, "root": root.hex(), "fill_s": time.monotonic() - started}
    home.write_state(state)
    log(f"{engine}: filled in {state['fill_s']:.0f} s")
    return home, state


def _summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


async def _time_calls(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def measure_service(home: Home, cases: dict[str, list[tuple[int, int]]], root: bytes) -> dict:
    reader = ledger_reader(home.url)

    def sign(_: TreeHead) -> Any:
        raise AssertionError("the log is not empty")

    proofs = LedgerProofs(reader, sign, lambda: datetime.now(UTC))
    n = max(size for _, size in cases["inclusion"])

    async def run() -> dict[str, Any]:
        await reader.open()
        try:
            leaf = leaf_hash(cases["inclusion"][0][0].to_bytes(8, "big"))
            first = await proofs.inclusion(*cases["inclusion"][0])
            verify_inclusion(first.leaf_index, n, leaf, first.audit_path, root)
            inclusion = await _time_calls(
                [lambda a=a, b=b: proofs.inclusion(a, b) for a, b in cases["inclusion"]]
            )
            consistency = await _time_calls(
                [lambda a=a, b=b: proofs.consistency(a, b) for a, b in cases["consistency"]]
            )
            return {"inclusion": _summary(inclusion), "consistency": _summary(consistency)}
        finally:
            await reader.close()

    return asyncio.run(run())


def measure_http(home: Home, cases: dict[str, list[tuple[int, int]]], root: bytes) -> dict:
    result: dict[str, Any] = {}
    with server(home, name=f"ledger-{home.engine}") as srv, httpx.Client(base_url=srv.base) as http:
        head = http.get("/v1/ledger/tree-head").json()
        assert head["root_hash"] == root.hex(), "the served tree head is not the filled log's"
        for kind, path, names in (
            ("inclusion", "/v1/ledger/proof/inclusion", ("leaf_index", "tree_size")),
            ("consistency", "/v1/ledger/proof/consistency", ("first", "second")),
        ):
            timings = []
            for a, b in cases[kind]:
                started = time.perf_counter()
                answer = http.get(path, params={names[0]: a, names[1]: b})
                timings.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text}")
            a, b = cases[kind][0]
            _check(kind, http.get(path, params={names[0]: a, names[1]: b}).json(), a, b, root)
            result[kind] = _summary(timings)
        # The yardstick: what the same loop costs for a route that reads nothing.
        timings = []
        for _ in cases["inclusion"]:
            started = time.perf_counter()
            http.get("/healthz")
            timings.append((time.perf_counter() - started) * 1000)
        result["healthz"] = _summary(timings)
    return result


def _check(kind: str, body: dict[str, Any], a: int, b: int, root: bytes) -> None:
    """The first case's proof, checked against the signed root (and, for consistency,
    the root of the first tree, recomputed from the synthetic leaves)."""
    if kind == "inclusion":
        path = [bytes.fromhex(h) for h in body["audit_path"]]
        verify_inclusion(a, b, leaf_hash(a.to_bytes(8, "big")), path, root)
    else:
        path = [bytes.fromhex(h) for h in body["consistency_path"]]
        verify_consistency(a, b, root_of(a), root, path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    n = args.leaves
    cases = {
        "inclusion": [(rng.randrange(n), n) for _ in range(args.samples)],
        "consistency": [(rng.randrange(1, n), n) for _ in range(args.samples)],
    }
    engines: dict[str, Any] = {}
    for engine in args.engines:
        home, state = ensure_log(args, engine)
        root = bytes.fromhex(state["root"])
        log(f"{engine}: {args.samples:,} proofs of each kind through the service")
        service = measure_service(home, cases, root)
        log(f"{engine}: the same over HTTP against ctplhub serve")
        http = measure_http(home, cases, root)
        engines[engine] = {"service": service, "http": http, "fill_s": state.get("fill_s")}
    return {"benchmark": "ledger_proofs", "leaves": n, "samples": args.samples, "engines": engines}


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for engine, figures in result["engines"].items():
        for via in ("service", "http"):
            for kind in ("inclusion", "consistency"):
                f = figures[via][kind]
                met = "met" if f["median_ms"] < TARGET_MS else "MISSED"
                lines.append(
                    f"{kind} proof at {result['leaves']:,} leaves on {engine} via {via}: median "
                    f"{f['median_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms "
                    f"(target median < {TARGET_MS:g} ms: {met})"
                )
        h = figures["http"]["healthz"]
        lines.append(
            f"  the same HTTP loop on /healthz ({engine}): median {h['median_ms']:.2f} ms, "
            f"p99 {h['p99_ms']:.2f} ms"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    return bench_main("ledger_proofs", __doc__ or "", add_arguments, run, summary_lines, argv)


if __name__ == "__main__":
    sys.exit(main())
