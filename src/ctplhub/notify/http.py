"""The HTTP side of the webhook and SMS channels: signed bodies are POSTed here.

A 2xx answer is the acknowledgement; any other answer or a transport failure raises
:class:`~ctplhub.notify.channels.DeliveryFailed` with a code safe to store (``http_503``,
``timeout``, ``connect_failed`` ...), never the URL (an owner's webhook URL is personal
data) or the answer's body.
"""

from __future__ import annotations

import logging

import httpx

from ctplhub.notify.channels import DeliveryFailed, http_status_failure

USER_AGENT = "ctplhub-notify/1"


def quiet_http_client_logs() -> None:
    """httpx logs every request's URL at INFO; a webhook URL is the owner's address
    (personal data, STYLE.md), so only its warnings may reach the logs."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


MAX_ANSWER_BYTES = 64 * 1024
POOL_CONNECTIONS = 4
"""Connections per pool; a poster holds ``max_connections / 4`` pools and sends through
the least busy. httpcore's pool looks at every connection it holds (a ``poll`` each) on
every request and answer: one pool of 64 cost about twice the CPU per message of small
pools (docs/DECISIONS.md, "Reminder delivery")."""


class HttpPoster:
    """POSTs over keep-alive connections: httpx's transport, without the client's layers
    (cookies, auth, redirects, event hooks), which a signed POST to a fixed URL does not
    use and which cost a third of a send's CPU. Never follows redirects, never reads
    proxy variables from the environment (a receiver is reached directly)."""

    def __init__(self, *, timeout_s: float, max_connections: int) -> None:
        quiet_http_client_logs()
        per_pool = min(POOL_CONNECTIONS, max_connections)
        pools = max(1, -(-max_connections // POOL_CONNECTIONS))
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self._pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(pools)]
        self._busy = [0] * pools
        self._timeout = httpx.Timeout(timeout_s).as_dict()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """One POST; returns on 2xx, else raises :class:`DeliveryFailed` with a safe code."""
        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            request = httpx.Request(
                "POST",
                url,
                headers={"User-Agent": USER_AGENT, **headers},
                content=body,
                extensions={"timeout": self._timeout},
            )
            response = await self._pools[index].handle_async_request(request)
            try:
                # Read (and drop) the answer's body so the connection can be used again; a
                # longer one than any acknowledgement needs costs its connection instead.
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise DeliveryFailed("timeout", retryable=True) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise DeliveryFailed("invalid_url", retryable=False) from None
        except httpx.ConnectError:
            raise DeliveryFailed("connect_failed", retryable=True) from None
        except httpx.TransportError:
            raise DeliveryFailed("transport_error", retryable=True) from None
        finally:
            self._busy[index] -= 1
        if not 200 <= response.status_code < 300:
            raise http_status_failure(response.status_code)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
