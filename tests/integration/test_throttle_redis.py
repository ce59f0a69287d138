"""The throttle's counts in Redis (DESIGN §4, §5.3): shared by every process, no plate or
address in clear, and when Redis is gone, per-process limits and one warning, never none.

Each test has a key prefix of its own on the shared Redis, and a private ``redis-server``
where it stops one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from ctplhub.domain.errors import NotFound, RateLimited
from ctplhub.security.throttle import (
    FAILED_PER_PLATE,
    Throttle,
    guarded_lookup,
    parse_rate_limits,
)
from notify_fixtures import free_port
from redis_fixtures import private_redis

__all__ = ["private_redis"]  # a fixture

SECRET = b"s" * 32
PLATE = "苏E12345"
CLIENT = "198.51.100.23"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"ctplhub-test:{uuid.uuid4().hex}"
    yield name
    server = redis.Redis.from_url(redis_url)
    for key in server.scan_iter(f"{name}*"):
        server.delete(key)


async def right() -> str:
    return "answer"


async def wrong() -> str:
    raise NotFound("no vehicle matches this plate and verification factor")


async def outcome(throttle: Throttle, attempt: Any, client: str = CLIENT) -> str:
    try:
        return str(await guarded_lookup(throttle, client, PLATE, attempt, verified=True))
    except (NotFound, RateLimited) as error:
        return error.code


def test_two_throttles_share_one_budget_and_store_no_plate(redis_url: str, prefix: str) -> None:
    limits = parse_rate_limits("")

    async def run() -> list[str]:
        a = Throttle(limits, SECRET, redis_url=redis_url, key_prefix=prefix)
        b = Throttle(limits, SECRET, redis_url=redis_url, key_prefix=prefix)
        try:
            seen = [await outcome(a if n % 2 else b, wrong, f"10.0.0.{n}") for n in range(10)]
            seen += [await outcome(a, right, "10.0.1.1"), await outcome(b, right, "10.0.1.2")]
            assert a.shared and b.shared
            return seen
        finally:
            await a.close()
            await b.close()

    assert asyncio.run(run()) == ["not_found"] * 10 + ["rate_limited"] * 2
    stored = [k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(f"{prefix}*")]
    assert len(stored) == 11  # one plate and ten clients, each under its keyed hash
    for key in stored:
        for clear in (PLATE, "E12345", "10.0.0.", FAILED_PER_PLATE):
            assert clear not in key

    async def other_deployment() -> None:  # another secret: other names for the same plate
        other = Throttle(limits, b"o" * 32, redis_url=redis_url, key_prefix=prefix)
        try:
            assert await outcome(other, right, "10.0.1.1") == "answer"
        finally:
            await other.close()

    asyncio.run(other_deployment())


def test_retry_after_comes_from_the_shared_window(redis_url: str, prefix: str) -> None:
    async def run() -> int:
        t = Throttle(
            parse_rate_limits("failed_per_plate=2/30 seconds"),
            SECRET,
            redis_url=redis_url,
            key_prefix=prefix,
        )
        try:
            await outcome(t, wrong)
            await outcome(t, wrong)
            with pytest.raises(RateLimited) as refused:
                await guarded_lookup(t, CLIENT, PLATE, right, verified=True)
            return refused.value.retry_after_s
        finally:
            await t.close()

    assert 28 <= asyncio.run(run()) <= 30


def test_redis_unreachable_means_per_process_limits_and_one_warning() -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"

    async def run() -> list[str]:
        t = Throttle(parse_rate_limits(""), SECRET, redis_url=closed)
        try:
            seen = [await outcome(t, wrong) for _ in range(10)]
            return [*seen, await outcome(t, right), await outcome(t, right, "10.9.9.9")]
        finally:
            await t.close()

    started = time.monotonic()
    with capture_logs() as logs:
        seen = asyncio.run(run())
    assert seen == ["not_found"] * 10 + ["rate_limited"] * 2  # never fails open
    assert time.monotonic() - started < 3
    down = [line for line in logs if line["event"] == "rate_limit_storage_down"]
    assert len(down) == 1 and down[0]["log_level"] == "warning"
    assert PLATE not in repr(logs) and CLIENT not in repr(logs)


def test_redis_down_then_back(private_redis: tuple[int, Any]) -> None:
    port, start = private_redis
    server = start()
    url = f"redis://127.0.0.1:{port}/0"

    async def run() -> list[str]:
        t = Throttle(parse_rate_limits(""), SECRET, redis_url=url, probe_every_s=0.05)
        try:
            seen = [await outcome(t, wrong) for _ in range(3)]  # counted in Redis
            assert t.shared
            server.terminate()
            await asyncio.to_thread(server.wait, 5)
            seen += [await outcome(t, wrong) for _ in range(10)]  # this process counts
            assert not t.shared
            seen.append(await outcome(t, right))
            await asyncio.to_thread(start)
            deadline = time.monotonic() + 3
            while not t.shared and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert t.shared  # back on the shared count (an empty one: the server forgot)
            seen.append(await outcome(t, wrong))
            return seen
        finally:
            await t.close()

    with capture_logs() as logs:
        seen = asyncio.run(run())
    assert seen == ["not_found"] * 13 + ["rate_limited", "not_found"]
    events = [line["event"] for line in logs]
    assert events.count("rate_limit_storage_down") == 1
    assert events.count("rate_limit_storage_restored") == 1
    assert len(list(redis.Redis(port=port).scan_iter("ctplhub:rl*"))) == 2  # the last failure
