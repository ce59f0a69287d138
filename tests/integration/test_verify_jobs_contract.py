"""The verify-jobs contract, written from DESIGN §11 (and §3.1, §6.1 for the signing rule
and the compact token) alone, through the HTTP API of a server left to run its queued
jobs by itself, as ``ctplhub serve`` does."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openpyxl import Workbook
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from helpers import Clock, bearer_headers

COLUMNS = ["plate", "vin", "at", "covered", "status", "insurer_code", "covered_until", "error"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def unpadded(text: str) -> bytes:
    assert "=" not in text
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def wait_done(client: TestClient, token: str, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while True:
        answer = client.get(f"/v1/verify-jobs/{job_id}", headers=bearer_headers(token))
        assert answer.status_code == 200
        body: dict[str, object] = answer.json()
        assert set(body) == {"status", "done_rows", "total_rows"}
        assert body["status"] in ("queued", "running", "done", "failed")
        if body["status"] == "done":
            return body
        assert body["status"] != "failed"
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_verify_jobs_as_section_11_describes_them(
    client: TestClient, container: Container, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    police = container.users.add("officer-101", "police")
    plates = ["苏E10001", "苏E10002", "bad", "苏E10003"]
    upload = "plate,vin,at\n" + "".join(
        f"{p},,{'2026-01-01T00:00:00+08:00' if i == 3 else ''}\n" for i, p in enumerate(plates)
    )
    posted = client.post(
        "/v1/verify-jobs",
        content=upload.encode(),
        headers={**bearer_headers(police), "Content-Type": "text/csv"},
    )
    assert posted.status_code == 202
    assert set(posted.json()) == {"job_id"}
    job_id = posted.json()["job_id"]

    state = wait_done(client, police, job_id)
    assert state["done_rows"] == state["total_rows"] == 4

    result = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(police))
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(result.content.decode("utf-8"), newline="")))
    assert rows[0] == COLUMNS
    assert [row[0] for row in rows[1:]] == plates  # input order
    assert rows[1][2] == rows[2][2] == "2026-11-25T10:00:00+08:00"  # empty at: the start
    assert rows[4][2] == "2026-01-01T00:00:00+08:00"
    assert rows[1][3:5] == ["false", "NO_RECORD"]
    assert rows[3][3] == "" and rows[3][7] != ""  # an unanswerable row: covered empty

    token = result.headers["X-CTPL-Result-Signature"]
    body_part, signature_part = token.split(".")
    signed_bytes = unpadded(body_part)
    signed = json.loads(signed_bytes)
    assert set(signed) == {"job_id", "kid", "rows", "sha256"}
    assert signed["job_id"] == job_id and signed["rows"] == 4
    assert signed["sha256"] == hashlib.sha256(result.content).hexdigest()
    jwks = client.get("/.well-known/ctplhub-keys.json").json()
    (key,) = [k for k in jwks["keys"] if k["kid"] == signed["kid"]]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
    public = Ed25519PublicKey.from_public_bytes(unpadded(key["x"]))
    # JCS of an object of these members: sorted keys, no spaces.
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert signed_bytes == canonical.encode()
    public.verify(unpadded(signature_part), signed_bytes)

    other = container.users.add("officer-102", "police")
    admin = container.users.add("admin-101", "admin")
    for path in (f"/v1/verify-jobs/{job_id}", f"/v1/verify-jobs/{job_id}/result"):
        assert client.get(path, headers=bearer_headers(other)).status_code in (403, 404)
        assert client.get(path, headers=bearer_headers(admin)).status_code == 200


def test_a_regulator_posts_an_xlsx_job(client: TestClient, container: Container) -> None:
    regulator = container.users.add("regulator-101", "regulator")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["plate", "vin", "at"])
    sheet.append(["苏E10001", None, "2026-01-01T00:00:00+08:00"])
    raw = io.BytesIO()
    book.save(raw)
    posted = client.post(
        "/v1/verify-jobs",
        content=raw.getvalue(),
        headers={**bearer_headers(regulator), "Content-Type": XLSX},
    )
    assert posted.status_code == 202
    job_id = posted.json()["job_id"]
    assert wait_done(client, regulator, job_id)["total_rows"] == 1
    result = client.get(f"/v1/verify-jobs/{job_id}/result", headers=bearer_headers(regulator))
    assert result.text.splitlines()[1].startswith("苏E10001,,2026-01-01T00:00:00+08:00,false,")
