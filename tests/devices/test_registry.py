"""Provisioning and revoking devices; readings are unique per (device, message id)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices


async def _resident(session: AsyncSession) -> int:
    resident = care.Resident(full_name="Jóhann K.")
    session.add(resident)
    await session.flush()
    assert resident.id is not None
    return resident.id


async def test_provision_stores_only_a_hash_and_revoke_ends_access(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        resident_id = await _resident(session)
        provisioned = await devices.provision_device(
            session, kind=devices.DeviceKind.SCALE, resident_id=resident_id
        )
        await session.commit()
    device = provisioned.device
    assert device.id.startswith("scale-")
    assert provisioned.secret not in device.secret_hash
    assert care.verify_secret(device.secret_hash, provisioned.secret)
    assert device.expected_interval_s == devices.EXPECTED_INTERVAL_S[devices.DeviceKind.SCALE]
    async with sessions() as session:
        revoked = await devices.revoke_device(session, device.id)
        await session.commit()
        assert revoked.revoked_at is not None
        with pytest.raises(devices.UnknownDeviceError):
            await devices.revoke_device(session, "nope-123")


async def test_provision_for_unknown_resident_fails(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        with pytest.raises(care.NotFoundError):
            await devices.provision_device(session, kind=devices.DeviceKind.TABLET, resident_id=999)


async def test_reading_is_unique_per_device_and_message_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        resident_id = await _resident(session)
        provisioned = await devices.provision_device(
            session, kind=devices.DeviceKind.BLOOD_PRESSURE_MONITOR, resident_id=resident_id
        )
        reading = {"systolic": 141, "diastolic": 88}
        session.add(
            devices.Reading(
                device_id=provisioned.device.id,
                message_id="m-1",
                resident_id=resident_id,
                type="blood_pressure",
                values=reading,
            )
        )
        await session.commit()
        session.add(
            devices.Reading(
                device_id=provisioned.device.id,
                message_id="m-1",
                resident_id=resident_id,
                type="blood_pressure",
                values=reading,
            )
        )
        with pytest.raises(IntegrityError):
            await session.commit()
