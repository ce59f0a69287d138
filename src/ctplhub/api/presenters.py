"""The one place that turns what services answer into the JSON and CSV of DESIGN §3.

Services speak typed objects (datetimes, enums, masked values); the wire speaks RFC 3339
instants in Beijing time, snake_case fields and the §3.1 signing rule. Every JSON answer
built here is checked by the test suite against the response models that ``/openapi.json``
publishes (``api/schemas.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from ctplhub.domain.errors import DomainError
from ctplhub.domain.freshness import Caveat, Source
from ctplhub.domain.instants import format_instant, format_optional
from ctplhub.services.certificates import CertificateCheck, SealedCertificate
from ctplhub.services.check_coverage import FullAnswer, PolicyView, ShortAnswer
from ctplhub.services.insurers import SyncStatus
from ctplhub.services.ledger_append import LeafReceipt, LedgerReceipt
from ctplhub.services.ledger_proofs import SignedTreeHead
from ctplhub.services.report_events import LineResult, Receipt
from ctplhub.services.verify_bulk import RejectedItem, VerifyResult

VERIFY_CSV_COLUMNS = (
    "plate",
    "vin",
    "at",
    "covered",
    "status",
    "insurer_code",
    "covered_until",
    "error",
)


def error_fields(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """``{"code", "message", "details"?}``: the inside of every error answer."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return body


def error_body(error: DomainError) -> dict[str, Any]:
    return error_fields(error.code, error.message, error.details)


def _caveats(caveats: Iterable[Caveat]) -> list[dict[str, Any]]:
    return [{"code": c.code, "insurer_code": c.insurer_code, "message": c.message} for c in caveats]


def _sources(sources: Iterable[Source]) -> list[dict[str, Any]]:
    return [
        {
            "insurer_code": s.insurer_code,
            "last_sync_at": format_optional(s.last_sync_at),
            "stale": s.stale,
        }
        for s in sources
    ]


