"""The logs of real processes hold no personal data and no secret (issue 7, §5 "Request
hygiene"): ``ctplhub demo --no-serve`` loads a fleet, ``ctplhub import`` adds a file with
rejected lines, ``ctplhub serve`` answers owners,
police and insurers (good and refused requests alike) until it is stopped, and the
standard error of both, at DEBUG, is searched for every owner name, ID number, phone
and full VIN of the fleet, the insurer secrets, the police token and the key material
of ``CTPLHUB_HOME/keys``. After the server has stopped, every table is searched too, and
so is every key and value in Redis, which the server shares its nonces and rate-limit
counts through.

The in-process test (test_no_personal_data_at_rest.py) covers 500s and more paths;
this one covers what only a real process writes: start-up, uvicorn's own lines, the
lines flushed at shutdown, and the command line's output on standard error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from ctplhub.client import CtplHubClient
from ctplhub.security.keystore import ensure_keys
from ctplhub.services.demo_fleet import generate_fleet, iter_fleet_events
from ctplhub.store.schema import make_engine
from helpers import bearer_headers
from leak_scan import Needles, found_in, key_material, scan_tables

CTPLHUB = Path(sys.executable).with_name("ctplhub")
VEHICLES = 150


def redis_text(url: str) -> str:
    """Every key of the Redis database and every value under it, as text."""
    parts: list[bytes] = []
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(count=1000):
            parts.append(key)
            kind = client.type(key)
            if kind == b"string":
                parts.append(client.get(key) or b"")
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    parts += [field, value]
            elif kind == b"list":
                parts += client.lrange(key, 0, -1)
            elif kind == b"set":
                parts += list(client.smembers(key))
            elif kind == b"zset":
                parts += client.zrange(key, 0, -1)
    return "\n".join(part.decode(errors="replace") for part in parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not answer within 30 s")


def other_check_character(id_number: str) -> str:
    """The same number with a wrong check character: refused, yet personal data."""
    return id_number[:-1] + ("1" if id_number[-1] == "0" else "0")


def exercise(url: str, state: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """Owners, police and an insurer, each with requests that succeed and that fail."""
    samples = generate_fleet(VEHICLES, now=datetime.fromisoformat(state["now"])).samples
    with httpx.Client(base_url=url, timeout=30) as http:
        statuses = []
        for sample in samples[:6]:
            body = {"plate": sample.plate, "vin_last6": sample.vin_last6}
            statuses.append(http.post("/v1/coverage/query", json=body).status_code)
            statuses.append(http.post("/", data=body).status_code)
        for event in events[:30:6]:
            body = {"plate": event["plate"], "owner_id_number": event["owner_id_number"]}
            statuses.append(http.post("/v1/coverage/query", json=body).status_code)
            wrong = {"plate": event["plate"], "owner_id_number": events[-1]["owner_id_number"]}
            statuses.append(http.post("/v1/coverage/query", json=wrong).status_code)
        assert set(statuses) <= {200, 404} and statuses.count(200) >= 10, statuses
        police = bearer_headers(state["police_token"])
        items = [{"plate": e["plate"]} for e in events[:50]] + [{"vin": events[0]["vin"]}]
        verified = http.post("/v1/coverage/verify", json={"items": items}, headers=police)
        assert verified.status_code == 200
        guessed = {"Authorization": f"Bearer {state['police_token']}x"}
        wrong_token = http.post("/v1/coverage/verify", json={"items": items}, headers=guessed)
        assert wrong_token.status_code == 401
    keys = state["insurers"]["PICC"]
    with CtplHubClient(url, keys["key_id"], keys["secret"]) as picc:
        owned = [e for e in events if e["insurer_code"] == "PICC"]
        rejected = [
            {**owned[0], "plate": "XE12345"},
            {**owned[1], "premium": "0.01"},  # same key, other content
            {**owned[2], "owner_id_number": other_check_character(owned[2]["owner_id_number"])},
            {**owned[3], "insurer_code": "PINGAN"},
        ]
        body = b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in rejected)
        ndjson = "application/x-ndjson"
        batch = picc.request("POST", "/v1/policy-events/batch", content=body, content_type=ndjson)
        answer = batch.json()
        assert answer["rejected"] == 4 and answer["duplicate"] == 0, answer
        assert picc.request("POST", "/v1/policy-events", json=rejected[1]).status_code == 409
    with CtplHubClient(url, keys["key_id"], keys["secret"][::-1]) as wrong_secret:
        assert wrong_secret.request("POST", "/v1/policy-events", json=owned[4]).status_code == 401


def test_the_logs_of_a_served_run_hold_no_personal_data_or_secret(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ensure_keys(home)
    env = {
        **os.environ,
        "CTPLHUB_DATABASE_URL": database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_LOG_LEVEL": "DEBUG",
        "CTPLHUB_REDIS_URL": redis_url,
    }
    demo = subprocess.run(
        [str(CTPLHUB), "demo", "--vehicles", str(VEHICLES), "--no-serve", "--json"],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr.decode()[-2000:]
    state = json.loads((home / "demo.json").read_text())
    anchor = datetime.fromisoformat(state["now"])
    events = list(iter_fleet_events(VEHICLES, now=anchor))
    # `ctplhub import` of ten more vehicles: PICC's lines go in, the other insurers' lines
    # and a broken one are rejected, all of them carrying personal data.
    more = list(iter_fleet_events(VEHICLES + 10, now=anchor))[len(events) :]
    assert more and {e["vin"] for e in more}.isdisjoint(e["vin"] for e in events)
    lines = [json.dumps(e, ensure_ascii=False) for e in more]
    broken = json.dumps({k: more[0][k] for k in ("owner_name", "owner_phone")}, ensure_ascii=False)
    lines.append(broken[:-1] + ",")  # not JSON: cut short after the personal data
    (tmp_path / "book.ndjson").write_text("\n".join(lines) + "\n")
    imported = subprocess.run(
        [str(CTPLHUB), "import", str(tmp_path / "book.ndjson"), "--insurer", "PICC", "--json"],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    summary = json.loads(imported.stdout)
    assert summary["accepted"] > 0 and summary["rejected"] > 1, summary
    events += more

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(CTPLHUB), "serve", "--port", str(port)], env=env, stdout=sink, stderr=sink
        )
        try:
            wait_until_up(url, server, log)
            exercise(url, state, events)
        finally:
            server.terminate()
            server.wait(20)

    needles = Needles()
    for event in events:
        needles.add_event(event)
    for code, keys in state["insurers"].items():
        needles.secrets[keys["secret"]] = f"API secret of {code}"
    needles.secrets[state["police_token"]] = "police token"
    needles.secrets.update(key_material(home))
    logged = "\n".join(
        [
            demo.stderr.decode(errors="replace"),
            imported.stderr.decode(errors="replace"),
            imported.stdout.decode(errors="replace"),  # the import's report, line by line
            log.read_text(errors="replace"),
        ]
    )
    # The capture holds the server's whole life: start-up, every request, the shutdown.
    for sign in (
        '"Application startup complete."',
        '"route":"/v1/policy-events/batch"',
        '"Shutting down"',
        '"Finished server process',  # the last line, written as SIGTERM ends the process
    ):
        assert sign in logged, sign
    in_log = found_in(logged, {**needles.personal, **needles.vins, **needles.secrets})
    assert not in_log, f"found in the logs of a served run: {in_log}"

    in_redis = found_in(
        redis_text(redis_url), {**needles.personal, **needles.vins, **needles.secrets}
    )
    assert not in_redis, f"found in Redis: {in_redis}"

    engine = make_engine(database_url)
    try:
        leaks = scan_tables(engine, needles)
    finally:
        engine.dispose()
    assert not leaks, "personal data or secrets in clear at rest:\n" + "\n".join(leaks)
