"""A tablet pairs with a one-time code: once, within its time, and guessing is stopped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices


async def a_resident(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        resident = care.Resident(full_name="Sigríður Jónsdóttir")
        session.add(resident)
        await session.commit()
        assert resident.id is not None
        return resident.id


async def test_a_code_pairs_one_tablet_once_and_stores_only_its_hash(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id = await a_resident(sessions)
    async with sessions() as session:
        code = await devices.create_pairing_code(session, resident_id, staff_id=None)
        await session.commit()
    assert len(code.code) == 8
    assert code.grouped == f"{code.code[:4]} {code.code[4:]}"
    async with sessions() as session:
        stored = (await session.exec(select(devices.TabletPairing))).one()
        assert code.code not in stored.code_hash
        paired = await devices.redeem_pairing_code(session, code.grouped, client_address="10.0.0.5")
        await session.commit()
    assert paired.device.kind == devices.DeviceKind.TABLET
    assert paired.device.resident_id == resident_id
    key = devices.tablet_key(paired.device.id, paired.secret)
    async with sessions() as session:
        device = await devices.authenticate_device(session, key)
        assert device is not None
        assert [t.id for t in await devices.resident_tablets(session, resident_id)] == [device.id]
        with pytest.raises(devices.PairingRefusedError):
            await devices.redeem_pairing_code(session, code.code, client_address="10.0.0.6")
        await session.commit()
        await devices.revoke_device(session, paired.device.id)
        await session.commit()
        assert await devices.authenticate_device(session, key) is None
        assert await devices.resident_tablets(session, resident_id) == []


async def test_a_code_expires_and_a_new_one_replaces_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id = await a_resident(sessions)
    now = care.utcnow()
    async with sessions() as session:
        old = await devices.create_pairing_code(session, resident_id, staff_id=None, now=now)
        new = await devices.create_pairing_code(session, resident_id, staff_id=None, now=now)
        await session.commit()
    async with sessions() as session:
        with pytest.raises(devices.PairingRefusedError):
            await devices.redeem_pairing_code(session, old.code, client_address="a", now=now)
        late = now + timedelta(minutes=15, seconds=1)
        with pytest.raises(devices.PairingRefusedError):
            await devices.redeem_pairing_code(session, new.code, client_address="b", now=late)
        paired = await devices.redeem_pairing_code(session, new.code, client_address="c", now=now)
        await session.commit()
    assert paired.device.resident_id == resident_id


async def test_wrong_codes_from_one_address_are_stopped_for_a_while(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id = await a_resident(sessions)
    now = care.utcnow()
    async with sessions() as session:
        code = await devices.create_pairing_code(session, resident_id, staff_id=None, now=now)
        await session.commit()
    wrong = "0000 0000" if code.code != "00000000" else "1111 1111"
    earlier = now - timedelta(minutes=14)
    async with sessions() as session:
        for _ in range(devices.pairing.MAX_WRONG_CODES):
            with pytest.raises(devices.PairingRefusedError):
                await devices.redeem_pairing_code(session, wrong, client_address="x", now=earlier)
            await session.commit()
        # Even the right code waits now, from this address; another address is not held up.
        with pytest.raises(devices.TooManyPairingAttemptsError):
            await devices.redeem_pairing_code(session, code.code, client_address="x", now=now)
        with pytest.raises(devices.PairingRefusedError):
            await devices.redeem_pairing_code(session, wrong, client_address="y", now=now)
        later = now + timedelta(minutes=2)
        paired = await devices.redeem_pairing_code(
            session, code.code, client_address="x", now=later
        )
        await session.commit()
    assert paired.device.resident_id == resident_id
