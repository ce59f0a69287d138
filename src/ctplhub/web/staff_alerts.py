"""``/staff/alerts``: the roadside cameras' alerts for a signed-in police officer or
regulator (DESIGN §12), updating live.

The page lists the alerts of a region prefix and ``/static/alerts.js`` asks
``/staff/alerts.json`` for them every few seconds (a GET: a region prefix is not personal
data), adding the new ones at the top. Polling rather than Server-Sent Events: it needs
no connection held per officer by the server, and a page left open overnight recovers
from a restart by itself. Sessions and roles are the staff pages' own (``web/staff.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ctplhub.domain.errors import DomainError
from ctplhub.services.anpr import AnprAlerts
from ctplhub.services.staff_sessions import StaffSession, StaffSessions
from ctplhub.web.pages import static_file
from ctplhub.web.staff import Cookies, _render, role_page

ALERT_ROLES = ("police", "regulator")
SHOWN = 200  # the newest alerts a page shows
POLL_S = 3


def build_router(sessions: StaffSessions, alerts: AnprAlerts, cookies: Cookies) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    police_page = role_page(sessions, cookies, ALERT_ROLES)

    async def alerts_page(request: Request, session: StaffSession) -> Response:
        prefix = request.query_params.get("region_prefix", "")
        return _render(
            request, "staff_alerts.html", session=session, region_prefix=prefix, poll_s=POLL_S
        )

    async def alerts_json(request: Request, _: StaffSession) -> Response:
        query = request.query_params
        try:
            found = await run_in_threadpool(
                alerts.listed, query.get("region_prefix", ""), query.get("since") or None
            )
        except DomainError as problem:
            return JSONResponse(
                {"error": {"code": problem.code, "message": problem.message}},
                status_code=400,
                headers={"Cache-Control": "no-store"},
            )
        newest = [alert.fields() for alert in found[-SHOWN:]]
        return JSONResponse({"alerts": newest}, headers={"Cache-Control": "no-store"})

    router.add_api_route("/staff/alerts", police_page(alerts_page), methods=["GET"])
    router.add_api_route("/staff/alerts.json", police_page(alerts_json), methods=["GET"])

    @router.get("/static/alerts.js")
    def script() -> Response:
        return static_file("alerts.js")

    return router
