"""A cuff's or a pendant's secret is no tablet key: the tablet API refuses it everywhere."""

from __future__ import annotations

import uuid

import pytest

import devices
from tests.security.conftest import Served

TABLET_CALLS = (
    ("GET", "/api/tablet/home", None),
    ("GET", "/api/tablet/prompts", None),
    ("POST", "/api/tablet/help", {"request_id": "attack-0001"}),
    ("POST", "/api/tablet/call-request", None),
    ("POST", "/api/tablet/prompts/p-1/answer", {"answer": "fine"}),
    ("POST", "/api/tablet/video/1/token", None),
)


@pytest.mark.parametrize(
    "kind",
    [devices.DeviceKind.BLOOD_PRESSURE_MONITOR, devices.DeviceKind.PANIC_BUTTON],
    ids=["cuff", "pendant"],
)
async def test_another_devices_secret_does_not_open_the_tablet_api(
    served: Served, kind: devices.DeviceKind
) -> None:
    async with served.sessions() as session:
        other = await devices.provision_device(
            session, kind=kind, resident_id=served.world.resident
        )
        tablet = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=served.world.resident
        )
        await session.commit()
    stolen = {"Authorization": f"Bearer {devices.tablet_key(other.device.id, other.secret)}"}
    async with served.client() as attacker:
        for method, path, body in TABLET_CALLS:
            sent = {"request_id": uuid.uuid4().hex[:16]} if body and "request_id" in body else body
            refused = await attacker.request(method, path, json=sent, headers=stolen)
            assert refused.status_code == 401, (method, path, refused.text)
        # The resident's tablet, with its own key, is let in.
        own = {"Authorization": f"Bearer {devices.tablet_key(tablet.device.id, tablet.secret)}"}
        assert (await attacker.get("/api/tablet/home", headers=own)).status_code == 200
