"""Alembic environment: runs on the connection Vaki hands over, or on the configured URL."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection
from sqlmodel.sql.sqltypes import AutoString

import care
from server.db import METADATA, create_engine
from server.settings import Settings


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write Vaki's column types by their public names, so migrations import only ``care``."""
    if type_ != "type":
        return False
    if isinstance(obj, care.UTCDateTime):
        autogen_context.imports.add("import care")
        return "care.UTCDateTime()"
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _run(connection: Connection) -> None:
    """Configure the migration context on a connection and run the migrations."""
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    """Used by the plain ``alembic`` command: connect with the configured URL."""
    engine = create_engine(Settings().effective_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Vaki's migrations run online only: use `vaki db upgrade`.")

_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    asyncio.run(_run_from_settings())
