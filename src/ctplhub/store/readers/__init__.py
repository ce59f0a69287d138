"""The one read path of coverage answers (``services.ports.VehicleReader``), one
implementation per engine; ``vehicle_reader`` picks the one for a database URL."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from ctplhub.services.ports import VehicleReader


def vehicle_reader(url: str) -> VehicleReader:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        from ctplhub.store.readers.postgres import PostgresVehicleReader

        return PostgresVehicleReader(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        from ctplhub.store.readers.sqlite import SqliteVehicleReader

        return SqliteVehicleReader(parsed.database)
    raise ValueError(f"no coverage reader for {parsed.get_backend_name()} databases")
