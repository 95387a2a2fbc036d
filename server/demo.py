"""A realistic demo world: Fjallabyggð and the regional health institution, two care
teams, 25 residents with their devices and a week of plausible readings and events."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import homesim
import video

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

DAYS_OF_HISTORY = 7


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


async def load_demo_world(session: AsyncSession, *, now: datetime | None = None) -> DemoWorld:
    """Create the demo world, or give the existing one fresh staff and device secrets."""
    now = now or care.utcnow()
    existing = (
        await session.exec(select(care.Organisation).where(care.Organisation.name == MUNICIPALITY))
    ).first()
    if existing is not None:
        return await _refresh_secrets(session)
    return await _create_world(session, now)


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
        _add_plans(session, resident.id, conditions)
        await _add_history(
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


def _add_plans(session: AsyncSession, resident_id: int, conditions: tuple[str, ...]) -> None:
    """A daily wellbeing check-in for everyone, medication reminders where it fits."""
    session.add(
        alerts.CheckinPlan(
            resident_id=resident_id,
            kind=alerts.CheckinKind.WELLBEING,
            title="How are you today?",
            times=["09:30"],
        )
    )
    if conditions:
        session.add(
            alerts.CheckinPlan(
                resident_id=resident_id,
                kind=alerts.CheckinKind.MEDICATION,
                title="Morning and evening medicine",
                times=["08:00", "20:00"],
                window_min=60,
            )
        )


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
                channels=["console", "push", "sms"],
            ),
            alerts.EscalationTier(
                policy_id=policy.id,
                position=3,
                timeout_s=600,
                recipients=[{"kind": "team"}, {"kind": "relatives"}],
                channels=["console", "sms", "email"],
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


async def _add_history(
    session: AsyncSession,
    *,
    rng: random.Random,
    resident: care.Resident,
    demo_devices: list[DemoDevice],
    conditions: tuple[str, ...],
    now: datetime,
) -> None:
    """A week of readings and events that follow the resident's day in their time zone."""
    zone = ZoneInfo(resident.time_zone)
    by_kind = {d.kind: d.device_id for d in demo_devices}
    readings: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    today = now.astimezone(zone).date()
    systolic_base = rng.randint(128, 150) if "hypertension" in conditions else rng.randint(115, 132)
    weight_base = round(rng.uniform(58, 92), 1)
    spo2_base = rng.randint(91, 94) if "copd" in conditions else rng.randint(95, 98)
    glucose_base = rng.uniform(6.5, 9.0)

    def at(day: date, hour: int, minute: int) -> datetime:
        """A local wall-clock time on ``day`` as aware UTC."""
        return datetime.combine(day, time(hour, minute), zone).astimezone(care.utcnow().tzinfo)

    def reading(
        device_kind: devices.DeviceKind, when: datetime, kind: str, values: dict[str, float]
    ) -> None:
        """Queue one reading if the resident has the device and it is in the past."""
        if device_kind in by_kind and when < now:
            readings.append(
                {
                    "device_id": by_kind[device_kind],
                    "message_id": f"demo-{len(readings)}",
                    "resident_id": resident.id,
                    "type": kind,
                    "values": values,
                    "device_ts": when,
                    "received_at": when + timedelta(seconds=rng.randint(1, 4)),
                    "clock_skewed": False,
                }
            )

    def event(device_kind: devices.DeviceKind, when: datetime, kind: str) -> None:
        """Queue one event if the resident has the device and it is in the past."""
        if device_kind in by_kind and when < now:
            events.append(
                {
                    "device_id": by_kind[device_kind],
                    "message_id": f"demo-{len(events)}",
                    "resident_id": resident.id,
                    "type": kind,
                    "data": {},
                    "device_ts": when,
                    "received_at": when + timedelta(seconds=rng.randint(1, 3)),
                    "clock_skewed": False,
                }
            )

    kinds = devices.DeviceKind
    for back in range(DAYS_OF_HISTORY, -1, -1):
        day = today - timedelta(days=back)
        for hour in (8, 19):
            when = at(day, hour, rng.randint(0, 40))
            systolic = round(rng.gauss(systolic_base, 7))
            reading(
                kinds.BLOOD_PRESSURE_MONITOR,
                when,
                "blood_pressure",
                {
                    "systolic": systolic,
                    "diastolic": round(systolic * rng.uniform(0.55, 0.65)),
                    "pulse": rng.randint(58, 84),
                },
            )
            reading(
                kinds.PULSE_OXIMETER,
                when + timedelta(minutes=5),
                "spo2",
                {
                    "spo2": min(100, round(rng.gauss(spo2_base, 1))),
                    "pulse": rng.randint(60, 90),
                },
            )
            reading(
                kinds.GLUCOSE_METER,
                when - timedelta(minutes=20),
                "glucose",
                {
                    "glucose": round(rng.gauss(glucose_base, 1.1), 1),
                },
            )
        weight_base += rng.uniform(-0.3, 0.35 if "heart_failure" in conditions else 0.3)
        reading(
            kinds.SCALE,
            at(day, 7, rng.randint(10, 50)),
            "weight",
            {"weight": round(weight_base, 1)},
        )
        reading(
            kinds.THERMOMETER,
            at(day, 9, rng.randint(0, 59)),
            "temperature",
            {"temperature": round(rng.gauss(36.7, 0.25), 1)},
        )
        # The day's rhythm: up around seven, about at home, a walk, in bed by eleven.
        wake = at(day, 6, 30) + timedelta(minutes=rng.randint(0, 90))
        event(kinds.BED_SENSOR, wake, "bed_exit")
        for hour in range(7, 22):
            for _ in range(rng.randint(1, 3)):
                event(kinds.MOTION_SENSOR, at(day, hour, rng.randint(0, 59)), "motion")
        out = at(day, 13, rng.randint(0, 59))
        event(kinds.DOOR_SENSOR, out, "door_open")
        event(kinds.DOOR_SENSOR, out + timedelta(minutes=1), "door_closed")
        back_home = out + timedelta(minutes=rng.randint(20, 70))
        event(kinds.DOOR_SENSOR, back_home, "door_open")
        event(kinds.DOOR_SENSOR, back_home + timedelta(minutes=1), "door_closed")
        event(kinds.BED_SENSOR, at(day, 22, rng.randint(0, 59)), "bed_enter")
    connection = await session.connection()
    if readings:
        await connection.execute(insert(devices.Reading), readings)
    if events:
        await connection.execute(insert(devices.Event), events)


# Scenarios of the background homes of `vaki serve --demo`: now and then an alert.
DEMO_SCENARIOS: tuple[frozenset[str], ...] = (
    frozenset({"hypertensive_crisis"}),
    frozenset({"panic"}),
    frozenset({"fall_at_night"}),
)


async def simulated_demo_homes(session: AsyncSession, count: int) -> list[homesim.SimulatedHome]:
    """The first ``count`` demo residents as simulated homes, with fresh device secrets."""
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
                device.id, device.kind, await devices.reset_device_secret(session, device)
            )
            for device in owned
        ]
        homes.append(
            homesim.SimulatedHome(
                name=resident.full_name,
                time_zone=resident.time_zone,
                devices=tuple(simulated),
                scenarios=DEMO_SCENARIOS[index % len(DEMO_SCENARIOS)],
            )
        )
    await session.commit()
    return homes
