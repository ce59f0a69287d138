"""The outbound side of live confirmation (DESIGN §10): a signed POST to an insurer.

The request is signed by §5.1 with the insurer's own key, through the same
``security/request_signing.py`` the server checks insurers with and the client SDK signs
with, so an insurer checks our call with the code it already runs. The signed PATH is the
request target as sent (path and query of the registered URL).

No redirect is followed (the insurer registered the URL it wants called), no proxy from
the environment is used, and an answer is read up to 64 KiB: an endpoint can only ever
cost a verify its time budget, never its memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import httpx
import orjson

from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, parse_instant
from ctplhub.security.request_signing import signed_headers
from ctplhub.services.live_confirmation import (
    ConfirmAsk,
    ConfirmFailed,
    ConfirmReply,
    ConfirmTarget,
)

MAX_ANSWER_BYTES = 64 * 1024


def confirm_body(ask: ConfirmAsk) -> bytes:
    """``{"plate", "vin", "at"}``: the plate in display form, ``at`` in Beijing time."""
    return orjson.dumps({"plate": ask.plate, "vin": ask.vin, "at": format_instant(ask.at)})


class HttpConfirmSession:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def confirm(self, target: ConfirmTarget, ask: ConfirmAsk) -> ConfirmReply:
        body = confirm_body(ask)
        try:
            url = httpx.URL(target.url)
            path = url.raw_path.decode("ascii")
            headers = signed_headers(target.key_id, target.secret, "POST", path, body)
            headers["Content-Type"] = "application/json"
            async with self._http.stream("POST", url, content=body, headers=headers) as answer:
                if answer.status_code != 200:
                    raise ConfirmFailed(f"http_{answer.status_code}")
                raw = bytearray()
                async for chunk in answer.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise ConfirmFailed("answer_too_large")
        except httpx.TimeoutException:
            raise ConfirmFailed("timeout") from None
        except httpx.HTTPError as error:
            raise ConfirmFailed(_transport_reason(error)) from None
        return parse_reply(bytes(raw))


def _transport_reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "unreachable"
    return "transport_error"


def parse_reply(raw: bytes) -> ConfirmReply:
    """``{"covered": bool, "policy_no"?: str, "coverage_end"?: instant}``; anything else
    is ``bad_answer``: an unreadable "covered" never overrides the registry."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ConfirmFailed("bad_answer") from None
    if not isinstance(data, dict) or not isinstance(data.get("covered"), bool):
        raise ConfirmFailed("bad_answer")
    policy_no = data.get("policy_no")
    end: datetime | None = None
    if data.get("coverage_end") is not None:
        try:
            end = parse_instant(data["coverage_end"], "coverage_end")
        except DomainError:
            raise ConfirmFailed("bad_answer") from None
    return ConfirmReply(data["covered"], policy_no if isinstance(policy_no, str) else None, end)


class HttpConfirmTransport:
    """One ``httpx.AsyncClient`` per verify that needs confirmations (its connections
    pooled across that verify's calls, closed with it): nothing outlives a request, on
    whichever event loop it runs; the TLS context is built once per process."""

    def __init__(self, *, max_connections: int = 64) -> None:
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=16)
        self._tls = httpx.create_ssl_context()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[HttpConfirmSession]:
        async with httpx.AsyncClient(
            limits=self._limits,
            verify=self._tls,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(5.0),  # the service's own budget cuts calls far sooner
        ) as http:
            yield HttpConfirmSession(http)
