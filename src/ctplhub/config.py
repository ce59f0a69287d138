"""Typed settings from ``CTPLHUB_*`` environment variables (DESIGN §8).

Built by :func:`load_settings`, never at import, so tests and commands can build their
own. Secrets are not settings: keys live under ``CTPLHUB_HOME`` and are created by
``ctplhub init``; nothing here has a secret default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTPLHUB_", extra="ignore")

    database_url: str = "sqlite:///./var/ctplhub.db"
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

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; keyword overrides win (tests, CLI flags)."""
    return Settings(**overrides)
