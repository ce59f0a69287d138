"""Hostile requests at the edges of the API (issue 7 "Tests that must exist"; DESIGN §3,
§5.1, §5.2), each sent through the real HTTP app on both engines.

The signing cases fill what test_policy_events_api.py, test_batch_api.py and
test_insurer_sync_api.py leave open: every write path, both directions of clock skew,
that a rejected request burns no nonce and stores nothing, and that certification can be
lost and won back. The input cases throw SQL-injection and control-character strings,
oversized and mis-typed bodies at every write and query endpoint: the answer must be a
clear 4xx in the one error shape (or a correct answer), never a 5xx, and the tables must
be intact afterwards.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, func, select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.config import Settings
from ctplhub.security.request_signing import signed_headers
from ctplhub.store.tables import policies, policy_events
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

EVENTS = "/v1/policy-events"
BATCH = "/v1/policy-events/batch"
HEARTBEAT = "/v1/insurers/PICC/heartbeat"
SYNC = "/v1/insurers/PICC/sync"
QUERY = "/v1/coverage/query"
VERIFY = "/v1/coverage/verify"
JSON = "application/json"
NDJSON = "application/x-ndjson"

# The error codes of DESIGN §3's table, by status: every 4xx here must use one of them.
CODES_4XX = {
    400: {
        "validation_failed", "malformed_json", "malformed_csv", "invalid_plate", "invalid_vin",
        "invalid_id_number", "invalid_instant", "range_too_large",
    },
    401: {
        "missing_signature", "unknown_key", "stale_timestamp", "bad_nonce", "bad_signature",
        "replayed_nonce", "missing_token", "invalid_token",
    },
    403: {"role_not_allowed", "insurer_mismatch", "insurer_not_certified"},
    404: {"not_found", "unknown_insurer"},
    409: {"conflict", "policy_closed"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
}  # fmt: skip

AT = "2025-06-01T12:00:00+08:00"  # inside the cover of helpers.event()
HOSTILE = {
    "sql_or": "' OR 1=1 --",
    "sql_drop": "'; DROP TABLE policies; --",
    "nul": "a\x00b",
    "crlf": "a\r\nb",
    "rtl_override": "\u202eevil",
    "very_long": "9" * 20_000,
}


def count(container: Container, table: Any = policy_events) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def table_names(container: Container) -> set[str]:
    reflected = MetaData()
    reflected.reflect(container.engine)
    return set(reflected.tables)


def signed_post(
    client: TestClient,
    account: InsurerAccount,
    path: str,
    body: bytes,
    content_type: str = JSON,
    **signing: Any,
) -> httpx.Response:
    headers = signed_headers(account.key_id, account.secret, "POST", path, body, **signing)
    headers["Content-Type"] = content_type
    return client.post(path, content=body, headers=headers)


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in events)


def assert_clear_4xx(answer: httpx.Response, *statuses: int) -> str:
    """A 4xx in the one error shape with a code of DESIGN §3; returns the code."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    if statuses:
        assert answer.status_code in statuses, (answer.status_code, answer.text[:300])
    error = answer.json()["error"]
    assert error["code"] in CODES_4XX[answer.status_code], error
    assert error["message"]
    return str(error["code"])


# --- signed insurer requests (DESIGN §5.1) ----------------------------------------------


def insurer_writes() -> list[tuple[str, str, Callable[[int], bytes]]]:
    """Every signed write path, with a content type and a fresh valid body per call."""
    return [
        (EVENTS, JSON, lambda n: json.dumps(event(policy_no=f"E{n}")).encode()),
        (BATCH, NDJSON, lambda n: ndjson(event(policy_no=f"B{n}"))),
        (HEARTBEAT, JSON, lambda n: b"{}"),
    ]


WRITE_IDS = ["event", "batch", "heartbeat"]


