"""What a reminder channel is (DESIGN §7): something that sends one outbox message and
either returns, meaning the far side acknowledged it, or raises :class:`DeliveryFailed`.

A failure carries a stable short ``code`` (stored in the outbox's ``last_error``, shown to
operators with the dead letters, so never an address or a body) and says whether trying
again later can help: a refused mailbox or a 404 will not get better, a closed port or a
503 may. The delivery pass (``notify/delivery.py``) turns that flag into a back-off or a
dead letter; channels themselves never retry and never sleep.
"""

from __future__ import annotations

import re
from typing import Protocol

from ctplhub.services.reminder_ports import OutboxMessage

_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")


class DeliveryFailed(Exception):
    """One try failed: ``code`` is snake_case and safe to store; ``retryable`` says
    whether a later try may succeed."""

    def __init__(self, code: str, *, retryable: bool) -> None:
        if not _CODE.fullmatch(code):
            raise ValueError(f"error code {code!r} must be short snake_case")
        super().__init__(code)
        self.code = code
        self.retryable = retryable

    def __repr__(self) -> str:
        kind = "retryable" if self.retryable else "permanent"
        return f"DeliveryFailed({self.code!r}, {kind})"


class Channel(Protocol):
    """Sends one message; returning means acknowledged (SMTP 250, HTTP 2xx)."""

    name: str

    async def send(self, message: OutboxMessage) -> None: ...

    async def aclose(self) -> None:
        """Release connections and threads; called once when delivery stops."""
        ...


def http_status_failure(status: int) -> DeliveryFailed:
    """The failure of an HTTP answer that is not 2xx (webhooks and the SMS gateway).

    Retried: 5xx, 408 (timeout), 425 (too early) and 429 (throttled). Not retried: any
    other 4xx (the address is wrong or refuses us) and 3xx (redirects are not followed:
    a signed body is meant for the URL the owner registered, and only that one)."""
    retryable = status >= 500 or status in (408, 425, 429)
    return DeliveryFailed(f"http_{status}", retryable=retryable)
