"""The one place that knows everything: builds engine, keys, repositories, services
and the web application from ``Settings``."""

from __future__ import annotations

import gc
import hmac
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Engine

from ctplhub.config import Settings, load_settings
from ctplhub.domain.lapse_risk import LapseModel
from ctplhub.domain.reminders import EARLY_RISK_DAYS, ReminderRules
from ctplhub.domain.working_days import china_calendar
from ctplhub.logs import configure_logging
from ctplhub.notify.webhook_signing import webhook_secret
from ctplhub.security import passwords, request_signing, tokens
from ctplhub.security.access_log import AccessLogWriter, VehicleIndex
from ctplhub.security.answer_signing import AnswerSigner, plain_canonical_json, verify_signed
from ctplhub.security.certificate_token import CertificateSeal
from ctplhub.security.envelope import Keyring
from ctplhub.security.keystore import Keys, PublishedSigningKeys, ensure_keys, load_keys
from ctplhub.security.live_confirm_client import HttpConfirmTransport
from ctplhub.security.live_confirm_metrics import ConfirmMetrics
from ctplhub.security.throttle import Throttle, parse_rate_limits
from ctplhub.security.tree_head_signing import tree_head_signer
from ctplhub.security.unsubscribe import UnsubscribeTokens
from ctplhub.services.access_log import OwnerAccessLog
from ctplhub.services.accident_lookup import AccidentLookup
from ctplhub.services.anpr import AnprAlerts
from ctplhub.services.assistant import Assistant
from ctplhub.services.certificates import Certificates
from ctplhub.services.check_coverage import CheckCoverage
from ctplhub.services.compliance import Compliance
from ctplhub.services.disputes import Disputes
from ctplhub.services.enforcement import Enforcement
from ctplhub.services.forecast import LapseForecast
from ctplhub.services.insurer_directory import InsurerDirectory
from ctplhub.services.insurers import Insurers, secret_aad
from ctplhub.services.key_rotation import KeyRotation
from ctplhub.services.ledger_append import LedgerWriter
from ctplhub.services.ledger_audit import LedgerAudit
from ctplhub.services.ledger_backfill import LedgerBackfill
from ctplhub.services.ledger_proofs import LedgerProofs
from ctplhub.services.live_confirmation import EndpointRecord, LiveConfirmation
from ctplhub.services.match_schedule import ScheduledMatch
from ctplhub.services.ports import NonceStore, UnitOfWork, VehicleReader
from ctplhub.services.quality_flags import QualityFlags
from ctplhub.services.readiness import PartState, Readiness
from ctplhub.services.reconcile import Reconcile
from ctplhub.services.register_feed import RegisterFeed
from ctplhub.services.reminder_ports import DeliverDue, Outbox
from ctplhub.services.reminders import Reminders, address_aad
from ctplhub.services.report_events import ReportEvents
from ctplhub.services.staff_sessions import StaffSessions
from ctplhub.services.stats import Statistics
from ctplhub.services.sync_health import SyncHealth
from ctplhub.services.users import Users
from ctplhub.services.verify_bulk import VerifyBulk
from ctplhub.services.verify_job_runner import VerifyJobRunner
from ctplhub.services.verify_jobs import VerifyJobs
from ctplhub.store.data_keys import SqlDataKeys, SqlSealedRows
from ctplhub.store.ledger_audit import SqlLedgerAuditSource
from ctplhub.store.maintenance import REGISTER_TABLES, SqlPlannerStatistics
from ctplhub.store.nonces import SqlNonceStore
from ctplhub.store.read_fence import RedisReadFence
from ctplhub.store.readers import vehicle_reader
from ctplhub.store.readers.ledger import SqlLedgerReader, ledger_reader
from ctplhub.store.readers.routed import RoutedVehicleReader
from ctplhub.store.readiness import database_state, redis_state, replica_state
from ctplhub.store.repositories.access_log import SqlAccessLogStore
from ctplhub.store.repositories.anpr_alerts import SqlAlertStore
from ctplhub.store.repositories.certificates import SqlCertificateRecords
from ctplhub.store.repositories.confirm_endpoints import SqlConfirmEndpoints
from ctplhub.store.repositories.disputes import SqlDisputeUnitOfWork
from ctplhub.store.repositories.forecast_totals import SqlForecastStore
from ctplhub.store.repositories.insurer_health import SqlInsurerHealth
from ctplhub.store.repositories.match_counts import SqlMatchCounts
from ctplhub.store.repositories.match_runs import SqlMatchRuns
from ctplhub.store.repositories.outbox import SqlOutbox
from ctplhub.store.repositories.quality_flags import SqlQualityFlags
from ctplhub.store.repositories.reconcile import SqlPolicyBook
from ctplhub.store.repositories.register import SqlVehicleRegister
from ctplhub.store.repositories.reminders import SqlReminderUnitOfWork
from ctplhub.store.repositories.stats import SqlStatsStore
from ctplhub.store.repositories.vehicle_histories import SqlVehicleHistories
from ctplhub.store.repositories.verify_jobs import SqlVerifyJobs
from ctplhub.store.schema import check_access_log_file, make_engine, migrate
from ctplhub.store.unit_of_work import SqlUnitOfWork

