"""Data-quality flags (issue 10 item 6; services/quality_flags.py): accepted, flagged by
the worker's pass over what the ledger gained (``ctplhub flags run`` here), and listed per
insurer at ``GET /v1/insurers/{code}/flags``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container
from ctplhub.cli.main import app as cli_app
from ctplhub.domain.identifiers import with_vin_check_digit
from helpers import VIN, VIN_B, InsurerAccount, bearer_headers, event


def vin_no(n: int) -> str:
    return with_vin_check_digit(f"LSVAU2180N2{n:06d}")


@pytest.fixture
def flag_pass(database_url: str, home: Path) -> Callable[[], dict[str, Any]]:
    """``ctplhub flags run --json``, as cron or an operator runs it."""
    env = {"CTPLHUB_DATABASE_URL": database_url, "CTPLHUB_HOME": str(home), "CTPLHUB_REDIS_URL": ""}

    def run() -> dict[str, Any]:
        result = CliRunner().invoke(cli_app, ["flags", "run", "--json"], env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == 0, result.output
        found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return found

    return run


def codes(insurer: InsurerAccount) -> dict[str, list[str]]:
    """Each flagged policy's codes, from the insurer's list."""
    found: dict[str, list[str]] = {}
    for flag in reversed(listed(insurer)["flags"]):
        found.setdefault(flag["policy_no"], []).append(flag["code"])
    return found


def listed(insurer: InsurerAccount, query: str = "") -> Any:
    response = insurer.api.request("GET", f"/v1/insurers/{insurer.code}/flags{query}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_period_longer_than_a_year_is_accepted_and_flagged(
    picc: InsurerAccount, flag_pass: Callable[[], dict[str, Any]]
) -> None:
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
    assert all("flags" not in line for line in answer["results"])  # not on the ingest path
    assert listed(picc)["flags"] == []  # ... until the pass has run
    assert flag_pass() == {"examined": 3, "flagged": 1, "watermark": 3}
    body = listed(picc)
    assert body["insurer_code"] == "PICC"
    assert [(f["policy_no"], f["version"], f["code"]) for f in body["flags"]] == [
        ("P3", 1, "period_too_long")
    ]
    assert "374.0 days" in body["flags"][0]["message"]
    assert body["next_cursor"] is None


def test_a_vin_with_a_new_plate_is_flagged_unless_endorsed(
    picc: InsurerAccount, flag_pass: Callable[[], dict[str, Any]]
) -> None:
    picc.api.report_event(event(policy_no="P1"))
    assert flag_pass()["flagged"] == 0  # history for the next pass, from the store
    picc.api.report_batch(
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
    assert flag_pass()["flagged"] == 1
    (flag,) = listed(picc)["flags"]
    assert flag["policy_no"] == "P2"
    assert "苏E·12345" in flag["message"] and "苏E·54321" in flag["message"]
    assert VIN not in flag["message"]


def test_a_plate_on_two_vehicles_at_once_is_flagged(
    picc: InsurerAccount,
    make_insurer: Callable[..., InsurerAccount],
    flag_pass: Callable[[], dict[str, Any]],
) -> None:
    cpic = make_insurer("CPIC", "中国太平洋财产保险")
    picc.api.report_event(event(policy_no="P1"))
    flag_pass()
    cpic.api.report_batch(
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
    flag_pass()
    assert codes(cpic) == {"C1": ["plate_on_two_vehicles"]}
    assert listed(picc)["flags"] == []  # each insurer sees its own


def test_a_premium_far_from_the_insurers_norm_is_flagged(
    picc: InsurerAccount, flag_pass: Callable[[], dict[str, Any]]
) -> None:
    normal = [
        event(policy_no=f"N{n}", vin=vin_no(n), plate=f"苏E{n:05d}", premium="950.00")
        for n in range(20)
    ]
    picc.api.report_batch(normal)
    assert flag_pass() == {"examined": 20, "flagged": 0, "watermark": 20}
    picc.api.report_batch(
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
    flag_pass()
    assert codes(picc) == {"X1": ["premium_outlier"], "X3": ["premium_outlier"]}
    messages = {f["policy_no"]: f["message"] for f in listed(picc)["flags"]}
    assert "10.00× this insurer's median of 950.00" in messages["X1"]


def test_the_list_pages_newest_first_and_is_for_the_insurer_or_a_regulator(
    picc: InsurerAccount,
    make_insurer: Callable[..., InsurerAccount],
    client: TestClient,
    container: Any,
    police_token: str,
    flag_pass: Callable[[], dict[str, Any]],
) -> None:
    long = {"coverage_end": "2026-06-01T00:00:00+08:00"}
    picc.api.report_batch(
        [event(policy_no=f"L{n}", vin=vin_no(n), plate=f"苏E{n:05d}", **long) for n in range(5)]
    )
    flag_pass()
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


def test_the_pass_flags_each_event_once_whoever_runs_it(
    picc: InsurerAccount, container: Container, flag_pass: Callable[[], dict[str, Any]]
) -> None:
    """A second pass (or a second worker) finds nothing new; a pass that lost the race to
    move the watermark keeps none of its flags; a pass resumes where the last one stopped."""
    long = {"coverage_end": "2026-06-01T00:00:00+08:00"}
    picc.api.report_batch(
        [event(policy_no=f"L{n}", vin=vin_no(n), plate=f"苏E{n:05d}", **long) for n in range(3)]
    )
    store = container.quality_flags._store  # type: ignore[union-attr]
    pending = store.pending(0, 10)
    assert [s.policy_no for s in pending] == ["L0", "L1", "L2"]
    assert flag_pass() == {"examined": 3, "flagged": 3, "watermark": 3}
    assert store.record([], 0, 3) is False  # a slower pass, holding the old watermark
    assert flag_pass() == {"examined": 0, "flagged": 0, "watermark": 3}
    picc.api.report_event(event(policy_no="L9", vin=vin_no(9), plate="苏E00009", **long))
    assert flag_pass() == {"examined": 1, "flagged": 1, "watermark": 4}
    assert sorted(codes(picc)) == ["L0", "L1", "L2", "L9"]
    assert all(c == ["period_too_long"] for c in codes(picc).values())
