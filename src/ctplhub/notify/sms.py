"""SMS channel: an adapter for an HTTP SMS gateway at ``CTPLHUB_SMS_GATEWAY_URL``.

The gateway contract (docs/webhooks.md, "SMS gateway"): ``POST`` of a JSON body
``{"to": "<phone>", "text": "<message>", "id": "<outbox message id>"}``; any 2xx means
the gateway accepted the message for delivery; 408, 425, 429 and 5xx are retried later,
other 4xx (a number it cannot reach, a text it refuses) are not. ``id`` (also sent as
``X-CTPL-Message-Id``) is the idempotency key: a gateway must accept a repeated id
without sending a second SMS, which is what makes a crash between its acknowledgement
and our ``mark_sent`` harmless.
"""

from __future__ import annotations

import orjson

from ctplhub.notify.channels import DeliveryFailed
from ctplhub.notify.content import UnknownKind, render_short
from ctplhub.notify.http import HttpPoster
from ctplhub.notify.webhook_signing import HEADER_MESSAGE_ID
from ctplhub.services.reminder_ports import OutboxMessage


def sms_body(message: OutboxMessage) -> bytes:
    try:
        text = render_short(message)
    except UnknownKind:
        raise DeliveryFailed("unknown_kind", retryable=False) from None
    return orjson.dumps({"to": message.address, "text": text, "id": str(message.id)})


class SmsGatewayChannel:
    name = "sms"

    def __init__(
        self, gateway_url: str, *, timeout_s: float = 10.0, max_connections: int = 8
    ) -> None:
        self._url = gateway_url
        self._poster = HttpPoster(timeout_s=timeout_s, max_connections=max_connections)

    async def send(self, message: OutboxMessage) -> None:
        headers = {"Content-Type": "application/json", HEADER_MESSAGE_ID: str(message.id)}
        await self._poster.post(self._url, sms_body(message), headers)

    async def aclose(self) -> None:
        await self._poster.aclose()
