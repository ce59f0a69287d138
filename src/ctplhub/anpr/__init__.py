"""Roadside cameras over MQTT (DESIGN §12): the broker adapter, the consumer behind
``ctplhub anpr run``, its Prometheus counters and the read simulator (docs/anpr.md)."""
