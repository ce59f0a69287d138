"""The one read path of coverage answers (``services.ports.VehicleReader``), one
implementation per engine; ``vehicle_reader`` picks the one for a database URL, and
``routed.RoutedVehicleReader`` puts a primary's and a replica's behind one rule."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from ctplhub.store.readers.routed import SizedReader


def vehicle_reader(url: str, *, wait_s: float = 30.0) -> SizedReader:
    """``wait_s``: how long a PostgreSQL read waits for a connection (a replica's is
    short, so that a replica down costs a read little before the primary answers)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        from ctplhub.store.readers.postgres import PostgresVehicleReader

        return PostgresVehicleReader(url, wait_s=wait_s)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        from ctplhub.store.readers.sqlite import SqliteVehicleReader

        return SqliteVehicleReader(parsed.database)
    raise ValueError(f"no coverage reader for {parsed.get_backend_name()} databases")
