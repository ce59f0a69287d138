"""Contract tests written from DESIGN §11 (and the §1, §3 rules it points to) alone, through
the HTTP API only, on both engines: "Register feed", "Uninsured list", "Unmatched list",
"Accident look-up". Field names, statuses and error codes as the contract spells them."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.client import CtplHubClient
from ctplhub.domain.identifiers import with_vin_check_digit
from helpers import InsurerAccount, bearer_headers, event

VEHICLE_KEYS = {"plate", "vin_masked", "region_code", "lapsed_since", "last_insurer_code"}
ACCIDENT_KEYS = {"covered", "insurer_code", "insurer_name", "claims_phone", "policy_no_masked"}


def vin(n: int) -> str:
    return with_vin_check_digit(f"LFV{n:05d}0G3049982")


def reg(n: int, status: str = "registered", as_of: str = "2025-01-01T00:00:00+08:00") -> dict:
    return {
        "vin": vin(n),
        "plate": f"浙A{n:05d}",
        "vehicle_type": "passenger_small",
        "region_code": "330106",
        "status": status,
        "as_of": as_of,
    }


def feed(client: TestClient, token: str, lines: list[dict[str, Any]]) -> Any:
    body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
    return client.post(
        "/v1/register/vehicles",
        content=body,
        headers={**bearer_headers(token), "Content-Type": "application/x-ndjson"},
    )


def test_register_feed_answers_a_batch_answer_with_history_duplicate_and_conflict(
    client: TestClient, container: Container, police_token: str
) -> None:
    registrar = container.users.add("vms-contract", "registrar")
    answer = feed(
        client,
        registrar,
        [
            reg(1, as_of="2025-06-01T00:00:00+08:00"),
            reg(1, as_of="2024-06-01T00:00:00+08:00"),  # older: stored, not refused
            reg(1, as_of="2025-06-01T00:00:00+08:00"),  # repeated: duplicate
            reg(1, "scrapped", as_of="2025-06-01T00:00:00+08:00"),  # same key, other content
            {**reg(2), "region_code": "012345"},  # six digits, but starting with 0
        ],
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) >= {"accepted", "duplicate", "rejected", "results"}
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 2)
    assert [r["line"] for r in body["results"]] == [1, 2, 3, 4, 5]
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert body["results"][3]["error"]["code"] == "conflict"
    assert "error" not in body["results"][0]
    csv_body = (
        "vin,plate,vehicle_type,region_code,status,as_of\n" + ",".join(reg(3).values()) + "\n"
    )
    as_csv = client.post(
        "/v1/register/vehicles",
        content=csv_body.encode(),
        headers={**bearer_headers(registrar), "Content-Type": "text/csv"},
    )
    assert as_csv.json()["results"] == [{"line": 1, "status": "accepted"}]
    assert feed(client, police_token, [reg(4)]).json()["error"]["code"] == "role_not_allowed"


def test_uninsured_list_shape_order_status_at_t_and_csv(
    client: TestClient, container: Container, police_token: str, picc: InsurerAccount
) -> None:
    registrar = container.users.add("vms-contract", "registrar")
    feed(
        client,
        registrar,
        [
            reg(5),
            reg(4),
            reg(3),
            reg(3, "scrapped", as_of="2025-09-01T00:00:00+08:00"),
            reg(2, "deregistered"),
            reg(1),
        ],
    )
    picc.api.report_event(
        event(
            vin=vin(1),
            plate="浙A00001",
            coverage_start="2025-03-01T00:00:00+08:00",
            coverage_end="2026-03-01T00:00:00+08:00",
        )
    )
    police = bearer_headers(police_token)

    def listed(**body: Any) -> Any:
        return client.post("/v1/enforcement/uninsured", json=body, headers=police)

    at = "2025-08-01T00:00:00+08:00"
    page = listed(region_prefix="33", at=at).json()
    assert set(page) == {"vehicles", "next_cursor"}
    assert all(set(v) == VEHICLE_KEYS for v in page["vehicles"])
    # Ordered by VIN; vehicle 1 covered, 2 deregistered; 3 not yet scrapped at ``at``.
    assert [v["plate"] for v in page["vehicles"]] == ["浙A·00003", "浙A·00004", "浙A·00005"]
    assert page["vehicles"][0]["vin_masked"] == vin(3)[:-6] + "******"
    assert page["next_cursor"] is None
    later = listed(region_prefix="330106", at="2026-04-01T00:00:00+08:00").json()["vehicles"]
    assert [v["plate"] for v in later] == ["浙A·00001", "浙A·00004", "浙A·00005"]
    assert later[0]["lapsed_since"] == "2026-03-01T00:00:00+08:00"
    assert later[0]["last_insurer_code"] == "PICC"
    assert listed(region_prefix="44", at=at).json() == {"vehicles": [], "next_cursor": None}
    first = listed(region_prefix="3301", at=at, limit=2).json()
    assert len(first["vehicles"]) == 2 and first["next_cursor"]
    rest = listed(region_prefix="3301", at=at, limit=2, cursor=first["next_cursor"]).json()
    assert [v["plate"] for v in rest["vehicles"]] == ["浙A·00005"]
    too_many = listed(region_prefix="33", limit=1001)
    assert too_many.status_code == 400
    as_csv = client.post(
        "/v1/enforcement/uninsured",
        json={"region_prefix": "33", "at": at},
        headers={**police, "Accept": "text/csv"},
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "浙A·00003" in as_csv.text and "浙A·00001" not in as_csv.text


def test_unmatched_list_for_the_insurers_policies_in_force_now(
    client: TestClient, container: Container, picc: InsurerAccount
) -> None:
    registrar = container.users.add("vms-contract", "registrar")
    feed(client, registrar, [{**reg(7), "plate": "浙A77777"}])
    for n, plate in ((7, "浙A00007"), (8, "浙A00008")):
        picc.api.report_event(
            event(
                policy_no=f"P-{n}",
                vin=vin(n),
                plate=plate,
                coverage_start="2020-01-01T00:00:00+08:00",
                coverage_end="2099-01-01T00:00:00+08:00",
            )
        )
    answer = picc.api.request("GET", "/v1/insurers/PICC/unmatched")
    assert answer.status_code == 200
    assert answer.json() == {
        "policies": [
            {"policy_no": "P-7", "reason": "plate_differs", "register_plate": "浙A·77777"},
            {"policy_no": "P-8", "reason": "vin_not_registered"},
        ]
    }


def test_accident_look_up_shape_and_claims_phone_null_when_unset(
    client: TestClient, container: Container, police_token: str
) -> None:
    new = container.insurers.add("PICC", "中国人民财产保险", actor="test")
    with CtplHubClient(
        "http://testserver", new.key_id, new.secret, transport=client._transport
    ) as api:
        api.report_event(event())
    answer = client.post(
        "/v1/accidents/lookup",
        json={
            "plate": "苏E·12345",
            "at": "2025-05-01T08:00:00+08:00",
            "accident_ref": "ACC-2025-001",
            "reason": "collision",
        },
        headers=bearer_headers(police_token),
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == ACCIDENT_KEYS
    assert body["covered"] is True
    assert (body["insurer_code"], body["claims_phone"]) == ("PICC", None)
    assert body["policy_no_masked"] != event()["policy_no"]
