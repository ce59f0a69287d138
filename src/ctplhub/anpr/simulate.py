"""``ctplhub anpr simulate``: roadside cameras reading the demo fleet's plates (§12).

Plates come from the demo fleet (``services/demo_fleet.fleet_vehicle``): covered
vehicles, and, for ``uninsured_share`` of the reads, lapsed, not yet started, cancelled
and never reported ones. Like real cameras, some reads are wrong (OCR confusions 0/D,
8/B, 1/I, 5/S, 2/Z, or a character dropped: the plate then often fails §2.1, or names
another vehicle), some have a low confidence, and some are sent twice with the same
``read_id`` (a camera retrying after a lost acknowledgement).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import aiomqtt

from ctplhub.anpr.broker import Broker, reads_topic
from ctplhub.domain.anpr import ALERT_STATUSES
from ctplhub.domain.instants import format_instant
from ctplhub.services.demo_data import REGIONS
from ctplhub.services.demo_fleet import FleetVehicle, fleet_vehicle

_CONFUSIONS = {"0": "D", "D": "0", "8": "B", "B": "8", "1": "I", "5": "S", "S": "5", "2": "Z"}
OCR_ERROR_SHARE = 0.03
LOW_CONFIDENCE_SHARE = 0.04
REPEAT_SHARE = 0.02
POOL = 2_000  # vehicles sampled from the fleet


@dataclass(frozen=True, slots=True)
class Read:
    camera_id: str
    read_id: str
    payload: bytes
    kind: str  # covered, uncovered, ocr_error, low_confidence, repeat


def fleet_pools(
    vehicles: int, now: datetime, *, seed: int = 7, pool: int = POOL
) -> tuple[list[FleetVehicle], list[FleetVehicle]]:
    """Covered and uncovered vehicles of the fleet, sampled evenly (and a few never
    reported, from just past the fleet's end)."""
    step = max(1, vehicles // pool)
    sampled = [fleet_vehicle(i, vehicles=vehicles, now=now) for i in range(0, vehicles, step)]
    sampled += [fleet_vehicle(vehicles + n, vehicles=vehicles, now=now) for n in range(20)]
    covered = [v for v in sampled if v.expected_status not in ALERT_STATUSES]
    uncovered = [v for v in sampled if v.expected_status in ALERT_STATUSES]
    return covered, uncovered


class ReadMaker:
    """Deterministic reads for a seed: which vehicle, which camera, which errors."""

    def __init__(
        self,
        covered: Sequence[FleetVehicle],
        uncovered: Sequence[FleetVehicle],
        *,
        cameras: int,
        uninsured_share: float,
        seed: int,
        clock: Callable[[], datetime],
        regions: Sequence[str] | None = None,
    ) -> None:
        """``regions``: the region codes the cameras stand in, one per camera in turn
        (default: the demo's regions; the benchmark gives each camera a code of its own,
        so that the 24-hour rule, per plate and region, lets every uncovered read raise
        its alert)."""
        if not covered and not uncovered:
            raise ValueError("no vehicles to read")
        self._covered = list(covered) or list(uncovered)
        self._uncovered = list(uncovered) or list(covered)
        self._rng = random.Random(seed)
        self._share = uninsured_share
        self._clock = clock
        regions = list(regions or [r.region_code for r in REGIONS])
        self._cameras = [
            (f"cam-{seed % 1000:03d}-{n:04d}", regions[n % len(regions)]) for n in range(cameras)
        ]
        self._sent: list[Read] = []
        self._count = 0

    def next(self) -> Read:
        rng = self._rng
        if self._sent and rng.random() < REPEAT_SHARE:
            again = rng.choice(self._sent[-200:])
            return Read(again.camera_id, again.read_id, again.payload, "repeat")
        self._count += 1
        camera_id, region = rng.choice(self._cameras)
        uninsured = rng.random() < self._share
        vehicle = rng.choice(self._uncovered if uninsured else self._covered)
        plate, kind = vehicle.plate, "uncovered" if uninsured else "covered"
        confidence = round(rng.uniform(0.92, 0.995), 3)
        if rng.random() < OCR_ERROR_SHARE:
            plate, kind = _misread(plate, rng), "ocr_error"
            confidence = round(rng.uniform(0.9, 0.95), 3)  # a misread is not always unsure
        elif rng.random() < LOW_CONFIDENCE_SHARE:
            confidence, kind = round(rng.uniform(0.3, 0.89), 3), "low_confidence"
        read_id = f"{camera_id}-{self._count:09d}"
        payload = json.dumps(
            {
                "read_id": read_id,
                "camera_id": camera_id,
                "region_code": region,
                "plate": plate,
                "seen_at": format_instant(self._clock()),
                "confidence": confidence,
            },
            ensure_ascii=False,
        ).encode()
        read = Read(camera_id, read_id, payload, kind)
        self._sent.append(read)
        if len(self._sent) > 1_000:
            del self._sent[:500]
        return read


def _misread(plate: str, rng: random.Random) -> str:
    chars = list(plate.replace("·", ""))
    positions = [i for i in range(2, len(chars)) if chars[i] in _CONFUSIONS]
    if positions and rng.random() < 0.7:
        i = rng.choice(positions)
        chars[i] = _CONFUSIONS[chars[i]]
    else:
        del chars[rng.randrange(2, len(chars))]
    return "".join(chars)


async def publish_reads(
    broker: Broker,
    root: str,
    maker: ReadMaker,
    *,
    rate: float,
    count: int | None = None,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> Counter[str]:
    """Publish reads at ``rate`` per second (QoS 1) until ``count`` reads, ``duration``
    seconds or ``stop``; the kinds of the reads sent."""
    tally: Counter[str] = Counter()
    tick = 0.01
    started = time.monotonic()
    sent = 0
    async with broker.client(None, max_inflight=1_000) as client:
        while True:
            elapsed = time.monotonic() - started
            due = int(rate * elapsed) + 1 - sent
            if count is not None:
                due = min(due, count - sent)
            if (count is not None and sent >= count) or (
                duration is not None and elapsed >= duration
            ):
                break
            if stop is not None and stop.is_set():
                break
            batch = [maker.next() for _ in range(max(0, due))]
            if batch:
                await asyncio.gather(*(_send(client, root, r) for r in batch))
                sent += len(batch)
                tally.update(r.kind for r in batch)
            await asyncio.sleep(tick)
    return tally


async def _send(client: aiomqtt.Client, root: str, read: Read) -> None:
    await client.publish(reads_topic(root, read.camera_id), read.payload, qos=1)
