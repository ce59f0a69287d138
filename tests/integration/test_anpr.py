"""Roadside cameras end to end (DESIGN §12), on both engines and a real Mosquitto: a read
published by a camera becomes an alert published to ``{root}/alerts/{region}`` and kept;
repeats, the 24-hour rule per region, dropped reads, nothing kept of covered vehicles,
the access log, and the 30-day purge."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from anpr_fixtures import (
    alert_listener,
    consumer_thread,
    mqtt_port,
    publish,
    read,
    topic_root,
    wait_until,
)
from ctplhub.bootstrap import Container
from ctplhub.domain.anpr import Alert, one_per_day
from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.identifiers import Plate
from ctplhub.domain.instants import format_instant
from ctplhub.services.report_events import RawLine
from ctplhub.store.repositories.anpr_alerts import SqlAlertStore
from ctplhub.store.tables import access_log, anpr_alerts, anpr_reads_seen
from helpers import VIN, VIN_B, Clock, event

__all__ = ["mqtt_port", "topic_root"]  # fixtures

COVERED = "苏E·12345"
LAPSED = "苏E·67890"
UNKNOWN = "苏E·55555"


def load_vehicles(container: Container, clock: Clock) -> None:
    """苏E·12345 covered now; 苏E·67890 lapsed ten days ago; 苏E·55555 never reported."""
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    now = clock()
    lines: list[RawLine] = [
        (
            1,
            event(
                occurred_at=format_instant(now - timedelta(days=101)),
                coverage_start=format_instant(now - timedelta(days=100)),
                coverage_end=format_instant(now + timedelta(days=265)),
            ),
        ),
        (
            2,
            event(
                policy_no="PDAA2025320500000002",
                plate=LAPSED,
                vin=VIN_B,
                occurred_at=format_instant(now - timedelta(days=380)),
                coverage_start=format_instant(now - timedelta(days=375)),
                coverage_end=format_instant(now - timedelta(days=10)),
            ),
        ),
    ]
    results = container.report_events.report_many(lines, insurer_code="PICC")
    assert [r.status.value for r in results] == ["accepted", "accepted"]
    assert VIN  # the covered vehicle's


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels or None) or 0.0


def rows(container: Container, table: Any) -> list[Any]:
    with container.engine.connect() as conn:
        return list(conn.execute(select(table)))


def test_reads_become_alerts_once_per_plate_region_and_day_and_covered_reads_leave_no_trace(
    container: Container, clock: Clock, mqtt_port: int, topic_root: str
) -> None:
    load_vehicles(container, clock)
    now = clock()
    low_before = sample("ctplhub_anpr_reads_dropped_total", reason="low_confidence")
    invalid_before = sample("ctplhub_anpr_reads_dropped_total", reason="invalid_plate")
    covered_before = sample("ctplhub_anpr_reads_checked_total", result="covered")
    reads = [
        read("r-covered", COVERED, seen_at=now),
        read("r-lapsed", "苏E67890", seen_at=now),  # any form §2.1 accepts
        read("r-unknown", UNKNOWN, seen_at=now - timedelta(minutes=1)),
        read("r-lapsed", LAPSED, seen_at=now),  # the same read again: nothing new
        read("r-lapsed-later", LAPSED, seen_at=now + timedelta(hours=23)),  # within 24 h
        read("r-lapsed-elsewhere", LAPSED, seen_at=now, region="310115"),  # another region
        read("r-lapsed-unsure", LAPSED, seen_at=now, confidence=0.5),
        read("r-misread", "苏E6789I", seen_at=now),  # I is never in a serial
        read("r-covered-2", COVERED, seen_at=now + timedelta(minutes=5)),
    ]
    with (
        alert_listener(mqtt_port, topic_root) as listener,
        consumer_thread(container, mqtt_port, topic_root),
    ):
        publish(mqtt_port, topic_root, reads)
        published = listener.wait_for(3)
        wait_until(lambda: all(r.published_at for r in rows(container, anpr_alerts)))
    by_read = {a["read_id"]: a for a in published}
    assert len(published) == 3 and set(by_read) == {
        "r-lapsed",
        "r-unknown",
        "r-lapsed-elsewhere",
    }
    lapsed = by_read["r-lapsed"]
    assert lapsed == {
        "alert_id": lapsed["alert_id"],
        "read_id": "r-lapsed",
        "camera_id": "cam-1",
        "region_code": "320500",
        "plate": LAPSED,
        "seen_at": format_instant(now),
        "status": "LAPSED",
        "lapsed_since": format_instant(now - timedelta(days=10)),
    }
    assert by_read["r-unknown"]["status"] == "NO_RECORD"
    assert by_read["r-unknown"]["lapsed_since"] is None
    assert by_read["r-lapsed-elsewhere"]["region_code"] == "310115"

    kept = rows(container, anpr_alerts)
    assert sorted(r.read_id for r in kept) == sorted(by_read)
    # Nothing of the covered vehicle's reads is stored: neither alert nor read id.
    seen = {r.read_id for r in rows(container, anpr_reads_seen)}
    assert seen == {"r-lapsed", "r-unknown", "r-lapsed-later", "r-lapsed-elsewhere"}
    assert not any(COVERED.replace("·", "") in str(tuple(r)) for r in kept)
    # Counted all the same, and the dropped ones by reason.
    assert sample("ctplhub_anpr_reads_checked_total", result="covered") - covered_before == 2
    assert sample("ctplhub_anpr_reads_dropped_total", reason="low_confidence") - low_before == 1
    assert sample("ctplhub_anpr_reads_dropped_total", reason="invalid_plate") - invalid_before == 1
    # Every alert is in the access log, as police reading for anpr.
    container.access_log.flush_now()
    with container.engine.connect() as conn:
        logged = conn.execute(
            select(func.count()).select_from(access_log).where(access_log.c.purpose == "anpr")
        ).scalar_one()
        roles = set(
            conn.execute(select(access_log.c.actor_role).where(access_log.c.purpose == "anpr"))
            .scalars()
            .all()
        )
    assert logged == 3 and roles == {"police"}


def test_a_plate_seen_a_day_apart_raises_again_and_alerts_expire_after_30_days(
    container: Container, clock: Clock, mqtt_port: int, topic_root: str
) -> None:
    load_vehicles(container, clock)
    now = clock()
    with (
        alert_listener(mqtt_port, topic_root) as listener,
        consumer_thread(container, mqtt_port, topic_root),
    ):
        publish(
            mqtt_port,
            topic_root,
            [
                read("d1", UNKNOWN, seen_at=now - timedelta(days=29, hours=1)),
                read("d2", UNKNOWN, seen_at=now - timedelta(days=28)),  # 25 h later: again
                read("d3", UNKNOWN, seen_at=now - timedelta(days=28, hours=12)),  # between
                read("d4", UNKNOWN, seen_at=now - timedelta(days=31)),  # past retention: dropped
            ],
        )
        published = listener.wait_for(2)
    assert sorted(a["read_id"] for a in published) == ["d1", "d2"]
    assert container.anpr is not None
    clock.advance(days=1)  # d1 is now more than 30 days old, d2 not
    assert container.anpr.purge() == 1
    assert [r.read_id for r in rows(container, anpr_alerts)] == ["d2"]
    assert "d1" not in {r.read_id for r in rows(container, anpr_reads_seen)}


@pytest.mark.parametrize("confidence", [0.89, 0.0])
def test_low_confidence_is_dropped_even_for_an_uncovered_plate(
    container: Container,
    clock: Clock,
    mqtt_port: int,
    topic_root: str,
    confidence: float,
) -> None:
    load_vehicles(container, clock)
    with consumer_thread(container, mqtt_port, topic_root):
        publish(mqtt_port, topic_root, [read("u1", UNKNOWN, confidence=confidence)])
        publish(mqtt_port, topic_root, [read("u2", UNKNOWN, seen_at=clock())])  # a marker
        wait_until(lambda: bool(rows(container, anpr_alerts)))
    assert [r.read_id for r in rows(container, anpr_alerts)] == ["u2"]


def test_consumers_racing_on_one_plate_raise_one_alert_and_keep_each_read_once(
    container: Container, clock: Clock
) -> None:
    """Eight consumers at once, each with a read of the same plate in the same region
    within 24 h, and each with the same repeated read: one alert, each read id once."""
    store = SqlAlertStore(container.engine)
    now = clock()
    start = threading.Barrier(8)

    def candidate(read_id: str, minutes: int) -> Alert:
        return Alert(
            f"alert-{read_id}-{minutes}", read_id, "cam-1", "320500", Plate.parse(UNKNOWN),
            now + timedelta(minutes=minutes), CoverageStatus.NO_RECORD, None,
        )  # fmt: skip

    def consumer(n: int) -> list[Alert]:
        start.wait()
        return store.raise_alerts(
            [candidate(f"race-{n}", n), candidate("race-same", 100 + n)], one_per_day, now
        )

    with ThreadPoolExecutor(8) as pool:
        raised = [alert for found in pool.map(consumer, range(8)) for alert in found]
    assert len(raised) == 1
    assert [r.read_id for r in rows(container, anpr_alerts)] == [raised[0].read_id]
    seen = sorted(r.read_id for r in rows(container, anpr_reads_seen))
    assert seen == sorted([*(f"race-{n}" for n in range(8)), "race-same"])
