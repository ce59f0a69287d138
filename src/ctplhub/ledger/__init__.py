"""The tamper-evident ledger (DESIGN §6): a pure RFC 9162 Merkle log.

Standard library only and no I/O: storage adapters hand in a batched ``HashReader`` (or
read a ``HashPlan``'s indexes themselves) and persist the ``StoredHash`` pairs returned.

- ``hashing``: leaf and node hashes, the RFC's recursive tree hash;
- ``storage``: the stored-hash index scheme (tlog's) and single-leaf append;
- ``proofs``: roots, inclusion and consistency proofs, planned then assembled;
- ``compact``: compact ranges, batch append, streaming roots;
- ``verify``: RFC 9162 proof verification;
- ``entry``: the committed entry of an event; ``tree_head``: the signed head's shape;
- ``audit``: recompute and find the first divergence.
"""

from ctplhub.ledger.audit import Divergence, DivergenceKind, find_divergence
from ctplhub.ledger.compact import (
    AppendedBatch,
    AppendedRows,
    CompactRange,
    append_batch,
    append_batch_to,
    append_rows,
    compact_range_indexes,
    streaming_root,
)
from ctplhub.ledger.entry import (
    CLEAR_FIELDS,
    COMMITTED_FIELDS,
    CommittedEntry,
    build_entry,
    commitment,
    random_salt,
    rebuild_entry,
)
from ctplhub.ledger.errors import (
    InvalidTreeRange,
    LedgerError,
    ProofRejected,
    StoredHashesMissing,
)
from ctplhub.ledger.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, tree_hash
from ctplhub.ledger.proofs import (
    HashPlan,
    consistency_proof,
    inclusion_proof,
    plan_consistency_proof,
    plan_inclusion_proof,
    plan_tree_root,
    tree_root,
)
from ctplhub.ledger.storage import (
    HashReader,
    StoredHash,
    append_indexes,
    hashes_from_rows,
    hashes_per_leaf,
    leaf_hash_count,
    leaves_holding,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_home,
    stored_hash_index,
    stored_hash_leaves,
    stored_hashes_for_append,
)
from ctplhub.ledger.tree_head import TreeHead
from ctplhub.ledger.verify import root_from_inclusion_proof, verify_consistency, verify_inclusion

__all__ = [
    "CLEAR_FIELDS",
    "COMMITTED_FIELDS",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AppendedBatch",
    "AppendedRows",
    "CommittedEntry",
    "CompactRange",
    "Divergence",
    "DivergenceKind",
    "HashPlan",
    "HashReader",
    "InvalidTreeRange",
    "LedgerError",
    "ProofRejected",
    "StoredHash",
    "StoredHashesMissing",
    "TreeHead",
    "append_batch",
    "append_batch_to",
    "append_indexes",
    "append_rows",
    "build_entry",
    "commitment",
    "compact_range_indexes",
    "consistency_proof",
    "find_divergence",
    "hashes_from_rows",
    "hashes_per_leaf",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hash_count",
    "leaves_holding",
    "node_hash",
    "plan_consistency_proof",
    "plan_inclusion_proof",
    "plan_tree_root",
    "random_salt",
    "rebuild_entry",
    "root_from_inclusion_proof",
    "split_stored_hash_index",
    "stored_hash_count",
    "stored_hash_home",
    "stored_hash_index",
    "stored_hash_leaves",
    "stored_hashes_for_append",
    "streaming_root",
    "tree_hash",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]