@pytest.mark.parametrize(("path", "content_type", "body_of"), insurer_writes(), ids=WRITE_IDS)
def test_a_replayed_request_is_401_replayed_nonce_and_stores_nothing_twice(
    picc: InsurerAccount,
    client: TestClient,
    container: Container,
    path: str,
    content_type: str,
    body_of: Callable[[int], bytes],
) -> None:
    body = body_of(1)
    headers = signed_headers(picc.key_id, picc.secret, "POST", path, body)
    headers["Content-Type"] = content_type
    first = client.post(path, content=body, headers=headers)
    assert first.status_code in (200, 201), first.text
    stored = count(container)

    replay = client.post(path, content=body, headers=headers)
    assert (replay.status_code, assert_clear_4xx(replay)) == (401, "replayed_nonce")
    # The same nonce under a new, valid signature for another body is still a replay.
    again = signed_post(client, picc, path, body_of(2), content_type, nonce=headers["X-CTPL-Nonce"])
    assert (again.status_code, assert_clear_4xx(again)) == (401, "replayed_nonce")
    assert count(container) == stored


def _timestamp(offset_s: int) -> float:
    """A signing time ``offset_s`` from now, rounded so that the milliseconds the request
    takes cannot carry it across the 300 s line: towards the server's clock when inside
    the window, away from it when outside."""
    now = time.time()
    towards_now = (offset_s > 0) == (abs(offset_s) < 300)
    return float((math.floor if towards_now else math.ceil)(now) + offset_s)


@pytest.mark.parametrize(("path", "content_type", "body_of"), insurer_writes(), ids=WRITE_IDS)
@pytest.mark.parametrize("offset_s", [-301, 301])
def test_a_timestamp_more_than_300_s_off_is_401_stale(
    picc: InsurerAccount,
    client: TestClient,
    container: Container,
    path: str,
    content_type: str,
    body_of: Callable[[int], bytes],
    offset_s: int,
) -> None:
    answer = signed_post(client, picc, path, body_of(1), content_type, now_s=_timestamp(offset_s))
    assert (answer.status_code, assert_clear_4xx(answer)) == (401, "stale_timestamp")
    assert count(container) == 0
    assert picc.api.request("GET", SYNC).json()["last_sync_at"] is None


@pytest.mark.parametrize("timestamp", ["9" * 13, "9" * 400, "9" * 5000, "0" * 300 + "1"])
def test_a_timestamp_of_absurd_length_is_401_stale_not_a_500(
    picc: InsurerAccount, client: TestClient, container: Container, timestamp: str
) -> None:
    # It was a 500 (OverflowError, or ValueError past 4,300 digits) for anyone who knew a
    # key id: the header is checked before the signature.
    body = json.dumps(event()).encode()
    headers = signed_headers(picc.key_id, picc.secret, "POST", EVENTS, body)
    headers.update({"X-CTPL-Timestamp": timestamp, "Content-Type": JSON})
    answer = client.post(EVENTS, content=body, headers=headers)
    assert (answer.status_code, assert_clear_4xx(answer)) == (401, "stale_timestamp")
    assert count(container) == 0


@pytest.mark.parametrize("offset_s", [-299, 299])
def test_a_timestamp_within_300_s_is_accepted(
    picc: InsurerAccount, client: TestClient, container: Container, offset_s: int
) -> None:
    for n, (path, content_type, body_of) in enumerate(insurer_writes()):
        answer = signed_post(
            client, picc, path, body_of(n), content_type, now_s=_timestamp(offset_s)
        )
        assert answer.status_code in (200, 201), (path, answer.text)
    assert count(container) == 2


