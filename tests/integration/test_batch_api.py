"""POST /v1/policy-events/batch: per-line answers, formats, limits, signing (DESIGN §3, §3.1)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.client import CtplHubClient
from ctplhub.config import Settings
from ctplhub.security.request_signing import signed_headers
from ctplhub.store.tables import policies, policy_events
from helpers import Clock, InsurerAccount, event

BATCH = "/v1/policy-events/batch"
NDJSON = "application/x-ndjson"
CSV = "text/csv"


def ndjson(*events: dict[str, Any]) -> bytes:
    """One compact JSON object per line, the way an insurer's exporter writes them."""
    return b"".join(
        json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for e in events
    )


def csv_text(*events: dict[str, Any], header: list[str] | None = None) -> str:
    fields = header or list(event().keys())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for e in events:
        writer.writerow([e.get(name, "") for name in fields])
    return out.getvalue()


def stored_events(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(policy_events)).scalar_one())


def outcomes(answer: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [
        (r["line"], r["status"], r["error"]["code"] if "error" in r else None)
        for r in answer["results"]
    ]


def closed_policy(no: str) -> list[dict[str, Any]]:
    """Issue, surrender, then a later endorsement that must be refused."""
    return [
        event(policy_no=no),
        event(
            policy_no=no,
            version=2,
            event_type="surrender",
            effective_at="2025-06-01T00:00:00+08:00",
        ),
        event(policy_no=no, version=3, event_type="endorse", plate="苏E54321"),
    ]


MIXED_BATCH = b"".join(
    [
        ndjson(event(policy_no="P1")),  # 1 accepted
        b"{not json\n",  # 2 malformed_json
        ndjson(event(policy_no="P2", plate="XE12345")),  # 3 invalid_plate
        ndjson(event(policy_no="P3", vin=None)),  # 4 missing field
        ndjson(event(policy_no="P4", insurer_code="PINGAN")),  # 5 someone else's code
        ndjson(*closed_policy("P5")),  # 6, 7 accepted; 8 policy_closed
        ndjson(event(policy_no="P1")),  # 9 exact duplicate of line 1
        ndjson(event(policy_no="P1", premium="1100.00")),  # 10 same key, other content
        b"\n\n",  # trailing blank lines are not events
    ]
)
MIXED_REJECTED = [
    (2, "rejected", "malformed_json"),
    (3, "rejected", "invalid_plate"),
    (4, "rejected", "validation_failed"),
    (5, "rejected", "insurer_mismatch"),
    (8, "rejected", "policy_closed"),
    (10, "rejected", "conflict"),
]


def test_mixed_batch_answers_each_line_in_order_and_stores_only_good_lines(
    picc: InsurerAccount, container: Container
) -> None:
    answer = picc.api.report_batch(MIXED_BATCH)

    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (3, 1, 6)
    assert outcomes(answer) == sorted(
        [
            (1, "accepted", None),
            (6, "accepted", None),
            (7, "accepted", None),
            (9, "duplicate", None),
            *MIXED_REJECTED,
        ]
    )
    missing = next(r for r in answer["results"] if r["line"] == 4)["error"]
    assert missing["details"]["fields"] == ["vin"]
    assert all(r["error"]["message"] for r in answer["results"] if r["status"] == "rejected")
    assert stored_events(container) == 3
    with container.engine.connect() as conn:
        heads = conn.execute(
            select(policies.c.policy_no, policies.c.version, policies.c.event_type).order_by(
                policies.c.policy_no
            )
        ).all()
    assert [tuple(h) for h in heads] == [("P1", 1, "issue"), ("P5", 2, "surrender")]


def test_resending_a_batch_answers_accepted_lines_as_duplicates(
    picc: InsurerAccount, container: Container
) -> None:
    picc.api.report_batch(MIXED_BATCH)

    again = picc.api.report_batch(MIXED_BATCH)

    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 4, 6)
    assert outcomes(again) == sorted(
        [
            (1, "duplicate", None),
            (6, "duplicate", None),
            (7, "duplicate", None),
            (9, "duplicate", None),
            *MIXED_REJECTED,
        ]
    )
    assert stored_events(container) == 3


