"""Reading a request's body straight from ASGI (``api.bodies.read_fresh``): what
Starlette's stream gives, with the same limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import Request
from starlette.requests import ClientDisconnect

from ctplhub.api.bodies import read_fresh, read_limited
from ctplhub.domain.errors import PayloadTooLarge


def _request(messages: list[dict[str, Any]], length: int | None = None) -> Request:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


def _parts(*chunks: bytes) -> list[dict[str, Any]]:
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


@pytest.mark.parametrize(
    "chunks", [(b'{"plate": "x"}',), (b'{"pla', b'te": ', b'"x"}'), (b"",), (b"ab", b"")]
)
def test_a_body_in_one_or_many_messages_reads_as_starlettes_stream_reads_it(
    chunks: tuple[bytes, ...],
) -> None:
    fresh = asyncio.run(read_fresh(_request(_parts(*chunks)), 100))
    streamed = asyncio.run(read_limited(_request(_parts(*chunks)), 100))
    assert fresh == streamed == b"".join(chunks)


def test_a_body_past_the_limit_is_refused_declared_or_not() -> None:
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_fresh(_request(_parts(b"x" * 60, b"x" * 60)), 100))  # chunked
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_fresh(_request(_parts(b"x"), length=101), 100))  # declared
    assert asyncio.run(read_fresh(_request(_parts(b"x" * 50, b"x" * 50)), 100)) == b"x" * 100


def test_a_client_that_goes_away_mid_body_is_a_disconnect() -> None:
    messages = [*_parts(b"ab", b"")[:1], {"type": "http.disconnect"}]
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_fresh(_request(messages), 100))
