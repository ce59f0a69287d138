"""Data-quality flags on ingest (issue 10 item 6; services/quality_flags.py): accepted,
flagged on the batch line, and listed per insurer at ``GET /v1/insurers/{code}/flags``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from ctplhub.domain.identifiers import with_vin_check_digit
from helpers import VIN, VIN_B, InsurerAccount, bearer_headers, event


def vin_no(n: int) -> str:
    return with_vin_check_digit(f"LSVAU2180N2{n:06d}")


def flags_of(answer: dict[str, Any]) -> list[list[str]]:
    assert answer["rejected"] == 0, answer
    return [line.get("flags", []) for line in answer["results"]]


def listed(insurer: InsurerAccount, query: str = "") -> Any:
    response = insurer.api.request("GET", f"/v1/insurers/{insurer.code}/flags{query}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_period_longer_than_a_year_is_accepted_and_flagged(picc: InsurerAccount) -> None:
    answer = picc.api.report_batch(
        [
            event(policy_no="P1"),  # 365 days
            event(
                policy_no="P2",
                vin=VIN_B,
                plate="苏E54321",
                coverage_start="2024-03-01T10:30:00+08:00",  # 即时生效, across 29 February
                coverage_end="2025-03-02T00:00:00+08:00",
            ),
            event(
                policy_no="P3",
                vin=vin_no(3),
                plate="苏E00003",
                coverage_end="2026-03-10T00:00:00+08:00",
            ),
        ]
    )
    assert answer["accepted"] == 3
    assert flags_of(answer) == [[], [], ["period_too_long"]]
    body = listed(picc)
    assert body["insurer_code"] == "PICC"
    assert [(f["policy_no"], f["version"], f["code"]) for f in body["flags"]] == [
        ("P3", 1, "period_too_long")
    ]
    assert "374.0 days" in body["flags"][0]["message"]
    assert body["next_cursor"] is None


def test_a_vin_with_a_new_plate_is_flagged_unless_endorsed(picc: InsurerAccount) -> None:
    picc.api.report_event(event(policy_no="P1"))
    answer = picc.api.report_batch(
        [
            event(policy_no="P2", plate="苏E54321", version=1),  # a new policy, another plate
            event(
                policy_no="P1",
                version=2,
                event_type="endorse",
                plate="苏E77777",
                occurred_at="2025-06-01T10:00:00+08:00",
            ),
        ]
    )
    assert flags_of(answer) == [["vin_plate_changed"], []]
    (flag,) = listed(picc)["flags"]
    assert flag["policy_no"] == "P2"
    assert "苏E·12345" in flag["message"] and "苏E·54321" in flag["message"]
    assert VIN not in flag["message"]


def test_a_plate_on_two_vehicles_at_once_is_flagged(
    picc: InsurerAccount, make_insurer: Callable[..., InsurerAccount]
) -> None:
    cpic = make_insurer("CPIC", "中国太平洋财产保险")
    picc.api.report_event(event(policy_no="P1"))
    answer = cpic.api.report_batch(
        [
            event(insurer_code="CPIC", policy_no="C1", vin=VIN_B),  # same plate, overlapping
            event(
                insurer_code="CPIC",
                policy_no="C2",
                vin=vin_no(7),
                coverage_start="2026-03-01T00:00:00+08:00",  # touches, does not overlap
                coverage_end="2027-03-01T00:00:00+08:00",
            ),
        ]
    )
    assert flags_of(answer) == [["plate_on_two_vehicles"], []]
    assert [f["code"] for f in listed(cpic)["flags"]] == ["plate_on_two_vehicles"]
    assert listed(picc)["flags"] == []  # each insurer sees its own


def test_a_premium_far_from_the_insurers_norm_is_flagged(picc: InsurerAccount) -> None:
    normal = [
        event(policy_no=f"N{n}", vin=vin_no(n), plate=f"苏E{n:05d}", premium="950.00")
        for n in range(20)
    ]
    assert flags_of(picc.api.report_batch(normal)) == [[]] * 20
    answer = picc.api.report_batch(
        [
            event(policy_no="X1", vin=vin_no(101), plate="苏E10101", premium="9500.00"),
            event(policy_no="X2", vin=vin_no(102), plate="苏E10102", premium="1100.00"),
            event(policy_no="X3", vin=vin_no(103), plate="苏E10103", premium="95.00"),
            # Another vehicle type has no norm yet (fewer than 20 events): never flagged.
            event(
                policy_no="X4",
                vin=vin_no(104),
                plate="苏E10104",
                premium="99999.00",
                vehicle_type="truck",
            ),
        ]
    )
    assert flags_of(answer) == [["premium_outlier"], [], ["premium_outlier"], []]
    messages = {f["policy_no"]: f["message"] for f in listed(picc)["flags"]}
    assert "10.00× this insurer's median of 950.00" in messages["X1"]


def test_the_list_pages_newest_first_and_is_for_the_insurer_or_a_regulator(
    picc: InsurerAccount,
    make_insurer: Callable[..., InsurerAccount],
    client: TestClient,
    container: Any,
    police_token: str,
) -> None:
    long = {"coverage_end": "2026-06-01T00:00:00+08:00"}
    picc.api.report_batch(
        [event(policy_no=f"L{n}", vin=vin_no(n), plate=f"苏E{n:05d}", **long) for n in range(5)]
    )
    first = listed(picc, "?limit=2")
    assert [f["policy_no"] for f in first["flags"]] == ["L4", "L3"]
    second = listed(picc, f"?limit=2&cursor={first['next_cursor']}")
    assert [f["policy_no"] for f in second["flags"]] == ["L2", "L1"]
    last = listed(picc, f"?limit=2&cursor={second['next_cursor']}")
    assert [f["policy_no"] for f in last["flags"]] == ["L0"]
    assert last["next_cursor"] is None
    bad = picc.api.request("GET", "/v1/insurers/PICC/flags?limit=0")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "validation_failed")
    other = make_insurer("CPIC", "中国太平洋财产保险")
    mismatch = other.api.request("GET", "/v1/insurers/PICC/flags")
    assert (mismatch.status_code, mismatch.json()["error"]["code"]) == (403, "insurer_mismatch")
    regulator = container.users.add("reg-1", "regulator")
    as_regulator = client.get("/v1/insurers/PICC/flags", headers=bearer_headers(regulator))
    assert as_regulator.status_code == 200
    assert len(as_regulator.json()["flags"]) == 5
    unknown = client.get("/v1/insurers/NOPE/flags", headers=bearer_headers(regulator))
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_insurer")
    police = client.get("/v1/insurers/PICC/flags", headers=bearer_headers(police_token))
    assert police.status_code == 403
    assert client.get("/v1/insurers/PICC/flags").status_code == 401
