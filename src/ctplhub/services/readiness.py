"""What ``/readyz`` reports (docs/deploy.md): each part a process depends on, up or down,
and how far the replica lags. Only the primary database decides readiness: without a
replica reads go to the primary, and without Redis the limits hold on their own
(security/throttle.py), so a load balancer must not take every process out for them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PartState:
    up: bool
    lag_leaves: int | None = None  # ledger leaves the replica has not replayed yet
    lag_bytes: int | None = None  # WAL the replica has not replayed (PostgreSQL)
    lag_s: float | None = None  # since the last transaction it replayed, when behind


@dataclass(frozen=True, slots=True)
class Readiness:
    parts: dict[str, PartState]  # "database", and "replica", "redis" when configured

    @property
    def ready(self) -> bool:
        return self.parts["database"].up
