"""The yardstick of the HTTP benchmarks: a plain FastAPI app, as a user would write one.

One ``@app.post`` returning a small dict, nothing else: no middleware, no database. It
is served by the same server with the same flags as the real app (``uvicorn --workers 1
--no-access-log``, uvloop and httptools), on the same machine in the same run, so the
ratio of the two says what CTPL Hub costs on top of the framework a user compares with.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/coverage/query")
async def query() -> dict[str, Any]:
    return {"plate": "苏E·12345", "covered": True, "status_class": "COVERED", "caveats": []}
