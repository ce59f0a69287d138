"""The bound on instants (DESIGN §2.5), wherever an instant appears: a query, a verify
item, a heartbeat, an event, a batch line. Before it, instants near year 1 or 9999
overflowed the date arithmetic and answered 500, unauthenticated."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.client import CtplHubError
from helpers import VIN, InsurerAccount, bearer_headers, event

OUT_OF_RANGE = [
    "9999-12-31T23:00:00-01:00",
    "0001-01-01T00:30:00+01:00",
    "1999-12-31T23:59:59+08:00",
    "2100-01-01T00:00:00+08:00",
]


@pytest.mark.parametrize("at", OUT_OF_RANGE)
def test_a_query_at_an_instant_out_of_range_is_400(
    client: TestClient, picc: InsurerAccount, at: str
) -> None:
    picc.api.report_event(event())
    for body in (
        {"plate": "苏E12345", "at": at},
        {"plate": "苏E12345", "vin_last6": VIN[-6:], "at": at},
    ):
        answer = client.post("/v1/coverage/query", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_instant"


def test_a_verify_item_out_of_range_is_rejected_alone(
    client: TestClient, picc: InsurerAccount, police_token: str
) -> None:
    picc.api.report_event(event())
    items: list[dict[str, Any]] = [{"plate": "苏E12345", "at": at} for at in OUT_OF_RANGE]
    items.append({"plate": "苏E12345", "at": "2025-06-01T00:00:00+08:00"})
    answer = client.post(
        "/v1/coverage/verify", json={"items": items}, headers=bearer_headers(police_token)
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["error"]["code"] for r in results[:-1]] == ["invalid_instant"] * len(OUT_OF_RANGE)
    assert all(
        r["covered"] is None and r["at"] == at
        for r, at in zip(results[:-1], OUT_OF_RANGE, strict=True)
    )
    assert results[-1]["covered"] is True


def test_a_heartbeat_out_of_range_is_400(picc: InsurerAccount) -> None:
    with pytest.raises(CtplHubError) as caught:
        picc.api.heartbeat("PICC", at="0001-01-01T00:30:00+01:00")
    assert (caught.value.status, caught.value.code) == (400, "invalid_instant")


@pytest.mark.parametrize("field", ["occurred_at", "coverage_start", "coverage_end"])
def test_an_event_out_of_range_is_400(picc: InsurerAccount, field: str) -> None:
    with pytest.raises(CtplHubError) as caught:
        picc.api.report_event(event(**{field: "9999-12-31T23:00:00-01:00"}))
    assert (caught.value.status, caught.value.code) == (400, "invalid_instant")


def test_a_batch_line_out_of_range_is_rejected_alone(picc: InsurerAccount) -> None:
    answer = picc.api.report_batch(
        [
            event(policy_no="P-1"),
            event(policy_no="P-2", occurred_at="9999-12-31T23:00:00-01:00"),
            event(
                policy_no="P-3", effective_at="1999-01-01T00:00:00+08:00", event_type="surrender"
            ),
            event(policy_no="P-4"),
        ]
    )
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    assert [r.get("error", {}).get("code") for r in answer["results"]] == [
        None,
        "invalid_instant",
        "invalid_instant",
        None,
    ]
