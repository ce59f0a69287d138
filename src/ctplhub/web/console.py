"""The hotline console (issue 11 item 3): a signed-in ``agent`` answers a caller.

The agent types the plate, picks the reason code and types the verification factor the
caller reads out (VIN tail or ID number): an agent account is no way around the factor.
The look-up is the agent API's (``POST /v1/agent/coverage-query``): the same service call
with the agent's name, role and reason code as the reader, so it lands in the access log
under the agent's name, and a wrong factor spends the same budgets (the agent's own in
place of a client address's). The answer comes with a script of what to tell the caller
for its status, worded in the page's language from the catalogues.

Pages, sessions, CSRF and the role guard are the staff pages' own (``web/staff.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ctplhub.domain.errors import DomainError, ValidationFailed
from ctplhub.security.throttle import Throttle, guarded_lookup
from ctplhub.services.check_coverage import CheckCoverage, CoverageQuery, FullAnswer
from ctplhub.services.ports import Reader
from ctplhub.services.staff_sessions import StaffSession, StaffSessions
from ctplhub.web.formatting import STATUS_ICON, STATUS_TONE
from ctplhub.web.pages import FormRefused, check_vin_tail, form_text, page_error, read_form
from ctplhub.web.staff import Cookies, _refused_form, _render, role_page

AGENT_ROLES = ("agent",)
REASONS = ("hotline", "claim_assistance", "complaint")
"""Reason codes an agent picks from (DESIGN §3 ``purpose``); worded by the template."""
FACTORS = ("vin_last6", "owner_id_number")
_MAX_FORM_BYTES = 4096


def build_router(
    sessions: StaffSessions, coverage: CheckCoverage, throttle: Throttle, cookies: Cookies
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    agent_page = role_page(sessions, cookies, AGENT_ROLES)

    def page(
        request: Request, session: StaffSession, status_code: int = 200, **context: object
    ) -> Response:
        return _render(
            request,
            "staff_console.html",
            status_code,
            session=session,
            reasons=REASONS,
            tone=STATUS_TONE,
            icon=STATUS_ICON,
            **context,
        )

    async def console_form(request: Request, session: StaffSession) -> Response:
        return page(request, session, reason="hotline", factor="vin_last6")

    async def console_lookup(request: Request, session: StaffSession) -> Response:
        try:
            form = await read_form(request, _MAX_FORM_BYTES)
        except FormRefused as refused:
            return page(request, session, refused.status_code, reason="hotline", factor="vin_last6")
        if not session.csrf_matches(form_text(form, "csrf")):
            return _refused_form(request, session)
        plate = form_text(form, "plate")[:32]
        reason = form_text(form, "reason")
        factor = form_text(form, "factor")
        factor = factor if factor in FACTORS else "vin_last6"
        value = form_text(form, "factor_value")[:64]
        shown = reason if reason in REASONS else "hotline"
        try:
            if reason not in REASONS:
                raise ValidationFailed("reason must be one of the listed reason codes")
            if factor == "vin_last6":
                check_vin_tail(value)
                question = CoverageQuery(plate=plate, vin_last6=value)
            else:
                question = CoverageQuery(plate=plate, owner_id_number=value)
            reader = Reader(
                session.user, session.role, reason, request.scope.get("ctplhub.request_id")
            )
            answer = await guarded_lookup(
                throttle,
                f"agent:{session.user}",
                plate,
                lambda: coverage.query(question, reader),
                verified=True,
            )
        except DomainError as failure:
            error, status_code = page_error(failure)
            return page(
                request, session, status_code, error=error, plate=plate, reason=shown, factor=factor
            )
        assert isinstance(answer, FullAnswer)  # a factor was given
        return page(request, session, answer=answer, plate=plate, reason=shown, factor=factor)

    router.add_api_route("/staff/console", agent_page(console_form), methods=["GET"])
    router.add_api_route("/staff/console", agent_page(console_lookup), methods=["POST"])
    return router
