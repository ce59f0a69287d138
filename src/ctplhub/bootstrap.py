"""The one place that knows everything: builds engine, keys, repositories, services
and the web application from ``Settings``."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from ctplhub.config import Settings, load_settings
from ctplhub.logs import configure_logging
from ctplhub.security import request_signing, tokens
from ctplhub.security.answer_signing import AnswerSigner
from ctplhub.security.keystore import ensure_keys, load_keys
from ctplhub.security.pii import BlindIndex, FieldCipher, PersonalDataVault
from ctplhub.services.check_coverage import CheckCoverage
from ctplhub.services.insurer_directory import InsurerDirectory
from ctplhub.services.insurers import Insurers
from ctplhub.services.ports import NonceStore, UnitOfWork, VehicleReader
from ctplhub.services.report_events import ReportEvents
from ctplhub.services.users import Users
from ctplhub.services.verify_bulk import VerifyBulk
from ctplhub.store.maintenance import SqlPlannerStatistics
from ctplhub.store.nonces import SqlNonceStore
from ctplhub.store.readers import vehicle_reader
from ctplhub.store.schema import make_engine, migrate
from ctplhub.store.unit_of_work import SqlUnitOfWork

if TYPE_CHECKING:  # the web stack is imported only by what serves it (not import workers)
    from fastapi import FastAPI

    from ctplhub.api.deps import AppServices


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    reader: VehicleReader  # the coverage answers' reads; opened and closed with the app
    report_events: ReportEvents
    coverage: CheckCoverage
    verify: VerifyBulk
    insurers: Insurers
    users: Users
    signer: AnswerSigner

    def close(self) -> None:
        """Close every pooled database connection."""
        self.engine.dispose()

    async def close_resources(self) -> None:
        """What the app holds while it serves: the readers' connections, the signing
        thread."""
        await self.reader.close()
        self.signer.close()

    def ready(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def app_services(self) -> AppServices:
        from ctplhub.api.deps import AppServices, Limits

        s = self.settings
        return AppServices(
            report_events=self.report_events,
            coverage=self.coverage,
            verify=self.verify,
            insurers=self.insurers,
            users=self.users,
            signer=self.signer,
            open_resources=self.reader.open,
            close_resources=self.close_resources,
            ready=self.ready,
            limits=Limits(
                s.max_event_bytes, s.max_batch_bytes, s.max_batch_lines, s.max_verify_items
            ),
        )


def initialise(settings: Settings) -> list[str]:
    """``ctplhub init``: keys if missing, schema migrated to head."""
    created = ensure_keys(settings.home)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return created


def build_container(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    reader: VehicleReader | None = None,
) -> Container:
    """Everything wired from ``settings``; ``reader`` replaces the coverage read path the
    database URL would choose (benchmarks compare read strategies with it)."""
    settings = settings or load_settings()
    keys = load_keys(settings.home)
    engine = make_engine(settings.database_url)
    vault = PersonalDataVault(
        FieldCipher(keys.pii_keys, keys.active_pii_kid), BlindIndex(keys.blind_index_key)
    )
    signer = AnswerSigner(keys.signing_keys, keys.active_signing_kid)

    def uow() -> UnitOfWork:
        return SqlUnitOfWork(engine)

    reader = reader or vehicle_reader(settings.database_url)
    stale_after = timedelta(seconds=settings.stale_after_s)
    directory = InsurerDirectory(settings.insurer_cache_s, stale_after)

    nonces: NonceStore = SqlNonceStore(engine)
    if settings.redis_url:
        from ctplhub.security.nonces import RedisNonceStore

        nonces = RedisNonceStore(settings.redis_url)
    window = timedelta(days=settings.reminder_window_days)
    return Container(
        settings=settings,
        engine=engine,
        reader=reader,
        report_events=ReportEvents(uow, vault, clock, SqlPlannerStatistics(engine)),
        coverage=CheckCoverage(reader, directory, vault, clock, reminder_window=window),
        verify=VerifyBulk(reader, directory, clock, reminder_window=window),
        insurers=Insurers(
            uow,
            vault,
            nonces,
            clock,
            stale_after=stale_after,
            signature_check=request_signing.digest_signature_matches,
            timestamp_fresh=request_signing.timestamp_fresh,
            new_key_id=tokens.new_key_id,
            new_secret=tokens.new_secret,
        ),
        users=Users(uow, clock, new_token=tokens.new_token, hash_token=tokens.hash_token),
        signer=signer,
    )


def build_app(container: Container) -> FastAPI:
    from ctplhub.api.app import create_app
    from ctplhub.web.pages import build_router as build_web_router

    return create_app(
        container.app_services(), extra_routers=(build_web_router(container.coverage),)
    )


def create_app_from_env(reader: VehicleReader | None = None) -> FastAPI:
    """Entry point for ``uvicorn --factory`` (used by ``ctplhub serve``)."""
    settings = load_settings()
    configure_logging(settings.log_level)
    app = build_app(build_container(settings, reader=reader))
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # garbage collector's full passes, whose pauses otherwise show in the latency tail.
    # Requests make short-lived objects that reference counting frees; the collector's
    # passes over them come less often (4 % of a query's CPU at the default threshold).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    # The signing and reading threads hand results back to the event loop; waiting up
    # to the default 5 ms for the GIL left the loop idle under load. 1 ms measured best
    # (0.2 ms switched too often) (docs/PERFORMANCE.md).
    sys.setswitchinterval(0.001)
    return app