def test_blank_lines_get_no_result_and_lines_keep_their_file_numbers(
    picc: InsurerAccount,
) -> None:
    body = b"\n" + ndjson(event()) + b"   \n\n" + ndjson(event(policy_no="P9", vin="bad"))

    answer = picc.api.report_batch(body)

    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert [r["line"] for r in answer["results"]] == [2, 5]
    assert answer["results"][1]["error"]["code"] == "invalid_vin"


def test_versions_arriving_out_of_order_leave_the_highest_as_head(
    picc: InsurerAccount, container: Container
) -> None:
    v1 = event()
    v2 = event(version=2, event_type="endorse", plate="苏E54321")
    v3 = event(version=3, event_type="endorse", coverage_end="2026-02-01T00:00:00+08:00")

    answer = picc.api.report_batch([v3, v1, v2])

    assert [r["status"] for r in answer["results"]] == ["accepted"] * 3
    assert stored_events(container) == 3
    with container.engine.connect() as conn:
        head = conn.execute(select(policies)).one()._mapping
    assert (head["version"], head["event_type"]) == (3, "endorse")
    assert head["coverage_end"].isoformat() == "2026-01-31T16:00:00+00:00"


def test_csv_header_is_line_zero_and_rows_are_numbered_from_one(
    picc: InsurerAccount, container: Container
) -> None:
    rows = csv_text(event(policy_no="C1"), event(policy_no="C2", vin="LSVAU2180N2183294"))
    short_row = "PICC,C3,issue\n"
    body = "\ufeff" + rows + short_row + csv_text(event(policy_no="C4")).split("\n", 1)[1]

    answer = picc.api.report_batch(body.encode(), content_type=CSV)

    assert outcomes(answer) == [
        (1, "accepted", None),
        (2, "rejected", "invalid_vin"),
        (3, "rejected", "validation_failed"),
        (4, "accepted", None),
    ]
    assert stored_events(container) == 2


def test_csv_with_an_unknown_header_is_400_and_stores_nothing(
    picc: InsurerAccount, container: Container
) -> None:
    header = [*event().keys(), "colour"]
    body = csv_text(event(), header=header).encode()

    answer = picc.api.request("POST", BATCH, content=body, content_type=CSV)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "validation_failed"
    assert "colour" in error["message"]
    assert stored_events(container) == 0


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_wrong_content_type_is_415(
    picc: InsurerAccount, container: Container, content_type: str | None
) -> None:
    answer = picc.api.request("POST", BATCH, content=ndjson(event()), content_type=content_type)

    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"
    assert stored_events(container) == 0


def test_empty_ndjson_batch_is_an_empty_answer(picc: InsurerAccount) -> None:
    answer = picc.api.report_batch(b"")

    assert answer == {"accepted": 0, "duplicate": 0, "rejected": 0, "results": []}


def test_empty_csv_batch_is_400_because_it_lacks_a_header(picc: InsurerAccount) -> None:
    answer = picc.api.request("POST", BATCH, content=b"", content_type=CSV)

    assert answer.status_code == 400
    assert answer.json()["error"]["message"]


@pytest.fixture
def limited_client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """The same database behind an app that allows 5 lines and 8 KiB per batch."""
    small = build_container(
        settings.model_copy(update={"max_batch_lines": 5, "max_batch_bytes": 8192}), clock=clock
    )
    with TestClient(build_app(small)) as test_client:
        yield test_client
    small.close()


@pytest.fixture
def limited_api(limited_client: TestClient, picc: InsurerAccount) -> Iterator[CtplHubClient]:
    with CtplHubClient(
        "http://testserver", picc.key_id, picc.secret, transport=limited_client._transport
    ) as api:
        yield api