if TYPE_CHECKING:  # the web stack is imported only by what serves it (not import workers)
    from fastapi import APIRouter, FastAPI

    from ctplhub.api.deps import AppServices
    from ctplhub.web.staff import Cookies


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
    staff_sessions: StaffSessions
    signer: AnswerSigner
    throttle: Throttle
    access_log: AccessLogWriter  # queued on the answer path, written in batches
    owner_access_log: OwnerAccessLog
    certificates: Certificates  # e-certificates (DESIGN §6.1)
    ledger_reader: SqlLedgerReader  # the public ledger's reads; closed with the app
    ledger: LedgerProofs  # tree heads, proofs, entries (DESIGN §6)
    ledger_audit: LedgerAudit  # `ctplhub ledger audit`
    reminders: Reminders  # subscriptions, decisions, ghost cover (DESIGN §7)
    outbox: SqlOutbox  # the reminder outbox, delivering side (docs/reminders-contract.md)
    webhook_key: bytes  # the deployment key webhook secrets derive from

    def reminder_outbox(self) -> Outbox:
        return self.outbox

    def reminder_delivery(self) -> DeliverDue:
        """One delivery pass (``ctplhub remind run``, ``ctplhub worker``): the channels
        of ``ctplhub.notify``, built from the settings, over this outbox."""
        from ctplhub.notify.wiring import build_delivery

        return build_delivery(self.settings, self.outbox, webhook_key=self.webhook_key)

    # Data you can trust (DESIGN §2.6, §10): reconciliation, sync health, late reports.
    reconcile: Reconcile
    sync_health: SyncHealth
    compliance: Compliance
    forecast: LapseForecast
    # Cross-department sharing (DESIGN §11; issue 12): the register, the match, accidents.
    register_feed: RegisterFeed
    enforcement: Enforcement
    accidents: AccidentLookup
    live_confirmation: LiveConfirmation | None = None  # DESIGN §10 (issue 10)
    quality_flags: QualityFlags | None = None  # data-quality flags, the worker's pass (issue 10)
    disputes: Disputes | None = None  # owners' disputes (DESIGN §10; issue 10)
    # Verify jobs (DESIGN §11): the use case, and the runner ``ctplhub serve`` starts in
    # its background when ``settings.serve_runs_jobs`` (``ctplhub worker`` runs its own).
    verify_jobs: VerifyJobs | None = None
    job_runner: VerifyJobRunner | None = None
    anpr: AnprAlerts | None = None  # roadside cameras' alerts (DESIGN §12, issue 14)
    stats: Statistics | None = None  # regulators' statistics (DESIGN §11, issue 12)
    match_schedule: ScheduledMatch | None = None  # the daily match in ``ctplhub worker``
    # A deployment with a replica (docs/deploy.md): its engine for /readyz's lag, and the
    # read fence this process's writes publish.
    replica_engine: Engine | None = None
    fence: RedisReadFence | None = None

    def close(self) -> None:
        """Close every pooled database connection, after writing the access log entries
        still queued (recorded with no server running, e.g. by a command)."""
        from ctplhub.api.insurer_metrics import INSURER_METRICS

        INSURER_METRICS.forget(self.sync_health.all)  # no scrape reads a closed container
        self.access_log.flush_now()
        self.access_log.close()
        self.engine.dispose()
        if self.replica_engine is not None:
            self.replica_engine.dispose()
        if self.fence is not None:
            self.fence.dispose()

    async def close_resources(self) -> None:
        """What the app holds while it serves: the job runner (its chunk in progress
        finishes first), the readers' connections, the signer processes, the access log's
        flusher (which writes what waits)."""
        if self.job_runner is not None:
            await self.job_runner.stop()
        await self.access_log.stop()
        await self.reader.close()
        await self.ledger_reader.close()
        self.signer.close()
        await self.throttle.close()

    async def open_resources(self, *, run_jobs: bool | None = None) -> None:
        """What the app holds while it serves; verify jobs run in its background when
        ``run_jobs`` (by default ``settings.serve_runs_jobs``: the server's choice)."""
        await self.reader.open()
        await self.access_log.start()
        jobs = self.settings.serve_runs_jobs if run_jobs is None else run_jobs
        if self.job_runner is not None and jobs:
            self.job_runner.start()

    def readiness(self) -> Readiness:
        """Each part this process depends on (``/readyz``)."""
        parts: dict[str, PartState] = {"database": database_state(self.engine)}
        if self.replica_engine is not None:
            parts["replica"] = replica_state(self.engine, self.replica_engine)
        if self.settings.redis_url:
            parts["redis"] = redis_state(self.settings.redis_url)
        return Readiness(parts)

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
            throttle=self.throttle,
            access_log=self.owner_access_log,
            flush_access_log=self.access_log.flush_soon,
            open_resources=self.open_resources,
            close_resources=self.close_resources,
            readiness=self.readiness,
            certificates=self.certificates,
            ledger=self.ledger,
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
        # On PostgreSQL the access log's partitions of this month and the next (0008).
        SqlAccessLogStore(engine).prepare(utc_now())
        # The first envelope data keys (DESIGN §5.3), once: rows sealed under an older
        # install's key files stay readable and move on the next `ctplhub keys rotate`.
        tools = KeyTools(engine, settings.home, utc_now)
        tools.rotation.ensure_active_keys()
        # Events stored before the ledger (migration 0006) get their leaves, resumably.
        appended = ledger_backfill(engine, load_keys(settings.home), tools.keyring).run()
        if appended:
            structlog.get_logger(__name__).info("ledger_backfilled", events=appended)
    finally:
        engine.dispose()
    return created


