"""Cross-department sharing (DESIGN §11): the uninsured list and the accident look-up
for police (and regulators, for the list), the unmatched list for each insurer."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import bearer, insurer_of, request_id, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.routers.coverage import purpose_code
from ctplhub.api.schemas import (
    AccidentLookupAnswer,
    AccidentLookupBody,
    UninsuredAnswer,
    UninsuredBody,
    UnmatchedAnswer,
)
from ctplhub.domain.identifiers import display_plate
from ctplhub.domain.instants import format_optional
from ctplhub.services.accident_lookup import AccidentAnswer, AccidentLookup, accident_query
from ctplhub.services.enforcement import (
    Enforcement,
    UninsuredPage,
    UninsuredVehicle,
    UnmatchedPolicy,
    uninsured_query,
)
from ctplhub.services.ports import Reader

UNINSURED_ROLES = ("police", "regulator")
ACCIDENT_ROLES = ("police",)
DEFAULT_UNINSURED_PURPOSE = "uninsured_list"
CSV_COLUMNS = ("plate", "vin_masked", "region_code", "lapsed_since", "last_insurer_code")


def vehicle_json(vehicle: UninsuredVehicle) -> dict[str, Any]:
    return {
        "plate": display_plate(vehicle.plate),
        "vin_masked": vehicle.vin_masked,
        "region_code": vehicle.region_code,
        "lapsed_since": format_optional(vehicle.lapsed_since),
        "last_insurer_code": vehicle.last_insurer_code,
    }


def page_json(page: UninsuredPage) -> dict[str, Any]:
    return {"vehicles": [vehicle_json(v) for v in page.vehicles], "next_cursor": page.next_cursor}


def unmatched_json(found: list[UnmatchedPolicy]) -> dict[str, Any]:
    policies: list[dict[str, Any]] = []
    for policy in found:
        item: dict[str, Any] = {"policy_no": policy.policy_no, "reason": policy.reason}
        if policy.register_plate is not None:
            item["register_plate"] = display_plate(policy.register_plate)
        policies.append(item)
    return {"policies": policies}


def accident_json(answer: AccidentAnswer) -> dict[str, Any]:
    return {
        "covered": answer.covered,
        "insurer_code": answer.insurer_code,
        "insurer_name": answer.insurer_name,
        "claims_phone": answer.claims_phone,
        "policy_no_masked": answer.policy_no_masked,
    }


async def _csv_pages(pages: AsyncIterator[UninsuredPage]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    async for page in pages:
        buffer.seek(0)
        buffer.truncate()
        for vehicle in page.vehicles:
            row = vehicle_json(vehicle)
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
        yield buffer.getvalue().encode()


def build_router(enforcement: Enforcement, accidents: AccidentLookup) -> APIRouter:
    router = APIRouter(tags=["enforcement"])

    @router.post(
        "/v1/enforcement/uninsured",
        summary="Registered vehicles with no cover at an instant, by region, in VIN order",
        description=(
            "`region_prefix` filters on the register's region code (an empty string: the "
            "whole country); `limit` 1-1,000 (default 100); `cursor` is the `next_cursor` of "
            "the page before. With `Accept: text/csv` every page from `cursor` on is "
            "streamed as CSV (`plate,vin_masked,region_code,lapsed_since,last_insurer_code`). "
            "Each vehicle listed is access-logged with `purpose` (default uninsured_list)."
        ),
        response_model=UninsuredAnswer,
        openapi_extra=json_body_doc(UninsuredBody),
    )
    async def uninsured(request: Request) -> Response:
        app = services(request)
        caller = await run_in_threadpool(bearer, request, *UNINSURED_ROLES)
        require_media_type(request, "application/json")
        body = decode_object(await read_limited(request, app.limits.event_bytes))
        purpose = purpose_code(body.get("purpose", DEFAULT_UNINSURED_PURPOSE))
        query = uninsured_query(body, enforcement.now())
        reader = Reader(caller.name, caller.role, purpose, request_id(request))
        if "text/csv" in request.headers.get("accept", ""):
            pages = enforcement.all_uninsured(query, reader=reader)
            return StreamingResponse(_csv_pages(pages), media_type="text/csv; charset=utf-8")
        return JSONBody(page_json(await enforcement.uninsured(query, reader=reader)))

    @router.get(
        "/v1/insurers/{code}/unmatched",
        summary="The insurer's policies in force that the vehicle register does not match",
        response_model=UnmatchedAnswer,
    )
    async def unmatched(code: str, request: Request) -> Response:
        caller = await insurer_of(request)
        found = await run_in_threadpool(lambda: enforcement.unmatched(code.upper(), caller=caller))
        return JSONBody(unmatched_json(found))

    @router.post(
        "/v1/accidents/lookup",
        summary="Who covered this vehicle at the accident's instant, and the claims phone",
        description=(
            "Access-logged as read by the officer, purpose `accident`, with `accident_ref` "
            "and `reason` (a reason code such as collision). A plate no vehicle carries at "
            "`at` answers `covered: false` with nulls."
        ),
        response_model=AccidentLookupAnswer,
        openapi_extra=json_body_doc(AccidentLookupBody),
    )
    async def accident(request: Request) -> Response:
        app = services(request)
        caller = await run_in_threadpool(bearer, request, *ACCIDENT_ROLES)
        require_media_type(request, "application/json")
        query = accident_query(decode_object(await read_limited(request, app.limits.event_bytes)))
        answer = await accidents.lookup(
            query, officer=caller.name, role=caller.role, request_id=request_id(request)
        )
        return JSONBody(accident_json(answer))

    return router
