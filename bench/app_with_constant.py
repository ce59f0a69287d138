"""The real application plus one constant endpoint: the baseline of the query benchmark.

``/bench/constant`` runs in the same process, framework, middleware (metrics, error
handlers) and server as ``/v1/coverage/query``, and answers with the same response class,
so the ratio of the two isolates what answering a verified query costs on top of
HTTP + FastAPI. Served with ``uvicorn app_with_constant:create_app --factory``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response

from ctplhub.api.responses import JSONBody
from ctplhub.bootstrap import create_app_from_env

CONSTANT = {"status": "ok", "covered": True, "status_class": "COVERED", "caveats": []}


def create_app() -> FastAPI:
    app = create_app_from_env()

    @app.get("/bench/constant", include_in_schema=False)
    async def constant() -> Response:
        return JSONBody(CONSTANT)

    return app
