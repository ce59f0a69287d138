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

from sqlalchemy import Engine, delete, insert

from ctplhub.ledger import CompactRange, TreeHead, leaf_hash
from ctplhub.security.answer_signing import AnswerSigner, canonical_json
from ctplhub.store.tables import ledger_hashes, ledger_leaves, ledger_tree_heads

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


@dataclass
class BuiltLog:
    entries: list[bytes]
    heads: dict[int, dict[str, Any]]  # tree size -> the signed tree head as published

    @property
    def leaves(self) -> list[bytes]:
        return [leaf_hash(entry) for entry in self.entries]


def clear_ledger(engine: Engine) -> None:
    """Empty the three ledger tables (whatever a write path may have put there)."""
    with engine.begin() as conn:
        for table in (ledger_leaves, ledger_tree_heads, ledger_hashes):
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
    """Store the log of ``entries``: every stored hash, a signed tree head at each of
    ``signed_sizes``, and, when ``event_ids`` are given, a ``ledger_leaves`` row for each
    of the first ``len(event_ids)`` entries (pointing at those events)."""
    wanted = set(signed_sizes)
    edge = CompactRange()
    stored: list[dict[str, Any]] = []
    heads: dict[int, dict[str, Any]] = {}
    for entry in entries:
        stored += [{"idx": i, "hash": h} for i, h in edge.iter_append([leaf_hash(entry)])]
        if edge.size in wanted:
            heads[edge.size] = sign_head(
                signer, TreeHead(edge.size, edge.root(), timestamp_ms + edge.size)
            )
    with engine.begin() as conn:
        conn.execute(insert(ledger_hashes), stored)
        if heads:
            conn.execute(insert(ledger_tree_heads), [head_row(h) for h in heads.values()])
        if event_ids:
            rows = [
                {"leaf_index": n, "event_id": event_id, "entry": entries[n], "salts_enc": b"x"}
                for n, event_id in enumerate(event_ids)
            ]
            conn.execute(insert(ledger_leaves), rows)
    return BuiltLog(list(entries), heads)


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
