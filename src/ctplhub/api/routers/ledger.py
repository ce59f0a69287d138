"""The public ledger (DESIGN §6): the latest signed tree head, inclusion and consistency
proofs, entries. Anyone may call them; nothing here is personal (entries carry salted
commitments only).

Caching (docs/DECISIONS.md, "Ledger endpoints"): a proof between fixed sizes, and a full
range of entries inside the signed tree, never change, so shared caches may keep them a
day; the tree head changes with every write and is never stored by a cache.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ctplhub.api.deps import services
from ctplhub.api.presenters import signed_tree_head
from ctplhub.api.responses import JSONBody
from ctplhub.api.schemas import (
    ConsistencyProofAnswer,
    InclusionProofAnswer,
    LedgerEntriesAnswer,
    TreeHeadAnswer,
)
from ctplhub.services.ledger_proofs import MAX_SIZE, LedgerEntry

router = APIRouter(tags=["ledger"])

IMMUTABLE = {"Cache-Control": "public, max-age=86400"}
FRESH = {"Cache-Control": "no-store"}

Size = Annotated[int, Query(ge=0, le=MAX_SIZE)]


@router.get(
    "/v1/ledger/tree-head",
    summary="The latest signed tree head (size 0 and the empty root before any event)",
    response_model=TreeHeadAnswer,
)
async def tree_head(request: Request) -> Response:
    head = await services(request).ledger.latest_tree_head()
    return JSONBody(signed_tree_head(head), headers=FRESH)


@router.get(
    "/v1/ledger/proof/inclusion",
    summary="The audit path of a leaf in a tree of a given size (RFC 9162 §2.1.3)",
    response_model=InclusionProofAnswer,
)
async def inclusion(request: Request, leaf_index: Size, tree_size: Size) -> Response:
    proof = await services(request).ledger.inclusion(leaf_index, tree_size)
    body = {
        "leaf_index": proof.leaf_index,
        "tree_size": proof.tree_size,
        "audit_path": [value.hex() for value in proof.audit_path],
    }
    return JSONBody(body, headers=IMMUTABLE)


@router.get(
    "/v1/ledger/proof/consistency",
    summary="The consistency proof between two tree sizes (RFC 9162 §2.1.4)",
    response_model=ConsistencyProofAnswer,
)
async def consistency(request: Request, first: Size, second: Size) -> Response:
    proof = await services(request).ledger.consistency(first, second)
    body = {
        "first": proof.first,
        "second": proof.second,
        "consistency_path": [value.hex() for value in proof.consistency_path],
    }
    return JSONBody(body, headers=IMMUTABLE)


@router.get(
    "/v1/ledger/entries",
    summary="Entries of leaves [start, end), at most 1,000; fewer past the signed tree",
    response_model=LedgerEntriesAnswer,
)
async def entries(request: Request, start: Size, end: Size) -> Response:
    found = await services(request).ledger.entries(start, end)
    complete = len(found) == end - start  # a range still growing may change
    return JSONBody(
        {"entries": [_entry(entry) for entry in found]}, headers=IMMUTABLE if complete else FRESH
    )


def _entry(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "leaf_index": entry.leaf_index,
        "entry": orjson.loads(entry.entry),
        "leaf_hash": entry.leaf_hash.hex(),
    }