def ledger_writer(keys: Keys, personal: Keyring) -> LedgerWriter:
    signer = AnswerSigner(keys.signing_keys, keys.active_signing_kid)
    return LedgerWriter(personal, plain_canonical_json, tree_head_signer(signer))


def ledger_backfill(engine: Engine, keys: Keys, keyring: Keyring) -> LedgerBackfill:
    """Leaves for the events stored before the ledger (``ctplhub init``)."""
    return LedgerBackfill(
        SqlLedgerAuditSource(engine),
        lambda: SqlUnitOfWork(engine),
        ledger_writer(keys, keyring),
        keyring,
        utc_now,
    )


def load_lapse_model(path: Path | None) -> LapseModel:
    """The JSON lapse model at ``path``, else the packaged one (docs/forecast.md). JSON
    only, checked on load: a model file is data, never code (no pickle)."""
    if path is None:
        text = resources.files("ctplhub.domain").joinpath("data/lapse_model.json").read_text()
    else:
        text = path.read_text(encoding="utf-8")
    return LapseModel.from_json(text)


def build_keyring(keys: Keys, engine: Engine, home: Path) -> Keyring:
    """Every process's personal-data keys: the key files plus the database's data keys."""

    def reread_masters() -> tuple[dict[str, bytes], str | None]:
        fresh = load_keys(home)
        return fresh.master_keys, fresh.active_master_kid

    return Keyring(
        legacy_keys=keys.pii_keys,
        legacy_active_kid=keys.active_pii_kid,
        legacy_blind_key=keys.blind_index_key,
        master_keys=keys.master_keys,
        active_master_kid=keys.active_master_kid,
        load=SqlDataKeys(engine).all,
        reread_masters=reread_masters,
    )


