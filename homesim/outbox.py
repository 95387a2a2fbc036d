"""The device's outbox: every message is kept until the server's ack names its id.

Two stores hold it between runs: a SQLite file that survives a kill or a power cut, and a
memory-only one for simulations that need no durability. ``payloads`` groups what is due
into publishable messages, readings into batches within the contract's limits.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from homesim.contract import BATCH_HEAD, BATCH_TAIL, MAX_BATCH_ITEMS, MAX_PAYLOAD_BYTES


@dataclass
class Pending:
    """A message in the outbox: kept until the server acks its id."""

    id: str
    channel: str  # "reading", "event" or "raw/{codec}"
    body: bytes  # one reading or event as compact JSON, or the raw bytes
    sends: int = 0
    sent_at: float = 0.0  # event loop time of the last send

    def due_at(self, first_s: float, max_s: float) -> float:
        """When this message should be sent again if no ack comes: 30 s, 60 s, ... 10 min."""
        if not self.sends:
            return 0.0  # never sent: due now
        return self.sent_at + min(first_s * 2.0 ** min(self.sends - 1, 30), max_s)


class OutboxStore(Protocol):
    """Where the outbox and the boot counter live between runs."""

    persistent: bool

    def open(self) -> tuple[str, int, list[tuple[str, str, bytes]]]:
        """Return the install token, this run's boot number and the stored outbox."""
        ...

    def put(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Store (id, channel, body) rows durably."""
        ...

    def remove(self, ids: Sequence[str]) -> None:
        """Forget acked ids."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


class MemoryStore:
    """An outbox that lives as long as the process: for simulations that need no durability."""

    persistent = False

    def open(self) -> tuple[str, int, list[tuple[str, str, bytes]]]:
        """A random token per process keeps ids unique without any storage."""
        return secrets.token_hex(4), 1, []

    def put(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Nothing to store: the in-memory outbox is the copy."""

    def remove(self, ids: Sequence[str]) -> None:
        """Nothing to forget."""

    def close(self) -> None:
        """Nothing to release."""


class SqliteStore:
    """The outbox in a SQLite file: survives the process being killed and a power cut."""

    persistent = True

    def __init__(self, path: Path) -> None:
        """Use the file at path; it is opened by open()."""
        self._path = path
        # Calls come from worker threads, one at a time per operation but not per thread.
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        """The open connection, or an error after close."""
        if self._db is None:
            raise RuntimeError(f"outbox {self._path} is closed")
        return self._db

    def open(self) -> tuple[str, int, list[tuple[str, str, bytes]]]:
        """Open or create the file and count one more boot."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._db = db
            # WAL with synchronous=FULL: a committed put survives a power cut for one fsync.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL, body BLOB NOT NULL)"
            )
            db.execute("BEGIN IMMEDIATE")
            try:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                # The token tells a recreated file from the old one, so that a lost file
                # (a factory reset) cannot make the boot counter repeat old ids.
                token = meta.get("token") or secrets.token_hex(4)
                boot = int(meta.get("boot", "0")) + 1
                db.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [("token", token), ("boot", str(boot))],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            rows = db.execute("SELECT id, channel, body FROM outbox ORDER BY seq").fetchall()
        return token, boot, [(str(i), str(c), bytes(b)) for i, c, b in rows]

    def put(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Insert the rows in one transaction; a resent id is already there."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO outbox (id, channel, body) VALUES (?, ?, ?)", rows
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def remove(self, ids: Sequence[str]) -> None:
        """Delete the acked ids in one transaction."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def payloads(entries: Iterable[Pending]) -> Iterator[tuple[str, bytes, list[Pending]]]:
    """Group outbox entries into publishable payloads, in order: readings into batches."""
    batch: list[Pending] = []
    size = len(BATCH_HEAD) + len(BATCH_TAIL)

    def flush() -> Iterator[tuple[str, bytes, list[Pending]]]:
        """Publish the batch so far: a lone reading goes as a plain reading."""
        nonlocal batch, size
        if len(batch) == 1:
            yield "reading", batch[0].body, batch
        elif batch:
            body = BATCH_HEAD + b",".join(p.body for p in batch) + BATCH_TAIL
            yield "reading", body, batch
        batch, size = [], len(BATCH_HEAD) + len(BATCH_TAIL)

    for entry in entries:
        if entry.channel != "reading":
            # Events are never batched; flushing first keeps the publish order.
            yield from flush()
            yield entry.channel, entry.body, [entry]
            continue
        extra = len(entry.body) + (1 if batch else 0)
        if len(batch) >= MAX_BATCH_ITEMS or size + extra > MAX_PAYLOAD_BYTES:
            yield from flush()
            extra = len(entry.body)
        batch.append(entry)
        size += extra
    yield from flush()
