"""The published ``/openapi.json`` (issue 7, item 6): every ``$ref`` resolves, no 422 is
documented (none is ever sent), and every operation documents each status it can answer
from the one table of ``api/openapi.py``, which names every operation and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import (
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from ctplhub.api.openapi import ERROR_STATUSES, STATUS_DESCRIPTIONS, operations
from ctplhub.bootstrap import build_app, build_container
from ctplhub.config import Settings
from ctplhub.security.keystore import ensure_keys
from helpers import copy_sqlite_database


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> dict[str, Any]:
    """The document the app serves (it does not depend on the database engine)."""
    where = tmp_path_factory.mktemp("openapi")
    copy_sqlite_database(sqlite_template, where / "ctplhub.db")
    home = where / "home"
    settings = Settings(database_url=f"sqlite:///{where / 'ctplhub.db'}", home=home)
    ensure_keys(home)
    container = build_container(settings)
    try:
        with TestClient(build_app(container)) as client:
            answer = client.get("/openapi.json")
            assert answer.status_code == 200
            served: dict[str, Any] = answer.json()
    finally:
        container.close()
    return served


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert "#/components/schemas/PolicyEventBody" in refs  # the hand-read bodies, hoisted
    assert "#/components/schemas/VerifyBody" in refs
    for ref in sorted(refs):
        _resolve(document, ref)
    assert "$defs" not in str(document)


def test_no_422_and_no_fastapi_validation_schemas(document: dict[str, Any]) -> None:
    for (method, path), operation in operations(document):
        assert "422" not in operation["responses"], f"{method} {path} documents a 422"
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])


def test_the_table_names_every_operation_and_nothing_else(document: dict[str, Any]) -> None:
    served = {operation for operation, _ in operations(document)}
    missing = sorted(served - set(ERROR_STATUSES))
    assert not missing, f"add these operations to ERROR_STATUSES in api/openapi.py: {missing}"
    stale = sorted(set(ERROR_STATUSES) - served)
    assert not stale, f"ERROR_STATUSES names operations that are not served: {stale}"


def test_each_operation_documents_its_error_answers_in_the_one_shape(
    document: dict[str, Any],
) -> None:
    for operation, spec in operations(document):
        documented = {int(status) for status in spec["responses"]}
        expected = set(ERROR_STATUSES[operation])
        assert expected <= documented, f"{operation}: {sorted(expected - documented)} missing"
        for status in documented:
            if status < 400:
                continue
            answer = spec["responses"][str(status)]
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}, (operation, status)
            if status == 429:
                assert answer["headers"]["Retry-After"]["required"] is True
        assert documented & {200, 201, 202, 204}, f"{operation} documents no success"


def test_the_throttled_operations_document_429(document: dict[str, Any]) -> None:
    throttled = {op for op, spec in operations(document) if "429" in spec["responses"]}
    assert ("POST", "/v1/coverage/query") in throttled
    assert ("GET", "/healthz") not in throttled
    assert "rate_limited" in STATUS_DESCRIPTIONS[429]


def test_non_json_answers_are_documented_with_their_media_types(document: dict[str, Any]) -> None:
    verify = document["paths"]["/v1/coverage/verify"]["post"]["responses"]["200"]["content"]
    assert set(verify) == {"application/json", "text/csv"}
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}


def test_a_real_429_is_the_answer_the_document_publishes(client: TestClient) -> None:
    """Throttling is off in the fuzz run; here it is on (the defaults), and the answer it
    gives is checked against the document like every fuzzed one."""
    document = client.get("/openapi.json").json()
    operation = schemathesis.openapi.from_dict(document)["/v1/coverage/query"]["POST"]
    wrong = {"plate": "苏E12345", "vin_last6": "000000"}
    answers = [client.post("/v1/coverage/query", json=wrong) for _ in range(12)]
    throttled = answers[-1]
    assert throttled.status_code == 429, [a.status_code for a in answers]
    throttled.elapsed = timedelta(0)  # Schemathesis reads it; no client here sets it
    operation.Case(media_type="application/json").validate_response(
        throttled,
        checks=[status_code_conformance, response_schema_conformance, response_headers_conformance],
    )
    assert int(throttled.headers["retry-after"]) > 0
