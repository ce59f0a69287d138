"""Ledger errors. The ledger imports nothing of ours, so these are its own; services
map them to domain errors (a bad ``leaf_index`` from a caller is a 400, a missing
stored hash is a broken store)."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of everything the ledger raises on purpose."""


class InvalidTreeRange(LedgerError, ValueError):
    """A leaf index or tree size that names no node or proof: ``leaf_index >= tree_size``,
    a consistency proof from the empty tree or towards a smaller one."""


class StoredHashesMissing(LedgerError):
    """The hash reader returned fewer (or more, or malformed) hashes than the indexes
    asked for: the store lacks hashes it should hold."""


class ProofRejected(LedgerError):
    """A proof that does not prove what it claims; ``reason`` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
