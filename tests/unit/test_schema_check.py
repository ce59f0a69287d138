"""The check that holds every JSON answer to its published model can fail: extra fields,
missing fields, undocumented statuses and malformed errors are all caught."""

from __future__ import annotations

from typing import Any, cast

import httpx
import orjson
import pytest

from ctplhub.api.app import create_app
from ctplhub.api.deps import AppServices
from schema_check import SchemaError, check

APP = create_app(cast(AppServices, None))  # only the routes are looked at
SHORT = {"plate": "苏E·12345", "covered": True, "status_class": "COVERED", "caveats": []}


def answer(path: str, status: int, body: Any, method: str = "POST") -> tuple[str, int]:
    request = httpx.Request(method, f"http://testserver{path}")
    response = httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": "application/json"}
    )
    return check(APP, request, response)


def test_a_conforming_answer_passes() -> None:
    assert answer("/v1/coverage/query", 200, SHORT) == ("/v1/coverage/query", 200)
    error = {"error": {"code": "not_found", "message": "no vehicle"}}
    assert answer("/v1/coverage/query", 404, error) == ("/v1/coverage/query", 404)


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/v1/coverage/query", 200, {**SHORT, "owner_name": "张伟"}),  # a field too many
        ("/v1/coverage/query", 200, {k: v for k, v in SHORT.items() if k != "caveats"}),
        ("/v1/coverage/query", 200, {**SHORT, "status_class": "MAYBE"}),
        ("/v1/coverage/query", 202, SHORT),  # a status nobody documented
        ("/v1/coverage/query", 404, {"error": {"code": "not_found"}}),  # no message
        ("/v1/no-such-route", 200, {"status": "ok"}),
    ],
)
def test_a_drifting_answer_fails(path: str, status: int, body: Any) -> None:
    with pytest.raises(SchemaError):
        answer(path, status, body)


def test_every_response_model_is_published_in_the_openapi_document() -> None:
    schemas = APP.openapi()["components"]["schemas"]
    for name in ("FullAnswerBody", "ShortAnswerBody", "VerifyAnswer", "BatchAnswer",
                 "EventReceipt", "SyncStatusBody", "ErrorAnswer", "JwksBody"):  # fmt: skip
        assert name in schemas, name
