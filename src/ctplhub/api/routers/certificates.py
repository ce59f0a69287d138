"""E-certificates (DESIGN §6.1): issued to a verified owner, checked by anyone.

``POST /v1/certificates`` takes a verified query body (without ``at``) and is throttled
and access-logged exactly like the verified query (``guarded_lookup``): a wrong factor
here is one more guess at a VIN tail. ``POST /v1/certificates/verify`` checks a token's
signature and tells the live status. ``POST /v1/certificates/qr`` draws a token's QR
code as PNG for printing: the token travels in the body, never in a URL (it shows the
plate), and only a token this registry's keys verify is drawn.

The QR codes come from ``segno`` (pure Python, no image library), error correction M: a
token is ~500 characters, a version 18 symbol (89 modules a side), which phone cameras
read off a screen or paper at the sizes drawn here (L would give version 15 but less
tolerance of a scratched print).
"""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request
from starlette.responses import Response

from ctplhub.api import presenters
from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import client_address, request_id, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.routers.coverage import coverage_query
from ctplhub.api.routing import RequestRoute
from ctplhub.api.schemas import (
    CertificateAnswer,
    CertificateCheckAnswer,
    CertificateTokenBody,
    CoverageQueryBody,
    ErrorAnswer,
)
from ctplhub.domain.errors import ValidationFailed
from ctplhub.security.throttle import guarded_lookup
from ctplhub.services.certificates import CHECKER, ISSUE_PURPOSE
from ctplhub.services.ports import Reader

router = APIRouter(tags=["certificates"], route_class=RequestRoute)

_TOKEN_BODY_BYTES = 8192
_QR_ERROR = "m"


def qr_svg(token: str) -> str:
    """The token's QR code as an inline SVG element (scalable; no XML declaration)."""
    return segno.make_qr(token, error=_QR_ERROR).svg_inline(scale=4, title="CTPL e-certificate")


def qr_png(token: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(token, error=_QR_ERROR).save(out, kind="png", scale=6, border=4)
    return out.getvalue()


@router.post(
    "/v1/certificates",
    summary="An e-certificate of cover now, for a verified owner (signed, with its QR code)",
    status_code=201,
    response_model=CertificateAnswer,
    responses={
        404: {
            "model": ErrorAnswer,
            "description": "no such plate, or the factor does not match (same answer)",
        },
        409: {"model": ErrorAnswer, "description": "not_covered: no cover now to certify"},
    },
    openapi_extra=json_body_doc(CoverageQueryBody),
)
async def issue(request: Request) -> Response:
    app = services(request)
    require_media_type(request, "application/json")
    body = decode_object(await read_limited(request, app.limits.event_bytes))
    question = coverage_query(body)
    reader = Reader("anonymous", "owner", ISSUE_PURPOSE, request_id(request))
    sealed = await guarded_lookup(
        app.throttle,
        client_address(request),
        question.plate,
        lambda: app.certificates.issue(question, reader),
        verified=question.has_factor,
    )
    answer = {
        "certificate": presenters.certificate(sealed),
        "token": sealed.token,
        "qr_svg": qr_svg(sealed.token),
    }
    return JSONBody(answer, status_code=201)


async def _token(request: Request) -> object:
    require_media_type(request, "application/json")
    body = decode_object(await read_limited(request, _TOKEN_BODY_BYTES))
    extra = [name for name in body if name != "token"]
    if extra or "token" not in body:
        problems = [{"field": n, "problem": "Extra inputs are not permitted"} for n in extra]
        if "token" not in body:
            problems.append({"field": "token", "problem": "Field required"})
        raise ValidationFailed("the request is not valid", details=problems)
    return body["token"]


@router.post(
    "/v1/certificates/verify",
    summary="Check a certificate token: signature, and the registry's live status now",
    response_model=CertificateCheckAnswer,
    openapi_extra=json_body_doc(CertificateTokenBody),
)
async def verify(request: Request) -> Response:
    app = services(request)
    token = await _token(request)
    reader = Reader(CHECKER.actor, CHECKER.role, CHECKER.purpose, request_id(request))
    check = await app.certificates.check(token, reader)
    return JSONBody(presenters.certificate_check(check))


@router.post(
    "/v1/certificates/qr",
    summary="A certificate token's QR code as PNG (only a token this registry signed)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the QR code"}},
    openapi_extra=json_body_doc(CertificateTokenBody),
)
async def qr(request: Request) -> Response:
    app = services(request)
    token = await _token(request)
    sealed, valid = app.certificates.open(token)
    if not valid:
        raise ValidationFailed(
            "the token's signature does not hold under this registry's keys",
            code="invalid_token",
        )
    return Response(
        qr_png(sealed.token),
        media_type="image/png",
        headers={"Content-Disposition": 'inline; filename="ctpl-certificate.png"'},
    )
