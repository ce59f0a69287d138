"""The MQTT broker as the consumer and the simulator see it (aiomqtt 2.5, MQTT 3.1.1).

- **MQTT 3.1.1**: §12 needs QoS 1, a persistent session and shared subscriptions, which
  Mosquitto 2 gives 3.1.1 clients as well. MQTT 5 made paho build and decode a
  ``Properties`` object for every message received, about half of the consumer's CPU per
  read (docs/DECISIONS.md, "Roadside cameras").
- **Persistent session**: ``clean_session`` false under a stable client id, so the broker
  queues the reads of a consumer that is down (kept until the broker's
  ``persistent_client_expiration``, by default for ever).
- **Manual acknowledgements**: aiomqtt 2.5 has no public switch for them, so its paho
  client's own (``manual_ack_set``, ``ack``) are used, here only. A read is acknowledged
  once it is decided; one never acknowledged is delivered again at the next session.
- **In flight**: how many unacknowledged reads the broker may have out to a 3.1.1 client
  is the broker's ``max_inflight_messages`` (Mosquitto's default, 20, would cap a
  micro-batch at 20 reads: docs/anpr.md sets it).
- **Inbox**: a persistent client's messages land in an :class:`Inbox`, a deque the
  consumer drains in batches, instead of aiomqtt's ``async for message in
  client.messages``, which costs a task and an ``asyncio.wait`` per message: receiving
  and acknowledging a read took ~195 µs of CPU that way and ~83 µs with the inbox
  (20,000 queued reads; docs/DECISIONS.md, "Roadside cameras").
- **Received PUBLISH packets** go straight to the inbox as :class:`Delivered` (packet id,
  QoS, payload): :func:`_deliver_to` takes the place of the paho client's handler of a
  received PUBLISH, which built a paho message (with a lock and a condition of its own),
  logged it, decoded its topic and looked it up among per-topic callbacks before
  aiomqtt copied it into a message of its own: more than half of receiving a read.
  The consumer needs none of that: the read names its camera and region itself.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt.client as paho_client
from paho.mqtt.enums import MQTTErrorCode


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str, username: str | None = None, password: str | None = None) -> Broker:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("the broker URL is mqtt://host:port or mqtts://host:port")
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls, username, password)

    def client(
        self,
        identifier: str | None,
        *,
        persistent: bool = False,
        timeout: float = 10.0,
        max_inflight: int | None = None,
    ) -> aiomqtt.Client:
        """A client to use as ``async with``; persistent: a session kept across
        connections, acknowledged by hand (:func:`ack`), its messages in :func:`inbox`."""
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=identifier,
            username=self.username,
            password=self.password,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=not persistent,
            tls_context=ssl.create_default_context() if self.tls else None,
            timeout=timeout,
            keepalive=15,
            max_inflight_messages=max_inflight,  # our publishes awaiting PUBACK (paho: 20)
            queue_type=Inbox if persistent else None,
        )
        # Hundreds of publishes in flight at once are the point (alerts, the simulator):
        # aiomqtt warns from 10 on.
        client.pending_calls_threshold = 100_000
        if persistent:
            paho = client._client
            paho.manual_ack_set(True)
            paho._handle_publish = _deliver_to(paho, inbox(client))  # type: ignore[method-assign]
        return client


class Delivered(NamedTuple):
    """A message the broker delivered: what acknowledging and reading it take."""

    mid: int
    qos: int
    payload: bytes | bytearray


def _deliver_to(paho: paho_client.Client, box: Inbox) -> Callable[[], MQTTErrorCode]:
    """The paho client's handler of a received PUBLISH, for a consumer: the packet
    (MQTT 3.1.1, read whole by paho into ``_in_packet``) is cut into its packet id and
    payload and appended to ``box``; nothing is acknowledged (manual acknowledgements).
    QoS 2 cannot come (the subscription is QoS 1) and is left to paho's own handler."""
    own = paho._handle_publish

    def handle() -> MQTTErrorCode:
        packet = paho._in_packet
        qos = (packet["command"] & 0x06) >> 1
        if qos > 1:
            return own()
        data = packet["packet"]
        at = 2 + int.from_bytes(data[0:2])  # past the topic
        mid = 0
        if qos:
            mid = int.from_bytes(data[at : at + 2])
            at += 2
        box.waiting.append(Delivered(mid, qos, data[at:]))
        box.arrived.set()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    return handle


class Inbox(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, replaced: each message is appended to ``waiting`` and
    ``arrived`` is set, by :func:`_deliver_to` (in the event loop's thread, where
    aiomqtt reads the socket), or by aiomqtt's ``on_message`` should paho's own handler
    of a PUBLISH run. Nothing reaches the queue itself, so ``client.messages`` never
    yields; it still raises ``MqttError`` when the connection is lost, which is what it
    is then iterated for."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.waiting: deque[Delivered] = deque()
        self.arrived = asyncio.Event()

    def put_nowait(self, item: aiomqtt.Message) -> None:  # aiomqtt's own on_message
        payload = item.payload
        raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
        self.waiting.append(Delivered(item.mid, item.qos, raw))
        self.arrived.set()


def inbox(client: aiomqtt.Client) -> Inbox:
    """The inbox of a persistent client (aiomqtt builds its queue from ``queue_type``
    and keeps it private)."""
    queue = client._queue
    if not isinstance(queue, Inbox):
        raise TypeError("only a persistent client has an inbox")
    return queue


def ack(client: aiomqtt.Client, message: Delivered) -> None:
    """Tell the broker ``message`` is done with (QoS 1: its PUBACK)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


def reads_topic(root: str, camera_id: str = "+") -> str:
    return f"{root}/anpr/{camera_id}"


def shared_reads_topic(root: str) -> str:
    """Several consumers share the reads: each read goes to one of them (§12)."""
    return f"$share/ctplhub/{reads_topic(root)}"


def alerts_topic(root: str, region_code: str = "+") -> str:
    return f"{root}/alerts/{region_code}"
