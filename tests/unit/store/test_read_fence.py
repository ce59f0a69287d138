"""The read fence's rules that need no database (docs/deploy.md, "Read routing")."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from ctplhub.config import Settings
from ctplhub.store.read_fence import LocalReadFence, fence_key


def test_the_fence_only_grows_and_starts_unknown() -> None:
    fence = LocalReadFence()
    assert asyncio.run(fence.needed()) is None  # unknown: reads go to the primary
    fence.passed(7)
    fence.passed(3)  # a slower writer's smaller size never lowers it
    assert asyncio.run(fence.needed()) == 7


def test_the_fence_key_names_the_primary_without_its_password() -> None:
    url = "postgresql://ctplhub:s3cret@127.0.0.1:6432/ctplhub"
    assert "s3cret" not in fence_key(url)
    assert fence_key(url) != fence_key(url.replace("6432", "6433"))


def test_a_replica_needs_the_shared_fence_in_redis() -> None:
    with pytest.raises(ValidationError, match="database_replica_url needs redis_url"):
        Settings(database_replica_url="postgresql://127.0.0.1:5441/ctplhub", redis_url="")
    settings = Settings(
        database_replica_url="postgresql://127.0.0.1:5441/ctplhub",
        redis_url="redis://127.0.0.1:6379/0",
    )
    assert settings.database_replica_url is not None
    assert Settings(database_replica_url="").database_replica_url is None
