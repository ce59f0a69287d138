"""The vehicle register of a loaded bench database (DESIGN §11), made realistic and fed
the way the traffic-management system feeds it: NDJSON batches of up to 100,000 lines
posted to ``POST /v1/register/vehicles`` of a running ``ctplhub serve``, by a
``registrar`` account.

The fleet's vehicles are read back from the database the fleet was loaded into (each
VIN's latest event: plate, type, region), so the register names the same vehicles the
policies do. Of them, by a seeded draw:

- most are registered under the plate their policies name;
- ``PLATE_DIFFERS`` carry another plate in the register (re-plated since);
- ``SCRAPPED`` and ``DEREGISTERED`` were registered, then left the register (two lines:
  the register keeps history);
- ``UNREGISTERED`` are not in the register at all (their policies are unmatched);

and vehicles that no insurer ever reported fill the register up to ``--register``
vehicles (registered without a policy: the uninsured list's bulk).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from common import Home, ctplhub
from sqlalchemy import text

from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.domain.instants import BEIJING
from ctplhub.store.schema import make_engine

PLATE_DIFFERS = 0.01
SCRAPPED = 0.015
DEREGISTERED = 0.005
UNREGISTERED = 0.02
BATCH_LINES = 100_000

_LATEST = text(
    """
    SELECT e.vin, e.plate, e.vehicle_type, e.region_code
    FROM policy_events e
    JOIN (SELECT vin, max(id) AS id FROM policy_events GROUP BY vin) last ON last.id = e.id
    ORDER BY e.vin
    """
)


@dataclass(frozen=True, slots=True)
class FleetVehicle:
    vin: str
    plate: str
    vehicle_type: str
    region_code: str


def fleet_vehicles(home: Home) -> list[FleetVehicle]:
    """Every vehicle of the loaded fleet, as its latest event names it, in VIN order."""
    engine = make_engine(home.url)
    try:
        with engine.connect() as conn:
            return [FleetVehicle(*row) for row in conn.execute(_LATEST)]
    finally:
        engine.dispose()


def _line(v: FleetVehicle, plate: str, status: str, as_of: datetime) -> dict[str, Any]:
    return {
        "vin": v.vin,
        "plate": plate,
        "vehicle_type": v.vehicle_type,
        "region_code": v.region_code,
        "status": status,
        "as_of": as_of.isoformat(),
    }


def _other_plate(plate: str, rng: random.Random) -> str:
    """The same province and city letter, other digits: a re-plated vehicle."""
    return f"{plate[:2]}{rng.randrange(100_000):05d}"


KINDS = ("registered", "plate_differs", "scrapped", "deregistered", "unregistered", "no_policy")


def register_lines(
    fleet: list[FleetVehicle], total: int, now: datetime, tally: dict[str, int], seed: int = 12
) -> Iterator[dict[str, Any]]:
    """The register's lines (a vehicle's in ``as_of`` order), ``total`` vehicles in all;
    ``tally`` counts the vehicles of each of ``KINDS`` as they are drawn."""
    rng = random.Random(seed)
    tally.update(dict.fromkeys(KINDS, 0))
    listed = 0

    def registered_on() -> datetime:
        return (now - timedelta(days=rng.randrange(200, 4000))).astimezone(BEIJING)

    for v in fleet:
        if listed >= total:
            return
        draw = rng.random()
        if draw < UNREGISTERED:
            tally["unregistered"] += 1
            continue
        listed += 1
        draw -= UNREGISTERED
        since = registered_on()
        if draw < SCRAPPED + DEREGISTERED:
            status = "scrapped" if draw < SCRAPPED else "deregistered"
            tally[status] += 1
            yield _line(v, v.plate, "registered", since)
            yield _line(v, v.plate, status, now - timedelta(days=rng.randrange(1, 180)))
        elif draw < SCRAPPED + DEREGISTERED + PLATE_DIFFERS:
            tally["plate_differs"] += 1
            yield _line(v, _other_plate(v.plate, rng), "registered", since)
        else:
            tally["registered"] += 1
            yield _line(v, v.plate, "registered", since)
    for n in range(total - listed):  # never reported by any insurer
        model = fleet[rng.randrange(len(fleet))]
        vin = with_vin_check_digit(f"LNP{n:014d}")  # no fleet VIN starts with LNP
        tally["no_policy"] += 1
        yield _line(
            FleetVehicle(vin, "", model.vehicle_type, model.region_code),
            _other_plate(model.plate, rng),
            "registered",
            registered_on(),
        )


def registrar_token(home: Home) -> str:
    name = f"bench-registrar-{int(time.time() * 1000)}"
    proc = ctplhub(home, "user", "add", name, "--role", "registrar", "--json")
    token: str = json.loads(proc.stdout)["token"]
    return token


def post_register(base: str, token: str, lines: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Post the lines in NDJSON batches of ``BATCH_LINES``; counts and seconds."""
    totals = {"accepted": 0, "duplicate": 0, "rejected": 0, "batches": 0}
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=600) as client:
        batch: list[bytes] = []

        def send() -> None:
            answer = client.post("/v1/register/vehicles", content=b"".join(batch), headers=headers)
            answer.raise_for_status()
            body = answer.json()
            for key in ("accepted", "duplicate", "rejected"):
                totals[key] += body[key]
            for result in body["results"]:
                if "error" in result:
                    code = result["error"]["code"]
                    errors[code] = errors.get(code, 0) + 1
            totals["batches"] += 1
            batch.clear()

        for line in lines:
            batch.append(json.dumps(line, ensure_ascii=False).encode() + b"\n")
            if len(batch) == BATCH_LINES:
                send()
        if batch:
            send()
    return {**totals, "errors": errors, "wall_s": round(time.perf_counter() - started, 1)}
