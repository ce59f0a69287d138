"""The one table that maps domain errors to HTTP, and the one error body shape
``{"error": {"code", "message", "details"?}}`` used everywhere (DESIGN §3)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ctplhub.api.responses import JSONBody
from ctplhub.domain import errors as e

STATUS_BY_ERROR: tuple[tuple[type[e.DomainError], int], ...] = (
    (e.UnsupportedMediaType, 415),
    (e.MalformedInput, 400),
    (e.PolicyClosed, 409),
    (e.Conflict, 409),
    (e.NotFound, 404),
    (e.Unauthenticated, 401),
    (e.InsurerNotCertified, 403),
    (e.Forbidden, 403),
    (e.UnknownInsurer, 404),
    (e.PayloadTooLarge, 413),
    (e.RangeTooLarge, 400),
    (e.ValidationFailed, 400),
)

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_for(error: e.DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    # Errors raised with an explicit code but no dedicated class (e.g. insurer_exists).
    return 409 if error.code.endswith("_exists") else 400


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONBody({"error": body}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.DomainError)
    async def _domain(_: Request, error: e.DomainError) -> Response:
        return error_response(status_for(error), error.code, error.message, error.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> Response:
        details = [
            {"field": ".".join(str(p) for p in err.get("loc", ())[1:]), "problem": err.get("msg")}
            for err in error.errors()
        ]
        return error_response(400, "validation_failed", "the request is not valid", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> Response:
        # Never echo the exception: it may carry personal data from a query.
        return error_response(500, "internal_error", "an unexpected error occurred")
