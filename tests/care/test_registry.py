"""Organisations, staff and residents, stored the same way on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care


async def test_staff_user_password_is_hashed_and_username_unique(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        user = await care.add_staff_user(
            session,
            username="helga",
            full_name="Helga B.",
            password="correct horse",
            role=care.StaffRole.NURSE,
            organisation=org,
        )
        await session.commit()
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert care.verify_secret(user.password_hash, "correct horse")
        assert not care.verify_secret(user.password_hash, "wrong")
        with pytest.raises(care.DuplicateError, match="helga"):
            await care.add_staff_user(
                session,
                username="helga",
                full_name="Another",
                password="x",
                role=care.StaffRole.NURSE,
                organisation=org,
            )
        # The same organisation name gives the same organisation.
        again = await care.ensure_organisation(session, "Fjallabyggð")
        assert again.id == org.id


async def test_timestamps_round_trip_as_aware_utc(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    iceland_summer = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    async with sessions() as session:
        resident = care.Resident(full_name="Guðrún S.", created_at=iceland_summer)
        session.add(resident)
        await session.commit()
        resident_id = resident.id
    assert resident_id is not None
    async with sessions() as session:
        loaded = await care.get_resident(session, resident_id)
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert loaded.created_at == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
        assert loaded.full_name == "Guðrún S."


async def test_naive_timestamp_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        session.add(care.Resident(full_name="X", created_at=datetime(2026, 1, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            await session.commit()


async def test_unknown_resident(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        with pytest.raises(care.NotFoundError, match="4242"):
            await care.get_resident(session, 4242)
