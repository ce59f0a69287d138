"""The published RFC 6962 / RFC 9162 vectors, every one of them: roots for each size,
the audit paths and the consistency paths, by every route the ledger offers (the RFC's
recursion, stored hashes, the streaming compact range) and through verification."""

from __future__ import annotations

from typing import Any

import pytest
from ledger_log import Log, load_vectors
from rfc6962_model import mth, path, proof

from ctplhub.ledger import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    streaming_root,
    tree_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = load_vectors()
ENTRIES = [bytes.fromhex(x) for x in VECTORS["leaf_inputs"]]
ROOTS = [bytes.fromhex(x) for x in VECTORS["root_by_size"]]
VECTOR_LOG = Log(ENTRIES)


def test_the_vector_file_is_whole() -> None:
    assert len(ENTRIES) == 8
    assert len(ROOTS) == len(ENTRIES) + 1
    assert len(VECTORS["inclusion"]) == 5
    assert len(VECTORS["consistency"]) == 5


def test_the_first_leaf_and_the_empty_root_are_the_rfc_ones() -> None:
    assert ROOTS[0].hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots(size: int) -> None:
    want = ROOTS[size]
    assert mth(ENTRIES[:size]) == want  # the model agrees with the published figure
    assert tree_hash(VECTOR_LOG.leaves[:size]) == want
    assert streaming_root(VECTOR_LOG.leaves[:size]) == want
    assert tree_root(size, VECTOR_LOG.read_hashes) == want


@pytest.mark.parametrize(
    "case", VECTORS["inclusion"], ids=lambda c: f"leaf{c['leaf_index']}-of-{c['tree_size']}"
)
def test_inclusion(case: dict[str, Any]) -> None:
    m, n = case["leaf_index"], case["tree_size"]
    want = [bytes.fromhex(x) for x in case["audit_path"]]
    assert path(m, ENTRIES[:n]) == want
    got = inclusion_proof(m, n, VECTOR_LOG.read_hashes)
    assert got == want
    verify_inclusion(m, n, leaf_hash(ENTRIES[m]), got, ROOTS[n])


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['first']}-to-{c['second']}"
)
def test_consistency(case: dict[str, Any]) -> None:
    first, second = case["first"], case["second"]
    want = [bytes.fromhex(x) for x in case["consistency_path"]]
    if first < second:
        assert proof(first, ENTRIES[:second]) == want
    got = consistency_proof(first, second, VECTOR_LOG.read_hashes)
    assert got == want
    verify_consistency(first, second, ROOTS[first], ROOTS[second], got)
