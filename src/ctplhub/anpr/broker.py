"""The MQTT broker as the consumer and the simulator see it (aiomqtt 2.5, MQTT 5).

- **Persistent session**: MQTT 5 ``clean_start`` false with a session expiry interval,
  under a stable client id, so the broker queues the reads of a consumer that is down.
- **Manual acknowledgements**: aiomqtt 2.5 has no public switch for them, so its paho
  client's own (``manual_ack_set``, ``ack``) are used, here only. A read is acknowledged
  once it is decided; one never acknowledged is delivered again at the next session.
- **Receive maximum**: how many unacknowledged reads the broker may have in flight to
  us. Mosquitto's default for a client that does not say is 20, which would cap a
  micro-batch at 20 reads.
- **Inbox**: a persistent client's messages land in an :class:`Inbox`, a deque the
  consumer drains in batches, instead of aiomqtt's ``async for message in
  client.messages``, which costs a task and an ``asyncio.wait`` per message: receiving
  and acknowledging a read took ~195 µs of CPU that way and ~83 µs with the inbox
  (20,000 queued reads; docs/DECISIONS.md, "Roadside cameras").
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SESSION_EXPIRY_S = 7 * 86_400  # a consumer down for a week still finds its reads queued


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
        receive_maximum: int = 1_000,
        timeout: float = 10.0,
        max_inflight: int | None = None,
    ) -> aiomqtt.Client:
        """A client to use as ``async with``; persistent: a session kept across
        connections, acknowledged by hand (:func:`ack`), its messages in :func:`inbox`."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if persistent:
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = max(20, min(receive_maximum, 65_535))
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=identifier,
            username=self.username,
            password=self.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=not persistent,
            properties=properties,
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
            client._client.manual_ack_set(True)
        return client


class Inbox(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, replaced: each message is appended to ``waiting`` and
    ``arrived`` is set. Nothing reaches the queue itself, so ``client.messages`` never
    yields; it still raises ``MqttError`` when the connection is lost, which is what it
    is then iterated for."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.waiting: deque[aiomqtt.Message] = deque()
        self.arrived = asyncio.Event()

    def put_nowait(self, item: aiomqtt.Message) -> None:
        self.waiting.append(item)
        self.arrived.set()


def inbox(client: aiomqtt.Client) -> Inbox:
    """The inbox of a persistent client (aiomqtt builds its queue from ``queue_type``
    and keeps it private)."""
    queue = client._queue
    if not isinstance(queue, Inbox):
        raise TypeError("only a persistent client has an inbox")
    return queue


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
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
