"""The readers' PostgreSQL session settings, set on each new pooled connection.

One ``SELECT set_config(...)`` when a connection opens, rather than a startup
``options`` packet: PgBouncer (docs/deploy.md) refuses that packet ("unsupported startup
parameter"), and in its session pooling mode a setting made in the session stays with
the client's session (``DISCARD ALL`` only when the client leaves).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from psycopg import AsyncConnection


def session_settings(**settings: str) -> Callable[[AsyncConnection], Awaitable[None]]:
    """A pool's ``configure``: each ``name=value`` set for the connection's session."""
    calls = ", ".join(f"set_config('{name}', %s, false)" for name in settings)
    values = tuple(settings.values())

    async def configure(conn: AsyncConnection) -> None:
        await conn.execute(f"SELECT {calls}", values)

    return configure
