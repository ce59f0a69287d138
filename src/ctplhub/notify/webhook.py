"""Webhook channel: an HMAC-signed JSON POST to the URL the owner subscribed
(docs/webhooks.md has the scheme a receiver checks).

The body is the same bytes on every try of a message (a receiver may compare repeats);
each try is signed again with its own timestamp. A 2xx answer is the acknowledgement.
Redirects are not followed (a signed reminder is for the URL registered, and following
them would let a receiver point the registry anywhere). The message id travels in
``X-CTPL-Message-Id`` so that a receiver can drop the one repeat a crash between its
acknowledgement and our ``mark_sent`` can cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from ctplhub.domain.instants import format_instant
from ctplhub.notify.channels import DeliveryFailed
from ctplhub.notify.content import UnknownKind, family_of, language_of, render_short
from ctplhub.notify.http import HttpPoster
from ctplhub.notify.webhook_signing import signed_headers
from ctplhub.services.reminder_ports import DISPUTE_KINDS, KIND_CANCELLED, OutboxMessage


def _type(kind: str) -> str:
    if kind == KIND_CANCELLED:
        return "cancellation_alert"
    return "dispute_update" if kind in DISPUTE_KINDS else "reminder"


def webhook_body(message: OutboxMessage) -> bytes:
    """The JSON body (UTF-8, keys in a fixed order); docs/webhooks.md shows one."""
    family, days = family_of(message.kind)
    return orjson.dumps(
        {
            "id": str(message.id),
            "type": _type(message.kind),
            "kind": message.kind,
            "family": family,
            "days": days,
            "language": language_of(message),
            "subscription_id": str(message.subscription_id),
            "vehicle": {"plate": message.plate, "vin_masked": message.vin_masked},
            "policy": {
                "insurer_code": message.insurer_code,
                "insurer_name": message.insurer_name,
                "policy_no_masked": message.policy_no_masked,
                "covered_until": format_instant(message.covered_until),
            },
            "due_at": format_instant(message.due_at),
            **_dispute(message),
            "text": render_short(message),
            "unsubscribe_url": message.unsubscribe_url,
        }
    )


def _dispute(message: OutboxMessage) -> dict[str, object]:
    """A dispute's notice names its dispute (``policy.covered_until`` is then its due_at)."""
    if message.dispute_id is None:
        return {}
    return {
        "dispute": {
            "dispute_id": str(message.dispute_id),
            "due_at": format_instant(message.covered_until),
            "outcome": message.dispute_outcome,
        }
    }


class WebhookChannel:
    """POSTs with keep-alive connections to each receiver, over a few small pools."""

    name = "webhook"

    def __init__(
        self,
        secret_for: Callable[[int], str],
        *,
        timeout_s: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        self._secret_for = secret_for
        self._poster = HttpPoster(timeout_s=timeout_s, max_connections=max_connections)

    async def send(self, message: OutboxMessage) -> None:
        try:
            body = webhook_body(message)
        except UnknownKind:
            raise DeliveryFailed("unknown_kind", retryable=False) from None
        headers = signed_headers(
            self._secret_for(message.subscription_id), str(message.id), body, now_s=time.time()
        )
        headers["Content-Type"] = "application/json"
        await self._poster.post(message.address, body, headers)

    async def aclose(self) -> None:
        await self._poster.aclose()
