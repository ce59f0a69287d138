"""The published ``/openapi.json``: FastAPI's document, completed so that it tells the
truth about the answers (DESIGN §3).

Our endpoints read their bodies by hand (``api/bodies.py``), so FastAPI knows neither
the errors they answer nor the schemas of those bodies beyond what a route hands it.
``complete_document`` fixes that once, when the document is first asked for:

- request and response schemas embedded in a route's ``openapi_extra`` carry Pydantic's
  ``$defs``; they move into ``components/schemas`` and every ``#/$defs/...`` reference
  is rewritten, so every ``$ref`` resolves (fuzzers and code generators skip what does
  not);
- FastAPI's ``422`` is dropped: no endpoint of ours ever sends it (a bad parameter is
  ``400 validation_failed``, ``api/errors.py``);
- the error answers each operation can give come from ``ERROR_STATUSES``, the one table
  below, each with the one error shape and the codes DESIGN §3 lists for its status.

A new operation gets a row in ``ERROR_STATUSES``: ``tests/integration/test_openapi_document.py``
fails while one is missing, or while a row names an operation that no longer exists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from ctplhub.api.schemas import ErrorAnswer

Operation = tuple[str, str]
"""(HTTP method in capitals, path template as published)."""

ERROR_SCHEMA = "#/components/schemas/ErrorAnswer"

# What each status means here, and the ``error.code`` values it carries (DESIGN §3).
STATUS_DESCRIPTIONS: dict[int, str] = {
    400: (
        "The request is not valid: validation_failed, malformed_json, malformed_csv, "
        "malformed_xlsx (verify jobs), "
        "invalid_plate, invalid_vin, invalid_id_number, invalid_instant, range_too_large, "
        "invalid_token (certificates), invalid_address (subscriptions)"
    ),
    401: (
        "Not authenticated: missing_signature, unknown_key, stale_timestamp, bad_nonce, "
        "bad_signature, replayed_nonce (signed insurer calls); missing_token, "
        "invalid_token (bearer tokens)"
    ),
    403: "Not allowed: role_not_allowed, insurer_mismatch, insurer_not_certified",
    404: "not_found (no such vehicle, or a wrong verification factor), unknown_insurer",
    409: "conflict, policy_closed, not_covered, dispute_closed, insurer_exists, user_exists",
    413: "payload_too_large: the body or the number of items is over the limit",
    415: "unsupported_media_type: send one of the media types of the request body",
    429: "rate_limited: wait the seconds of Retry-After before trying again",
}

# Groups that recur: a body read by hand; a call signed by an insurer (§5.1); a call with
# a bearer token (§1); the throttled calls of §5.3.
BODY = (400, 413, 415)
SIGNED = (401, 403)
BEARER = (401, 403)
THROTTLED = (429,)

ERROR_STATUSES: dict[Operation, tuple[int, ...]] = {
    # owners and the public
    ("POST", "/v1/coverage/query"): (*BODY, 404, *THROTTLED),
    ("POST", "/v1/ask"): (*BODY, 404, *THROTTLED),
    ("POST", "/v1/coverage/access-log"): (*BODY, 404, *THROTTLED),
    # e-certificates (§6.1): issued like a verified query; checked and drawn by anyone
    ("POST", "/v1/certificates"): (*BODY, 404, 409, *THROTTLED),
    ("POST", "/v1/certificates/verify"): BODY,
    ("POST", "/v1/certificates/qr"): BODY,
    # reminders (§7): subscribed like a verified query; ended by id and token (a wrong
    # token is the same 404 as an unknown id)
    ("POST", "/v1/subscriptions"): (*BODY, 404, *THROTTLED),
    ("DELETE", "/v1/subscriptions/{subscription_id}"): (404,),
    ("GET", "/v1/subscriptions/{subscription_id}/unsubscribe"): (404,),
    ("POST", "/v1/subscriptions/{subscription_id}/unsubscribe"): (404,),
    # police and regulators
    ("POST", "/v1/coverage/verify"): (*BODY, *BEARER),
    ("GET", "/v1/regulator/ghost-cover"): (400, *BEARER),
    # verify jobs (§11): another's job is the same 404 as no job; a result before it is done 409
    ("POST", "/v1/verify-jobs"): (*BODY, *BEARER),
    ("GET", "/v1/verify-jobs/{job_id}"): (*BEARER, 404),
    ("GET", "/v1/verify-jobs/{job_id}/result"): (*BEARER, 404, 409),
    # roadside cameras' alerts (§12)
    ("POST", "/v1/alerts"): (*BODY, *BEARER),
    # service agents (a verified query on a caller's behalf, access-logged)
    ("POST", "/v1/agent/coverage-query"): (*BODY, *BEARER, 404, *THROTTLED),
    # insurers (an unsigned body is refused before it is read: 401 before 400)
    ("POST", "/v1/policy-events"): (*BODY, *SIGNED, 409),
    ("POST", "/v1/policy-events/batch"): (*BODY, *SIGNED),
    # (a heartbeat is only ever for the caller itself: another code is 403, never 404)
    ("POST", "/v1/insurers/{code}/heartbeat"): (*BODY, *SIGNED),
    ("GET", "/v1/insurers/{code}/sync"): (*SIGNED, 404),  # a regulator may name any code
    # operations: these answer 200 (``/readyz`` also its own 503, on the route)
    ("GET", "/healthz"): (),
    ("GET", "/readyz"): (),
    ("GET", "/metrics"): (),
    ("GET", "/.well-known/ctplhub-keys.json"): (),
    # the public ledger (§6): a bad or out-of-range parameter is 400 (docs/DECISIONS.md)
    ("GET", "/v1/ledger/tree-head"): (),
    ("GET", "/v1/ledger/proof/inclusion"): (400,),
    ("GET", "/v1/ledger/proof/consistency"): (400,),
    ("GET", "/v1/ledger/entries"): (400,),
    # live confirmation (§10): the insurer's own endpoint; data-quality flags (issue 10),
    # read by the insurer (signed) or a regulator (bearer), who may name any code (404)
    ("PUT", "/v1/insurers/{code}/confirm-endpoint"): (*BODY, *SIGNED),
    ("GET", "/v1/insurers/{code}/flags"): (400, *SIGNED, 404),
    # data you can trust (§10): reconciliation is the insurer's own; late reports are read
    # by the insurer (signed) or a regulator (bearer), who may name any code (404)
    ("POST", "/v1/insurers/{code}/reconcile"): (*BODY, *SIGNED),
    ("POST", "/v1/insurers/{code}/reconcile/diff"): (*BODY, *SIGNED),
    ("GET", "/v1/insurers/{code}/compliance"): (400, *SIGNED, 404),
    ("GET", "/v1/insurers/{code}/compliance.csv"): (400, *SIGNED, 404),
    # disputes (§10): filed like a verified query; read by id and token (a wrong token is
    # the same 404 as an unknown id); listed and resolved by their insurer, listed by
    # regulators; resolving a resolved dispute is 409 dispute_closed
    ("POST", "/v1/disputes"): (*BODY, 404, *THROTTLED),
    ("POST", "/v1/disputes/{dispute_id}/status"): (*BODY, 404),
    ("GET", "/v1/insurers/{code}/disputes"): (400, *SIGNED),
    ("POST", "/v1/disputes/{dispute_id}/resolve"): (*BODY, *SIGNED, 404, 409),
    ("GET", "/v1/disputes"): (400, *BEARER),
    # cross-department sharing (§11): the register's feed (registrar), the uninsured list
    # and the accident look-up (bearer), the unmatched list (the insurer's own, signed)
    ("POST", "/v1/register/vehicles"): (*BODY, *BEARER),
    ("POST", "/v1/enforcement/uninsured"): (*BODY, *BEARER),
    ("POST", "/v1/accidents/lookup"): (*BODY, *BEARER),
    ("GET", "/v1/insurers/{code}/unmatched"): SIGNED,
    # the lapse forecast for regulators (issue 12 item 6)
    ("GET", "/v1/forecast/lapse-risk"): (400, *BEARER),
    # statistics (§11): regulators' bearer tokens; a bad parameter is a 400
    ("GET", "/v1/stats/renewals"): (400, *BEARER),
    ("GET", "/v1/stats/expiring"): (400, *BEARER),
    ("GET", "/v1/stats/lapses"): (400, *BEARER),
}

# Answers that are not (only) JSON: the media types of that status, replacing FastAPI's.
_CSV = {"schema": {"type": "string"}}
ANSWER_CONTENT: dict[Operation, dict[int, dict[str, Any]]] = {
    ("POST", "/v1/coverage/verify"): {
        200: {
            "application/json": {"schema": {"$ref": "#/components/schemas/VerifyAnswer"}},
            "text/csv": _CSV,  # with Accept: text/csv, the bulk-verify columns of §3.1
        }
    },
    ("GET", "/metrics"): {200: {"text/plain": {"schema": {"type": "string"}}}},
    ("GET", "/v1/insurers/{code}/compliance.csv"): {200: {"text/csv": _CSV}},
    ("POST", "/v1/enforcement/uninsured"): {
        200: {
            "application/json": {"schema": {"$ref": "#/components/schemas/UninsuredAnswer"}},
            "text/csv": _CSV,  # with Accept: text/csv, every page from the cursor on
        }
    },
    ("GET", "/v1/verify-jobs/{job_id}/result"): {200: {"text/csv": _CSV}},
    ("GET", "/v1/forecast/lapse-risk"): {
        200: {
            "application/json": {"schema": {"$ref": "#/components/schemas/LapseRiskAnswer"}},
            "text/csv": _CSV,  # with Accept: text/csv: key,vehicles,expected_lapses,...
        }
    },
    **{
        ("GET", f"/v1/stats/{figure}"): {
            200: {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}},
                "text/csv": _CSV,  # with Accept: text/csv, the rows
            }
        }
        for figure, answer in (
            ("renewals", "RenewalsAnswer"),
            ("expiring", "ExpiringAnswer"),
            ("lapses", "LapsesAnswer"),
        )
    },
}


def operations(document: dict[str, Any]) -> Iterator[tuple[Operation, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield (method.upper(), path), operation


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` completed as the module docstring says (a new dict)."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    _add_error_schema(components)
    for (method, path), operation in operations(document):
        for content in _contents(operation):
            for media in content.values():
                if isinstance(media, dict) and isinstance(media.get("schema"), dict):
                    media["schema"] = _hoisted(media["schema"], components)
        operation["responses"].pop("422", None)
        for status, content in ANSWER_CONTENT.get((method, path), {}).items():
            operation["responses"][str(status)]["content"] = copy.deepcopy(content)
        for status in ERROR_STATUSES.get((method, path), ()):
            _document_error(operation["responses"], status)
    _rewrite_refs(document)
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f"#/components/schemas/{unused}" not in _refs(document):
            del components[unused]
    return document


def _contents(operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    body = operation.get("requestBody", {})
    if isinstance(body.get("content"), dict):
        yield body["content"]
    for answer in operation["responses"].values():
        if isinstance(answer, dict) and isinstance(answer.get("content"), dict):
            yield answer["content"]


def _add_error_schema(components: dict[str, Any]) -> None:
    schema = ErrorAnswer.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("ErrorAnswer", schema)


def _hoisted(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """An inline Pydantic schema's ``$defs`` moved into the components; the schema itself
    too when it is a named model (``title``), replaced by a reference to it."""
    for name, definition in schema.pop("$defs", {}).items():
        _register(components, name, definition)
    title = schema.get("title")
    if schema.get("type") == "object" and isinstance(title, str) and title.isidentifier():
        _register(components, title, schema)
        return {"$ref": f"#/components/schemas/{title}"}
    return schema


def _register(components: dict[str, Any], name: str, definition: dict[str, Any]) -> None:
    known = components.setdefault(name, definition)
    if known != definition:  # two models of one name: say so rather than publish one wrongly
        raise ValueError(f"two different schemas are both named {name} in /openapi.json")


def _document_error(responses: dict[str, Any], status: int) -> None:
    answer = responses.setdefault(str(status), {"description": STATUS_DESCRIPTIONS[status]})
    answer.setdefault("content", {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}})
    if status == 429:
        answer.setdefault("headers", {})["Retry-After"] = {
            "description": "whole seconds to wait before the next attempt",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }


def _rewrite_refs(node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in node.values():
            _rewrite_refs(value)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value)


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found