@pytest.mark.parametrize(("path", "content_type", "body_of"), insurer_writes(), ids=WRITE_IDS)
def test_a_tampered_request_is_401_bad_signature_and_burns_no_nonce(
    picc: InsurerAccount,
    client: TestClient,
    container: Container,
    path: str,
    content_type: str,
    body_of: Callable[[int], bytes],
) -> None:
    body = body_of(1)
    headers = signed_headers(picc.key_id, picc.secret, "POST", path, body)
    headers["Content-Type"] = content_type
    tampered_body = body.replace(b"950.00", b"150.00") if b"950.00" in body else b'{"at":null}'
    assert tampered_body != body
    later = str(int(headers["X-CTPL-Timestamp"]) - 1)
    for changed_body, changed_headers in (
        (tampered_body, headers),
        (body, {**headers, "X-CTPL-Timestamp": later}),
        (body, {**headers, "X-CTPL-Nonce": headers["X-CTPL-Nonce"][::-1]}),
        (body, {**headers, "X-CTPL-Signature": headers["X-CTPL-Signature"].upper()}),
    ):
        answer = client.post(path, content=changed_body, headers=changed_headers)
        assert (answer.status_code, assert_clear_4xx(answer)) == (401, "bad_signature")
    assert count(container) == 0
    # A request that failed its signature burnt nothing: the genuine one still goes in.
    assert client.post(path, content=body, headers=headers).status_code in (200, 201)


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body"),
    [
        ("POST", EVENTS, JSON, json.dumps(event()).encode()),
        ("POST", BATCH, NDJSON, ndjson(event())),
        ("POST", HEARTBEAT, JSON, b"{}"),
        ("GET", SYNC, None, b""),
    ],
    ids=["event", "batch", "heartbeat", "sync"],
)
def test_an_unknown_key_is_401_unknown_key(
    picc: InsurerAccount,
    client: TestClient,
    container: Container,
    method: str,
    path: str,
    content_type: str | None,
    body: bytes,
) -> None:
    # Signed correctly with the right secret, under a key id that does not exist.
    headers = signed_headers(picc.key_id + "x", picc.secret, method, path, body)
    if content_type:
        headers["Content-Type"] = content_type
    answer = client.request(method, path, content=body, headers=headers)
    assert (answer.status_code, assert_clear_4xx(answer)) == (401, "unknown_key")
    assert count(container) == 0


def test_another_insurers_code_is_403_insurer_mismatch_everywhere(
    make_insurer: Callable[[str], InsurerAccount],
    picc: InsurerAccount,
    client: TestClient,
    container: Container,
) -> None:
    make_insurer("PINGAN")
    theirs = event(insurer_code="PINGAN")

    single = picc.api.request("POST", EVENTS, json=theirs)
    assert (single.status_code, assert_clear_4xx(single)) == (403, "insurer_mismatch")
    batch = picc.api.request("POST", BATCH, content=ndjson(theirs), content_type=NDJSON)
    assert batch.status_code == 200
    (line,) = batch.json()["results"]
    assert (line["line"], line["status"], line["error"]["code"]) == (
        1,
        "rejected",
        "insurer_mismatch",
    )
    beat = picc.api.request("POST", "/v1/insurers/PINGAN/heartbeat", json={})
    assert (beat.status_code, assert_clear_4xx(beat)) == (403, "insurer_mismatch")
    # The code in the path is normalised before the check: no case trick gets around it.
    for path in ("/v1/insurers/pingan/sync", "/v1/insurers/PINGAN/sync"):
        read = picc.api.request("GET", path)
        assert (read.status_code, assert_clear_4xx(read)) == (403, "insurer_mismatch")
    assert count(container) == 0
    assert container.insurers.sync("PINGAN").last_sync_at is None


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_a_suspended_or_revoked_insurer_is_403_until_certified_again(
    picc: InsurerAccount, client: TestClient, container: Container, status: str
) -> None:
    container.insurers.set_status("PICC", status, reason="audit", actor="regulator-1")
    for n, (path, content_type, body_of) in enumerate(insurer_writes()):
        answer = signed_post(client, picc, path, body_of(n), content_type)
        assert (answer.status_code, assert_clear_4xx(answer)) == (403, "insurer_not_certified")
        assert answer.json()["error"]["details"] == {"status": status}
    read = picc.api.request("GET", SYNC)
    assert (read.status_code, assert_clear_4xx(read)) == (403, "insurer_not_certified")
    assert count(container) == 0

    container.insurers.set_status("PICC", "certified", reason="cleared", actor="regulator-1")
    for n, (path, content_type, body_of) in enumerate(insurer_writes()):
        answer = signed_post(client, picc, path, body_of(n), content_type)
        assert answer.status_code in (200, 201), answer.text
    assert count(container) == 2


# --- SQL-injection and control-character strings ----------------------------------------

# Every field of an event that the wire carries as a string.
EVENT_TEXT_FIELDS = [
    *(name for name, value in event().items() if isinstance(value, str)),
    "prior_policy_no",
    "effective_at",
]
# Fields whose grammar (DESIGN §2, docs/DECISIONS.md) none of the hostile strings meets.
GRAMMAR_FIELDS = set(EVENT_TEXT_FIELDS) - {"owner_name", "prior_policy_no"}
PERSONAL_FIELDS = {"owner_name", "owner_id_number", "owner_phone", "vin"}


