"""Reminder subscriptions over HTTP (DESIGN §7), on SQLite and PostgreSQL: a verified
owner subscribes (same 404 as the query for a wrong factor, 400 without one, stable codes
for a bad channel or address), the address is sealed at rest, the same address twice is
one subscription, and the token (and only it) ends it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.store.tables import subscriptions
from helpers import VIN, Clock, InsurerAccount, bearer_headers, event

NOW = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
OWNER = {"plate": "苏E12345", "vin_last6": VIN[-6:]}
EMAIL = {"channel": "email", "address": "Owner.Zhang@Example.COM"}


@pytest.fixture(autouse=True)
def fixed_now(clock: Clock) -> None:
    clock.now = NOW


@pytest.fixture
def covered(picc: InsurerAccount) -> None:
    picc.api.report_event(event())


def subscribe(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/subscriptions", json=body)


@pytest.mark.usefixtures("covered")
def test_a_verified_owner_subscribes_and_the_address_is_sealed(
    client: TestClient, container: Container
) -> None:
    answer = subscribe(client, **OWNER, **EMAIL)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == {"subscription_id", "unsubscribe_token"}
    with container.engine.connect() as conn:
        row = conn.execute(select(subscriptions)).one()
    assert row.vin == VIN and row.channel == "email" and row.language == "zh-CN"
    assert b"Example" not in row.address_enc and b"owner" not in row.address_enc.lower()
    assert body["unsubscribe_token"] not in row.token_hash
    assert row.source == "owner" and row.ended_at is None


@pytest.mark.usefixtures("covered")
def test_the_owner_id_number_is_a_factor_too(client: TestClient) -> None:
    body = {"plate": "苏E·12345", "owner_id_number": "11010519491231002X", **EMAIL}
    assert subscribe(client, **body).status_code == 201


@pytest.mark.usefixtures("covered")
def test_a_wrong_factor_answers_like_an_unknown_plate(client: TestClient) -> None:
    wrong = subscribe(client, plate="苏E12345", vin_last6="000000", **EMAIL)
    unknown = subscribe(client, plate="苏E99999", vin_last6=VIN[-6:], **EMAIL)

    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("covered")
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"plate": "苏E12345", **EMAIL}, "validation_failed"),  # no factor
        ({**OWNER, "address": "a@b.cn"}, "validation_failed"),  # no channel
        ({**OWNER, "channel": "fax", "address": "a@b.cn"}, "validation_failed"),
        ({**OWNER, "channel": "email", "address": "not an address"}, "invalid_address"),
        ({**OWNER, "channel": "sms", "address": "12345"}, "invalid_address"),
        ({**OWNER, "channel": "webhook", "address": "http://example.com/x"}, "invalid_address"),
        ({**OWNER, "channel": "email", "address": 5}, "invalid_address"),
        ({**OWNER, **EMAIL, "language": "fr"}, "validation_failed"),
        ({**OWNER, **EMAIL, "at": "2026-02-10T10:00:00+08:00"}, "validation_failed"),
        ({**OWNER, **EMAIL, "colour": "red"}, "validation_failed"),
        ({"plate": "XX12345", "vin_last6": "183294", **EMAIL}, "invalid_plate"),
    ],
)
def test_bad_bodies_get_400_with_a_stable_code(
    client: TestClient, body: dict[str, Any], code: str
) -> None:
    answer = subscribe(client, **body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code


@pytest.mark.usefixtures("covered")
def test_the_same_address_twice_is_one_subscription_with_a_new_token(
    client: TestClient, container: Container
) -> None:
    first = subscribe(client, **OWNER, **EMAIL).json()
    second = subscribe(client, **OWNER, channel="email", address="owner.zhang@example.com").json()
    sms = subscribe(client, **OWNER, channel="sms", address="138 1234 5678", language="en")

    assert second["subscription_id"] == first["subscription_id"]
    assert second["unsubscribe_token"] != first["unsubscribe_token"]
    assert sms.status_code == 201 and sms.json()["subscription_id"] != first["subscription_id"]
    with container.engine.connect() as conn:
        assert len(conn.execute(select(subscriptions.c.id)).all()) == 2
    # The old token no longer ends it; the new one does.
    url = f"/v1/subscriptions/{first['subscription_id']}"
    assert client.delete(url, params={"token": first["unsubscribe_token"]}).status_code == 404
    assert client.delete(url, params={"token": second["unsubscribe_token"]}).status_code == 204


@pytest.mark.usefixtures("covered")
def test_a_webhook_subscription_gets_its_signing_secret(client: TestClient) -> None:
    answer = subscribe(client, **OWNER, channel="webhook", address="https://example.com/hook")
    assert answer.status_code == 201
    assert len(answer.json()["webhook_secret"]) == 64


@pytest.mark.usefixtures("covered")
def test_unsubscribe_needs_the_token_and_a_wrong_one_is_like_an_unknown_id(
    client: TestClient, container: Container
) -> None:
    made = subscribe(client, **OWNER, **EMAIL).json()
    url = f"/v1/subscriptions/{made['subscription_id']}"

    wrong = client.delete(url, params={"token": "x" * 43})
    unknown = client.delete("/v1/subscriptions/999999", params={"token": made["unsubscribe_token"]})
    not_a_number = client.delete("/v1/subscriptions/abc", params={"token": "x"})
    no_token = client.delete(url)
    assert wrong.status_code == unknown.status_code == not_a_number.status_code == 404
    assert no_token.status_code == 404
    assert wrong.json() == unknown.json()

    assert client.delete(url, params={"token": made["unsubscribe_token"]}).status_code == 204
    assert client.delete(url, params={"token": made["unsubscribe_token"]}).status_code == 204
    with container.engine.connect() as conn:
        assert conn.execute(select(subscriptions.c.ended_at)).scalar_one() is not None


@pytest.mark.usefixtures("covered")
def test_the_link_in_a_message_asks_then_one_click_ends(
    client: TestClient, container: Container
) -> None:
    made = subscribe(client, **OWNER, **EMAIL).json()
    url = f"/v1/subscriptions/{made['subscription_id']}/unsubscribe"
    token = {"token": made["unsubscribe_token"]}

    page = client.get(url, params=token)
    assert page.status_code == 200 and "<form" in page.text
    with container.engine.connect() as conn:
        assert conn.execute(select(subscriptions.c.ended_at)).scalar_one() is None
    assert client.post(url, params={"token": "nope"}).status_code == 404
    done = client.post(url, params=token)
    assert done.status_code == 200
    with container.engine.connect() as conn:
        assert conn.execute(select(subscriptions.c.ended_at)).scalar_one() is not None


def test_the_ghost_cover_list_is_for_regulators(
    client: TestClient, container: Container, police_token: str
) -> None:
    params = {"from": "2026-01-01T00:00:00+08:00", "to": "2026-03-01T00:00:00+08:00"}
    assert client.get("/v1/regulator/ghost-cover", params=params).status_code == 401
    refused = client.get(
        "/v1/regulator/ghost-cover", params=params, headers=bearer_headers(police_token)
    )
    assert refused.status_code == 403
    token = container.users.add("regulator-1", "regulator")
    ok = client.get("/v1/regulator/ghost-cover", params=params, headers=bearer_headers(token))
    assert ok.status_code == 200 and ok.json() == {"items": []}
    too_long = client.get(
        "/v1/regulator/ghost-cover",
        params={**params, "to": "2026-12-01T00:00:00+08:00"},
        headers=bearer_headers(token),
    )
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "range_too_large"
