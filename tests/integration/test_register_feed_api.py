"""POST /v1/register/vehicles (DESIGN §11 "Register feed"), through the HTTP API on both
engines: per-line results for good, bad, duplicate and conflicting lines, as NDJSON and
CSV; lines are history; registrar accounts only; the batch limits of §3."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.config import Settings
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.store.tables import register_lines
from helpers import VIN, VIN_B, Clock, bearer_headers

FEED = "/v1/register/vehicles"
NDJSON = "application/x-ndjson"
FIELDS = ["vin", "plate", "vehicle_type", "region_code", "status", "as_of"]


def line(**overrides: Any) -> dict[str, Any]:
    base = {
        "vin": VIN,
        "plate": "苏E·12345",
        "vehicle_type": "passenger_small",
        "region_code": "320505",
        "status": "registered",
        "as_of": "2025-01-10T09:00:00+08:00",
    }
    base.update(overrides)
    return base


def ndjson(*lines: dict[str, Any] | str) -> bytes:
    return b"".join(
        (x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)).encode() + b"\n"
        for x in lines
    )


def csv_body(*lines: dict[str, Any], header: list[str] = FIELDS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for item in lines:
        writer.writerow([item.get(name, "") for name in header])
    return out.getvalue().encode()


@pytest.fixture
def registrar(container: Container) -> dict[str, str]:
    return bearer_headers(container.users.add("vms-jiangsu", "registrar"))


def post(client: TestClient, headers: dict[str, str], body: bytes, kind: str = NDJSON) -> Any:
    return client.post(FEED, content=body, headers={**headers, "Content-Type": kind})


def outcomes(answer: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [
        (r["line"], r["status"], r["error"]["code"] if "error" in r else None)
        for r in answer["results"]
    ]


def stored(container: Container) -> list[tuple[str, str, str]]:
    c = register_lines.c
    with container.engine.connect() as conn:
        rows = conn.execute(select(c.vin, c.plate, c.status).order_by(c.vin, c.as_of))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_good_bad_duplicate_and_conflicting_lines_each_get_their_result(
    client: TestClient, container: Container, registrar: dict[str, str]
) -> None:
    body = ndjson(
        line(),
        line(),  # the same line again: duplicate
        line(plate="苏E·54321"),  # same VIN and as_of, other content: conflict
        line(as_of="2024-06-01T00:00:00+08:00", plate="苏E·11111"),  # older: history
        line(vin=VIN_B, region_code="020505"),  # a region code starting with 0
        line(vin=VIN_B, plate="XX12345"),
        line(vin=VIN[:-1] + "0"),  # a VIN with a wrong check digit
        line(vin=VIN_B, status="stolen"),
        line(vin=VIN_B, as_of="2025-01-10T09:00:00"),  # no offset
        "{not json",
        line(vin=VIN_B, colour="red"),
        line(vin=VIN_B, status="scrapped"),
    )
    answer = post(client, registrar, body)
    assert answer.status_code == 200
    result = answer.json()
    assert outcomes(result) == [
        (1, "accepted", None),
        (2, "duplicate", None),
        (3, "rejected", "conflict"),
        (4, "accepted", None),
        (5, "rejected", "validation_failed"),
        (6, "rejected", "invalid_plate"),
        (7, "rejected", "invalid_vin"),
        (8, "rejected", "validation_failed"),
        (9, "rejected", "invalid_instant"),
        (10, "rejected", "malformed_json"),
        (11, "rejected", "validation_failed"),
        (12, "accepted", None),
    ]
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (3, 1, 8)
    assert stored(container) == [
        (VIN_B, "苏E12345", "scrapped"),
        (VIN, "苏E11111", "registered"),
        (VIN, "苏E12345", "registered"),
    ]


def test_a_line_sent_again_later_is_a_duplicate_and_the_same_instant_written_otherwise_too(
    client: TestClient, registrar: dict[str, str]
) -> None:
    assert post(client, registrar, ndjson(line())).json()["accepted"] == 1
    again = post(
        client,
        registrar,
        ndjson(
            line(as_of="2025-01-10T01:00:00Z", plate="苏e12345"),  # equal once normalised
            line(as_of="2025-01-10T01:00:00Z", status="scrapped"),
        ),
    ).json()
    assert outcomes(again) == [(1, "duplicate", None), (2, "rejected", "conflict")]


def test_csv_lines_are_numbered_after_the_header(
    client: TestClient, container: Container, registrar: dict[str, str]
) -> None:
    body = csv_body(line(), line(vin=VIN_B, plate=""), line(vin=VIN_B, status="deregistered"))
    answer = post(client, registrar, body, "text/csv").json()
    assert outcomes(answer) == [
        (1, "accepted", None),
        (2, "rejected", "validation_failed"),
        (3, "accepted", None),
    ]
    assert len(stored(container)) == 2
    unknown = post(client, registrar, csv_body(line(), header=[*FIELDS, "owner"]), "text/csv")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "validation_failed"


def test_only_registrars_feed_the_register(
    client: TestClient, container: Container, police_token: str
) -> None:
    assert client.post(FEED, content=ndjson(line())).json()["error"]["code"] == "missing_token"
    refused = post(client, bearer_headers(police_token), ndjson(line()))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_not_allowed"
    assert stored(container) == []


def test_wrong_media_type_is_415(client: TestClient, registrar: dict[str, str]) -> None:
    answer = post(client, registrar, json.dumps(line()).encode(), "application/json")
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"


@pytest.fixture
def small_limits(settings: Settings, clock: Clock) -> Iterator[tuple[TestClient, Container]]:
    built = build_container(
        settings.model_copy(update={"max_batch_lines": 3, "max_batch_bytes": 4096}), clock=clock
    )
    with TestClient(build_app(built)) as small:
        yield small, built
    built.close()


def test_a_feed_over_the_limits_is_refused_whole(
    small_limits: tuple[TestClient, Container],
) -> None:
    small, built = small_limits
    headers = bearer_headers(built.users.add("vms", "registrar"))
    vins = [with_vin_check_digit(f"LSVAU21{n:02d}N2183294"[:17]) for n in range(4)]
    too_many = post(small, headers, ndjson(*(line(vin=v) for v in vins)))
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "payload_too_large"
    too_big = post(small, headers, b" " * 5000 + ndjson(line()))
    assert too_big.status_code == 413
    assert stored(built) == []
