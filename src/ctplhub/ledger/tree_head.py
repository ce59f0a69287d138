"""The tree head the platform signs (DESIGN §6): ``{"tree_size", "root_hash",
"timestamp"}``, the root in lowercase hex and the timestamp in milliseconds since the
epoch. Signing it (by the rule of §3.1) is ``security``'s job; this module fixes the
shape so the signer, the API and the auditor agree on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ctplhub.ledger.hashing import HASH_SIZE

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A tree size, its root and when the platform vouched for it."""

    tree_size: int
    root_hash: bytes
    timestamp: int
    """Milliseconds since the Unix epoch."""

    def __post_init__(self) -> None:
        if isinstance(self.tree_size, bool) or self.tree_size < 0:
            raise ValueError(f"tree_size must be an integer >= 0, got {self.tree_size!r}")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"root_hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}")
        if isinstance(self.timestamp, bool) or self.timestamp < 0:
            raise ValueError(f"timestamp must be milliseconds >= 0, got {self.timestamp!r}")

    def to_signable(self) -> dict[str, int | str]:
        """The object the signature covers (and the API shows, plus ``signature``)."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_signable(cls, obj: Mapping[str, object]) -> TreeHead:
        """Read a tree head back (a ``signature`` field, if any, is ignored): for clients
        and the auditor, which check what they were given."""
        size, root, stamp = obj.get("tree_size"), obj.get("root_hash"), obj.get("timestamp")
        if not isinstance(size, int) or isinstance(size, bool):
            raise ValueError("tree_size must be an integer")
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            raise ValueError("timestamp must be an integer (milliseconds)")
        if not isinstance(root, str) or len(root) != 2 * HASH_SIZE or not _HEX.issuperset(root):
            raise ValueError(f"root_hash must be {2 * HASH_SIZE} lowercase hex characters")
        return cls(size, bytes.fromhex(root), stamp)
