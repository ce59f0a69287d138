"""The one table that maps domain errors to HTTP, and the one error body shape
``{"error": {"code", "message", "details"?}}`` used everywhere (DESIGN §3)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ctplhub.api.presenters import error_body, error_fields
from ctplhub.api.responses import JSONBody
from ctplhub.domain import errors as e
from ctplhub.store.failures import storage_unavailable

# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[e.DomainError], int], ...] = (
    (e.UnsupportedMediaType, 415),
    (e.PayloadTooLarge, 413),
    (e.MalformedInput, 400),
    (e.ValidationFailed, 400),
    (e.Unauthenticated, 401),
    (e.InsurerNotCertified, 403),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.UnknownInsurer, 404),
    (e.Conflict, 409),
    (e.AlreadyExists, 409),
    (e.RateLimited, 429),
)

# Starlette's own errors (no route, wrong method, ...) in our body shape.
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
    raise TypeError(f"{type(error).__name__} has no HTTP status in STATUS_BY_ERROR")


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    return JSONBody({"error": error_fields(code, message, details)}, status_code=status)


REQUEST_ID = "ctplhub.request_id"
"""The key under which ``RequestObservability`` leaves a request's id in its ASGI scope."""


def internal_error_response(request_id: str) -> Response:
    """A failure nobody foresaw: ``500 internal_error``, naming the request id and nothing
    else (the log line of the same id holds the stack trace)."""
    message = f"an unexpected error occurred; quote the request id {request_id} when you report it"
    return error_response(500, "internal_error", message)


# A database restart takes a second or two; a full disk needs an operator, and a client
# that retries every few seconds costs the server next to nothing meanwhile.
STORAGE_RETRY_AFTER_S = 5


def failure_response(error: Exception, request_id: str) -> Response:
    """The answer to an exception no handler foresaw: ``503 storage_unavailable`` when the
    database is full, restarting or unreachable (``store/failures.py``): the caller did
    nothing wrong and the same request will succeed later; else ``500 internal_error``."""
    if not storage_unavailable(error):
        return internal_error_response(request_id)
    response = error_response(
        503,
        "storage_unavailable",
        "the registry's storage is unavailable for the moment (full or restarting); send "
        "the request again after Retry-After seconds (an event sent twice is stored once)",
    )
    response.headers["Retry-After"] = str(STORAGE_RETRY_AFTER_S)
    return response


def domain_error_response(error: e.DomainError) -> Response:
    response = JSONBody({"error": error_body(error)}, status_code=status_for(error))
    if isinstance(error, e.RateLimited):  # RFC 9110 §10.2.3: whole seconds
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.DomainError)
    async def _domain(_: Request, error: e.DomainError) -> Response:
        return domain_error_response(error)

    @app.exception_handler(Exception)  # Starlette's error guard answers with it, then re-raises
    async def _unforeseen(request: Request, error: Exception) -> Response:
        return failure_response(error, request.scope.get(REQUEST_ID, "unknown"))

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
