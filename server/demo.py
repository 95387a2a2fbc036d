"""A realistic demo world: Fjallabyggð and the regional health institution, two care
teams, 25 residents with their devices and a month of plausible readings, events and
answered check-ins.

The world is made once: its staff passwords and device secrets are kept in the data
directory (``demo-world.json``, readable by its owner only), so every start of
``vaki serve --demo`` prints the same logins and the simulated homes connect with the same
keys; ``vaki demo --reset`` starts over.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import homesim
import video
from server.demo_history import add_answered_checkins, add_history

MUNICIPALITY = "Fjallabyggð"
HEALTH_INSTITUTION = "Heilbrigðisstofnun Norðurlands"
TEAMS = ("Heimaþjónusta Siglufjarðar", "Heimaþjónusta Ólafsfjarðar")

# (username, full name, role, organisation, teams by index, language)
STAFF: tuple[tuple[str, str, care.StaffRole, str, tuple[int, ...], str], ...] = (
    ("sigrun", "Sigrún Jónsdóttir", care.StaffRole.COORDINATOR, MUNICIPALITY, (0, 1), "is"),
    ("helga", "Helga Björnsdóttir", care.StaffRole.NURSE, HEALTH_INSTITUTION, (0,), "is"),
    ("olafur", "Ólafur Pétursson", care.StaffRole.NURSE, HEALTH_INSTITUTION, (1,), "is"),
    ("kasia", "Katarzyna Nowak", care.StaffRole.HOME_CARE_WORKER, MUNICIPALITY, (0,), "pl"),
    ("gudny", "Guðný Einarsdóttir", care.StaffRole.HOME_CARE_WORKER, MUNICIPALITY, (1,), "is"),
    ("jon", "Jón Magnússon", care.StaffRole.HOME_CARE_WORKER, MUNICIPALITY, (0, 1), "en"),
    ("thora", "Þóra Halldórsdóttir", care.StaffRole.SPECIALIST, HEALTH_INSTITUTION, (0, 1), "is"),
    ("arni", "Árni Stefánsson", care.StaffRole.TECHNICIAN, MUNICIPALITY, (0, 1), "is"),
)

# (full name, birth year, language, time zone, team, conditions)
RESIDENTS: tuple[tuple[str, int, str, str, int, tuple[str, ...]], ...] = (
    ("Guðrún Sigurðardóttir", 1938, "is", "Atlantic/Reykjavik", 0, ("hypertension",)),
    ("Jóhann Kristjánsson", 1941, "is", "Atlantic/Reykjavik", 0, ("heart_failure",)),
    ("Margrét Ólafsdóttir", 1935, "is", "Atlantic/Reykjavik", 0, ("copd",)),
    ("Sigurður Gunnarsson", 1947, "is", "Atlantic/Reykjavik", 0, ("diabetes", "hypertension")),
    ("Kristín Þórðardóttir", 1943, "is", "Atlantic/Reykjavik", 0, ()),
    ("Einar Bjarnason", 1939, "is", "Atlantic/Reykjavik", 0, ("heart_failure", "copd")),
    ("Ingibjörg Árnadóttir", 1932, "is", "Atlantic/Reykjavik", 0, ("fall_risk",)),
    ("Halldór Sveinsson", 1950, "is", "Atlantic/Reykjavik", 0, ("hypertension",)),
    ("Anna Jónsdóttir", 1945, "is", "Atlantic/Reykjavik", 0, ("diabetes",)),
    ("Bjarni Guðmundsson", 1937, "is", "Atlantic/Reykjavik", 0, ("fall_risk", "heart_failure")),
    ("Stanisław Kowalski", 1949, "pl", "Atlantic/Reykjavik", 0, ("hypertension",)),
    ("Sólveig Hauksdóttir", 1940, "is", "Atlantic/Reykjavik", 0, ("copd",)),
    ("Aino Virtanen", 1944, "fi", "Europe/Helsinki", 1, ("diabetes",)),
    ("Ragnar Friðriksson", 1936, "is", "Atlantic/Reykjavik", 1, ("heart_failure",)),
    ("Þórunn Pálsdóttir", 1942, "is", "Atlantic/Reykjavik", 1, ("fall_risk",)),
    ("Björn Egilsson", 1946, "is", "Atlantic/Reykjavik", 1, ("hypertension", "copd")),
    ("Elín Karlsdóttir", 1934, "is", "Atlantic/Reykjavik", 1, ()),
    ("Gunnar Helgason", 1951, "is", "Atlantic/Reykjavik", 1, ("diabetes",)),
    ("Astrid Lindqvist", 1939, "sv", "Atlantic/Reykjavik", 1, ("hypertension",)),
    (
        "Hallgrímur Þorsteinsson",
        1933,
        "is",
        "Atlantic/Reykjavik",
        1,
        ("heart_failure", "fall_risk"),
    ),
    ("Vigdís Ásgeirsdóttir", 1948, "is", "Atlantic/Reykjavik", 1, ("copd",)),
    ("Páll Ragnarsson", 1944, "is", "Atlantic/Reykjavik", 1, ()),
    ("Mary O'Neill", 1947, "en", "Atlantic/Reykjavik", 1, ("hypertension",)),
    ("Kolbrún Axelsdóttir", 1937, "is", "Atlantic/Reykjavik", 1, ("diabetes", "fall_risk")),
    ("Steinunn Ingólfsdóttir", 1941, "is", "Atlantic/Reykjavik", 1, ("heart_failure",)),
)

TOWNS = ("Siglufjörður", "Ólafsfjörður")
STREETS = (
    ("Aðalgata", "Hvanneyrarbraut", "Túngata", "Suðurgata", "Laugarvegur"),
    ("Ægisgata", "Hlíðarvegur", "Aðalgata", "Kirkjuvegur", "Ólafsvegur"),
)
POSTCODES = ("580", "625")

# Devices every home has, and those a condition adds.
BASE_DEVICES = (
    devices.DeviceKind.TABLET,
    devices.DeviceKind.PANIC_BUTTON,
    devices.DeviceKind.MOTION_SENSOR,
    devices.DeviceKind.DOOR_SENSOR,
)
CONDITION_DEVICES: dict[str, tuple[devices.DeviceKind, ...]] = {
    "hypertension": (devices.DeviceKind.BLOOD_PRESSURE_MONITOR,),
    "heart_failure": (devices.DeviceKind.BLOOD_PRESSURE_MONITOR, devices.DeviceKind.SCALE),
    "copd": (devices.DeviceKind.PULSE_OXIMETER, devices.DeviceKind.THERMOMETER),
    "diabetes": (devices.DeviceKind.GLUCOSE_METER,),
    "fall_risk": (devices.DeviceKind.FALL_DETECTOR, devices.DeviceKind.BED_SENSOR),
}

# The kept logins and keys, in the data directory.
WORLD_FILE = "demo-world.json"


@dataclass(frozen=True)
class DemoLogin:
    """A staff login of the demo world."""

    username: str
    password: str
    role: str
    organisation: str


@dataclass(frozen=True)
class DemoDevice:
    """A device of the demo world with its MQTT secret."""

    device_id: str
    kind: str
    password: str


@dataclass(frozen=True)
class DemoResident:
    """A resident of the demo world and their devices."""

    id: int
    name: str
    devices: tuple[DemoDevice, ...]


@dataclass(frozen=True)
class DemoWorld:
    """What ``vaki demo`` prints: the logins and the residents with their devices."""

    staff: tuple[DemoLogin, ...]
    residents: tuple[DemoResident, ...]

    @property
    def demo_tablet(self) -> tuple[DemoResident, str] | None:
        """The resident whose tablet is left to a person (not simulated) and its key."""
        for resident in self.residents:
            for device in resident.devices:
                if device.kind == devices.DeviceKind.TABLET:
                    return resident, devices.tablet_key(device.device_id, device.password)
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoWorld:
        """The world as ``to_dict`` wrote it."""
        return cls(
            staff=tuple(DemoLogin(**login) for login in data["staff"]),
            residents=tuple(
                DemoResident(
                    id=r["id"],
                    name=r["name"],
                    devices=tuple(DemoDevice(**d) for d in r["devices"]),
                )
                for r in data["residents"]
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``vaki demo --json``."""
        return {
            "staff": [login.__dict__ for login in self.staff],
            "residents": [
                {
                    "id": r.id,
                    "name": r.name,
                    "devices": [
                        {"device_id": d.device_id, "kind": d.kind, "password": d.password}
                        for d in r.devices
                    ],
                }
                for r in self.residents
            ],
        }


