"""Ingestion's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "vaki_ingest_messages_total",
    "MQTT messages taken in, by channel and outcome",
    ["channel", "outcome"],
)
DEAD_LETTERS = Counter("vaki_dead_letters_total", "Messages or items kept as dead letters")
COMMITTED = Counter("vaki_ingest_committed_total", "Rows committed", ["kind"])
BATCH_SECONDS = Histogram(
    "vaki_ingest_batch_seconds",
    "Time to validate, write and commit one batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BACKLOG = Gauge("vaki_ingest_backlog", "Messages received and not yet committed")


def _count(channel: str, outcome: str) -> None:
    """Count one message by channel and outcome."""
    MESSAGES.labels(channel, outcome).inc()