def test_batch_over_the_line_limit_is_413_and_stores_nothing(
    limited_api: CtplHubClient, container: Container
) -> None:
    body = ndjson(*(event(policy_no=f"L{i}") for i in range(6)))
    assert len(body) < 8192

    answer = limited_api.request("POST", BATCH, content=body, content_type=NDJSON)

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert stored_events(container) == 0
    # At the limit it goes through.
    ok = limited_api.request(
        "POST",
        BATCH,
        content=ndjson(*(event(policy_no=f"L{i}") for i in range(5))),
        content_type=NDJSON,
    )
    assert ok.status_code == 200
    assert ok.json()["accepted"] == 5


def test_csv_batch_over_the_line_limit_is_413(
    limited_api: CtplHubClient, container: Container
) -> None:
    body = csv_text(*(event(policy_no=f"L{i}") for i in range(6))).encode()

    answer = limited_api.request("POST", BATCH, content=body, content_type=CSV)

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert stored_events(container) == 0


def test_batch_over_the_byte_limit_is_413_and_stores_nothing(
    limited_api: CtplHubClient, container: Container
) -> None:
    # Two lines only, but JSON whitespace makes the body too large.
    body = ndjson(event()).rstrip(b"\n") + b" " * 9000 + b"\n" + ndjson(event(policy_no="P2"))

    answer = limited_api.request("POST", BATCH, content=body, content_type=NDJSON)

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert stored_events(container) == 0


def test_streamed_batch_over_the_byte_limit_is_413(
    limited_client: TestClient, picc: InsurerAccount, container: Container
) -> None:
    body = ndjson(event()).rstrip(b"\n") + b" " * 9000 + b"\n"
    headers = signed_headers(picc.key_id, picc.secret, "POST", BATCH, body)
    headers["Content-Type"] = NDJSON

    # A generator body goes out chunked, without Content-Length: the limit holds while reading.
    answer = limited_client.post(
        BATCH, content=(body[i : i + 1024] for i in range(0, len(body), 1024)), headers=headers
    )

    assert "content-length" not in {k.lower() for k in answer.request.headers}
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert stored_events(container) == 0


def test_signature_covers_the_body(
    picc: InsurerAccount, client: TestClient, container: Container
) -> None:
    body = ndjson(event())
    headers = signed_headers(picc.key_id, picc.secret, "POST", BATCH, body)
    headers["Content-Type"] = NDJSON
    tampered = body.replace(b'"premium":"950.00"', b'"premium":"150.00"')
    assert len(tampered) == len(body) and tampered != body

    answer = client.post(BATCH, content=tampered, headers=headers)

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "bad_signature"
    assert stored_events(container) == 0


def test_suspended_insurer_cannot_send_a_batch(picc: InsurerAccount, container: Container) -> None:
    container.insurers.set_status("PICC", "suspended", reason="audit", actor="regulator-1")

    answer = picc.api.request("POST", BATCH, content=ndjson(event()), content_type=NDJSON)

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "insurer_not_certified"
    assert stored_events(container) == 0


# --- regressions: defects found by these tests and fixed --------------------------------


def test_csv_row_with_an_oversized_field_is_one_rejected_line(
    picc: InsurerAccount, container: Container
) -> None:
    body = csv_text(event(policy_no="C1"), event(policy_no="C2", owner_name="x" * 140_000))

    answer = picc.api.request("POST", BATCH, content=body.encode(), content_type=CSV)

    assert answer.status_code == 200
    assert outcomes(answer.json())[0] == (1, "accepted", None)
    assert answer.json()["results"][1]["status"] == "rejected"


def test_csv_that_is_not_utf8_near_its_end_is_never_half_stored(
    picc: InsurerAccount, container: Container
) -> None:
    rows = csv_text(*(event(policy_no=f"U{i}") for i in range(2_600))).encode()
    body = rows + b"PICC,U\xff\xfe,issue\n"

    answer = picc.api.request("POST", BATCH, content=body, content_type=CSV)

    stored = stored_events(container)
    if answer.status_code == 200:
        assert answer.json()["accepted"] == stored
    else:  # refused as a whole: then nothing may have been stored
        assert stored == 0, f"answered {answer.status_code} but {stored} events were stored"
