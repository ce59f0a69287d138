"""Typed settings from ``CTPLHUB_*`` environment variables (DESIGN §8).

Built by :func:`load_settings`, never at import, so tests and commands can build their
own. Secrets are not settings: keys live under ``CTPLHUB_HOME`` and are created by
``ctplhub init``; nothing here has a secret default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTPLHUB_", extra="ignore")

    database_url: str = "sqlite:///./var/ctplhub.db"
    # A streaming replica of database_url (docs/deploy.md, "Read routing"): the coverage
    # reads that tolerate its lag go there, never one that follows a write it must see.
    # The processes share the read fence through Redis, so redis_url is required with it.
    database_replica_url: str | None = None
    home: Path = Path("./var")
    redis_url: str | None = None
    stale_after_s: int = Field(default=86_400, ge=60)
    reminder_window_days: int = Field(default=30, ge=1, le=365)
    # Answers may lag a change of the insurer table (certification, sync) by this much.
    insurer_cache_s: float = Field(default=1.0, ge=0, le=60)
    log_level: str = "INFO"
    # Request size limits of DESIGN §3.1.
    max_event_bytes: int = 64 * 1024
    max_batch_bytes: int = 64 * 1024 * 1024
    max_batch_lines: int = 100_000
    max_verify_items: int = 10_000
    # Throttling of DESIGN §5.3: "" = the defaults, "off", or overrides such as
    # "failed_per_plate=20/hour" (grammar: security/throttle_rules.py, docs/DECISIONS.md).
    rate_limits: str = ""
    # Accounts (docs/DECISIONS.md "Accounts"): bearer tokens and staff page sessions end
    # by themselves. The session cookie is Secure unless this is false, which only
    # ``ctplhub demo`` sets (it serves plain http on 127.0.0.1).
    token_ttl_days: int = Field(default=30, ge=1, le=366)
    staff_session_hours: float = Field(default=8.0, gt=0, le=24)
    cookie_secure: bool = True

    # Reminders (DESIGN §7, §8; docs/webhooks.md). Links in messages (unsubscribe) start
    # with ``public_url``. E-mail goes through an SMTP relay (no login: a local relay or
    # one that trusts this host; STARTTLS when ``smtp_starttls``); SMS through the HTTP
    # gateway adapter, off when no URL is set.
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_from: str = "CTPL Hub <reminders@ctplhub.invalid>"
    smtp_starttls: bool = False
    sms_gateway_url: str | None = None
    # Delivery: tries before a dead letter, sends in flight per worker, rows per claim,
    # how long a worker's claim lasts (a killed worker's claims return after it), and
    # the timeout of one send.
    reminder_max_attempts: int = Field(default=8, ge=1, le=50)
    delivery_concurrency: int = Field(default=64, ge=1, le=1_000)
    delivery_batch: int = Field(default=200, ge=1, le=10_000)
    delivery_lease_s: float = Field(default=300.0, ge=1, le=86_400)
    delivery_timeout_s: float = Field(default=10.0, gt=0, le=300)

    # Reminder rules (DESIGN §7): days before the end of cover and after a lapse,
    # comma-separated (CTPLHUB_REMINDER_DAYS_BEFORE=30,7,1).
    reminder_days_before: Annotated[tuple[int, ...], NoDecode] = (30, 7, 1)
    reminder_days_after_lapse: Annotated[tuple[int, ...], NoDecode] = (1,)
    # The lapse forecast (issue 12 item 6; docs/forecast.md): the early reminder of the
    # riskiest tenth this many days before the end (0: the forecast does not touch
    # reminders), and the JSON lapse model (none: the packaged one, trained on the
    # synthetic history; `ctplhub forecast train --out PATH` writes another).
    reminder_early_risk_days: int = Field(default=45, ge=0, le=365)
    forecast_model_path: Path | None = None

    # Origins whose browser pages may call the API (CORS), comma-separated; none by
    # default, so no Access-Control-Allow-Origin is ever sent (api/headers.py).
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

    # Data you can trust (DESIGN §10): an event received more than this many seconds
    # after its occurred_at is late; a reconciliation diff's NDJSON body may be this big
    # (a million lines of {"policy_no", "version"} are ~50 MB).
    late_after_s: int = Field(default=86_400, ge=1)
    max_reconcile_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    # Disputes (DESIGN §10): an insurer answers within this many working days (Monday to
    # Friday in Beijing time, less public holidays, plus make-up working days) or the
    # dispute is escalated to the regulators.
    dispute_sla_working_days: int = Field(default=3, ge=1, le=30)

    # Verify jobs (DESIGN §11; docs/DECISIONS.md "Verify jobs"): an upload's size and rows,
    # the rows a runner answers and commits at a time, how long its claim on them lasts,
    # and whether ``ctplhub serve`` runs jobs in its background (``ctplhub worker`` does
    # too, whatever this says).
    max_verify_job_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    max_verify_job_rows: int = Field(default=1_000_000, ge=1)
    verify_job_chunk_rows: int = Field(default=10_000, ge=1, le=100_000)
    verify_job_lease_s: float = Field(default=300.0, ge=1, le=86_400)
    serve_runs_jobs: bool = True
    # Finished verify jobs' rows and results (plates, VINs) are deleted this many days
    # after the job ended (docs/DECISIONS.md, "Verify jobs' data kept 30 days").
    verify_job_retention_days: int = Field(default=30, ge=1, le=3650)

    # The daily match (DESIGN §11): ``ctplhub worker`` runs it once a day at this hour of
    # Beijing time (0-23), unless ``match_daily`` is false (cron then runs `ctplhub match`).
    match_daily: bool = True
    match_hour: int = Field(default=2, ge=0, le=23)

    # Roadside cameras (DESIGN §12, docs/anpr.md): the broker (``mqtt://host:port``, or
    # ``mqtts://`` for TLS), its account for the consumer (none: anonymous), the topic
    # root (``{root}/anpr/{camera_id}``, ``{root}/alerts/{region_code}``; tests use their
    # own), the consumer's client id (stable: the broker keeps its session under it), the
    # confidence under which a read is dropped, and the micro-batch's bounds.
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_topic_root: str = Field(default="ctplhub", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    anpr_client_id: str = Field(default="ctplhub-anpr-1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    anpr_min_confidence: float = Field(default=0.9, ge=0, le=1)
    anpr_batch_max: int = Field(default=500, ge=1, le=10_000)
    anpr_batch_ms: float = Field(default=20.0, gt=0, le=10_000)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        if not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("mqtt_url must be mqtt://host:port or mqtts://host:port")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(origin.strip() for origin in value.split(",") if origin.strip())
        if "*" in value:
            raise ValueError("list the origins that may call the API; '*' would allow every site")
        return value

    @field_validator("reminder_days_before", "reminder_days_after_lapse", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(int(day) for day in value.split(",") if day.strip())
        if any(not 0 < day <= 365 for day in value):
            raise ValueError("reminder days are whole numbers from 1 to 365")
        return value

    @model_validator(mode="after")
    def _replica_needs_redis(self) -> Settings:
        if self.database_replica_url and not self.redis_url:
            raise ValueError(
                "database_replica_url needs redis_url: every process publishes and reads "
                "the read fence there (docs/deploy.md)"
            )
        return self

    @field_validator(
        "redis_url", "database_replica_url", "sms_gateway_url", "mqtt_username", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits_readable(cls, value: str) -> str:
        from ctplhub.security.throttle_rules import parse_rate_limits

        parse_rate_limits(value)  # a typo refuses to start, with the message saying what
        return value


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; keyword overrides win (tests, CLI flags)."""
    return Settings(**overrides)
