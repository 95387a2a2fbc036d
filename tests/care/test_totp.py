"""The one-time-code secret is stored encrypted; the migration encrypts rows written in
clear before, and a downgrade gives them back in clear."""

from __future__ import annotations

import pyotp
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

import care
from server.db import downgrade_database, session_factory, upgrade_database

PLAIN = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def _stored(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        found = await connection.exec_driver_sql("SELECT totp_secret FROM staff_user")
        value: str = found.scalar_one()
    return value


async def test_secrets_in_clear_are_encrypted_by_the_migration(engine: AsyncEngine) -> None:
    await upgrade_database(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        await care.add_staff_user(
            session,
            username="helga",
            full_name="Helga",
            password="correct horse 1",
            role=care.StaffRole.NURSE,
            organisation=org,
        )
        await session.commit()
    await downgrade_database(engine, "0009")
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f"UPDATE staff_user SET totp_secret = '{PLAIN}'")
    await upgrade_database(engine)

    stored = await _stored(engine)
    assert PLAIN not in stored
    assert stored.startswith("fernet:")
    async with sessions() as session:
        helga = (await session.exec(select(care.StaffUser))).one()
        assert await care.totp_secret_of(session, helga) == PLAIN
        now = care.utcnow()
        assert await care.accept_totp(session, helga, pyotp.TOTP(PLAIN).at(now), now)
        await session.commit()

    await downgrade_database(engine, "0009")
    assert await _stored(engine) == PLAIN
