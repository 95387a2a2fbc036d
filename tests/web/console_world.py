"""A small world for the console in a real browser: two municipalities, a team each, a
resident with a panic button and measuring devices, a week-to-months of readings, and the
running service against it."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import video
from bench import StaffMember, Tier, add_on_call_team
from tests.conftest import ServedVaki, vaki_env

PASSWORD = "correct horse 1"


@dataclass
class ConsoleWorld:
    """Ids of who and what is in the world."""

    north: int
    south: int
    sigridur: int  # resident of the north team (municipality A)
    jon: int  # resident of the south team (municipality B)
    helga: int  # nurse in the north team
    olafur: int  # nurse in the south team
    panic_button: str
    tech: int  # technician in the north team
    gudrun: int  # coordinator in the north team


async def build_world(sessions: async_sessionmaker[AsyncSession]) -> ConsoleWorld:
    """Two municipalities, a team each with an escalation policy, staff and residents."""
    nurse, coordinator, technician = (
        care.StaffRole.NURSE,
        care.StaffRole.COORDINATOR,
        care.StaffRole.TECHNICIAN,
    )
    # Tier 1 calls whoever is on call, tier 2 the whole team; both on the console.
    tiers = [Tier(30), Tier(30, recipients=("team",))]
    async with sessions() as session:
        north = await add_on_call_team(
            session,
            organisation="Fjallabyggð",
            team="Ólafsfjörður",
            staff=[
                StaffMember("helga", "Helga Björnsdóttir", nurse, PASSWORD, "en"),
                StaffMember("gudrun", "Guðrún Arnardóttir", coordinator, PASSWORD, "en"),
                StaffMember("siggi", "Sigurður Tækni", technician, PASSWORD, "en"),
            ],
            on_call="helga",
            policy="Day and night",
            tiers=tiers,
        )
        south = await add_on_call_team(
            session,
            organisation="Dalvíkurbyggð",
            team="Dalvík",
            staff=[StaffMember("olafur", "Ólafur Kristjánsson", nurse, PASSWORD, "en")],
            on_call="olafur",
            policy="Day and night",
            tiers=tiers,
        )
        sigridur = care.Resident(
            full_name="Sigríður Jónsdóttir",
            address="Aðalgata 12, Ólafsfirði",
            phone="+354 466 1234",
            birth_date=datetime(1941, 3, 2).date(),
        )
        jon = care.Resident(full_name="Jón Pálsson", address="Hafnarbraut 3, Dalvík")
        session.add_all([sigridur, jon])
        await session.flush()
        assert sigridur.id is not None
        assert jon.id is not None
        session.add_all(
            [
                care.ResidentTeam(resident_id=sigridur.id, team_id=north.team_id),
                care.ResidentTeam(resident_id=jon.id, team_id=south.team_id),
                care.Contact(
                    resident_id=sigridur.id,
                    name="Anna Sigurðardóttir",
                    relationship="daughter",
                    phone="+354 899 1111",
                    is_emergency_contact=True,
                ),
            ]
        )
        pendant = await devices.provision_device(
            session,
            kind=devices.DeviceKind.PANIC_BUTTON,
            resident_id=sigridur.id,
            label="Pendant",
            device_id=f"panic-{uuid.uuid4().hex[:10]}",
        )
        pendant.device.online, pendant.device.battery_pct = True, 81
        pendant.device.last_seen_at, pendant.device.firmware = care.utcnow(), "2.1.0"
        await session.commit()
        return ConsoleWorld(
            north=north.team_id,
            south=south.team_id,
            sigridur=sigridur.id,
            jon=jon.id,
            helga=north.staff_ids["helga"],
            olafur=south.staff_ids["olafur"],
            panic_button=pendant.device.id,
            tech=north.staff_ids["siggi"],
            gudrun=north.staff_ids["gudrun"],
        )


async def add_history(sessions: async_sessionmaker[AsyncSession], world: ConsoleWorld) -> None:
    """Ninety days of blood pressure, oxygen and weight, a couple of alerts and a caller."""
    rng = random.Random(7)
    now = care.utcnow()
    async with sessions() as session:
        made = {}
        for kind, label, battery in (
            (devices.DeviceKind.BLOOD_PRESSURE_MONITOR, "Blood pressure cuff", 64),
            (devices.DeviceKind.PULSE_OXIMETER, "Pulse oximeter", 12),
            (devices.DeviceKind.SCALE, "Bathroom scale", 90),
        ):
            device = (
                await devices.provision_device(
                    session, kind=kind, resident_id=world.sigridur, label=label
                )
            ).device
            device.online, device.battery_pct, device.firmware = True, battery, "1.4.2"
            device.last_seen_at = now - timedelta(minutes=rng.randint(1, 50))
            made[kind] = device.id
        silent = (
            await devices.provision_device(
                session,
                kind=devices.DeviceKind.MOTION_SENSOR,
                resident_id=world.sigridur,
                label="Hall motion sensor",
            )
        ).device
        silent.online, silent.last_seen_at, silent.battery_pct = False, now - timedelta(hours=7), 40
        weight = 71.0
        for day in range(90, -1, -1):
            at = (now - timedelta(days=day)).replace(hour=9, minute=rng.randint(0, 50))
            if at > now:
                continue
            systolic = int(rng.gauss(142, 9)) + (48 if day == 2 else 0)
            readings: list[tuple[str, str, dict[str, float]]] = [
                (
                    made[devices.DeviceKind.BLOOD_PRESSURE_MONITOR],
                    "blood_pressure",
                    {
                        "systolic": systolic,
                        "diastolic": int(rng.gauss(86, 6)),
                        "pulse": int(rng.gauss(70, 5)),
                    },
                ),
                (
                    made[devices.DeviceKind.PULSE_OXIMETER],
                    "spo2",
                    {"spo2": min(99, int(rng.gauss(95, 1.6))) - (6 if day == 5 else 0)},
                ),
            ]
            if day % 2 == 0:
                weight += rng.gauss(0.02, 0.25)
                readings.append(
                    (made[devices.DeviceKind.SCALE], "weight", {"weight": round(weight, 1)})
                )
            for device_id, type_, values in readings:
                session.add(
                    devices.Reading(
                        device_id=device_id,
                        message_id=uuid.uuid4().hex[:16],
                        resident_id=world.sigridur,
                        type=type_,
                        values=values,
                        device_ts=at,
                        received_at=at,
                    )
                )
            session.add(
                devices.Event(
                    device_id=silent.id,
                    message_id=uuid.uuid4().hex[:16],
                    resident_id=world.sigridur,
                    type="motion",
                    data={"room": "hall"},
                    received_at=at + timedelta(hours=1),
                    alarm_handled_at=at,
                )
            )
        for alert_kind, severity, title, minutes in (
            ("vital_range", "high", "Systolic pressure 190 mmHg", 40),
            ("weight_gain", "normal", "Weight up 2.1 kg in 3 days", 25),
        ):
            alert = alerts.Alert(
                resident_id=world.sigridur,
                team_id=world.north,
                kind=alert_kind,
                dedupe_key=f"resident:{world.sigridur}:{alert_kind}",
                severity=alerts.AlertSeverity(severity),
                title=title,
                details={"field": "systolic", "value": 190, "max": 179}
                if alert_kind == "vital_range"
                else {},
                status=alerts.AlertStatus.ACKNOWLEDGED
                if alert_kind == "vital_range"
                else alerts.AlertStatus.OPEN,
                acknowledged_by=world.gudrun if alert_kind == "vital_range" else None,
                escalation=alerts.EscalationState.STOPPED,
                first_seen_at=now - timedelta(minutes=minutes),
                last_seen_at=now - timedelta(minutes=minutes),
            )
            session.add(alert)
            await session.flush()
            assert alert.id is not None
            session.add(
                alerts.AlertTimelineEntry(
                    alert_id=alert.id, kind="raised", at=now - timedelta(minutes=minutes)
                )
            )
        await video.request_call(
            session, world.sigridur, source="checkin", reason="Please call me", now=now
        )
        await session.commit()


def serve(tmp_path: Path, database_url: str, mosquitto: tuple[str, int]) -> ServedVaki:
    """``vaki serve`` on the test's database and the shared Mosquitto."""
    host, port = mosquitto
    env = vaki_env(
        tmp_path,
        database_url=database_url,
        mqtt_url=f"mqtt://{host}:{port}",
        escalation_sweep_s="1",
    )
    return ServedVaki(tmp_path, env)


async def sign_in(page: Page, base_url: str, username: str, next_page: str = "/console/") -> None:
    """Through the sign-in form, as a person does."""
    await page.goto(f"{base_url}/login?next={next_page}")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base_url}{next_page}")


def panic_payload() -> str:
    """A panic event as docs/mqtt.md defines it."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f'{{"id": "{uuid.uuid4().hex[:12]}", "ts": "{now}", "type": "panic", "data": {{}}}}'