class KeyTools:
    """What `ctplhub keys` works with: this process's keyring and the rotation use case."""

    def __init__(self, engine: Engine, home: Path, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.keyring = build_keyring(load_keys(home), engine, home)
        self.rotation = KeyRotation(SqlDataKeys(engine), SqlSealedRows(engine), self.keyring, clock)


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
    check_access_log_file(engine)
    vault = build_keyring(keys, engine, settings.home)
    signer = AnswerSigner(
        keys.signing_keys,
        keys.active_signing_kid,
        published=PublishedSigningKeys(settings.home),  # a rotation, before a restart
    )

    def uow() -> UnitOfWork:
        return SqlUnitOfWork(engine)

    fence: RedisReadFence | None = None
    if reader is None:
        reader, fence = coverage_reads(settings)
    ledger_reads = ledger_reader(settings.database_url)
    stale_after = timedelta(seconds=settings.stale_after_s)
    directory = InsurerDirectory(settings.insurer_cache_s, stale_after)

    nonces: NonceStore = SqlNonceStore(engine)
    if settings.redis_url:
        from ctplhub.security.nonces import RedisNonceStore

        nonces = RedisNonceStore(settings.redis_url)
    window = timedelta(days=settings.reminder_window_days)
    access_log = AccessLogWriter(SqlAccessLogStore(engine), VehicleIndex(keys.access_log_key))
    health_source = SqlInsurerHealth(engine)
    coverage = CheckCoverage(
        reader, directory, vault, clock, reminder_window=window, access_log=access_log
    )
    early_days = settings.reminder_early_risk_days
    rules = ReminderRules(
        settings.reminder_days_before,
        settings.reminder_days_after_lapse,
        early_risk_days=early_days or EARLY_RISK_DAYS,
    )
    forecast = LapseForecast(
        SqlVehicleHistories(engine),
        load_lapse_model(settings.forecast_model_path),
        clock,
        SqlForecastStore(engine),
    )
    unsubscribe_tokens = UnsubscribeTokens(keys.blind_index_key)
    webhook_key = webhook_signing_key(keys.blind_index_key)

    def unseal(record: EndpointRecord) -> str:
        return vault.decrypt(record.secret_enc, aad=secret_aad(record.key_id))

    confirmation = LiveConfirmation(
        SqlConfirmEndpoints(engine),
        HttpConfirmTransport(),
        unseal,
        clock,
        ttl_s=settings.insurer_cache_s,
        observer=ConfirmMetrics(),
    )
    quality = QualityFlags(SqlQualityFlags(engine), clock)
    register = SqlVehicleRegister(engine)
    # The cameras' reads go through bulk verify's read path, without live confirmation
    # (answers within a second; docs/DECISIONS.md, "Roadside cameras").
    camera_checks = VerifyBulk(
        reader, directory, clock, reminder_window=window, access_log=access_log
    )
    jobs = VerifyJobs(
        SqlVerifyJobs(engine, vault),
        # No live confirmation for jobs (docs/DECISIONS.md, "Verify jobs").
        VerifyBulk(reader, directory, clock, reminder_window=window, access_log=access_log),
        clock,
        chunk_rows=settings.verify_job_chunk_rows,
        max_rows=settings.max_verify_job_rows,
        lease=timedelta(seconds=settings.verify_job_lease_s),
        retention=timedelta(days=settings.verify_job_retention_days),
    )
    enforcement = Enforcement(
        register,
        reader,
        clock,
        access_log=access_log,
        reminder_window=window,
        counts=SqlMatchCounts(engine),
    )
    return Container(
        register_feed=RegisterFeed(register, clock, SqlPlannerStatistics(engine, REGISTER_TABLES)),
        enforcement=enforcement,
        match_schedule=ScheduledMatch(enforcement, SqlMatchRuns(engine), hour=settings.match_hour),
        accidents=AccidentLookup(reader, clock, access_log=access_log, reminder_window=window),
        verify_jobs=jobs,
        job_runner=VerifyJobRunner(jobs),
        anpr=AnprAlerts(camera_checks, SqlAlertStore(engine), access_log, clock),
        stats=Statistics(SqlStatsStore(engine), clock, settle=stats_settle(engine)),
        reconcile=Reconcile(SqlPolicyBook(engine)),
        sync_health=SyncHealth(
            health_source, clock, stale_after=stale_after, late_after_s=settings.late_after_s
        ),
        compliance=Compliance(health_source, late_after_s=settings.late_after_s),
        forecast=forecast,
        reminders=Reminders(
            lambda: SqlReminderUnitOfWork(engine),
            coverage,
            vault,
            unsubscribe_tokens,
            clock,
            access_log=access_log,
            rules=rules,
            webhook_secret=partial(webhook_secret, webhook_key),
            risk=forecast if early_days else None,
        ),
        outbox=SqlOutbox(
            engine, vault, address_aad, unsubscribe_tokens.token, settings.public_url, rules
        ),
        webhook_key=webhook_key,
        replica_engine=(
            make_engine(settings.database_replica_url, pool_size=2)
            if settings.database_replica_url
            else None
        ),
        fence=fence,
        ledger_reader=ledger_reads,
        ledger=LedgerProofs(ledger_reads, tree_head_signer(signer), clock),
        settings=settings,
        engine=engine,
        reader=reader,
        report_events=ReportEvents(
            uow,
            vault,
            clock,
            SqlPlannerStatistics(engine),
            LedgerWriter(vault, plain_canonical_json, tree_head_signer(signer)),
            fence=fence,
        ),
        ledger_audit=LedgerAudit(
            SqlLedgerAuditSource(engine),
            vault,
            plain_canonical_json,
            partial(verify_signed, jwks=signer.jwks()),
        ),
        coverage=coverage,
        verify=VerifyBulk(
            reader,
            directory,
            clock,
            reminder_window=window,
            access_log=access_log,
            confirmation=confirmation,
        ),
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
        users=Users(
            uow,
            clock,
            new_token=tokens.new_token,
            hash_token=tokens.hash_token,
            hash_password=passwords.hash_password,
            token_ttl=timedelta(days=settings.token_ttl_days),
        ),
        staff_sessions=StaffSessions(
            uow,
            clock,
            new_session_id=tokens.new_session_id,
            hash_id=tokens.hash_token,
            csrf_of=tokens.csrf_token,
            password_matches=passwords.password_matches,
            lifetime=timedelta(hours=settings.staff_session_hours),
        ),
        signer=signer,
        access_log=access_log,
        owner_access_log=OwnerAccessLog(coverage, access_log, clock),
        certificates=Certificates(
            coverage,
            reader,
            SqlCertificateRecords(engine),
            CertificateSeal.for_signer(signer),
            clock,
            reminder_window=window,
            access_log=access_log,
        ),
        throttle=Throttle(
            parse_rate_limits(settings.rate_limits),
            throttle_secret(keys.blind_index_key),
            redis_url=settings.redis_url,
        ),
        live_confirmation=confirmation,
        quality_flags=quality,
        disputes=Disputes(
            lambda: SqlDisputeUnitOfWork(engine),
            coverage,
            vault,
            clock,
            access_log=access_log,
            calendar=china_calendar(),
            new_token=partial(tokens.new_token, "dsp"),
            hash_token=tokens.hash_token,
            sla_days=settings.dispute_sla_working_days,
            reminder_rules=rules,
        ),
    )


def stats_settle(engine: Engine) -> timedelta:
    """How long the statistics' refresh waits before taking an event: on PostgreSQL a
    transaction can commit after a later one with higher ids, so an event is taken only
    once every transaction open when it was received has surely ended; SQLite's one
    writer at a time commits in id order (docs/DECISIONS.md, "Statistics for
    regulators")."""
    return timedelta(seconds=120) if engine.dialect.name == "postgresql" else timedelta(0)


def coverage_reads(settings: Settings) -> tuple[VehicleReader, RedisReadFence | None]:
    """The coverage read path: the primary's; with a replica, the routed one and the read
    fence this process's writes publish (docs/deploy.md, "Read routing")."""
    primary = vehicle_reader(settings.database_url)
    if settings.database_replica_url is None or settings.redis_url is None:
        return primary, None
    fence = RedisReadFence(settings.redis_url, settings.database_url)
    replica = vehicle_reader(settings.database_replica_url, wait_s=1.0)
    return RoutedVehicleReader(primary, replica, fence), fence


def webhook_signing_key(deployment_key: bytes) -> bytes:
    """The key webhook subscriptions' secrets derive from (``notify/webhook_signing.py``):
    derived like the throttle's, from a key every process holds."""
    return hmac.digest(deployment_key, b"ctplhub webhook keys v1", "sha256")


def throttle_secret(deployment_key: bytes) -> bytes:
    """The key of the throttle's stored names (docs/DECISIONS.md, "Throttling"): derived
    from a key every process of a deployment holds, and useless for anything else."""
    return hmac.digest(deployment_key, b"ctplhub rate-limit keys v1", "sha256")


def build_app(container: Container) -> FastAPI:
    from ctplhub.api.app import create_app
    from ctplhub.api.insurer_metrics import INSURER_METRICS
    from ctplhub.api.routers.ask import build_router as build_ask_router
    from ctplhub.api.routers.insurer_health import build_router as build_health_router
    from ctplhub.api.routers.reconcile import build_router as build_reconcile_router
    from ctplhub.api.routers.subscriptions import build_router as build_subscriptions_router
    from ctplhub.web.console import build_router as build_console_router
    from ctplhub.web.dispute_pages import build_router as build_dispute_pages
    from ctplhub.web.owner_pages import build_router as build_owner_router
    from ctplhub.web.pages import build_router as build_web_router
    from ctplhub.web.staff import Cookies
    from ctplhub.web.staff import build_router as build_staff_router
    from ctplhub.web.staff_regulator import build_router as build_regulator_router
    from ctplhub.web.verify_page import build_router as build_verify_router

    settings = container.settings
    INSURER_METRICS.use(container.sync_health.all)  # per-insurer gauges in /metrics
    staff_cookies = Cookies(settings.cookie_secure, int(settings.staff_session_hours * 3600))
    assistant = Assistant()  # rules only, no state of its own: the API's and the page's

    return create_app(
        container.app_services(),
        extra_routers=(
            build_web_router(container.coverage, throttle=container.throttle, assistant=assistant),
            build_owner_router(
                certificates=container.certificates,
                reminders=container.reminders,
                access_log=container.owner_access_log,
                throttle=container.throttle,
            ),
            build_console_router(
                container.staff_sessions, container.coverage, container.throttle, staff_cookies
            ),
            *(
                (build_dispute_pages(container.disputes, container.throttle),)
                if container.disputes is not None
                else ()
            ),
            build_staff_router(
                container.staff_sessions, container.verify, container.throttle, staff_cookies
            ),
            build_verify_router(container.certificates),
            build_ask_router(assistant),  # POST /v1/ask
            build_subscriptions_router(container.reminders),
            *issue10_routers(container),
            *issue12_routers(container),
            build_reconcile_router(container.reconcile, max_bytes=settings.max_reconcile_bytes),
            build_health_router(container.sync_health, container.compliance),
            *verify_job_routers(container),
            build_regulator_router(
                container.staff_sessions,
                container.sync_health,
                container.compliance,
                staff_cookies,
                container.forecast,
            ),
            *anpr_routers(container, staff_cookies),
            *stats_pages(container, staff_cookies),
        ),
        cors_origins=container.settings.cors_origins,
    )


def anpr_routers(container: Container, cookies: Cookies) -> tuple[APIRouter, ...]:
    """``POST /v1/alerts`` and the police page of the cameras' alerts (DESIGN §12)."""
    from ctplhub.api.routers.alerts import build_router as build_alerts_router
    from ctplhub.web.staff_alerts import build_router as build_staff_alerts_router

    if container.anpr is None:
        return ()
    return (
        build_alerts_router(container.anpr),
        build_staff_alerts_router(container.staff_sessions, container.anpr, cookies),
    )


def stats_pages(container: Container, cookies: Cookies) -> tuple[APIRouter, ...]:
    """The regulators' statistics page (DESIGN §11)."""
    from ctplhub.web.staff_stats import build_router as build_stats_page

    if container.stats is None:
        return ()
    return (build_stats_page(container.staff_sessions, container.stats, cookies),)


def issue10_routers(container: Container) -> tuple[APIRouter, ...]:
    """Live confirmation's endpoint registration, the data-quality flags list and the
    disputes."""
    from ctplhub.api.routers import confirmation, disputes, flags

    routers = []
    if container.live_confirmation is not None:
        routers.append(confirmation.build_router(container.live_confirmation))
    if container.quality_flags is not None:
        routers.append(flags.build_router(container.quality_flags))
    if container.disputes is not None:
        routers.append(disputes.build_router(container.disputes))
    return tuple(routers)


def issue12_routers(container: Container) -> tuple[APIRouter, ...]:
    """The register feed, the uninsured and unmatched lists, the accident look-up, the
    statistics (§11) and the lapse forecast (issue 12)."""
    from ctplhub.api.routers import enforcement, forecast, register, stats

    return (
        register.build_router(container.register_feed),
        enforcement.build_router(container.enforcement, container.accidents),
        forecast.build_router(container.forecast),
        *((stats.build_router(container.stats),) if container.stats is not None else ()),
    )


def verify_job_routers(container: Container) -> tuple[APIRouter, ...]:
    """``/v1/verify-jobs`` (DESIGN §11)."""
    from ctplhub.api.routers import verify_jobs

    if container.verify_jobs is None:
        return ()
    limit = container.settings.max_verify_job_bytes
    return (verify_jobs.build_router(container.verify_jobs, max_bytes=limit),)


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
    # The reading threads (SQLite) and the access log's writer hand results
    # back to the event loop; waiting up to the default 5 ms for the GIL left the loop
    # idle under load. 1 ms measured best (0.2 ms switched too often)
    # (docs/PERFORMANCE.md).
    sys.setswitchinterval(0.001)
    return app