def test_hostile_strings_in_every_event_field_are_4xx_or_stored_as_given(
    picc: InsurerAccount, client: TestClient, container: Container
) -> None:
    tables = table_names(container)
    accepted: list[tuple[str, str]] = []
    for field in EVENT_TEXT_FIELDS:
        for name, hostile in HOSTILE.items():
            changes: dict[str, Any] = {"policy_no": f"INJ-{field}-{name}"[:40], field: hostile}
            if field == "prior_policy_no":
                changes["event_type"] = "renew"
            if field == "effective_at":
                changes["event_type"] = "surrender"
            answer = picc.api.request("POST", EVENTS, json=event(**changes))
            if answer.status_code == 201:
                accepted.append((field, name))
                continue
            assert_clear_4xx(answer, 400, 403)  # owner_name refuses control characters
            if field in PERSONAL_FIELDS:  # errors never echo the personal data sent
                assert hostile not in answer.text
    assert not [(f, n) for f, n in accepted if f in GRAMMAR_FIELDS]
    assert ("owner_name", "sql_drop") in accepted  # a name may hold any character
    assert table_names(container) == tables
    assert count(container) == len(accepted) == count(container, policies)
    # The registry still answers: the last hostile-named owner's car is found by its tail.
    found = client.post(QUERY, json={"plate": "苏E12345", "vin_last6": VIN[-6:], "at": AT})
    assert found.status_code == 200 and found.json()["status"] == "ACTIVE"


def test_hostile_strings_in_batch_lines_reject_those_lines_alone(
    picc: InsurerAccount, container: Container
) -> None:
    lines = [event(policy_no="GOOD-1")]
    for field in sorted(GRAMMAR_FIELDS - {"insurer_code", "policy_no"}):
        lines += [
            event(policy_no=f"BAD-{field}-{n}"[:40], **{field: h})
            for n, h in enumerate(HOSTILE.values())
        ]
    lines.append(event(policy_no="GOOD-2"))
    answer = picc.api.request("POST", BATCH, content=ndjson(*lines), content_type=NDJSON)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, len(lines) - 2)
    for result in body["results"][1:-1]:
        assert result["status"] == "rejected"
        assert result["error"]["code"] in CODES_4XX[400]
    assert count(container) == 2


@pytest.mark.parametrize("field", ["plate", "vin_last6", "owner_id_number", "at"])
def test_hostile_strings_in_a_query_never_unlock_an_answer(
    picc: InsurerAccount, client: TestClient, container: Container, field: str
) -> None:
    picc.api.report_event(event())
    tables = table_names(container)
    for hostile in HOSTILE.values():
        body = {"plate": "苏E12345", field: hostile}
        if field == "at":
            body["vin_last6"] = VIN[-6:]
        answer = client.post(QUERY, json=body)
        # A factor that is not the right one answers like an unknown plate; anything else
        # is a 400 naming what is wrong. It never opens the full answer.
        code = assert_clear_4xx(answer, 400, 404, 413)
        assert code in {
            "invalid_plate",
            "invalid_instant",
            "validation_failed",
            "not_found",
            "invalid_id_number",
            "payload_too_large",
        }
        if field in ("vin_last6", "owner_id_number"):  # factors are never echoed
            assert hostile not in answer.text
    assert table_names(container) == tables and count(container) == 1


