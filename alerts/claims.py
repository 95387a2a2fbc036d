"""Claiming due rows so that each is handled by one instance at a time.

On PostgreSQL the candidates are locked with SKIP LOCKED, so instances share the work
without waiting on each other; SQLite has one writer at a time, so the UPDATE that claims
them is the claim itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Mapped
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar


async def claimable(
    session: AsyncSession, candidates: SelectOfScalar[Any], id_column: Mapped[int | None]
) -> ColumnElement[bool] | None:
    """The condition on ``id_column`` that picks the candidates this instance may claim in
    ``session``'s transaction; None when another instance holds them all."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        ids = list((await session.exec(candidates.with_for_update(skip_locked=True))).all())
        if not ids:
            return None
        return id_column.in_(ids)
    return id_column.in_(candidates.scalar_subquery())
