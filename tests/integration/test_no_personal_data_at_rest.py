"""No personal data in clear anywhere, and no secret in a log line (issue 7, DESIGN §5.3).

A demo fleet is loaded the way ``ctplhub demo`` loads it, then a run goes through the
real HTTP app with logging captured: owners' queries (right, wrong and no factor, by VIN
tail and by ID number, API and page), a police bulk verify (JSON and CSV), insurer
batches whose rejected lines carry personal data, refused single events, bad signatures,
and two unforeseen failures (500s) whose exceptions spell out the personal data being
processed. Afterwards:

- every column of every table, found by reflecting the live schema (so tables that later
  migrations add are covered without touching this test), holds none of the owner names,
  ID numbers or phone numbers that were sent, nor an unkeyed SHA-256 of one (an unsalted
  hash of an 18-digit ID number is reversible by enumeration), nor any insurer secret,
  bearer token or key material from ``CTPLHUB_HOME/keys``;
- the log text holds none of those either, nor any full VIN;
- no answer except bulk verify (which echoes the officer's own item) spells out a
  full VIN, and none spells out a name, ID number or phone.

VINs: DESIGN §2.4 makes the VIN the vehicle's identity and §5.3 lists as personal data
only the owner's name, ID number and phone; docs/DECISIONS.md keeps the VIN in clear in
``policy_events.vin`` and ``policies.vin`` so that plates and VINs can be looked up. But
its last six characters are a verification factor (§3.1 masks them in answers; §6 keeps
them out of the ledger), so the scan allows a full VIN in exactly those two columns and
nowhere else: not in any other column, table or log line, and not as an unkeyed hash
(the access log must name a vehicle by a keyed index, §5.3 / issue 7).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlalchemy import Column, LargeBinary, MetaData, Table, Text
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.cli.demo import load_demo
from ctplhub.client import CtplHubClient
from ctplhub.config import Settings
from ctplhub.logs import configure_logging, flush_logs
from ctplhub.security.request_signing import signed_headers
from ctplhub.services.demo_fleet import iter_fleet_events
from ctplhub.store.schema import ACCESS_LOG_SCHEMA, access_log_file, make_engine
from helpers import Clock, bearer_headers
from leak_scan import Needles, found_in, key_material, raw_keys, row_counts, scan_tables

VEHICLES = 300
NDJSON = "application/x-ndjson"


# --- the run ------------------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[io.BytesIO]:
    stream = io.BytesIO()
    configure_logging("DEBUG", stream=stream)  # stricter than the INFO a server runs at
    yield stream
    configure_logging("INFO", stream=io.BytesIO())  # later tests log to nowhere


def load_fleet(container: Container, needles: Needles) -> dict[str, Any]:
    report = load_demo(container, VEHICLES, console=Console(file=io.StringIO()), progress=False)
    assert report["accepted"] > VEHICLES and report["rejected"] == 0, report
    anchored = datetime.fromisoformat(report["anchored_at"])
    for event in iter_fleet_events(VEHICLES, now=anchored):
        needles.add_event(event)
    state = json.loads((container.settings.home / "demo.json").read_text())
    for code, keys in state["insurers"].items():
        needles.secrets[keys["secret"]] = f"API secret of {code}"
    needles.secrets[state["police_token"]] = "police token"
    return {**report, "state": state}


def insurer_api(client: TestClient, state: dict[str, Any], code: str) -> CtplHubClient:
    keys = state["insurers"][code]
    return CtplHubClient(
        "http://testserver", keys["key_id"], keys["secret"], transport=client._transport
    )


def new_person(n: int) -> dict[str, str]:
    """Personal data that only this run sends (not part of the demo fleet)."""
    ids = ["11010519491231002X", "440308199001011234", "310101198506150017"]
    return {
        "owner_name": ["欧阳泄露", "司马试探", "诸葛暴露"][n],
        "owner_id_number": ids[n],
        "owner_phone": ["13900001111", "13700002222", "13600003333"][n],
    }


def a_new_event(n: int, **changes: Any) -> dict[str, Any]:
    vins = ["LSVAU218XN2183294", "LFV2A21K6G3049982", "LSGPC52U8AF102554"]
    base = {
        "insurer_code": "PICC", "policy_no": f"LEAKTEST{n:04d}", "event_type": "issue",
        "version": 1, "occurred_at": "2025-02-20T10:30:00+08:00", "plate": f"苏E9{n:04d}",
        "vin": vins[n % 3], "vehicle_type": "passenger_small", "use_nature": "family",
        "owner_id_type": "resident_id", **new_person(n % 3),
        "coverage_start": "2025-03-01T00:00:00+08:00",
        "coverage_end": "2026-03-01T00:00:00+08:00", "premium": "950.00",
        "region_code": "320500",
    }  # fmt: skip
    base.update(changes)
    return base


def sample_factor(sample: dict[str, Any]) -> dict[str, str]:
    return {"plate": sample["plate"], "vin_last6": sample["vin_last6"]}


def run_everything(
    client: TestClient,
    container: Container,
    fleet: dict[str, Any],
    needles: Needles,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[httpx.Response], list[httpx.Response]]:
    """Every path that carries personal data; returns (answers, bulk verify answers)."""
    answers: list[httpx.Response] = []
    samples = fleet["samples"]
    fleet_events = list(
        iter_fleet_events(VEHICLES, now=datetime.fromisoformat(fleet["anchored_at"]))
    )
    # Owners: verified by VIN tail (API and page), by ID number, wrong factor, no factor.
    for sample in samples[:8]:
        body = {"plate": sample["plate"], "vin_last6": sample["vin_last6"]}
        answers.append(client.post("/v1/coverage/query", json=body))
        answers.append(client.post("/", data=body))
    for event in fleet_events[:40:8]:
        body = {"plate": event["plate"], "owner_id_number": event["owner_id_number"]}
        answers.append(client.post("/v1/coverage/query", json=body))
    for event in fleet_events[1:6]:
        # Someone else's ID number: a wrong factor, answered like an unknown plate.
        body = {"plate": event["plate"], "owner_id_number": fleet_events[-1]["owner_id_number"]}
        answers.append(client.post("/v1/coverage/query", json=body))
        answers.append(client.post("/v1/coverage/query", json={"plate": event["plate"]}))
    # The owner's list of reads, and a hotline agent's query on a caller's behalf.
    agent = container.users.add("agent-leak-test", "agent")
    needles.secrets[agent] = "agent token"
    for event in fleet_events[:20:5]:
        factor = {"plate": event["plate"], "owner_id_number": event["owner_id_number"]}
        answers.append(client.post("/v1/coverage/access-log", json=factor))
        answers.append(
            client.post(
                "/v1/agent/coverage-query",
                json={**factor, "purpose": "hotline"},
                headers=bearer_headers(agent),
            )
        )
    assert {a.status_code for a in answers} <= {200, 404}, {a.status_code for a in answers}
    assert sum(a.status_code == 200 for a in answers) >= 20

    # Owners' disputes, whose free text names people (DESIGN §10): sealed at rest.
    for sample, person in zip(samples[:3], fleet_events[:3], strict=True):
        message = (
            f"车主{person['owner_name']}，证件{person['owner_id_number']}，"
            f"电话{person.get('owner_phone')}"
        )
        body = {**sample_factor(sample), "kind": "wrong_data", "message": message}
        answers.append(client.post("/v1/disputes", json=body))
        assert answers[-1].status_code == 201, answers[-1].text

    # Police: bulk verify by plate and VIN, JSON and CSV.
    police = bearer_headers(fleet["police_token"])
    items = [{"plate": e["plate"]} for e in fleet_events[:100]]
    items += [{"vin": e["vin"], "at": e["occurred_at"]} for e in fleet_events[100:200]]
    verified = [client.post("/v1/coverage/verify", json={"items": items}, headers=police)]
    csv_body = "plate,vin,at\n" + "".join(f"{e['plate']},,\n" for e in fleet_events[:50])
    verified.append(
        client.post(
            "/v1/coverage/verify",
            content=csv_body.encode(),
            headers={**police, "Content-Type": "text/csv", "Accept": "text/csv"},
        )
    )
    assert [v.status_code for v in verified] == [200, 200]

    # The vehicle register (§11): a feed, the uninsured list (JSON and CSV), an accident
    # look-up; the register keeps VINs where the policies do, the log keeps the reference.
    registrar = bearer_headers(container.users.add("vms-leak", "registrar"))
    register = [
        {
            "vin": e["vin"],
            "plate": e["plate"],
            "vehicle_type": "passenger_small",
            "region_code": e["region_code"],
            "status": "registered" if n % 3 else "scrapped",
            "as_of": "2020-01-01T00:00:00+08:00",
        }
        for n, e in enumerate({e["vin"]: e for e in fleet_events}.values())
    ]
    fed = client.post(
        "/v1/register/vehicles",
        content=b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in register),
        headers={**registrar, "Content-Type": NDJSON},
    )
    assert fed.json()["accepted"] == len(register) >= 20, fed.text
    answers.append(fed)
    answers.append(
        client.post("/v1/enforcement/uninsured", json={"region_prefix": ""}, headers=police)
    )
    answers.append(
        client.post(
            "/v1/enforcement/uninsured",
            json={"region_prefix": ""},
            headers={**police, "Accept": "text/csv"},
        )
    )
    answers.append(
        client.post(
            "/v1/accidents/lookup",
            json={
                "plate": fleet_events[0]["plate"],
                "at": fleet_events[0]["coverage_start"],
                "accident_ref": "苏公交认字[2026]0001",
                "reason": "collision",
            },
            headers=police,
        )
    )
    assert [a.status_code for a in answers[-4:]] == [200, 200, 200, 200]

    # Insurers: good lines, and rejected lines that carry personal data.
    picc = insurer_api(client, fleet["state"], "PICC")
    batch_lines = [
        a_new_event(0),
        a_new_event(1, plate="XE12345"),  # invalid_plate
        a_new_event(2, owner_id_number="440308199001011235"),  # invalid_id_number
        a_new_event(3, insurer_code="PINGAN"),  # insurer_mismatch
        a_new_event(0, premium="1.00"),  # conflict with line 1
        a_new_event(4, coverage_start="9999-12-31T23:00:00-01:00"),  # invalid_instant
    ]
    needles.add_person("诸葛暴露", "440308199001011235", None)
    body = b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in batch_lines)
    body += '{"owner_name": "欧阳泄露", "owner_phone": "13900001111", broken\n'.encode()
    answers.append(
        picc.request("POST", "/v1/policy-events/batch", content=body, content_type=NDJSON)
    )
    outcome = answers[-1].json()
    assert (outcome["accepted"], outcome["rejected"]) == (1, 6), outcome
    csv_rows = "owner_name,owner_id_number\n欧阳泄露,11010519491231002X\n"  # a rejected row
    answers.append(
        picc.request(
            "POST", "/v1/policy-events/batch", content=csv_rows.encode(), content_type="text/csv"
        )
    )
    for n in range(3):
        needles.add_event(a_new_event(n))
    for changes in ({"premium": "2.00"}, {"owner_id_number": "11010519491231002Y"}):
        answers.append(picc.request("POST", "/v1/policy-events", json=a_new_event(0, **changes)))
    needles.personal["11010519491231002Y"] = "id_number"  # refused, but sent all the same
    # A signature made with the real key over other bytes, and a bearer token that is not
    # one: neither the secret, the signature nor the token may be logged.
    keys = fleet["state"]["insurers"]["PICC"]
    bad = signed_headers(keys["key_id"], keys["secret"], "POST", "/v1/policy-events", b"{}")
    needles.secrets[bad["X-CTPL-Signature"]] = "a request signature"
    answers.append(
        client.post(
            "/v1/policy-events", content=b"{ }", headers={**bad, "Content-Type": "application/json"}
        )
    )
    guessed = "ctp_" + "Gu3ssedT0kenThatIsNotOne" * 2
    needles.secrets[guessed] = "a guessed bearer token"
    answers.append(
        client.post("/v1/coverage/verify", json={"items": items}, headers=bearer_headers(guessed))
    )
    assert [a.status_code for a in answers[-6:]] == [200, 200, 409, 400, 401, 401], [
        (a.status_code, a.text[:200]) for a in answers[-6:]
    ]

    # Two unforeseen failures whose exceptions spell out the personal data being processed.
    def broken_report(event: dict[str, Any], **_: Any) -> Any:
        raise RuntimeError(f"cannot store {event['owner_name']} {event['owner_id_number']}")

    async def broken_query(query: Any) -> Any:
        raise RuntimeError(f"cannot answer {query.owner_id_number}")

    monkeypatch.setattr(container.report_events, "report", broken_report)
    monkeypatch.setattr(container.coverage, "query", broken_query)
    answers.append(picc.request("POST", "/v1/policy-events", json=a_new_event(1, version=2)))
    person = fleet_events[0]
    answers.append(
        client.post(
            "/v1/coverage/query",
            json={"plate": person["plate"], "owner_id_number": person["owner_id_number"]},
        )
    )
    monkeypatch.undo()
    assert [a.status_code for a in answers[-2:]] == [500, 500]
    picc.close()
    return answers, verified


def test_no_personal_data_or_secret_in_any_table_log_or_answer(
    logs: io.BytesIO, settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    needles = Needles()
    # A container and an app of the test's own, closed before the scan: whatever is
    # written off the request path (the access log's batches) is in the tables by then.
    container = build_container(settings, clock=clock)
    try:
        fleet = load_fleet(container, needles)
        with TestClient(build_app(container)) as client:
            answers, verified = run_everything(client, container, fleet, needles, monkeypatch)
    finally:
        container.close()
    needles.secrets.update(key_material(settings.home))
    assert sum(label == "id_number" for label in needles.personal.values()) >= VEHICLES
    assert len(needles.vins) >= 2 * VEHICLES

    engine = make_engine(settings.database_url)
    try:
        leaks = scan_tables(engine, needles)
        rows = row_counts(engine)
    finally:
        engine.dispose()
    # The tables the run writes were scanned, and full (on SQLite the access log is in a
    # file of its own: the scan must have found it there).
    written = {
        "policy_events",
        "policies",
        "insurers",
        "insurer_keys",
        "users",
        "access_log",
        "register_lines",
    }
    assert written <= set(rows), rows
    assert not [name for name in written if rows[name] == 0], rows
    assert not leaks, "personal data or secrets in clear at rest:\n" + "\n".join(leaks)
    if settings.database_url.startswith("sqlite:///"):
        # The files themselves, free pages and write-ahead logs included: a value written
        # in clear and deleted since would still be there.
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        files = [f"{db}{suffix}" for db in (path, access_log_file(path)) for suffix in ("", "-wal")]
        raw = b"".join(p.read_bytes() for p in map(Path, files) if p.exists())
        forbidden = {**needles.personal, **needles.secrets}
        assert not sorted({label for text, label in forbidden.items() if text.encode() in raw})
        assert not [label for key, label in raw_keys(needles.secrets).items() if key in raw]
        assert next(iter(needles.vins)).encode() in raw  # the file was read: VINs are there

    flush_logs()
    log_text = logs.getvalue().decode("utf-8", errors="replace")
    assert '"event":"request"' in log_text.replace(" ", "")  # the log was captured
    assert "unhandled_error" in log_text  # and it holds the two failures
    in_log = found_in(log_text, {**needles.personal, **needles.vins, **needles.secrets})
    assert not in_log, f"found in the log: {in_log}"

    shown = "\n".join(a.text for a in answers)
    assert not found_in(shown, {**needles.personal, **needles.vins}), "an answer leaks"
    assert "Traceback" not in shown and 'File "' not in shown  # nor does a stack trace
    assert not found_in("\n".join(v.text for v in verified), needles.personal)


def test_the_scan_finds_what_it_looks_for(container: Container) -> None:
    """The scan is not blind: the same search over a table that holds a name, a VIN
    outside its columns, a raw key and a secret reports each of them."""
    needles = Needles()
    needles.add_person("欧阳泄露", "11010519491231002X", "13900001111")
    needles.add_vin("LSVAU218XN2183294")
    needles.secrets.update(key_material(container.settings.home))
    needles.secrets["s3cr3t-api-secret-value"] = "API secret"
    raw_key = next(iter(raw_keys(needles.secrets)))
    # On SQLite, bait in the access log's attached file too: the scan must read it.
    schemas = [None, ACCESS_LOG_SCHEMA] if container.engine.dialect.name == "sqlite" else [None]
    baits = [
        Table(
            "zz_scan_bait", MetaData(), Column("note", Text), Column("blob", LargeBinary),
            schema=schema,
        )
        for schema in schemas
    ]  # fmt: skip
    for bait in baits:
        bait.create(container.engine)
    try:
        with container.engine.begin() as conn:
            for bait in baits:
                conn.execute(bait.insert(), [
                    {"note": "owner 欧阳泄露 vin LSVAU218XN2183294", "blob": b"x" + raw_key},
                    {"note": hashlib.sha256(b"11010519491231002X").hexdigest(), "blob": None},
                    {"note": "s3cr3t-api-secret-value", "blob": b"13900001111"},
                ])  # fmt: skip
        leaks = scan_tables(container.engine, needles)
    finally:
        for bait in baits:
            bait.drop(container.engine)
    for bait in baits:
        assert set(leaks) >= {
            f"{bait.fullname}.note: owner_name",
            f"{bait.fullname}.note: vin",
            f"{bait.fullname}.note: sha256(id_number)",
            f"{bait.fullname}.note: API secret",
            f"{bait.fullname}.blob: raw {needles.secrets[raw_key.hex()]}",
            f"{bait.fullname}.blob: phone as UTF-8",
        }, leaks
    assert found_in('{"who": "\\u6b27\\u9633\\u6cc4\\u9732"}', needles.personal) == ["owner_name"]
