"""Web pages (placeholder until the owner page lands)."""

from __future__ import annotations

from fastapi import APIRouter

from ctplhub.services.check_coverage import CheckCoverage


def build_router(coverage: CheckCoverage) -> APIRouter:
    return APIRouter()
