"""``POST /v1/alerts`` as DESIGN §12 and §3 say: police and regulators (bearer), a region
prefix, ``since`` compared with ``seen_at`` and 30 days ago by default, oldest first by
``seen_at``; errors in the one shape with their codes. On both engines."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.domain.anpr import PlateRead
from ctplhub.domain.identifiers import Plate
from ctplhub.domain.instants import format_instant
from helpers import Clock, bearer_headers, run_reads


def raise_alerts(container: Container, clock: Clock) -> None:
    """Four never-reported plates seen by cameras in Suzhou, Nanjing and Shanghai."""
    now = clock()
    reads = [
        PlateRead("a-sz-2", "cam-7", "320505", Plate.parse("苏E·22222"), now - timedelta(hours=1)),
        PlateRead("a-sz-1", "cam-7", "320505", Plate.parse("苏E·11111"), now - timedelta(days=2)),
        PlateRead("a-nj", "cam-9", "320102", Plate.parse("苏A·33333"), now - timedelta(days=1)),
        PlateRead("a-sh", "cam-3", "310115", Plate.parse("沪A·44444"), now - timedelta(hours=3)),
        PlateRead("a-old", "cam-7", "320505", Plate.parse("苏E·55555"), now - timedelta(days=31)),
    ]
    anpr = container.anpr
    assert anpr is not None
    decided = run_reads(container, lambda: anpr.decide(reads))
    assert len(decided.alerts) == 5


def test_police_list_a_regions_alerts_oldest_first(
    client: TestClient, container: Container, clock: Clock, police_token: str
) -> None:
    raise_alerts(container, clock)
    answer = client.post(
        "/v1/alerts", json={"region_prefix": "32"}, headers=bearer_headers(police_token)
    )
    assert answer.status_code == 200
    alerts = answer.json()["alerts"]
    assert [a["read_id"] for a in alerts] == ["a-sz-1", "a-nj", "a-sz-2"]  # not a-old: 31 days
    first = alerts[0]
    assert set(first) == {
        "alert_id", "read_id", "camera_id", "region_code", "plate", "seen_at", "status",
        "lapsed_since",
    }  # fmt: skip
    assert first["plate"] == "苏E·11111"
    assert first["status"] == "NO_RECORD" and first["lapsed_since"] is None
    assert first["seen_at"] == format_instant(clock() - timedelta(days=2))
    assert first["seen_at"].endswith("+08:00")

    narrower = client.post(
        "/v1/alerts",
        json={"region_prefix": "3205", "since": format_instant(clock() - timedelta(days=1))},
        headers=bearer_headers(police_token),
    )
    assert [a["read_id"] for a in narrower.json()["alerts"]] == ["a-sz-2"]
    older = client.post(
        "/v1/alerts",
        json={"region_prefix": "320505", "since": format_instant(clock() - timedelta(days=40))},
        headers=bearer_headers(police_token),
    )
    assert [a["read_id"] for a in older.json()["alerts"]] == ["a-old", "a-sz-1", "a-sz-2"]


def test_regulators_may_list_and_other_roles_may_not(
    client: TestClient, container: Container, clock: Clock
) -> None:
    raise_alerts(container, clock)
    regulator = container.users.add("reg-1", "regulator")
    agent = container.users.add("agent-1", "agent")
    body = {"region_prefix": ""}
    ok = client.post("/v1/alerts", json=body, headers=bearer_headers(regulator))
    assert ok.status_code == 200 and len(ok.json()["alerts"]) == 4
    refused = client.post("/v1/alerts", json=body, headers=bearer_headers(agent))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_not_allowed"
    missing = client.post("/v1/alerts", json=body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_token"
    wrong = client.post("/v1/alerts", json=body, headers=bearer_headers("nope"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_token"


def test_bad_bodies_are_refused_with_their_codes(client: TestClient, police_token: str) -> None:
    headers = bearer_headers(police_token)
    cases = [
        ({"region_prefix": "32x"}, "validation_failed"),
        ({"region_prefix": "3205001"}, "validation_failed"),
        ({"region_prefix": 32}, "validation_failed"),
        ({}, "validation_failed"),
        ({"region_prefix": "32", "plate": "苏E12345"}, "validation_failed"),
        ({"region_prefix": "32", "since": "2026-12-01T00:00:00"}, "invalid_instant"),
        ({"region_prefix": "32", "since": "yesterday"}, "invalid_instant"),
    ]
    for body, code in cases:
        answer = client.post("/v1/alerts", json=body, headers=headers)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] == code, body
    broken = client.post(
        "/v1/alerts",
        content=b"{",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"
