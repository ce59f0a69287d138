"""Heartbeats, sync health, certification and freshness caveats (DESIGN §2.6, §3, §5)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.client import CtplHubError
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

SYNC_FIELDS = {"insurer_code", "last_sync_at", "lag_s", "stale", "accepted_24h", "rejected_24h"}


def instant(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def iso(value: datetime) -> str:
    return value.isoformat()


def test_heartbeat_moves_the_watermark_forward_never_back(
    picc: InsurerAccount, clock: Clock
) -> None:
    first = picc.api.heartbeat("PICC")
    assert instant(first["last_sync_at"]) == clock.now.replace(microsecond=0)
    assert first["stale"] is False

    clock.advance(minutes=10)
    older = picc.api.heartbeat("PICC", at=iso(clock.now - timedelta(hours=1)))
    assert older["last_sync_at"] == first["last_sync_at"]

    newer = picc.api.heartbeat("PICC", at=iso(clock.now - timedelta(minutes=2)))
    assert instant(newer["last_sync_at"]) == (clock.now - timedelta(minutes=2)).replace(
        microsecond=0
    )
    assert newer["lag_s"] == pytest.approx(120, abs=1)


def test_heartbeat_without_a_body_uses_the_server_clock(picc: InsurerAccount, clock: Clock) -> None:
    answer = picc.api.request("POST", "/v1/insurers/PICC/heartbeat")

    assert answer.status_code == 200, answer.text
    assert instant(answer.json()["last_sync_at"]) == clock.now.replace(microsecond=0)


@pytest.mark.parametrize(
    "at",
    [
        pytest.param(lambda now: iso(now + timedelta(minutes=6)), id="beyond-5-min"),
        pytest.param(lambda now: now.replace(tzinfo=None).isoformat(), id="no-offset"),
        pytest.param(lambda now: "yesterday", id="not-an-instant"),
    ],
)
def test_heartbeat_with_a_bad_instant_is_400_and_moves_nothing(
    picc: InsurerAccount, clock: Clock, at: Callable[[datetime], str]
) -> None:
    with pytest.raises(CtplHubError) as caught:
        picc.api.heartbeat("PICC", at=at(clock.now))

    assert (caught.value.status, caught.value.code) == (400, "invalid_instant")
    assert picc.api.sync("PICC")["last_sync_at"] is None


def test_heartbeat_slightly_ahead_is_tolerated(picc: InsurerAccount, clock: Clock) -> None:
    ahead = clock.now + timedelta(minutes=4)

    answer = picc.api.heartbeat("PICC", at=iso(ahead))

    assert instant(answer["last_sync_at"]) == ahead.replace(microsecond=0)


def test_heartbeat_for_another_insurer_is_403(
    make_insurer: Callable[[str], InsurerAccount], picc: InsurerAccount
) -> None:
    pingan = make_insurer("PINGAN")

    with pytest.raises(CtplHubError) as caught:
        picc.api.heartbeat("PINGAN")

    assert (caught.value.status, caught.value.code) == (403, "insurer_mismatch")
    assert pingan.api.sync("PINGAN")["last_sync_at"] is None


def test_sync_reports_the_fields_of_design_and_counts_a_batch(
    picc: InsurerAccount, clock: Clock
) -> None:
    before = picc.api.sync("PICC")
    assert before.keys() >= SYNC_FIELDS
    assert before["insurer_code"] == "PICC"
    assert (before["last_sync_at"], before["lag_s"], before["stale"]) == (None, None, True)
    assert (before["accepted_24h"], before["rejected_24h"]) == (0, 0)

    picc.api.report_batch(
        [
            event(policy_no="S1"),
            event(policy_no="S2"),
            event(policy_no="S3"),
            event(policy_no="S4", plate="XE12345"),
            event(policy_no="S5", vin="bad"),
        ]
    )
    clock.advance(seconds=90)
    after = picc.api.sync("PICC")

    assert (after["accepted_24h"], after["rejected_24h"]) == (3, 2)
    assert after["stale"] is False
    assert after["lag_s"] == pytest.approx(90, abs=1)
    assert instant(after["last_sync_at"]) == (clock.now - timedelta(seconds=90)).replace(
        microsecond=0
    )

    clock.advance(hours=25)
    later = picc.api.sync("PICC")
    assert (later["accepted_24h"], later["rejected_24h"], later["stale"]) == (0, 0, True)


def test_a_batch_of_only_rejected_lines_does_not_move_the_watermark(
    picc: InsurerAccount,
) -> None:
    picc.api.report_batch([event(plate="XE12345")])

    status = picc.api.sync("PICC")
    assert (status["last_sync_at"], status["rejected_24h"]) == (None, 1)


def test_insurer_cannot_read_another_insurers_sync(
    make_insurer: Callable[[str], InsurerAccount], picc: InsurerAccount
) -> None:
    make_insurer("PINGAN")

    with pytest.raises(CtplHubError) as caught:
        picc.api.sync("PINGAN")

    assert (caught.value.status, caught.value.code) == (403, "insurer_mismatch")


def test_regulator_reads_any_insurers_sync_police_may_not(
    make_insurer: Callable[[str], InsurerAccount],
    picc: InsurerAccount,
    client: TestClient,
    container: Container,
    police_token: str,
) -> None:
    make_insurer("PINGAN")
    picc.api.heartbeat("PICC")
    regulator = bearer_headers(container.users.add("reg-1", "regulator"))

    picc_sync = client.get("/v1/insurers/PICC/sync", headers=regulator)
    pingan_sync = client.get("/v1/insurers/pingan/sync", headers=regulator)
    as_police = client.get("/v1/insurers/PICC/sync", headers=bearer_headers(police_token))
    unknown = client.get("/v1/insurers/NOBODY/sync", headers=regulator)

    assert picc_sync.status_code == 200
    assert picc_sync.json()["stale"] is False
    assert pingan_sync.status_code == 200
    assert (pingan_sync.json()["insurer_code"], pingan_sync.json()["stale"]) == ("PINGAN", True)
    assert as_police.status_code == 403
    assert as_police.json()["error"]["code"] == "role_not_allowed"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_insurer"


def test_sync_without_credentials_is_401(client: TestClient, picc: InsurerAccount) -> None:
    answer = client.get("/v1/insurers/PICC/sync")

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "missing_signature"


def test_suspended_insurer_gets_403_not_certified_on_signed_calls(
    picc: InsurerAccount, client: TestClient, container: Container
) -> None:
    container.insurers.set_status("PICC", "suspended", reason="audit", actor="regulator-1")

    for call in (
        lambda: picc.api.heartbeat("PICC"),
        lambda: picc.api.sync("PICC"),
        lambda: picc.api.report_event(event()),
    ):
        with pytest.raises(CtplHubError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (403, "insurer_not_certified")
    regulator = bearer_headers(container.users.add("reg-1", "regulator"))
    seen = client.get("/v1/insurers/PICC/sync", headers=regulator).json()
    assert (seen["status"], seen["last_sync_at"]) == ("suspended", None)

    container.insurers.set_status("PICC", "certified", reason="audit closed", actor="regulator-1")
    assert picc.api.heartbeat("PICC")["stale"] is False


# --- caveats in coverage answers ------------------------------------------------------


def query(client: TestClient, at: str) -> dict[str, Any]:
    answer = client.post(
        "/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:], "at": at}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def caveat_codes(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["code"], c["insurer_code"]) for c in answer["caveats"]]


def test_answer_on_a_revoked_insurers_policy_says_so(
    picc: InsurerAccount, client: TestClient, container: Container
) -> None:
    picc.api.report_event(event())
    container.insurers.set_status("PICC", "revoked", reason="licence withdrawn", actor="cbirc")

    answer = query(client, "2025-06-01T00:00:00+08:00")

    assert answer["status"] == "ACTIVE"
    assert ("insurer_revoked", "PICC") in caveat_codes(answer)


def test_stale_certified_insurer_caveats_bad_news_only(
    make_insurer: Callable[[str], InsurerAccount], picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event())  # PICC is fresh: it just synced
    make_insurer("PINGAN")  # certified, never synced: stale

    active = query(client, "2025-06-01T00:00:00+08:00")
    lapsed = query(client, "2026-06-01T00:00:00+08:00")

    assert active["status"] == "ACTIVE"
    assert active["caveats"] == []
    assert lapsed["status"] == "LAPSED"
    assert caveat_codes(lapsed) == [("stale_insurer", "PINGAN")]
    assert lapsed["caveats"][0]["message"]
    for answer in (active, lapsed):
        sources = {s["insurer_code"]: s["stale"] for s in answer["sources"]}
        assert sources == {"PICC": False, "PINGAN": True}


def test_stale_caveat_goes_once_the_other_insurer_syncs(
    make_insurer: Callable[[str], InsurerAccount], picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event())
    pingan = make_insurer("PINGAN")
    pingan.api.heartbeat("PINGAN")

    lapsed = query(client, "2026-06-01T00:00:00+08:00")

    assert lapsed["status"] == "LAPSED"
    assert lapsed["caveats"] == []
    assert [s["insurer_code"] for s in lapsed["sources"]] == ["PICC"]


def test_an_insurer_goes_stale_after_24_hours_without_sync(
    make_insurer: Callable[[str], InsurerAccount],
    picc: InsurerAccount,
    client: TestClient,
    clock: Clock,
) -> None:
    picc.api.report_event(event())
    make_insurer("PINGAN").api.heartbeat("PINGAN")
    clock.advance(hours=23)
    picc.api.heartbeat("PICC")
    assert query(client, "2026-06-01T00:00:00+08:00")["caveats"] == []

    clock.advance(hours=2)  # PINGAN last synced 25 h ago, PICC 2 h ago

    assert caveat_codes(query(client, "2026-06-01T00:00:00+08:00")) == [("stale_insurer", "PINGAN")]
