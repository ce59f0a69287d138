"""POST /v1/ask (DESIGN §3): the assistant answers from the signed coverage answer when a
vehicle question is verified, asks for the factor otherwise, and does no database work
for questions that need no vehicle data; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.security.answer_signing import verify_signed
from helpers import VIN, Clock, InsurerAccount, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
THIS_YEAR = {
    "coverage_start": "2026-03-01T00:00:00+08:00",
    "coverage_end": "2027-03-01T00:00:00+08:00",
    "occurred_at": "2026-02-20T10:00:00+08:00",
}
FIELDS = ["intent", "plate", "language", "answer", "needs_verification", "coverage"]


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


@pytest.fixture
def insured(picc: InsurerAccount) -> None:
    picc.api.report_event(event(**THIS_YEAR))


def ask(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/ask", json=body)


def access_entries(client: TestClient) -> list[dict[str, str]]:
    """The vehicle's access log as its owner lists it (the listing is itself the newest
    entry)."""
    listing = client.post(
        "/v1/coverage/access-log", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}
    )
    assert listing.status_code == 200, listing.text
    found: list[dict[str, str]] = listing.json()["entries"]
    return found


@pytest.mark.usefixtures("insured")
def test_a_verified_status_question_carries_the_signed_full_answer(client: TestClient) -> None:
    answer = ask(client, question="苏e 12345的交强险续保了吗？", vin_last6=VIN[-6:].lower())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == FIELDS
    assert body["intent"] == "renewal_status"
    assert body["plate"] == "苏E·12345"
    assert body["language"] == "zh"
    assert body["needs_verification"] is False
    coverage = body["coverage"]
    assert coverage["plate"] == "苏E·12345"
    assert coverage["status"] == "ACTIVE"
    assert coverage["covered_until"] == "2027-03-01T00:00:00+08:00"
    jwks = client.get("/.well-known/ctplhub-keys.json").json()
    assert verify_signed(coverage, jwks)
    assert not verify_signed({**coverage, "days_to_expiry": 96}, jwks)
    # The words say the same as the signed answer: status, date, and days.
    assert "保障中" in body["answer"]
    assert "2027年3月1日" in body["answer"]
    assert "95天" in body["answer"]
    # The same signed answer as the owner query (but for its id): one read path.
    query = client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    same = {k: v for k, v in query.json().items() if k not in ("answer_id", "signature")}
    assert {k: v for k, v in coverage.items() if k not in ("answer_id", "signature")} == same
    for secret in ("张伟", "11010519491231002X", "13812345678", VIN):
        assert secret not in answer.text


@pytest.mark.usefixtures("insured")
def test_a_verified_read_is_access_logged_like_the_query(client: TestClient) -> None:
    assert ask(client, question="苏E12345什么时候到期", vin_last6=VIN[-6:]).status_code == 200
    entries = access_entries(client)
    assert [(e["actor_role"], e["purpose"]) for e in entries] == [
        ("owner", "access_log_view"),
        ("owner", "assistant_query"),
    ]


@pytest.mark.usefixtures("insured")
def test_without_a_factor_it_asks_for_one_and_reads_nothing(client: TestClient) -> None:
    answer = ask(client, question="苏E12345的交强险续保了吗？")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {
        "intent": "renewal_status",
        "plate": "苏E·12345",
        "language": "zh",
        "answer": body["answer"],
        "needs_verification": True,
        "coverage": None,
    }
    assert "车架号" in body["answer"]
    # Nothing about the vehicle was read: the only entry is the owner's own listing.
    assert [e["purpose"] for e in access_entries(client)] == ["access_log_view"]


@pytest.mark.usefixtures("insured")
def test_an_english_question_is_answered_in_english(client: TestClient) -> None:
    body = ask(
        client, question="When does the CTPL of plate su e12345 expire?", vin_last6=VIN[-6:]
    ).json()
    assert (body["intent"], body["plate"], body["language"]) == ("expiry_date", "苏E·12345", "en")
    assert "2027-03-01 00:00" in body["answer"]
    assert "Beijing time" in body["answer"]
    assert body["coverage"]["status"] == "ACTIVE"
    insurer = ask(client, question="Which insurer covers 苏E12345?", vin_last6=VIN[-6:]).json()
    assert insurer["intent"] == "insurer"
    assert "中国人民财产保险" in insurer["answer"]
    assert insurer["answer"].startswith("The current CTPL of 苏E·12345 is with")


@pytest.mark.usefixtures("insured")
def test_a_wrong_factor_answers_like_the_query(client: TestClient) -> None:
    wrong = ask(client, question="苏E12345续保了吗", vin_last6="000000")
    missing = ask(client, question="苏E99999续保了吗", vin_last6=VIN[-6:])
    query = client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": "000000"})
    assert wrong.status_code == missing.status_code == query.status_code == 404
    assert wrong.json() == missing.json() == query.json()


def test_questions_that_need_no_vehicle_data_do_no_database_work(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every way to the database fails the test: the coverage reads, the use case, and
    # the engine's connections.
    monkeypatch.setattr(container.reader, "vehicles", _no_database)
    monkeypatch.setattr(container.coverage, "query", _no_database)
    container.engine.dispose()
    monkeypatch.setattr(container.engine.pool, "_creator", _no_database)
    for question, intent in (
        ("交强险怎么续保", "how_to_renew"),
        ("What happens if my CTPL lapses?", "lapse_consequences"),
        ("今天天气怎么样", "unknown"),
        ("苏E12345续保了吗", "renewal_status"),  # no factor: asks for it
        ("到期前提醒我", "subscribe"),
        ("我明明续保了怎么显示脱保", "dispute"),
    ):
        answer = ask(client, question=question, vin_last6=None)
        assert answer.status_code == 200, answer.text
        assert answer.json()["intent"] == intent
        assert answer.json()["coverage"] is None
    # The guard is live: a verified question does reach it (and fails as a 500).
    assert ask(client, question="苏E12345续保了吗", vin_last6=VIN[-6:]).status_code == 500


def _no_database(*_: object, **__: object) -> Any:
    raise AssertionError("a question that needs no vehicle data touched the database")


def test_bad_bodies_get_the_one_error_shape(client: TestClient) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({}, 400, "validation_failed"),
        ({"question": ""}, 400, "validation_failed"),
        ({"question": "   "}, 400, "validation_failed"),
        ({"question": 12}, 400, "validation_failed"),
        ({"question": "续保了吗", "vin_last6": 183294}, 400, "validation_failed"),
        ({"question": "续保了吗", "plate": "苏E12345"}, 400, "validation_failed"),
        ({"question": "续" * 501}, 400, "validation_failed"),
        ({"question": "续" * 4000}, 413, "payload_too_large"),
        ([], 400, "validation_failed"),
    ]
    for body, status, code in cases:
        answer = client.post("/v1/ask", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]["code"] == code
    malformed = client.post("/v1/ask", content=b"{", headers={"Content-Type": "application/json"})
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "malformed_json")
    text = client.post("/v1/ask", content=b"hi", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    assert ask(client, question="续" * 500).status_code == 200


@pytest.mark.usefixtures("insured")
def test_guesses_at_the_factor_are_throttled_like_the_query(client: TestClient) -> None:
    statuses = [
        ask(client, question="苏E12345续保了吗", vin_last6=f"{n:06d}").status_code
        for n in range(11)
    ]
    assert statuses == [404] * 10 + [429]
    # The plate's budget is one budget: the query is refused too, even with the right VIN.
    query = client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]})
    assert query.status_code == 429
    assert "Retry-After" in query.headers
