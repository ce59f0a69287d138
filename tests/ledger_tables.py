"""A real ledger in the database for the read-side tests, written straight into the
ledger tables with the pure core (``CompactRange.iter_append``) and tree heads signed
with the container's ``AnswerSigner``, so those tests do not depend on the write path.

Also the straight-from-the-RFC model of ``tests/unit/ledger``, loaded by path (that
folder is on ``sys.path`` only while its own tests run).
"""

from __future__ import annotations

import base64
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from ctplhub.ledger import (
    HASH_SIZE,
    CompactRange,
    TreeHead,
    hashes_per_leaf,
    leaf_hash,
    stored_hash_home,
)
from ctplhub.security.answer_signing import AnswerSigner, canonical_json
from ctplhub.store.tables import ledger_leaves, ledger_tree_heads

_MODEL_PATH = Path(__file__).parent / "unit" / "ledger" / "rfc6962_model.py"


def rfc_model() -> ModuleType:
    """``tests/unit/ledger/rfc6962_model.py``: ``mth``, ``path``, ``proof`` over entries."""
    module = sys.modules.get("rfc6962_model")
    if module is None:
        spec = importlib.util.spec_from_file_location("rfc6962_model", _MODEL_PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["rfc6962_model"] = module
        spec.loader.exec_module(module)
    return module


SYNTHETIC_EVENT = 10**12  # event ids of ``fill_ledger``'s leaves that have no event


@dataclass
class BuiltLog:
    entries: list[bytes]
    heads: dict[int, dict[str, Any]]  # tree size -> the signed tree head as published

    @property
    def leaves(self) -> list[bytes]:
        return [leaf_hash(entry) for entry in self.entries]


def clear_ledger(engine: Engine) -> None:
    """Empty the ledger tables (whatever a write path may have put there)."""
    with engine.begin() as conn:
        for table in (ledger_leaves, ledger_tree_heads):
            conn.execute(delete(table))


def sign_head(signer: AnswerSigner, head: TreeHead) -> dict[str, Any]:
    return signer.sign(dict(head.to_signable()))


def fill_ledger(
    engine: Engine,
    entries: Sequence[bytes],
    signer: AnswerSigner,
    *,
    signed_sizes: Iterable[int],
    event_ids: Sequence[int] = (),
    timestamp_ms: int = 1_764_000_000_000,
) -> BuiltLog:
    """Store the log of ``entries``: a ``ledger_leaves`` row for each, with its stored
    hashes, and a signed tree head at each of ``signed_sizes``. The first
    ``len(event_ids)`` rows point at those events, the others at made-up event ids
    (``SYNTHETIC_EVENT + n``) that no stored event has."""
    wanted = set(signed_sizes)
    edge = CompactRange()
    rows: list[dict[str, Any]] = []
    heads: dict[int, dict[str, Any]] = {}
    for n, entry in enumerate(entries):
        (hashes,) = hashes_per_leaf(list(edge.iter_append([leaf_hash(entry)])))
        event_id = event_ids[n] if n < len(event_ids) else SYNTHETIC_EVENT + n
        rows.append(
            {"leaf_index": n, "event_id": event_id, "entry": entry, "salts_enc": b"x"}
            | {"hashes": hashes}
        )
        if edge.size in wanted:
            heads[edge.size] = sign_head(
                signer, TreeHead(edge.size, edge.root(), timestamp_ms + edge.size)
            )
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(ledger_leaves), rows)
        if heads:
            conn.execute(insert(ledger_tree_heads), [head_row(h) for h in heads.values()])
    return BuiltLog(list(entries), heads)


def overwrite_stored_hash(engine: Engine, index: int, value: bytes) -> int:
    """Tamper with stored hash ``index`` where the store keeps it, inside the ``hashes`` of
    the leaf that wrote it; returns that leaf."""
    leaf, level = stored_hash_home(index)
    row = ledger_leaves.c.leaf_index == leaf
    with engine.begin() as conn:
        hashes = bytes(conn.execute(select(ledger_leaves.c.hashes).where(row)).scalar_one())
        changed = hashes[: level * HASH_SIZE] + value + hashes[(level + 1) * HASH_SIZE :]
        conn.execute(update(ledger_leaves).where(row).values(hashes=changed))
    return leaf


def store_head(engine: Engine, published: dict[str, Any]) -> None:
    """Store a published tree head (signed or forged) as the latest."""
    with engine.begin() as conn:
        conn.execute(insert(ledger_tree_heads), [head_row(published)])


def head_row(published: dict[str, Any]) -> dict[str, Any]:
    return {
        "tree_size": published["tree_size"],
        "root_hash": bytes.fromhex(published["root_hash"]),
        "timestamp_ms": published["timestamp"],
        "kid": published["signature"]["kid"],
        "signature": base64.b64decode(published["signature"]["value"]),
    }


def entry_bytes(n: int) -> bytes:
    """A plausible committed entry (JCS bytes): clear fields, committed plate and VIN."""
    return canonical_json(
        {
            "event_type": "issue",
            "insurer_code": "PICC",
            "plate": leaf_hash(b"plate %d" % n).hex(),
            "policy_no": f"PDAA2025{n:012d}",
            "version": 1,
            "vin": leaf_hash(b"vin %d" % n).hex(),
        }
    )
