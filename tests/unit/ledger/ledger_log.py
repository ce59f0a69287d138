"""Shared material for the ledger tests: the published vectors, and one log of 1,024
distinct entries whose stored hashes are built once, by single-leaf appends, so a test
can take any prefix of it as a tree (the stored hashes of a tree are a prefix of those of
any later tree)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctplhub.ledger import leaf_hash, stored_hashes_for_append

VECTORS_PATH = Path(__file__).with_name("rfc6962_vectors.json")


@dataclass
class Log:
    """Entries, their leaf hashes and the stored hashes (list position = stored index)."""

    entries: list[bytes]
    leaves: list[bytes] = field(init=False)
    store: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.leaves = [leaf_hash(e) for e in self.entries]
        for n, leaf in enumerate(self.leaves):
            for stored in stored_hashes_for_append(n, leaf, self.read_hashes):
                assert stored.idx == len(self.store), "stored hashes must be dense, in order"
                self.store.append(stored.hash)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.store[i] for i in indexes]


class CountingReader:
    """A reader that records each call's indexes, to pin the one-round-trip, O(log n)
    promise."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.calls: list[list[int]] = []

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        self.calls.append(list(indexes))
        return self.log.read_hashes(indexes)


LOG = Log([b"entry %d" % i for i in range(1024)])


def load_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
    return data
