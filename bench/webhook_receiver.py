"""A fast local webhook receiver for ``bench_delivery.py``: a bare ASGI app under uvicorn
(uvloop, httptools) that answers every POST ``200`` and counts the distinct
``X-CTPL-Message-Id`` it saw; ``GET /count`` tells ``{"received", "distinct"}`` and
``DELETE /count`` starts again. It does not check signatures (the tests do): the point
is a receiver that is never the bottleneck.

    .venv/bin/python bench/webhook_receiver.py --port 9000
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_seen: set[bytes] = set()
_received = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global _received
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body
        message = await receive()
        more = message.get("more_body", False)
    body = b"{}"
    if scope["method"] == "POST":
        _received += 1
        for name, value in scope["headers"]:
            if name == b"x-ctpl-message-id":
                _seen.add(value)
    elif scope["method"] == "DELETE":
        _seen.clear()
        _received = 0
    else:
        body = json.dumps({"received": _received, "distinct": len(_seen)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