def test_hostile_strings_in_verify_items_are_answered_item_by_item(
    picc: InsurerAccount, client: TestClient, container: Container, police_token: str
) -> None:
    picc.api.report_event(event())
    items: list[dict[str, Any]] = [{"plate": "苏E12345", "at": AT}]
    for hostile in HOSTILE.values():
        items += [{"plate": hostile}, {"vin": hostile}, {"plate": "苏E12345", "at": hostile}]
    answer = client.post(VERIFY, json={"items": items}, headers=bearer_headers(police_token))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == len(items)
    assert (results[0]["covered"], results[0]["status"]) == (True, "ACTIVE")
    for result in results[1:]:
        assert result["covered"] is None
        assert result["error"]["code"] in {"invalid_plate", "invalid_vin", "invalid_instant"}
    # The same strings in a CSV upload: a clear 400 or item-by-item answers.
    rows = "".join(f"{h.replace(chr(10), ' ')},,\n,{h},\n" for h in HOSTILE.values())
    upload = client.post(
        VERIFY,
        content=(f"plate,vin,at\n苏E12345,,{AT}\n" + rows).encode(),
        headers={**bearer_headers(police_token), "Content-Type": "text/csv"},
    )
    if upload.status_code == 200:
        first, *rest = upload.json()["results"]
        assert first["covered"] is True and all(r["covered"] is None for r in rest)
    else:
        assert assert_clear_4xx(upload, 400) == "malformed_csv"
    assert count(container) == 1 and count(container, policies) == 1


# --- oversized bodies ---------------------------------------------------------------------

EVENT_LIMIT, BATCH_LIMIT = 4096, 16_384


@pytest.fixture
def small_client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """The same database behind an app with small limits, so that going over them is cheap:
    4 KiB for an event, a query and a heartbeat, 16 KiB for a batch (verify has its own
    8 MiB, which is sent for real)."""
    small = build_container(
        settings.model_copy(
            update={"max_event_bytes": EVENT_LIMIT, "max_batch_bytes": BATCH_LIMIT}
        ),
        clock=clock,
    )
    with TestClient(build_app(small)) as test_client:
        yield test_client
    small.close()


def oversized(path: str, limit: int) -> tuple[bytes, str]:
    """A body just over the endpoint's limit that would otherwise be valid (JSON allows
    the padding: whitespace)."""
    if path == BATCH:
        body, kind = json.dumps(event()).encode(), NDJSON
    elif path == EVENTS:
        body, kind = json.dumps(event()).encode(), JSON
    elif path == HEARTBEAT:
        body, kind = b'{"at": null}', JSON
    elif path == QUERY:
        body, kind = json.dumps({"plate": "苏E12345"}).encode(), JSON
    else:
        body, kind = json.dumps({"items": [{"plate": "苏E12345", "at": AT}]}).encode(), JSON
    return body + b" " * (limit + 1 - len(body)) + b"\n", kind


