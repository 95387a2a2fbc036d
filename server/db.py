"""The database engine, its SQLite tuning, and migrations applied with Alembic."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import interop
import video
from server.errors import DatabaseUnavailableError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Every domain's tables are registered on SQLModel's metadata by importing the domains.
METADATA = SQLModel.metadata
DOMAIN_MODELS = (care.MODELS, devices.MODELS, alerts.MODELS, video.MODELS, interop.MODELS)
# Arbitrary, fixed key: instances starting together take turns to migrate.
_MIGRATION_LOCK_KEY = 0x7661_6B69


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Turn on WAL (readers never wait for the writer), foreign keys and a busy timeout."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(
    database_url: str, *, connect_timeout_s: float = 10, statement_timeout_s: float = 0
) -> AsyncEngine:
    """An async engine for ``database_url``; creates the SQLite file's directory if needed.

    On PostgreSQL a connection attempt gives up after ``connect_timeout_s`` and a statement
    after ``statement_timeout_s`` (0: no limit), so a black-holed database makes callers
    fail and retry instead of hanging."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        return engine
    connect_args: dict[str, object] = {"connect_timeout": max(1, round(connect_timeout_s))}
    if statement_timeout_s > 0:
        connect_args["options"] = f"-c statement_timeout={round(statement_timeout_s * 1000)}"
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=connect_timeout_s,
        connect_args=connect_args,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for Vaki's migrations, optionally bound to a connection."""
    # Alembic takes seconds to import on a small machine: load it only when migrating.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest migration revision in the tree."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migrate(connection: Connection, revision: str = "head", *, downgrade: bool = False) -> None:
    """Move the schema to ``revision`` on ``connection``.

    PostgreSQL: instances starting together take turns (advisory lock). SQLite: run it on
    a connection from ``_migration_engine``, and every reference is checked afterwards.
    """
    from alembic import command

    config = alembic_config(connection)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
    try:
        if downgrade:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)
        if dialect == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left broken references: {broken[:5]}")
    finally:
        if dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})


def _current_revision(connection: Connection) -> str | None:
    """The revision the database is at."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _on_sqlite_migration_connect(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys off (a column change copies the table, which rows may point at) and
    transactions under our control, so a failed migration leaves nothing half done."""
    _on_sqlite_connect(dbapi_connection, _record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()
    # pysqlite would commit DDL statement by statement; BEGIN ourselves instead.
    dbapi_connection.isolation_level = None


def _on_sqlite_migration_begin(connection: Connection) -> None:
    """Open the migration's one transaction."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.asynccontextmanager
async def _migration_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine to migrate with: ``engine`` itself, or a SQLite one set up for DDL."""
    if engine.dialect.name != "sqlite":
        yield engine
        return
    migrating = create_async_engine(engine.url, connect_args={"timeout": 30})
    event.listen(migrating.sync_engine, "connect", _on_sqlite_migration_connect)
    event.listen(migrating.sync_engine, "begin", _on_sqlite_migration_begin)
    try:
        yield migrating
    finally:
        await migrating.dispose()


async def upgrade_database(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every pending migration (or those up to ``revision``)."""
    async with _migration_engine(engine) as migrating, migrating.begin() as connection:
        await connection.run_sync(lambda sync: migrate(sync, revision))


async def downgrade_database(engine: AsyncEngine, revision: str) -> None:
    """Undo migrations down to ``revision``."""
    async with _migration_engine(engine) as migrating, migrating.begin() as connection:
        await connection.run_sync(lambda sync: migrate(sync, revision, downgrade=True))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def describe_url(database_url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(database_url).render_as_string(hide_password=True)


async def check_database(database_url: str) -> None:
    """Connect once, so a wrong URL is reported before anything else starts."""
    try:
        engine = create_engine(database_url)
    except (SQLAlchemyError, ValueError, ImportError) as err:
        raise DatabaseUnavailableError(
            f"the database URL {database_url!r} is not valid ({err})"
        ) from err
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise DatabaseUnavailableError(
            f"cannot reach the database at {describe_url(database_url)}: {reason}"
        ) from err
    finally:
        await engine.dispose()


async def ping(engine: AsyncEngine) -> None:
    """Run a trivial query; raises when the database is unreachable."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
