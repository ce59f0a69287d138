"""``complete_document`` on small hand-made documents: what it hoists, drops and adds."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ctplhub.api.openapi import ERROR_SCHEMA, complete_document


def _document(body_schema: dict[str, Any], components: dict[str, Any] | None = None) -> Any:
    return {
        "openapi": "3.1.0",
        "paths": {
            "/v1/coverage/query": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": body_schema}}},
                    "responses": {
                        "200": {"description": "ok"},
                        "422": {
                            "description": "FastAPI's",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                                }
                            },
                        },
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "HTTPValidationError": {
                    "properties": {"detail": {"$ref": "#/components/schemas/ValidationError"}}
                },
                "ValidationError": {"type": "object"},
                **(components or {}),
            }
        },
    }


BODY = {
    "title": "QueryBody",
    "type": "object",
    "properties": {"kind": {"$ref": "#/$defs/Kind"}},
    "$defs": {"Kind": {"enum": ["a", "b"], "type": "string"}},
}


def test_inline_defs_are_hoisted_and_references_rewritten() -> None:
    given = _document(copy.deepcopy(BODY))
    done = complete_document(given)
    operation = done["paths"]["/v1/coverage/query"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/QueryBody"}
    hoisted = done["components"]["schemas"]["QueryBody"]
    assert hoisted["properties"]["kind"] == {"$ref": "#/components/schemas/Kind"}
    assert "$defs" not in hoisted
    assert done["components"]["schemas"]["Kind"]["enum"] == ["a", "b"]
    body = given["paths"]["/v1/coverage/query"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == BODY, "the input document is left as it was"


def test_422_goes_and_the_table_statuses_come_with_the_error_shape() -> None:
    done = complete_document(_document(copy.deepcopy(BODY)))
    responses = done["paths"]["/v1/coverage/query"]["post"]["responses"]
    assert sorted(responses) == ["200", "400", "404", "413", "415", "429"]
    for status in ("400", "404", "413", "415", "429"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": ERROR_SCHEMA}
    assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    schemas = done["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert {"ErrorAnswer", "ErrorDetail"} <= set(schemas)


def test_two_different_schemas_of_one_name_are_refused() -> None:
    clash = {"QueryBody": {"type": "object", "properties": {}}}
    with pytest.raises(ValueError, match="QueryBody"):
        complete_document(_document(copy.deepcopy(BODY), clash))