def _policy(view: PolicyView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {
        "insurer_code": view.insurer_code,
        "insurer_name": view.insurer_name,
        "policy_no_masked": view.policy_no_masked,
        "coverage_start": format_instant(view.coverage_start),
        "coverage_end": format_instant(view.coverage_end),
    }


def _next_policy(view: PolicyView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {
        "insurer_code": view.insurer_code,
        "coverage_start": format_instant(view.coverage_start),
        "coverage_end": format_instant(view.coverage_end),
    }


def full_answer(answer: FullAnswer) -> dict[str, Any]:
    """The answer of §3.1 before it is signed. Plain by construction (strings, small
    integers, booleans, nulls, ASCII keys), which lets the signer skip its check; a
    property test holds the bytes signed equal to RFC 8785's for every answer this can
    build."""
    return {
        "answer_id": answer.answer_id,
        "as_of": format_instant(answer.as_of),
        "at": format_instant(answer.at),
        "plate": answer.plate.display,
        "vin_masked": answer.vin_masked,
        "status": answer.status.value,
        "status_text": answer.status.text_zh,
        "current_policy": _policy(answer.current_policy),
        "next_policy": _next_policy(answer.next_policy),
        "covered_until": format_optional(answer.covered_until),
        "days_to_expiry": answer.days_to_expiry,
        "lapsed_since": format_optional(answer.lapsed_since),
        "days_lapsed": answer.days_lapsed,
        "flags": {
            "duplicate_coverage": answer.duplicate_coverage,
            "gaps": [
                {"from": format_instant(g.start), "to": format_instant(g.end)} for g in answer.gaps
            ],
        },
        "sources": _sources(answer.sources),
        "caveats": _caveats(answer.caveats),
    }


def short_answer(answer: ShortAnswer) -> dict[str, Any]:
    return {
        "plate": answer.plate.display,
        "covered": answer.covered,
        "status_class": answer.status.status_class,
        "caveats": _caveats(answer.caveats),
    }


def verify_result(result: VerifyResult) -> dict[str, Any]:
    """One bulk-verify result (§3.1): ``plate`` or ``vin``, ``at``, ``covered``, ``status``,
    ``insurer_code``, ``covered_until``, then ``error`` or ``caveats`` where there are any."""
    if isinstance(result, RejectedItem):
        return {
            result.key: result.given,
            "at": result.at,
            "covered": None,
            "status": None,
            "insurer_code": None,
            "covered_until": None,
            "error": error_body(result.error),
        }
    given: str | None
    if result.plate is not None:
        key, given = "plate", result.plate.display
    else:
        key, given = "vin", result.vin.value if result.vin else None
    body: dict[str, Any] = {
        key: given,
        "at": format_instant(result.at),
        "covered": result.covered,
        "status": result.status.value,
        "insurer_code": result.insurer_code,
        "covered_until": format_optional(result.covered_until),
    }
    if result.confirmed_by is not None:  # a live confirmation (§10): ``covered`` is its word
        body["confirmed_by"] = {
            "insurer_code": result.confirmed_by.insurer_code,
            "at": format_instant(result.confirmed_by.at),
            "covered": result.confirmed_by.covered,
        }
    if result.caveats:
        body["caveats"] = _caveats(result.caveats)
    return body


def verify_answer(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The bulk-verify answer of its results, each presented by :func:`verify_result`
    (the service presents each as soon as it is answered), before it is signed whole (the
    route signs it: §3.1 rule)."""
    return {"results": bodies}


def verify_answer_is_plain(bodies: Iterable[dict[str, Any]]) -> bool:
    """Whether :func:`verify_answer` of ``bodies`` is plain (strings, booleans and nulls
    under ASCII keys), so that its JCS is sorted compact JSON without the walk that checks
    it: every answered item is; a rejected one (the only kind with ``error``) carries its
    error's details, which may hold anything."""
    return not any("error" in body for body in bodies)


def verify_csv(results: Iterable[VerifyResult]) -> str:
    """The bulk-verify columns of §3.1 / §11 as UTF-8 CSV with a header row: the JSON
    results, one row each, ``covered`` as ``true``/``false``/empty and ``error`` as its
    code."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(VERIFY_CSV_COLUMNS)
    for result in results:
        body = verify_result(result)
        covered = body["covered"]
        body["covered"] = "" if covered is None else str(covered).lower()
        body["error"] = body["error"]["code"] if "error" in body else ""
        writer.writerow(
            ["" if body.get(name) is None else body[name] for name in VERIFY_CSV_COLUMNS]
        )
    return out.getvalue()


def receipt(r: Receipt) -> dict[str, Any]:
    """The answer to an accepted event; ``received_at`` in UTC to the microsecond, the
    instant the registry stamped it; ``receipt`` its ledger receipt (DESIGN §6)."""
    body = {
        "event_id": r.event_id,
        "insurer_code": r.insurer_code,
        "policy_no": r.policy_no,
        "version": r.version,
        "content_hash": r.content_hash,
        "received_at": r.received_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if r.ledger is not None:
        body["receipt"] = ledger_receipt(r.ledger)
    return body


def signed_tree_head(signed: SignedTreeHead) -> dict[str, Any]:
    """A tree head as the platform signed it (DESIGN §6, signing rule of §3.1)."""
    return signed.published()


def leaf_receipt(leaf: LeafReceipt) -> dict[str, Any]:
    """A batch line's receipt: its proof is fetched from the inclusion endpoint, against
    the batch answer's ``tree_head``."""
    return {"leaf_index": leaf.leaf_index, "leaf_hash": leaf.leaf_hash.hex(), "salts": leaf.salts}


def ledger_receipt(r: LedgerReceipt) -> dict[str, Any]:
    return {
        "leaf_index": r.leaf.leaf_index,
        "leaf_hash": r.leaf.leaf_hash.hex(),
        "tree_head": signed_tree_head(r.leaf.tree_head),
        "inclusion_proof": [node.hex() for node in r.inclusion_proof],
        "salts": r.leaf.salts,
    }


def line_result(result: LineResult) -> dict[str, Any]:
    body: dict[str, Any] = {"line": result.line, "status": result.status.value}
    if result.error is not None:
        body["error"] = error_body(result.error)
    if result.leaf is not None:
        body["receipt"] = leaf_receipt(result.leaf)
    return body


def sync_status(status: SyncStatus) -> dict[str, Any]:
    return {
        "insurer_code": status.insurer_code,
        "status": status.status,
        "last_sync_at": format_optional(status.last_sync_at),
        "lag_s": status.lag_s,
        "stale": status.stale,
        "accepted_24h": status.accepted_24h,
        "rejected_24h": status.rejected_24h,
    }


def certificate(sealed: SealedCertificate) -> dict[str, Any]:
    """A certificate as §6.1 publishes it: the signed fields, then their signature."""
    return {
        **sealed.certificate.body(),
        "signature": {"alg": "Ed25519", "kid": sealed.certificate.kid, "value": sealed.signature},
    }


def certificate_check(check: CertificateCheck) -> dict[str, Any]:
    live = check.live
    return {
        "valid": check.valid,
        "certificate": certificate(check.certificate) if check.certificate else None,
        "live": (
            None
            if live is None
            else {
                "status": live.status.value,
                "covered": live.covered,
                "as_of": format_instant(live.as_of),
            }
        ),
    }
