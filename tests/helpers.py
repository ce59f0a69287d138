"""Test helpers shared by every test folder: a valid event, a hand-moved clock, accounts.

(Kept out of conftest.py: pytest imports each conftest as the module ``conftest``, so a
second conftest would shadow the first for ``from conftest import ...``.)
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, text

from ctplhub.bootstrap import Container
from ctplhub.client import CtplHubClient
from ctplhub.store.schema import access_log_file, make_engine, migrate

T = TypeVar("T")


@dataclass
class Clock:
    """A clock the test moves by hand; starts at the real now."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class InsurerAccount:
    code: str
    key_id: str
    secret: str
    api: CtplHubClient


VIN = "LSVAU218XN2183294"
VIN_B = "LFV2A21K6G3049982"  # a second vehicle, e.g. one a plate moves to
RESIDENT_ID = "11010519491231002X"


def event(**overrides: Any) -> dict[str, Any]:
    """A valid issue event (DESIGN §2.4) for 苏E12345, one year from 2025-03-01."""
    base: dict[str, Any] = {
        "insurer_code": "PICC",
        "policy_no": "PDAA2025320500000001",
        "event_type": "issue",
        "version": 1,
        "occurred_at": "2025-02-20T10:30:00+08:00",
        "plate": "苏E·12345",
        "vin": VIN,
        "vehicle_type": "passenger_small",
        "use_nature": "family",
        "owner_name": "张伟",
        "owner_id_type": "resident_id",
        "owner_id_number": RESIDENT_ID,
        "owner_phone": "13812345678",
        "coverage_start": "2025-03-01T00:00:00+08:00",
        "coverage_end": "2026-03-01T00:00:00+08:00",
        "premium": "950.00",
        "region_code": "320500",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def bearer_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_reads(container: Container, reads: Callable[[], Awaitable[T]]) -> T:
    """Await ``reads`` (service calls that go through the container's coverage reader) on
    a loop of their own, opening the reader's connections first and closing them after,
    as the server's lifespan does."""

    async def go() -> T:
        await container.reader.open()
        try:
            return await reads()
        finally:
            await container.reader.close()

    return asyncio.run(go())


def _run_tag() -> str:
    """What makes this run's database names its own: ``CTPLHUB_TEST_DB_TAG`` when set,
    else the run's id (pytest-xdist gives its workers one; a run without it, its pid).
    Two runs on one server once shared ``ctplhub_test_gw0`` and dropped or filled each
    other's tables mid-test."""
    explicit = os.environ.get("CTPLHUB_TEST_DB_TAG")
    if explicit is not None:
        return explicit
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
    return "_" + "".join(c for c in run.lower() if c.isalnum())[:12]


_RUN_TAG = _run_tag()


@contextmanager
def postgres_database(
    url_of_any: str, name: str, *, revision: str | None = "head"
) -> Iterator[str]:
    """A new PostgreSQL database ``name`` on the server of ``url_of_any``, migrated to
    ``revision`` (``None``: no schema at all, for a migration test) and never analysed;
    dropped afterwards."""
    name += _RUN_TAG  # two runs on one server keep apart
    # Administered from the server's own maintenance database, never from a test
    # database that another fixture may be dropping WITH (FORCE) meanwhile.
    server = url_of_any.split("://", 1)[1].rsplit("/", 1)[0]
    admin = create_engine(f"postgresql+psycopg://{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        url = f"{url_of_any.rsplit('/', 1)[0]}/{name}"
        if revision is not None:
            migrating = make_engine(url)
            migrate(migrating, revision)
            migrating.dispose()
        yield url
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


@contextmanager
def blank_engine(url_of_any: str, name: str) -> Iterator[Engine]:
    """An engine on a new PostgreSQL database with no schema at all (for migration
    tests), disposed and the database dropped afterwards."""
    with postgres_database(url_of_any, name, revision=None) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def copy_sqlite_database(source: Path, target: Path) -> None:
    """Copy an SQLite database as a backup must: the file and its access log's file
    (``store.schema.access_log_file``); both checkpointed, so no ``-wal`` is needed."""
    shutil.copyfile(source, target)
    shutil.copyfile(access_log_file(source), access_log_file(target))


STAFF_PASSWORD = "correct horse battery staple"


def signed_in(web: Any, container: Container, name: str, role: str) -> Any:
    """A new staff account ``name`` with ``role``, signed in on the pages' client ``web``
    (a Starlette ``TestClient``) through the form and its CSRF token; ``web`` again."""
    container.users.add(name, role)
    container.users.set_password(name, STAFF_PASSWORD)
    form = web.get("/staff/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    answer = web.post(
        "/staff/sign-in",
        data={"csrf": csrf.group(1), "user": name, "password": STAFF_PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    return web


def staff_sign_in(page: Any, base: str, user: str, goal: str) -> None:
    """In a browser (a Playwright ``Page``): open ``goal``, be sent to the sign-in form,
    sign in as ``user`` (whose password is ``STAFF_PASSWORD``), land on ``/staff``."""
    page.goto(base + goal)
    assert page.url == base + "/staff/sign-in"
    page.locator("#user").fill(user)
    page.locator("#password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(base + "/staff")


def access_log_indexes(engine: Engine) -> dict[str, list[str]]:
    """The access log's indexes and their key terms (a column's name or an expression's
    text), but not its primary key. On SQLite read from the log's own file's schema, where
    SQLAlchemy's reflection skips an expression's index (migration 0022's)."""
    if engine.dialect.name != "sqlite":
        from sqlalchemy import inspect

        found = inspect(engine).get_indexes("access_log")
        return {i["name"]: list(i.get("expressions") or i["column_names"]) for i in found}
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM audit.sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'access_log' AND sql IS NOT NULL"
        ).all()
    keys = re.compile(r"ON access_log \((.*)\)$", re.DOTALL)
    return {
        name: _top_level_terms(match.group(1))
        for name, sql in rows
        if (match := keys.search(sql)) is not None
    }


def _top_level_terms(text: str) -> list[str]:
    """``a, substr(b, 1, 8)`` -> ``["a", "substr(b, 1, 8)"]``: split at the commas outside
    parentheses."""
    terms, depth, start = [], 0, 0
    for at, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:at].strip())
            start = at + 1
    return [*terms, text[start:].strip()]
