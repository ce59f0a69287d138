"""``make run``'s demo starts the roadside cameras' consumer when a broker answers
(issue 14 item 1; ``cli/demo.py start_anpr_consumer``), on both engines and the real
Mosquitto: a camera's read of an uninsured plate becomes one alert, and the consumer
stops with the demo. Without a broker the demo goes on without it."""

from __future__ import annotations

import io
import uuid

import pytest
from rich.console import Console
from sqlalchemy import select

from anpr_fixtures import mqtt_port, publish, read, topic_root, wait_until
from ctplhub.bootstrap import Container
from ctplhub.cli.demo import start_anpr_consumer
from ctplhub.store.tables import anpr_alerts
from notify_fixtures import free_port

__all__ = ["mqtt_port", "topic_root"]  # fixtures

UNINSURED = "苏E·55555"  # never reported by any insurer


def alert_reads(container: Container) -> list[str]:
    with container.engine.connect() as conn:
        return [r for (r,) in conn.execute(select(anpr_alerts.c.read_id))]


def test_the_demo_starts_the_cameras_consumer_when_a_broker_answers(
    container: Container, mqtt_port: int, topic_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The consumer process reads its topic root and client id from the environment.
    monkeypatch.setenv("CTPLHUB_MQTT_TOPIC_ROOT", topic_root)
    monkeypatch.setenv("CTPLHUB_ANPR_CLIENT_ID", f"demo-{uuid.uuid4().hex[:12]}")
    out = io.StringIO()
    consumer = start_anpr_consumer(container, Console(file=out, width=200))
    assert consumer is not None
    try:
        assert f"127.0.0.1:{mqtt_port}" in out.getvalue()
        sent = 0

        def alerted() -> bool:
            # Reads published before the consumer's first subscription would have no
            # session to wait in, so a camera keeps reading the plate until one counts.
            nonlocal sent
            sent += 1
            publish(mqtt_port, topic_root, [read(f"demo-{sent}", UNINSURED)])
            return bool(alert_reads(container))

        wait_until(alerted, timeout=60)
        assert consumer.process.poll() is None
    finally:
        consumer.stop()
    assert consumer.process.returncode is not None
    # One alert for the plate in its region and day, however many reads it took.
    assert len(alert_reads(container)) == 1


def test_without_a_broker_the_demo_goes_on_without_cameras(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    settings = container.settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{port}"})
    monkeypatch.setattr(container, "settings", settings)
    out = io.StringIO()
    assert start_anpr_consumer(container, Console(file=out, width=200)) is None
    assert f"no MQTT broker at 127.0.0.1:{port}" in out.getvalue()
