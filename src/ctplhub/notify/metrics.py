"""Prometheus counters of the reminders (issue 9): due, sent, deferred, failed and
dead-lettered, by channel where one is known.

Counters of the process that delivers: ``ctplhub worker --metrics-port P`` serves them
on 127.0.0.1:P (the API server's ``/metrics`` has its own process's, which runs no
passes). ``due`` counts the rows each decision queued (the worker calls
:func:`count_due` after ``decide``; services cannot import this module), the delivery
pass counts the rest, by channel.
"""

from __future__ import annotations

from prometheus_client import Counter

DUE = Counter("ctplhub_reminders_due", "Reminders found due and queued in the outbox", ["channel"])
SENT = Counter("ctplhub_reminders_sent", "Reminders a channel acknowledged", ["channel"])
DEFERRED = Counter(
    "ctplhub_reminders_deferred", "Claimed reminders given back unsent (shutdown)", ["channel"]
)
FAILED = Counter(
    "ctplhub_reminders_failed", "Tries that failed (retried later or dead-lettered)", ["channel"]
)
DEAD = Counter(
    "ctplhub_reminders_dead_lettered", "Reminders given up after their last try", ["channel"]
)


def count_due(count: int, channel: str = "all") -> None:
    """For the deciding side: ``count`` new outbox rows (of ``channel``, when known)."""
    if count > 0:
        DUE.labels(channel).inc(count)
