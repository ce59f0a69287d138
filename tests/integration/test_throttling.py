"""Throttling through the API and the owner page (DESIGN §5.3), on both engines, with the
default budgets: guessing a VIN tail, failing across plates, walking the plate space."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.config import Settings
from helpers import VIN, Clock, InsurerAccount, event

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
THIS_YEAR = {
    "coverage_start": "2026-03-01T00:00:00+08:00",
    "coverage_end": "2027-03-01T00:00:00+08:00",
    "occurred_at": "2026-02-20T10:00:00+08:00",
}
RIGHT_TAIL = VIN[-6:]


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


def query(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/coverage/query", json=body)


def wrong_tails(n: int) -> list[str]:
    return [f"{k:06d}" for k in range(n)]


def assert_rate_limited(answer: Any) -> None:
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body["error"]["code"] == "rate_limited"
    wait = int(answer.headers["retry-after"])
    assert 0 < wait <= 3600
    assert body["error"]["details"] == {"retry_after_s": wait}


def test_guessing_a_vin_tail_is_refused_after_ten_and_so_is_the_right_tail(
    picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    picc.api.report_event(
        event(policy_no="PDAA2025320500000002", plate="苏E54321", vin="LFV2A21K6G3049982")
    )
    guesses = [query(client, plate="苏E12345", vin_last6=tail) for tail in wrong_tails(10)]
    assert [g.status_code for g in guesses] == [404] * 10
    assert_rate_limited(query(client, plate="苏E12345", vin_last6="999999"))
    refused = query(client, plate="苏E·12345", vin_last6=RIGHT_TAIL)  # right, but too late
    assert_rate_limited(refused)
    assert RIGHT_TAIL not in refused.text and "苏E" not in refused.text
    other = query(client, plate="苏E54321", vin_last6="049982")  # another plate answers
    assert other.status_code == 200, other.text
    assert query(client, plate="苏E12345").status_code == 200  # the short answer is not refused


def test_the_owner_id_factor_spends_the_same_budget(
    picc: InsurerAccount, client: TestClient
) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    for n in range(10):
        wrong = f"32050519800101{n:03d}X"  # not the owner's
        assert query(client, plate="苏E12345", owner_id_number=wrong).status_code == 404
    assert_rate_limited(query(client, plate="苏E12345", vin_last6=RIGHT_TAIL))


def test_one_client_failing_across_many_plates_is_refused_after_thirty(
    client: TestClient,
) -> None:
    answers = [query(client, plate=f"苏E{n:05d}", vin_last6="000000") for n in range(30)]
    assert [a.status_code for a in answers] == [404] * 30
    assert_rate_limited(query(client, plate="京A88888", vin_last6="000000"))


def test_walking_plates_without_a_factor_is_refused_at_the_sixty_first(
    client: TestClient,
) -> None:
    answers = [query(client, plate=f"苏E{n:05d}") for n in range(60)]
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["status_class"] for a in answers} == {"NO_RECORD"}
    assert_rate_limited(query(client, plate="苏E00060"))


def test_invalid_input_is_answered_as_before(client: TestClient) -> None:
    bad = [query(client, plate="not a plate", vin_last6="000000") for _ in range(40)]
    assert {a.status_code for a in bad} == {400}  # no guess was made: nothing spent
    assert query(client, plate="苏E12345", vin_last6="000000").status_code == 404


@pytest.fixture
def unthrottled(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    container = build_container(settings.model_copy(update={"rate_limits": "off"}), clock=clock)
    with TestClient(build_app(container)) as test_client:
        yield test_client
    container.close()


def test_off_disables_throttling(unthrottled: TestClient) -> None:
    guesses = [query(unthrottled, plate="苏E12345", vin_last6=t) for t in wrong_tails(40)]
    assert {g.status_code for g in guesses} == {404}
    walked = [query(unthrottled, plate=f"苏E{n:05d}") for n in range(100)]
    assert {a.status_code for a in walked} == {200}


def test_with_redis_unreachable_the_server_still_refuses(
    settings: Settings, clock: Clock, unused_tcp_port: int
) -> None:
    closed = f"redis://127.0.0.1:{unused_tcp_port}/0"
    container = build_container(settings.model_copy(update={"redis_url": closed}), clock=clock)
    with capture_logs() as logs, TestClient(build_app(container)) as client:
        guesses = [query(client, plate="苏E12345", vin_last6=t) for t in wrong_tails(10)]
        assert {g.status_code for g in guesses} == {404}
        assert_rate_limited(query(client, plate="苏E12345", vin_last6=RIGHT_TAIL))
    container.close()
    down = [line for line in logs if line["event"] == "rate_limit_storage_down"]
    assert len(down) == 1
    assert "苏E12345" not in repr(logs) and RIGHT_TAIL not in repr(logs)


@pytest.fixture
def unused_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    with TestClient(build_app(container)) as test_client:
        yield test_client


def test_the_owner_page_answers_429_in_chinese(picc: InsurerAccount, web: TestClient) -> None:
    picc.api.report_event(event(**THIS_YEAR))
    pages = [web.post("/", data={"plate": "苏E12345", "vin_last6": t}) for t in wrong_tails(10)]
    assert [p.status_code for p in pages] == [404] * 10
    refused = web.post("/", data={"plate": "苏E12345", "vin_last6": RIGHT_TAIL})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert int(refused.headers["retry-after"]) > 0
    assert "查询过于频繁" in refused.text and "秒后再试" in refused.text
    assert RIGHT_TAIL not in refused.text
    assert refused.headers["cache-control"] == "no-store"
    # The page and the API spend one budget: the API refuses the plate too.
    assert query(web, plate="苏E12345", vin_last6=RIGHT_TAIL).status_code == 429
