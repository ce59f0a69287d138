"""Prometheus counters of the ANPR consumer (DESIGN §12: reads, dropped, alerts).

Counters of the process that consumes: ``ctplhub anpr run --metrics-port P`` serves them
on 127.0.0.1:P. A read delivered again (after a restart, before its acknowledgement
reached the broker) is counted again: these count deliveries, the alerts table counts
what was decided.
"""

from __future__ import annotations

from prometheus_client import Counter

READS = Counter("ctplhub_anpr_reads", "Plate reads received from cameras")
CHECKED = Counter(
    "ctplhub_anpr_reads_checked", "Reads checked, by result (covered or not)", ["result"]
)
DROPPED = Counter(
    "ctplhub_anpr_reads_dropped", "Reads dropped unchecked (low confidence, invalid)", ["reason"]
)
ALERTS = Counter("ctplhub_anpr_alerts", "Alerts raised for uncovered vehicles")
PUBLISHED = Counter("ctplhub_anpr_alerts_published", "Alerts published to the broker")
