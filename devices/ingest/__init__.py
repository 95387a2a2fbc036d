"""Ingestion: MQTT messages → committed readings, events, status and dead letters.

paho's thread hands each message to the event loop (``submit``); one writer task takes
them in batches, validates them against the contract, writes the batch in one transaction
(SQLAlchemy Core, idempotent on (device id, message id)), and only after the commit
acknowledges them: PUBACK to the broker and ``vaki/v1/d/{id}/ack`` to each device. When the
database is down nothing is acknowledged, the batch is retried, and the broker holds the
rest: backpressure, never dropping.

    writer    ``Ingestor``: the queues (the alarm lane first), batching, retries, acks
    planning  each message checked against the contract and sorted into rows and dead letters
    rows      the rows readings and events are written as; alarm events wait for the alarm path
    storing   one batch written in the open transaction, idempotent on (device id, message id)
    batches   what a commit hands on to its subscribers
    metrics   Prometheus counters
"""

from devices.ingest.batches import BatchSubscriber, CommittedEvent, CommittedReading, IngestedBatch
from devices.ingest.writer import ALARM_LANE, Ingestor

__all__ = [
    "ALARM_LANE",
    "BatchSubscriber",
    "CommittedEvent",
    "CommittedReading",
    "IngestedBatch",
    "Ingestor",
]