def post_as_its_caller(
    client: TestClient,
    path: str,
    body: Any,
    content_type: str,
    picc: InsurerAccount,
    police_token: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST to ``path`` as the caller it is for: signed for the insurer's paths (over the
    bytes when ``body`` is bytes), the police token for verify, nobody for the query."""
    sent = dict(headers or {})
    if path == VERIFY:
        sent.update(bearer_headers(police_token))
    elif path != QUERY:
        signed = body if isinstance(body, bytes) else b""
        sent.update(signed_headers(picc.key_id, picc.secret, "POST", path, signed))
    sent.setdefault("Content-Type", content_type)
    return client.post(path, content=body, headers=sent)


@pytest.mark.parametrize("framing", ["honest", "lying_length", "chunked", "declared_huge"])
def test_an_oversized_body_is_413_however_it_is_framed(
    picc: InsurerAccount,
    small_client: TestClient,
    container: Container,
    police_token: str,
    framing: str,
) -> None:
    for path in (EVENTS, BATCH, HEARTBEAT, QUERY, VERIFY):
        limit = {BATCH: BATCH_LIMIT, VERIFY: 8 << 20}.get(path, EVENT_LIMIT)
        body, content_type = oversized(path, limit)
        assert len(body) > limit
        content: Any = body
        length: dict[str, str] = {}
        if framing == "lying_length":  # says it is small, then sends it all
            length = {"Content-Length": "100"}
        elif framing == "declared_huge":  # says it is too large: refused before reading
            length = {"Content-Length": str(limit + 1)}
            content = body[:100]
        elif framing == "chunked":  # no length at all: the limit holds while reading
            content = (body[i : i + 65536] for i in range(0, len(body), 65536))
        answer = post_as_its_caller(
            small_client, path, content, content_type, picc, police_token, length
        )
        sent_length = answer.request.headers.get("content-length")
        assert sent_length == (None if framing == "chunked" else length.get(
            "Content-Length", str(len(body))
        )), (path, sent_length)  # fmt: skip
        assert (answer.status_code, assert_clear_4xx(answer)) == (413, "payload_too_large"), path
    assert count(container) == 0


# --- mis-typed bodies ---------------------------------------------------------------------

# A field with its own grammar names it in its code (DESIGN §3): a number is not a plate.
WRONG_TYPE_CODE = {
    "plate": "invalid_plate",
    "vin": "invalid_vin",
    "owner_id_number": "invalid_id_number",
    **dict.fromkeys(
        ("occurred_at", "coverage_start", "coverage_end", "effective_at"), "invalid_instant"
    ),
}


@pytest.mark.parametrize("wrong", [12345, 1.5, True, ["苏E12345"], {"value": "x"}], ids=str)
def test_a_non_string_in_any_string_field_of_an_event_is_400(
    picc: InsurerAccount, container: Container, wrong: Any
) -> None:
    for field in EVENT_TEXT_FIELDS:
        answer = picc.api.request("POST", EVENTS, json=event(**{field: wrong}))
        code = assert_clear_4xx(answer, 400)
        assert code == WRONG_TYPE_CODE.get(field, "validation_failed"), (field, code)
    assert count(container) == 0


def test_a_non_string_in_a_query_is_400_validation_failed(
    picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event())
    for field in ("plate", "vin_last6", "owner_id_number", "at"):
        for wrong in (12345, ["苏E12345"], {"plate": "苏E12345"}):
            answer = client.post(QUERY, json={"plate": "苏E12345", field: wrong})
            assert assert_clear_4xx(answer, 400) == "validation_failed", (field, wrong)


def test_a_json_body_that_is_not_an_object_is_400(
    picc: InsurerAccount, client: TestClient, container: Container, police_token: str
) -> None:
    for path in (EVENTS, HEARTBEAT, QUERY, VERIFY):
        for body in (b"[]", json.dumps([event()]).encode(), b'"text"', b"12", b"null", b"true"):
            answer = post_as_its_caller(client, path, body, JSON, picc, police_token)
            assert assert_clear_4xx(answer, 400) == "validation_failed", (path, body[:20])
    assert count(container) == 0


def test_verify_items_that_are_not_a_list_are_400(client: TestClient, police_token: str) -> None:
    for items in ({"plate": "苏E12345"}, "苏E12345", 3, None):
        answer = client.post(VERIFY, json={"items": items}, headers=bearer_headers(police_token))
        assert assert_clear_4xx(answer, 400) == "validation_failed", items


def test_verify_items_that_are_not_objects_are_answered_with_an_error_each(
    client: TestClient, police_token: str
) -> None:
    items = [["苏E12345"], "苏E12345", 7, None, {"plate": 5}]
    answer = client.post(VERIFY, json={"items": items}, headers=bearer_headers(police_token))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["covered"] for r in results] == [None] * len(items)
    assert all(r["error"]["code"] in CODES_4XX[400] for r in results)


def test_a_wrong_content_type_is_415_on_every_write_and_query(
    picc: InsurerAccount, client: TestClient, container: Container, police_token: str
) -> None:
    bodies = {
        EVENTS: json.dumps(event()).encode(),
        BATCH: ndjson(event()),
        HEARTBEAT: b"{}",
        QUERY: json.dumps({"plate": "苏E12345"}).encode(),
        VERIFY: json.dumps({"items": [{"plate": "苏E12345"}]}).encode(),
    }
    wrong_types = {
        EVENTS: ["text/plain", "application/x-www-form-urlencoded", NDJSON],
        BATCH: [JSON, "text/plain", "application/octet-stream"],
        HEARTBEAT: ["text/csv", "text/plain"],
        QUERY: ["text/plain", "multipart/form-data; boundary=x", "application/xml"],
        VERIFY: ["text/plain", NDJSON, "application/x-www-form-urlencoded"],
    }
    for path, content_types in wrong_types.items():
        for content_type in content_types:
            answer = post_as_its_caller(
                client, path, bodies[path], content_type, picc, police_token
            )
            code = assert_clear_4xx(answer, 415)
            assert code == "unsupported_media_type", (path, content_type)
    assert count(container) == 0