async def load_demo_world(
    session: AsyncSession, *, data_dir: Path | None = None, now: datetime | None = None
) -> DemoWorld:
    """Create the demo world once and keep its logins and keys in ``data_dir``; later calls
    give the same ones back. A world whose kept file is gone gets fresh secrets (kept anew)."""
    now = now or care.utcnow()
    kept = kept_world(data_dir)
    existing = (
        await session.exec(select(care.Organisation).where(care.Organisation.name == MUNICIPALITY))
    ).first()
    if existing is not None and kept is not None:
        await wake_demo_devices(session, now)
        return kept
    world = await (_refresh_secrets(session) if existing else _create_world(session, now))
    await wake_demo_devices(session, now)
    if data_dir is not None:
        keep_world(data_dir, world)
    return world


def kept_world(data_dir: Path | None) -> DemoWorld | None:
    """The demo world's logins and keys as kept in ``data_dir``, if they are."""
    if data_dir is None:
        return None
    try:
        return DemoWorld.from_dict(json.loads((data_dir / WORLD_FILE).read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep_world(data_dir: Path, world: DemoWorld) -> None:
    """Write the logins and keys where only the service's user can read them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / WORLD_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(world.to_dict(), file, ensure_ascii=False, indent=1)


def forget_world(data_dir: Path) -> None:
    """Drop the kept logins and keys (``vaki demo --reset``)."""
    (data_dir / WORLD_FILE).unlink(missing_ok=True)


async def _refresh_secrets(session: AsyncSession) -> DemoWorld:
    """New passwords for the demo staff and secrets for demo devices (old ones are hashed)."""
    logins = []
    usernames = [row[0] for row in STAFF]
    organisations = {o.id: o.name for o in (await session.exec(select(care.Organisation))).all()}
    users = (
        await session.exec(select(care.StaffUser).where(care.StaffUser.username.in_(usernames)))  # type: ignore[attr-defined]
    ).all()
    for user in users:
        password = care.new_secret(9)
        user.password_hash = care.hash_secret(password)
        session.add(user)
        logins.append(
            DemoLogin(user.username, password, user.role, organisations[user.organisation_id])
        )
    residents = []
    for resident in (await session.exec(select(care.Resident).order_by(care.Resident.id))).all():  # type: ignore[arg-type]
        owned = (
            await session.exec(
                select(devices.Device)
                .where(devices.Device.resident_id == resident.id)
                .order_by(devices.Device.id)
            )
        ).all()
        demo_devices = []
        for device in owned:
            secret = await devices.reset_device_secret(session, device)
            demo_devices.append(DemoDevice(device.id, device.kind, secret))
        assert resident.id is not None
        residents.append(DemoResident(resident.id, resident.full_name, tuple(demo_devices)))
    await session.commit()
    return DemoWorld(tuple(logins), tuple(residents))


async def _create_world(session: AsyncSession, now: datetime) -> DemoWorld:
    """Insert organisations, teams, staff, residents, devices, plans and a week of data."""
    rng = random.Random(60)
    municipality = await care.ensure_organisation(
        session, MUNICIPALITY, care.OrganisationKind.MUNICIPALITY
    )
    institution = await care.ensure_organisation(
        session, HEALTH_INSTITUTION, care.OrganisationKind.HEALTH_INSTITUTION
    )
    organisations = {MUNICIPALITY: municipality, HEALTH_INSTITUTION: institution}
    teams = [
        care.CareTeam(name=name, description=f"Home care and nursing in {town}")
        for name, town in zip(TEAMS, TOWNS, strict=True)
    ]
    session.add_all(teams)
    await session.flush()
    team_ids = [t.id for t in teams]

    logins: list[DemoLogin] = []
    staff_by_team: dict[int, list[care.StaffUser]] = {0: [], 1: []}
    for username, full_name, role, org_name, member_of, language in STAFF:
        password = care.new_secret(9)
        user = await care.add_staff_user(
            session,
            username=username,
            full_name=full_name,
            password=password,
            role=role,
            organisation=organisations[org_name],
            language=language,
            email=f"{username}@{'fjallabyggd' if org_name == MUNICIPALITY else 'hsn'}.example.is",
        )
        user.phone = f"+354 86{len(logins)} {rng.randint(1000, 9999)}"
        for index in member_of:
            team_id = team_ids[index]
            assert team_id is not None
            assert user.id is not None
            session.add(care.TeamMembership(team_id=team_id, staff_id=user.id))
            staff_by_team[index].append(user)
        logins.append(DemoLogin(username, password, role, org_name))

    residents = []
    for number, (name, born, language, zone, team, conditions) in enumerate(RESIDENTS):
        resident = care.Resident(
            full_name=name,
            preferred_name=name.split()[0],
            birth_date=date(born, rng.randint(1, 12), rng.randint(1, 28)),
            language=language,
            time_zone=zone,
            address=f"{STREETS[team][number % 5]} {rng.randint(2, 40)}, "
            f"{POSTCODES[team]} {TOWNS[team]}",
            phone=f"+354 {rng.randint(460, 467)} {rng.randint(1000, 9999)}",
        )
        session.add(resident)
        await session.flush()
        team_id = team_ids[team]
        assert resident.id is not None
        assert team_id is not None
        session.add(care.ResidentTeam(resident_id=resident.id, team_id=team_id))
        relative = name.split()[0].rstrip("a")
        session.add(
            care.Contact(
                resident_id=resident.id,
                name=f"{relative}ur (relative)" if language == "is" else f"Family of {name}",
                relationship="son" if number % 2 else "daughter",
                phone=f"+354 8{rng.randint(10, 99)} {rng.randint(1000, 9999)}",
                email=f"family{number + 1}@example.is",
                language=language,
                is_emergency_contact=True,
                receives_alerts=number % 3 == 0,
            )
        )
        kinds = list(
            dict.fromkeys(
                BASE_DEVICES
                + tuple(kind for condition in conditions for kind in CONDITION_DEVICES[condition])
            )
        )
        demo_devices = []
        for kind in kinds:
            provisioned = await devices.provision_device(
                session, kind=kind, resident_id=resident.id, label=kind.value.replace("_", " ")
            )
            device = provisioned.device
            device.online = True
            device.last_seen_at = now - timedelta(minutes=rng.randint(1, 10))
            device.battery_pct = rng.randint(35, 100)
            device.firmware = f"1.{rng.randint(0, 4)}.{rng.randint(0, 9)}"
            session.add(device)
            demo_devices.append(DemoDevice(device.id, kind, provisioned.secret))
        residents.append(DemoResident(resident.id, name, tuple(demo_devices)))
        plans = _add_plans(session, resident.id, conditions)
        await session.flush()
        add_answered_checkins(session, rng, resident, plans, now)
        await add_history(
            session,
            rng=rng,
            resident=resident,
            demo_devices=demo_devices,
            conditions=conditions,
            now=now,
        )

    await _add_policies(session, team_ids, staff_by_team)
    _add_consultations(session, residents, team_ids, now)
    await session.commit()
    return DemoWorld(tuple(logins), tuple(residents))


def _add_plans(
    session: AsyncSession, resident_id: int, conditions: tuple[str, ...]
) -> list[alerts.CheckinPlan]:
    """A daily wellbeing check-in for everyone, medication reminders where it fits."""
    plans = [
        alerts.CheckinPlan(
            resident_id=resident_id,
            kind=alerts.CheckinKind.WELLBEING,
            title="How are you today?",
            times=["09:30"],
        )
    ]
    if conditions:
        plans.append(
            alerts.CheckinPlan(
                resident_id=resident_id,
                kind=alerts.CheckinKind.MEDICATION,
                title="Morning and evening medicine",
                times=["08:00", "20:00"],
                window_min=60,
            )
        )
    session.add_all(plans)
    return plans


async def _add_policies(
    session: AsyncSession,
    team_ids: list[int | None],
    staff_by_team: dict[int, list[care.StaffUser]],
) -> None:
    """Each team: on-call first, then the team's nurse, then everyone and the relatives.

    The rota: home-care workers take the day (08:00-20:00), the nurse the night.
    """
    for index, team_id in enumerate(team_ids):
        assert team_id is not None
        nurse = next(u for u in staff_by_team[index] if u.role == care.StaffRole.NURSE)
        day_staff = [u for u in staff_by_team[index] if u.role == care.StaffRole.HOME_CARE_WORKER]
        for weekday in range(1, 8):
            worker = day_staff[weekday % len(day_staff)]
            assert worker.id is not None
            assert nurse.id is not None
            session.add_all(
                [
                    alerts.OnCallShift(
                        team_id=team_id,
                        staff_id=worker.id,
                        weekday=weekday,
                        starts="08:00",
                        ends="20:00",
                    ),
                    alerts.OnCallShift(
                        team_id=team_id,
                        staff_id=nurse.id,
                        weekday=weekday,
                        starts="20:00",
                        ends="08:00",
                    ),
                ]
            )
        policy = alerts.EscalationPolicy(team_id=team_id, name="Default")
        session.add(policy)
        await session.flush()
        assert policy.id is not None
        tiers = [
            alerts.EscalationTier(
                policy_id=policy.id,
                position=1,
                timeout_s=120,
                recipients=[{"kind": "on_call"}],
                channels=["console", "push"],
            ),
            alerts.EscalationTier(
                policy_id=policy.id,
                position=2,
                timeout_s=300,
                recipients=[{"kind": "staff", "id": nurse.id}],
                channels=["console", "push"],
            ),
            alerts.EscalationTier(
                policy_id=policy.id,
                position=3,
                timeout_s=600,
                recipients=[{"kind": "team"}, {"kind": "relatives"}],
                # No SMS gateway in the demo: what it cannot send, it does not promise.
                channels=["console", "email"],
            ),
        ]
        session.add_all(tiers)


def _add_consultations(
    session: AsyncSession,
    residents: list[DemoResident],
    team_ids: list[int | None],
    now: datetime,
) -> None:
    """A few booked video consultations in the coming days."""
    for offset, resident in enumerate(residents[:4]):
        session.add(
            video.Consultation(
                resident_id=resident.id,
                team_id=team_ids[0],
                kind=video.ConsultationKind.SCHEDULED,
                scheduled_at=(now + timedelta(days=offset + 1)).replace(
                    hour=10 + offset, minute=0, second=0, microsecond=0
                ),
            )
        )


# Scenarios of the background homes of `vaki serve --demo`: three homes have now and then
# an alarm (a hypertensive crisis, a panic press, a fall at night); the others live calmly.
DEMO_SCENARIOS: tuple[frozenset[str], ...] = (
    frozenset({"hypertensive_crisis"}),
    frozenset({"panic"}),
    frozenset({"fall_at_night"}),
)


async def simulated_demo_homes(
    session: AsyncSession, count: int, data_dir: Path | None = None
) -> list[homesim.SimulatedHome]:
    """The first ``count`` demo residents as simulated homes, with the kept device secrets
    (fresh ones when none are kept). The demo tablet is left out: a person opens it."""
    kept = kept_world(data_dir)
    secrets = {d.device_id: d.password for r in kept.residents for d in r.devices} if kept else {}
    left_to_a_person = kept.demo_tablet if kept else None
    person_tablet = left_to_a_person[1].split(".")[1] if left_to_a_person else None
    homes = []
    residents = (
        await session.exec(select(care.Resident).order_by(care.Resident.id).limit(count))  # type: ignore[arg-type]
    ).all()
    for index, resident in enumerate(residents):
        owned = (
            await session.exec(
                select(devices.Device).where(
                    devices.Device.resident_id == resident.id,
                    devices.Device.revoked_at == None,  # noqa: E711 (SQL IS NULL)
                )
            )
        ).all()
        simulated = [
            homesim.SimulatedDevice(
                device.id,
                device.kind,
                secrets.get(device.id) or await devices.reset_device_secret(session, device),
            )
            for device in owned
            if device.id != person_tablet
        ]
        homes.append(
            homesim.SimulatedHome(
                name=resident.full_name,
                time_zone=resident.time_zone,
                devices=tuple(simulated),
                scenarios=DEMO_SCENARIOS[index - 1]
                if 1 <= index <= len(DEMO_SCENARIOS)
                else frozenset(),
            )
        )
    await session.commit()
    return homes


async def wake_demo_devices(session: AsyncSession, now: datetime) -> None:
    """The demo's devices were off while the demo was: they start as just heard from, so a
    restart does not open with every device "silent" before the simulated homes connect."""
    await session.exec(
        update(devices.Device)
        .where(col(devices.Device.revoked_at).is_(None))
        .values(online=True, last_seen_at=now)
    )
