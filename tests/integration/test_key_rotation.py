"""Key rotation (DESIGN §5.3, §8 ``ctplhub keys rotate``), on SQLite and PostgreSQL.

The rotation runs as another process would: its own engine and keyring, while the
``client`` fixture's server keeps its own. A scan of the tables checks what is stored;
owner-ID queries through the server check that answers never change, before, half-way
through (stopped after some batches), and after.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ctplhub.bootstrap import Container, KeyTools, build_app, build_container, initialise
from ctplhub.cli.main import app
from ctplhub.config import Settings
from ctplhub.security.keystore import MASTER_KEYS_FILE, add_master_key
from ctplhub.security.pii import BlindIndexRing, FieldCipher
from ctplhub.services.demo_data import resident_id, vin
from ctplhub.services.reminders import address_aad, address_index_value
from ctplhub.services.report_events import personal_aad
from ctplhub.store.schema import make_engine
from ctplhub.store.tables import data_keys, insurer_keys, policy_events, subscriptions
from helpers import VIN, Clock, InsurerAccount, event

FLEET = 23


def fleet(n: int = FLEET, start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(11 + start)
    return [
        event(
            policy_no=f"PKR{i:08d}",
            plate=f"苏E{i:05d}",
            vin=vin(rng, i, 7, "LSV", 2022),
            owner_id_number=resident_id(rng, "320500", i % 2 == 0, date(2026, 1, 1)),
            owner_phone=None if i % 3 == 0 else f"1381234{i:04d}",
        )
        for i in range(start, start + n)
    ]


def answer_of(client: TestClient, e: dict[str, Any], owner_id: str | None = None) -> Any:
    body = {"plate": e["plate"], "owner_id_number": owner_id or e["owner_id_number"]}
    response = client.post("/v1/coverage/query", json=body)
    if response.status_code != 200:
        return response.status_code
    answer = response.json()
    return {k: answer[k] for k in ("plate", "vin_masked", "status", "covered_until")}


@pytest.fixture
def tools(settings: Settings, clock: Clock) -> Iterator[Callable[[], KeyTools]]:
    """A fresh "process" of ``ctplhub keys`` each call: own engine, own keyring."""
    engines: list[Engine] = []

    def make() -> KeyTools:
        engines.append(make_engine(settings.database_url))
        return KeyTools(engines[-1], settings.home, clock)

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def loaded(picc: InsurerAccount) -> list[dict[str, Any]]:
    events = fleet()
    result = picc.api.report_batch(events)
    assert {line["status"] for line in result["results"]} == {"accepted"}
    return events


def stored(engine: Engine) -> list[Any]:
    e = policy_events.c
    columns = (e.owner_name_enc, e.owner_id_enc, e.owner_phone_enc, e.owner_id_bidx)
    with engine.connect() as conn:
        return list(conn.execute(select(*columns).order_by(e.id)))


def field_kids(engine: Engine) -> list[str]:
    """The kid of every ciphertext in the database, insurer secrets included."""
    kids = [FieldCipher.key_id_of(bytes(b)) for row in stored(engine) for b in row[:3] if b]
    with engine.connect() as conn:
        secrets_ = conn.execute(select(insurer_keys.c.secret_enc)).scalars()
        return kids + [FieldCipher.key_id_of(bytes(s)) for s in secrets_]


def blind_keys(engine: Engine) -> list[int | None]:
    return [BlindIndexRing.key_of(bytes(row[3])) for row in stored(engine)]


def key_rows(engine: Engine) -> dict[str, tuple[str, int, str]]:
    c = data_keys.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.kid, c.purpose, c.seq, c.state))
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_rotation_moves_every_row_while_answers_stay_the_same(
    container: Container,
    client: TestClient,
    picc: InsurerAccount,
    loaded: list[dict[str, Any]],
    tools: Callable[[], KeyTools],
) -> None:
    engine = container.engine
    before = [answer_of(client, e) for e in loaded]
    assert all(isinstance(a, dict) for a in before)
    legacy = set(field_kids(engine))
    assert blind_keys(engine) == [None] * FLEET  # the key file's indexes: no key byte

    # Interrupted after two batches of five: a half-rotated table.
    first = tools()
    report = first.rotation.begin()
    assert (report.resumed, report.started_with) == (False, FLEET)
    report = first.rotation.run(report, batch_size=5, max_batches=2, settle_s=0)
    assert (report.complete, report.resealed, report.remaining) == (False, 10, FLEET - 10)
    kids = field_kids(engine)
    assert kids.count(report.field_kid) > 0 and legacy & set(kids)
    assert sorted(blind_keys(engine), key=str) == sorted([1] * 10 + [None] * 13, key=str)

    # The server knew none of the new keys: it answers the same for every row, refuses
    # a wrong ID number under either blind key, and takes signed requests (its secret
    # was re-sealed first) and new events.
    assert [answer_of(client, e) for e in loaded] == before
    assert answer_of(client, loaded[0], loaded[1]["owner_id_number"]) == 404
    assert answer_of(client, loaded[-1], loaded[1]["owner_id_number"]) == 404
    assert picc.api.request("GET", "/v1/insurers/PICC/sync").status_code == 200
    (late,) = fleet(1, start=FLEET)
    picc.api.report_event(late)

    # Run again (another process): it continues the same rotation and finishes it.
    again = tools().rotation
    resumed = again.begin()
    assert (resumed.resumed, resumed.field_kid, resumed.blind_kid) == (
        True,
        report.field_kid,
        report.blind_kid,
    )
    done = again.run(resumed, batch_size=5, settle_s=0)
    assert (done.complete, done.remaining) == (True, 0)
    assert set(field_kids(engine)) == {report.field_kid}
    assert set(blind_keys(engine)) == {1}
    assert [answer_of(client, e) for e in loaded] == before
    assert isinstance(answer_of(client, late), dict)
    assert picc.api.request("GET", "/v1/insurers/PICC/sync").status_code == 200

    # A second rotation retires the first one's keys once no row uses them.
    second = tools().rotation
    newer = second.run(second.begin(), settle_s=0)
    assert newer.complete and newer.field_kid != report.field_kid
    assert newer.retired == sorted([report.field_kid, report.blind_kid])
    assert set(field_kids(engine)) == {newer.field_kid}
    assert set(blind_keys(engine)) == {2}
    states = key_rows(engine)
    assert states[report.field_kid] == ("field", 1, "retired")
    assert states[newer.blind_kid] == ("blind", 2, "active")
    assert [answer_of(client, e) for e in loaded] == before


def test_decrypted_values_survive_rotation(
    container: Container, loaded: list[dict[str, Any]], tools: Callable[[], KeyTools]
) -> None:
    rotation = tools().rotation
    rotation.run(rotation.begin(), batch_size=7, settle_s=0)
    ring = tools().keyring  # a process started after the rotation
    e = policy_events.c
    with container.engine.connect() as conn:
        rows = conn.execute(
            select(e.policy_no, e.version, e.owner_name_enc, e.owner_id_enc, e.owner_phone_enc)
        ).all()
    by_policy = {x["policy_no"]: x for x in loaded}
    for policy_no, version, name, id_number, phone in rows:
        key = ("PICC", policy_no, version)
        sent = by_policy[policy_no]
        assert ring.decrypt(bytes(name), aad=personal_aad(key, "owner_name")) == sent["owner_name"]
        plain_id = ring.decrypt(bytes(id_number), aad=personal_aad(key, "owner_id_number"))
        assert plain_id == sent["owner_id_number"]
        if phone is None:
            assert "owner_phone" not in sent
        else:
            assert (
                ring.decrypt(bytes(phone), aad=personal_aad(key, "owner_phone"))
                == sent["owner_phone"]
            )


def test_server_answers_while_the_rotation_runs(
    client: TestClient, loaded: list[dict[str, Any]], tools: Callable[[], KeyTools]
) -> None:
    before = [answer_of(client, e) for e in loaded]
    rotation = tools().rotation
    report = rotation.begin()
    running = threading.Event()
    failures: list[BaseException] = []

    def rotate() -> None:
        try:
            # Slow batches of two, so that queries land between them.
            rotation.run(report, batch_size=2, settle_s=0, progress=lambda n: time.sleep(0.05))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            running.clear()

    running.set()
    worker = threading.Thread(target=rotate)
    worker.start()
    during: list[Any] = []
    while running.is_set():
        during.extend(answer_of(client, e) for e in loaded[:4])
    worker.join()
    assert not failures
    assert report.complete
    assert len(during) >= 8  # the server answered while batches were being written
    assert during == [before[i % 4] for i in range(len(during))]


def test_master_rotation_rewraps_every_data_key(
    container: Container,
    client: TestClient,
    settings: Settings,
    loaded: list[dict[str, Any]],
    tools: Callable[[], KeyTools],
    clock: Clock,
) -> None:
    before = [answer_of(client, e) for e in loaded]
    rotation = tools().rotation
    rotation.run(rotation.begin(), settle_s=0)
    with container.engine.connect() as conn:
        wrapped_before = dict(conn.execute(select(data_keys.c.kid, data_keys.c.wrapped)).all())

    new_master = add_master_key(settings.home)
    rewrapped = tools().rotation.rotate_master()

    assert sorted(rewrapped) == sorted(wrapped_before)
    with container.engine.connect() as conn:
        rows = conn.execute(select(data_keys.c.kid, data_keys.c.master_kid, data_keys.c.wrapped))
        for kid, master_kid, wrapped in rows:
            assert master_kid == new_master
            assert bytes(wrapped) != bytes(wrapped_before[kid])
    # Only the new master is needed from now on: drop the old one from the file.
    path = settings.home / "keys" / MASTER_KEYS_FILE
    document = json.loads(path.read_text())
    document["keys"] = {new_master: document["keys"][new_master]}
    path.write_text(json.dumps(document))
    fresh = build_container(settings, clock=clock)
    try:
        with TestClient(_app(fresh)) as other:
            assert [answer_of(other, e) for e in loaded] == before
    finally:
        fresh.close()
    assert [answer_of(client, e) for e in loaded] == before  # the running server too


def _app(container: Container) -> Any:
    return build_app(container)


def test_an_older_home_keeps_working_and_upgrades(
    settings: Settings, clock: Clock, tools: Callable[[], KeyTools]
) -> None:
    (settings.home / "keys" / MASTER_KEYS_FILE).unlink()  # keys of an older `ctplhub init`
    old = build_container(settings, clock=clock)
    try:
        new = old.insurers.add("PICC", "中国人民财产保险", actor="test")
        lines = list(enumerate(fleet(6)[:5], 1))
        results = list(old.report_events.report_many(lines, insurer_code="PICC"))
        assert all(r.error is None for r in results)
    finally:
        old.close()
    engine = make_engine(settings.database_url)
    legacy = set(field_kids(engine))
    engine.dispose()

    initialise(settings)  # the upgrade: adds the master key file and the first data keys
    assert (settings.home / "keys" / MASTER_KEYS_FILE).exists()
    upgraded = build_container(settings, clock=clock)
    try:
        lines = [(1, fleet(6)[5])]
        (result,) = upgraded.report_events.report_many(lines, insurer_code="PICC")
        assert result.error is None
        engine = upgraded.engine
        kids = field_kids(engine)
        assert legacy <= set(kids) and len(set(kids)) == 2  # old rows stay, new use a dk
        with TestClient(_app(upgraded)) as client:
            answers = [answer_of(client, e) for e in fleet(6)]
            assert all(isinstance(a, dict) for a in answers)
            rotation = tools().rotation
            report = rotation.begin()
            assert report.resumed and report.started_with == 5  # moves the old rows only
            rotation.run(report, settle_s=0)
            assert set(field_kids(engine)) == {report.field_kid}
            assert [answer_of(client, e) for e in fleet(6)] == answers
        assert upgraded.insurers.rotate_secret("PICC", overlap=_hours(1)).old_key_ids == (
            new.key_id,
        )
    finally:
        upgraded.close()


def _hours(n: int) -> timedelta:
    return timedelta(hours=n)


def test_keys_commands(
    settings: Settings, loaded: list[dict[str, Any]], container: Container, home: Path
) -> None:
    env = {
        "CTPLHUB_DATABASE_URL": settings.database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": "",
    }
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    # `init` already made data keys here, so the legacy rows are the work left.
    first = run("keys", "rotate", "--json", "--batch-size", "4", "--max-batches", "2")
    assert first["complete"] is False
    assert (first["rows_resealed"], first["remaining"]) == (8, FLEET - 8)
    status = run("keys", "status", "--json")
    # The events not yet moved, and every ledger leaf's salts (moved after the events).
    assert status["rows_not_under_active_keys"] == FLEET - 8 + FLEET
    assert (first["ledger_salts_to_rotate"], first["ledger_salts_resealed"]) == (FLEET, 0)
    second = run("keys", "rotate", "--json", "--settle", "0")
    assert second["resumed"] is True and second["complete"] is True
    assert second["field_kid"] == first["field_kid"]
    assert run("keys", "status", "--json")["rows_not_under_active_keys"] == 0
    third = run("keys", "rotate", "--json", "--settle", "0")
    assert third["resumed"] is False and third["rows_resealed"] == FLEET
    assert third["retired_kids"] == sorted([first["field_kid"], first["blind_kid"]])
    master = run("keys", "rotate-master", "--json")
    assert len(master["rewrapped_kids"]) == 4
    keys_file = json.loads((home / "keys" / MASTER_KEYS_FILE).read_text())
    assert keys_file["active"] == master["master_kid"] and len(keys_file["keys"]) == 2
    assert all(len(base64.b64decode(v)) == 32 for v in keys_file["keys"].values())


def test_subscription_addresses_move_with_the_keys(
    container: Container,
    client: TestClient,
    picc: InsurerAccount,
    tools: Callable[[], KeyTools],
) -> None:
    """Reminder subscriptions' addresses (DESIGN §7) are personal data like the events':
    re-sealed by a rotation, so the keys they were under can retire."""
    picc.api.report_event(event())
    body = {"plate": "苏E12345", "vin_last6": VIN[-6:], "channel": "email"}
    made = client.post("/v1/subscriptions", json={**body, "address": "owner@example.com"})
    assert made.status_code == 201

    for _ in range(2):  # the second rotation retires the first one's keys
        rotation = tools().rotation
        report = rotation.run(rotation.begin(), settle_s=0)
        assert report.complete and report.addresses_resealed == 1
    assert report.retired

    ring = tools().keyring  # a process started after the rotations
    with container.engine.connect() as conn:
        row = conn.execute(select(subscriptions)).one()
    assert ring.decrypt(bytes(row.address_enc), aad=address_aad(VIN, "email")) == (
        "owner@example.com"
    )
    index = address_index_value("email", "owner@example.com")
    assert ring.blind_index_matches(bytes(row.address_bidx), index)
    again = client.post("/v1/subscriptions", json={**body, "address": "OWNER@example.com"})
    assert again.json()["subscription_id"] == made.json()["subscription_id"]


def test_dispute_texts_move_with_the_keys(
    container: Container,
    client: TestClient,
    picc: InsurerAccount,
    tools: Callable[[], KeyTools],
) -> None:
    """Disputes' messages and resolution notes (DESIGN §10) are sealed like personal data:
    re-sealed by a rotation, and readable after it by a process that starts afresh."""
    picc.api.report_event(event())
    body = {"plate": "苏E12345", "vin_last6": VIN[-6:], "kind": "other", "message": "张伟的车"}
    made = client.post("/v1/disputes", json=body)
    assert made.status_code == 201
    picc.api.resolve_dispute(made.json()["dispute_id"], "corrected", "已更正")

    for _ in range(2):  # the second rotation retires the first one's keys
        rotation = tools().rotation
        report = rotation.run(rotation.begin(), settle_s=0)
        assert report.complete and report.dispute_texts_resealed == 2
    assert report.retired

    listed = picc.api.disputes(status="resolved")["disputes"]
    assert [d["message"] for d in listed] == ["张伟的车"]
    status = client.post(
        f"/v1/disputes/{made.json()['dispute_id']}/status", json={"token": made.json()["token"]}
    )
    assert status.json()["history"][-1]["note"] == "corrected: 已更正"
