"""Reminder subscriptions (DESIGN §7) and the regulators' ghost-cover list (issue 9).

- ``POST /v1/subscriptions``: a verified query body plus ``channel``, ``address`` and
  optional ``language`` → ``201 {"subscription_id", "unsubscribe_token"}`` (and
  ``webhook_secret`` for a webhook). Throttled and answered like the verified query
  (``guarded_lookup``): a wrong factor here is one more guess at a VIN tail, the same 404.
- ``DELETE /v1/subscriptions/{id}?token=`` → ``204``; a wrong token is the same
  ``404 not_found`` as an unknown id. The token is not personal data, and an unsubscribe
  link must work from a mail client, so it may travel in the URL.
- ``GET`` / ``POST /v1/subscriptions/{id}/unsubscribe?token=``: the link every message
  carries. ``GET`` shows a confirmation page (a mail scanner following links must not
  unsubscribe anyone); ``POST`` ends it (RFC 8058 one-click, and the page's button).
- ``GET /v1/regulator/ghost-cover?from=&to=&insurer_code=&limit=`` (regulator): policies
  surrendered or cancelled within 30 days of issue (docs/DECISIONS.md, "Reminders").
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from ctplhub.api.bodies import decode_object, json_body_doc, read_limited, require_media_type
from ctplhub.api.deps import bearer, client_address, request_id, services
from ctplhub.api.responses import JSONBody
from ctplhub.api.routers.coverage import coverage_query
from ctplhub.api.schemas import (
    ErrorAnswer,
    GhostCoverAnswer,
    SubscriptionAnswer,
    SubscriptionBody,
)
from ctplhub.domain.errors import NotFound, ValidationFailed
from ctplhub.domain.instants import format_instant, parse_instant
from ctplhub.security.throttle import guarded_lookup
from ctplhub.services.ports import Reader
from ctplhub.services.reminders import (
    SUBSCRIBE_PURPOSE,
    GhostCover,
    Reminders,
    SubscriptionRequest,
)

_EXTRA = ("channel", "address", "language")
GHOST_ROLES = ("regulator",)


def _subscription_id(raw: str) -> int:
    """A path id that is not a number is simply not found (the same 404 as a wrong one)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound("no subscription with this id and token")
    return int(raw)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><main>{body}</main></body></html>"
    )


def build_router(reminders: Reminders) -> APIRouter:
    router = APIRouter(tags=["reminders"])

    @router.post(
        "/v1/subscriptions",
        summary="Subscribe a verified owner's vehicle to renewal reminders",
        status_code=201,
        response_model=SubscriptionAnswer,
        responses={
            404: {
                "model": ErrorAnswer,
                "description": "no such plate, or the factor does not match (same answer)",
            }
        },
        openapi_extra=json_body_doc(SubscriptionBody),
    )
    async def subscribe(request: Request) -> Response:
        app = services(request)
        require_media_type(request, "application/json")
        body = decode_object(await read_limited(request, app.limits.event_bytes))
        question = coverage_query({k: v for k, v in body.items() if k not in _EXTRA})
        if "channel" not in body or "address" not in body:
            missing = [n for n in ("channel", "address") if n not in body]
            raise ValidationFailed(
                "the request is not valid",
                details=[{"field": n, "problem": "Field required"} for n in missing],
            )
        if not question.has_factor:
            raise ValidationFailed(
                "a verification factor is required: vin_last6 or owner_id_number",
                details=[{"field": "vin_last6", "problem": "Field required"}],
            )
        wanted = SubscriptionRequest(
            question, body["channel"], body["address"], body.get("language")
        )
        reader = Reader("anonymous", "owner", SUBSCRIBE_PURPOSE, request_id(request))
        made = await guarded_lookup(
            app.throttle,
            client_address(request),
            question.plate,
            lambda: reminders.subscribe(wanted, reader),
            verified=True,
        )
        answer: dict[str, Any] = {
            "subscription_id": made.subscription_id,
            "unsubscribe_token": made.unsubscribe_token,
        }
        if made.webhook_secret is not None:
            answer["webhook_secret"] = made.webhook_secret
        return JSONBody(answer, status_code=201)

    @router.delete(
        "/v1/subscriptions/{subscription_id}",
        summary="End a subscription (its token is in every reminder)",
        status_code=204,
        response_class=Response,
    )
    async def unsubscribe(request: Request, subscription_id: str, token: str = "") -> Response:
        await run_in_threadpool(reminders.unsubscribe, _subscription_id(subscription_id), token)
        return Response(status_code=204)

    @router.get(
        "/v1/subscriptions/{subscription_id}/unsubscribe",
        summary="The unsubscribe link of a message: a page asking to confirm",
        response_class=HTMLResponse,
    )
    async def confirm_page(subscription_id: str, token: str = "") -> Response:
        sid = _subscription_id(subscription_id)
        action = html.escape(f"/v1/subscriptions/{sid}/unsubscribe?token={token}", quote=True)
        return _page(
            "退订提醒 / Unsubscribe",
            "<h1>退订交强险续保提醒 / Stop CTPL renewal reminders</h1>"
            f'<form method="post" action="{action}">'
            '<button type="submit">确认退订 / Unsubscribe</button></form>',
        )

    @router.post(
        "/v1/subscriptions/{subscription_id}/unsubscribe",
        summary="One-click unsubscribe (RFC 8058) and the confirmation page's button",
        response_class=HTMLResponse,
    )
    async def one_click(subscription_id: str, token: str = "") -> Response:
        await run_in_threadpool(reminders.unsubscribe, _subscription_id(subscription_id), token)
        return _page(
            "已退订 / Unsubscribed",
            "<h1>已退订，不会再收到提醒。/ Unsubscribed: no more reminders.</h1>",
        )

    @router.get(
        "/v1/regulator/ghost-cover",
        summary="Policies surrendered or cancelled within 30 days of issue (regulators)",
        response_model=GhostCoverAnswer,
    )
    async def ghost_cover(
        request: Request,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: str | None = None,
        insurer_code: str | None = None,
        limit: int = 1000,
    ) -> Response:
        await run_in_threadpool(bearer, request, *GHOST_ROLES)
        since = parse_instant(from_, "from")
        until = parse_instant(to, "to")
        if not 1 <= limit <= 10_000:
            raise ValidationFailed(
                "limit must be 1-10000", details=[{"field": "limit", "problem": "1-10000"}]
            )
        found = await run_in_threadpool(
            reminders.ghost_covers, since, until, insurer_code=insurer_code, limit=limit
        )
        return JSONBody({"items": [_ghost(g) for g in found]})

    return router


def _ghost(g: GhostCover) -> dict[str, Any]:
    return {
        "insurer_code": g.insurer_code,
        "policy_no": g.policy_no,
        "event_type": g.event_type,
        "issued_at": format_instant(g.issued_at),
        "closed_at": format_instant(g.closed_at),
        "coverage_start": format_instant(g.coverage_start),
        "covered_until": format_instant(g.covered_until),
        "days_after_issue": g.days_after_issue,
    }
