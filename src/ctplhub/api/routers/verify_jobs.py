"""Verify jobs (DESIGN §11): police and regulators upload up to a million rows, CSV or
XLSX, and fetch a signed result CSV when the job is done.

The upload is the raw request body (``text/csv`` or the XLSX media type), streamed to a
temporary file and read from there: no multipart form, so a client sends the file as it
is (``curl --data-binary @rows.csv``). The purpose goes in ``X-CTPL-Purpose`` as for a
bulk verify CSV upload. ``X-CTPL-Result-Signature`` is a compact token (§6.1) over
``{"job_id", "kid", "rows", "sha256"}``, signed under the active key when the result is
fetched, so it verifies with the published JWKS like a certificate's token.
"""

from __future__ import annotations

from typing import Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response, StreamingResponse

from ctplhub.api.bodies import require_media_type, spool_body
from ctplhub.api.deps import bearer, request_id, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.routers.coverage import PURPOSE_HEADER, VERIFY_ROLES, purpose_code
from ctplhub.api.schemas import DEFAULT_VERIFY_PURPOSE, PURPOSE_PATTERN, ErrorAnswer
from ctplhub.security.answer_signing import AnswerSigner, canonical_json
from ctplhub.security.certificate_token import make_token
from ctplhub.services.job_uploads import CSV, XLSX, read_rows
from ctplhub.services.ports import Reader
from ctplhub.services.verify_jobs import JobResult, VerifyJobs

SIGNATURE_HEADER = "X-CTPL-Result-Signature"
READ_ROLES = (*VERIFY_ROLES, "admin")

_log = structlog.get_logger("ctplhub.verify_jobs")


class VerifyJobAccepted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str


class VerifyJobProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["queued", "running", "done", "failed"]
    done_rows: int
    total_rows: int


def result_signature(signer: AnswerSigner, result: JobResult) -> str:
    """The compact token (§6.1 form) over the result's digest, under the active key."""
    message = canonical_json(
        {
            "job_id": result.job_id,
            "kid": signer.active_kid,
            "rows": result.rows,
            "sha256": result.sha256,
        }
    )
    return make_token(message, signer.sign_message(message))


def build_router(jobs: VerifyJobs, *, max_bytes: int) -> APIRouter:
    router = APIRouter(tags=["verify jobs"])

    @router.post(
        "/v1/verify-jobs",
        summary="Queue a verify job: a CSV or XLSX of plate,vin,at rows (up to 1,000,000)",
        status_code=202,
        response_model=VerifyJobAccepted,
        openapi_extra={
            "parameters": [
                {
                    "name": PURPOSE_HEADER,
                    "in": "header",
                    "required": False,
                    "description": f"The reason code, kept in the access log; "
                    f"{DEFAULT_VERIFY_PURPOSE} when absent.",
                    "schema": {"type": "string", "pattern": PURPOSE_PATTERN},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    CSV: {"schema": {"type": "string", "description": "header: plate,vin,at"}},
                    XLSX: {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": "first sheet; first row: plate, vin, at",
                        }
                    },
                },
            },
        },
    )
    async def submit(request: Request) -> Response:
        caller = await run_in_threadpool(bearer, request, *VERIFY_ROLES)
        kind = require_media_type(request, CSV, XLSX)
        header = request.headers.get(PURPOSE_HEADER)
        purpose = DEFAULT_VERIFY_PURPOSE if header is None else purpose_code(header, PURPOSE_HEADER)
        reader = Reader(caller.name, caller.role, purpose, request_id(request))
        spool, _ = await spool_body(request, max_bytes)
        rows = read_rows(spool, kind)
        try:
            job = await run_in_threadpool(jobs.submit, reader, rows)
        finally:
            rows.close()  # an upload refused half-read (413) is let go before its file
            spool.close()
        # Who, why and how many (DESIGN §5.3); the vehicles go to the access log as read.
        _log.info(
            "verify_job_submitted",
            job_id=job.job_id,
            actor=caller.name,
            role=caller.role,
            purpose=purpose,
            rows=job.total_rows,
        )
        return JSONBody({"job_id": job.job_id}, status_code=202)

    @router.get(
        "/v1/verify-jobs/{job_id}",
        summary="A verify job's progress (its owner and admins only)",
        response_model=VerifyJobProgress,
        responses={404: {"model": ErrorAnswer, "description": "no such job, or not yours"}},
    )
    async def progress(job_id: str, request: Request) -> Response:
        caller = await run_in_threadpool(bearer, request, *READ_ROLES)
        reader = Reader(caller.name, caller.role, "verify_job")
        state = await run_in_threadpool(jobs.progress, job_id, reader)
        return JSONBody(
            {"status": state.status, "done_rows": state.done_rows, "total_rows": state.total_rows}
        )

    @router.get(
        "/v1/verify-jobs/{job_id}/result",
        summary="A done job's result CSV, signed in X-CTPL-Result-Signature",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "UTF-8 CSV: plate,vin,at,covered,status,insurer_code,"
                "covered_until,error; rows in input order",
                "content": {"text/csv": {"schema": {"type": "string"}}},
                "headers": {
                    SIGNATURE_HEADER: {
                        "description": 'compact token over {"job_id","kid","rows","sha256"}',
                        "schema": {"type": "string"},
                    }
                },
            },
            404: {"model": ErrorAnswer, "description": "no such job, or not yours"},
            409: {"model": ErrorAnswer, "description": "the job is not done yet"},
        },
    )
    async def result(job_id: str, request: Request) -> Response:
        caller = await run_in_threadpool(bearer, request, *READ_ROLES)
        reader = Reader(caller.name, caller.role, "verify_job")
        found = await run_in_threadpool(jobs.result, job_id, reader)
        signature = result_signature(services(request).signer, found)
        return StreamingResponse(
            found.parts,
            media_type="text/csv; charset=utf-8",
            headers={SIGNATURE_HEADER: signature},
        )

    return router
