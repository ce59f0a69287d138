"""Building the delivery side from the settings; bootstrap and ``ctplhub worker`` call
these (STYLE.md: only bootstrap knows everything, so these take what they need as
arguments). ``ctplhub.config.Settings`` is a :class:`DeliverySettings`; the protocol
keeps ``notify`` from importing ``config``, which imports ``security`` (a sibling layer)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Protocol

from ctplhub.notify.channels import Channel
from ctplhub.notify.delivery import DeliverDueNow, DeliveryOptions
from ctplhub.notify.email import SmtpChannel
from ctplhub.notify.sms import SmsGatewayChannel
from ctplhub.notify.webhook import WebhookChannel
from ctplhub.notify.webhook_signing import webhook_secret
from ctplhub.services.reminder_ports import DeliverDue, Outbox


class DeliverySettings(Protocol):
    """The ``CTPLHUB_*`` settings of delivery (``config.py``, DESIGN §8)."""

    database_url: str
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_starttls: bool
    sms_gateway_url: str | None
    reminder_max_attempts: int
    delivery_concurrency: int
    delivery_batch: int
    delivery_lease_s: float
    delivery_timeout_s: float


def delivery_options(settings: DeliverySettings) -> DeliveryOptions:
    return DeliveryOptions(
        concurrency=settings.delivery_concurrency,
        batch=settings.delivery_batch,
        lease=timedelta(seconds=settings.delivery_lease_s),
        max_attempts=settings.reminder_max_attempts,
        # PostgreSQL takes outbox writes from several connections at once; SQLite has
        # one writer, and a second thread would only wait for the lock.
        db_threads=1 if settings.database_url.startswith("sqlite") else 4,
    )


def build_channels(settings: DeliverySettings, webhook_key: bytes) -> dict[str, Channel]:
    """Every configured channel, to be used (and closed) in one event loop. SMS is
    absent without ``CTPLHUB_SMS_GATEWAY_URL``: its messages fail as
    ``channel_not_configured`` and are retried, then dead-lettered, never dropped."""
    timeout = settings.delivery_timeout_s
    concurrency = settings.delivery_concurrency
    channels: dict[str, Channel] = {
        "email": SmtpChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            starttls=settings.smtp_starttls,
            timeout_s=timeout,
            threads=min(concurrency, 16),
        ),
        "webhook": WebhookChannel(
            partial(webhook_secret, webhook_key), timeout_s=timeout, max_connections=concurrency
        ),
    }
    if settings.sms_gateway_url:
        channels["sms"] = SmsGatewayChannel(
            settings.sms_gateway_url, timeout_s=timeout, max_connections=min(concurrency, 8)
        )
    return channels


def build_delivery(settings: DeliverySettings, outbox: Outbox, *, webhook_key: bytes) -> DeliverDue:
    """The pass ``ctplhub remind run`` calls (``DeliverDue``). ``webhook_key`` is the
    deployment key webhook secrets derive from (bootstrap: ``webhook_signing_key``)."""
    return DeliverDueNow(
        outbox, partial(build_channels, settings, webhook_key), delivery_options(settings)
    )
