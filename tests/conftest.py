"""Shared fixtures. Every storage test runs on SQLite and on real PostgreSQL.

PostgreSQL comes from ``CTPLHUB_TEST_DATABASE_URL`` or a local server on
127.0.0.1:5432; without one its tests are skipped, except under ``CI=true`` where a
missing PostgreSQL fails the run. Each xdist worker gets its own database; each test
starts from empty tables.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis
import pytest
import redis
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.client import CtplHubClient
from ctplhub.config import Settings
from ctplhub.security.keystore import ensure_keys
from ctplhub.security.nonces import MEMORY_SINCE
from ctplhub.store.schema import make_engine, migrate
from ctplhub.store.tables import metadata
from helpers import (
    Clock,
    InsurerAccount,
    blank_engine,
    copy_sqlite_database,
    postgres_database,
)
from schema_check import CheckingTransport

# Properties assert behaviour, never timing: Hypothesis's per-example deadline (200 ms)
# only made them flaky on a busy 2-core machine (the suite runs two workers beside
# PostgreSQL). Benchmarks in bench/ measure speed.
hypothesis.settings.register_profile("ctplhub", deadline=None)
hypothesis.settings.load_profile("ctplhub")

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("CTPLHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _pg_admin_url() -> str:
    return os.environ.get("CTPLHUB_TEST_DATABASE_URL", PG_DEFAULT)


def _pg_reachable(url: str) -> str | None:
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        return str(error).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    admin = _pg_admin_url()
    problem = _pg_reachable(admin)
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is not reachable at {admin}: {problem}")
        pytest.skip(f"PostgreSQL not reachable ({problem}); set CTPLHUB_TEST_DATABASE_URL")
    with postgres_database(admin, f"ctplhub_test_{worker_id}") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database; a copy takes its access log's file too
    (``access_log_file``), where migration 0005 put that table."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "ctplhub.db"
        copy_sqlite_database(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def key_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("keys-template")
    ensure_keys(home)
    return home


@pytest.fixture
def home(tmp_path: Path, key_template: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(key_template, target)
    return target


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(database_url: str, home: Path) -> Settings:
    # Tests change insurers and query again at once: no cache of the insurer table.
    return Settings(database_url=database_url, home=home, redis_url=None, insurer_cache_s=0)


@pytest.fixture
def container(settings: Settings, clock: Clock) -> Iterator[Container]:
    built = build_container(settings, clock=clock)
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    """The app in-process; every JSON answer is checked against its published model."""
    with TestClient(build_app(container)) as test_client:
        test_client._transport = CheckingTransport(test_client._transport, test_client.app)
        yield test_client


@pytest.fixture
def make_insurer(
    container: Container, client: TestClient
) -> Iterator[Callable[[str], InsurerAccount]]:
    made: list[CtplHubClient] = []

    def make(code: str = "PICC", name: str = "中国人民财产保险") -> InsurerAccount:
        new = container.insurers.add(code, name, actor="test")
        api = CtplHubClient(
            "http://testserver", new.key_id, new.secret, transport=client._transport
        )
        made.append(api)
        return InsurerAccount(new.insurer_code, new.key_id, new.secret, api)

    yield make
    for api in made:
        api.close()


@pytest.fixture
def picc(make_insurer: Callable[[str], InsurerAccount]) -> InsurerAccount:
    return make_insurer("PICC")


@pytest.fixture
def police_token(container: Container) -> str:
    return container.users.add("officer-001", "police")


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis database for the tests of shared state (required with CI=true)."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as error:
        if IN_CI:
            pytest.fail(f"CI=true but Redis is not reachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis not reachable: {error}")
    # Nothing restarts or flushes the shared Redis under the tests, so its memory is older
    # than any request they sign. Said so here, or on a new Redis the first request signed
    # in the second a container started would be refused as signed before that memory
    # began (security/nonces.py; tests/integration/test_nonces_redis_restart.py).
    redis.Redis.from_url(REDIS_URL).set(MEMORY_SINCE, "0", nx=True)
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with no schema at all, on each engine (for migration tests); on
    PostgreSQL one named after the test module, dropped afterwards."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    server: str = request.getfixturevalue("postgres_url")  # skips, or fails in CI, if down
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with blank_engine(server, f"ctplhub_blank_{module}"[:40]) as engine:
        yield engine


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    """The app for the staff pages: over https (their cookies are Secure), redirects not
    followed (a sign-in answers 303). Modules with pages of their own may define theirs."""
    with TestClient(
        build_app(container), base_url="https://testserver", follow_redirects=False
    ) as client:
        yield client
